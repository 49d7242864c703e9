"""Network definitions: one public ``nn.Module`` per file, shared layers in ``_layers``.

======================  ===========  =====================================================
class                   kind         input -> output
======================  ===========  =====================================================
``CausalStager``        causal       (batch, 25, n_features) + valid -> (batch, 4)
``OfflineStager``       offline      (batch, n_epochs, n_features) + valid
                                     -> (batch, n_epochs, 4)
``StagerEnsemble``      either       as its members: the average of several
======================  ===========  =====================================================

Two architectures serve every family: the family (``wearable``, ``cardio``, ``psg``) is a
constructor argument, recorded in the model card, and a model name ``<family>-<kind>``
(``cardio-offline``) names the net :func:`build_net` makes. The wearable and cardio nets
output probabilities of W, light, deep, REM; :func:`to_stage_set` folds them into 3 (W,
NREM, REM) or 2 (W, sleep) classes. The psg nets read a set of EEG channels per epoch, of
any size and montage (``x`` of shape (batch, n_epochs, n_channels, n_features), ``valid``
(batch, n_epochs, n_channels): a channel-set front, ``ChannelSetEmbedding``, before the same
temporal stacks) and output 5 classes, W, N1, N2, N3, REM. Pass ``return_logits=True`` for
the loss.
"""

from __future__ import annotations

from typing import Any

from models.features.registry import PER_CHANNEL_FAMILIES
from models.nets._layers import to_stage_set
from models.nets.causal_stager import CausalStager
from models.nets.offline_stager import OfflineStager
from models.nets.stager_ensemble import StagerEnsemble
from models.nets.stager_net import StagerNet

__all__ = [
    "NETS",
    "CausalStager",
    "OfflineStager",
    "StagerEnsemble",
    "StagerNet",
    "build_net",
    "to_stage_set",
]

#: The architecture of each model kind.
NETS: dict[str, type[CausalStager] | type[OfflineStager]] = {
    "causal": CausalStager,
    "offline": OfflineStager,
}


def build_net(name: str, n_features: int, **kwargs: Any) -> CausalStager | OfflineStager:
    """The net of the model ``name`` = ``<family>-<kind>`` (``"wearable-causal"``).

    Parameters
    ----------
    name : str
        Model name: a feature family, a dash, and ``causal`` or ``offline``.
    n_features : int
        Features per epoch (per channel for a family of ``PER_CHANNEL_FAMILIES``).
    **kwargs
        Constructor arguments of the kind's class (:data:`NETS`); ``channel_set`` defaults
        to whether the family's features come per channel (``psg``).

    Raises
    ------
    ValueError
        If ``name`` does not end in ``-causal`` or ``-offline``, or the arguments do not
        fit the class (the message names them).
    """
    family, _, kind = name.rpartition("-")
    if kind not in NETS or not family:
        msg = (f"model name must be '<family>-causal' or '<family>-offline' (e.g. "
               f"'wearable-causal'); got {name!r}")
        raise ValueError(msg)
    kwargs.setdefault("channel_set", family in PER_CHANNEL_FAMILIES)
    try:
        return NETS[kind](n_features, family, **kwargs)
    except TypeError as err:
        msg = f"net arguments {kwargs} do not fit {NETS[kind].__name__}: {err}"
        raise ValueError(msg) from None
