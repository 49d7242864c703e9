"""An average of stagers: the members' probabilities, averaged per epoch.

Nets trained from different seeds on a small cohort disagree more than their average does
(on SLPDB, 16 subjects, the 3-class kappa of single cardio nets ranges over 0.06 between
seeds; five averaged score above the best of them). :class:`StagerEnsemble` behaves like one
stager of its members' kind, with the same inputs and outputs, so it trains fold by fold,
exports to one ONNX graph and runs in the stream unchanged (``cardio-offline`` ships as five
nets). A causal model runs at every epoch close of every subject, where an ensemble costs its
width in latency: the wearable and cardio causal models are one net each (five would take
the 1,000-subject call past its 20 ms), while ``psg-causal``, whose stream serves a few
hundred live recordings per worker, averages three (see ``training/configs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets.causal_stager import CausalStager
from models.nets.offline_stager import OfflineStager
from models.nets.stager_net import StagerNet

__all__ = ["StagerEnsemble"]

_MATCHING = ("family", "n_features", "n_outputs", "epoch_s", "channel_set", "context_epochs")


class StagerEnsemble(StagerNet):
    """Mean of the probabilities of several stagers of one family, kind and shape.

    Parameters
    ----------
    nets : sequence of OfflineStager, or sequence of CausalStager
        At least one; all of one class and family, with equal ``n_features``,
        ``n_outputs``, ``epoch_s``, input layout (``channel_set``) and context.
    """

    def __init__(self, nets: Sequence[CausalStager] | Sequence[OfflineStager]) -> None:
        members: list[StagerNet] = list(nets)
        if not members:
            msg = "StagerEnsemble needs at least one member; got none"
            raise ValueError(msg)
        first = members[0]
        super().__init__(first.family, first.channel_set)
        for i, m in enumerate(members):
            if not isinstance(m, CausalStager | OfflineStager) or type(m) is not type(first):
                msg = (f"ensemble members must all be OfflineStager or all CausalStager nets; "
                       f"member 0 is {type(first).__name__}, member {i} {type(m).__name__}")
                raise TypeError(msg)
            for attr in _MATCHING:
                if getattr(m, attr) != getattr(first, attr):
                    msg = (f"ensemble member {i} has {attr}={getattr(m, attr)!r}, member 0 "
                           f"{getattr(first, attr)!r}; members must take the same inputs")
                    raise ValueError(msg)
        self.members = nn.ModuleList(members)
        self.kind = first.kind
        self.n_features, self.n_outputs = first.n_features, first.n_outputs
        self.epoch_s, self.context_epochs = first.epoch_s, first.context_epochs

    @property
    def n_members(self) -> int:
        """Number of averaged nets."""
        return len(self.members)

    @property
    def nets(self) -> list[CausalStager | OfflineStager]:
        """The members (checked to be stagers of one kind when the ensemble was built)."""
        return cast("list[CausalStager | OfflineStager]", list(self.members))

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Set the training-set feature statistics of every member."""
        for m in self.nets:
            m.set_feature_stats(mean, std)

    @staticmethod
    def _mean(out: list[Tensor], kw: dict[str, Any]) -> Tensor:
        if kw.get("return_logits"):
            msg = ("an ensemble averages probabilities and has no logits; train its members "
                   "one by one")
            raise ValueError(msg)
        return torch.stack(out).mean(dim=0) if len(out) > 1 else out[0]

    def forward(self, x: Tensor, valid: Tensor | None = None, **kw: Any) -> Tensor:
        """Average of the members' probabilities (shapes as the members' ``forward``).

        Raises
        ------
        ValueError
            If logits are asked for: an average of probabilities has none.
        """
        return self._mean([m(x, valid) for m in self.nets], kw)

    def forward_sequence(self, x: Tensor, valid: Tensor | None = None, **kw: Any) -> Tensor:
        """Causal members only: the average of their ``forward_sequence`` over whole nights."""
        if self.kind != "causal":
            msg = "forward_sequence belongs to causal ensembles; call an offline one directly"
            raise TypeError(msg)
        return self._mean([cast("CausalStager", m).forward_sequence(x, valid)
                           for m in self.nets], kw)
