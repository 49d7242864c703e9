"""An average of offline stagers: the members' probabilities, averaged per epoch.

Nets trained from different seeds on a small cohort disagree more than their average does
(on SLPDB, 16 subjects, the 3-class kappa of single cardio nets ranges over 0.06 between
seeds; five averaged score above the best of them). :class:`StagerEnsemble` behaves like one
offline stager, with the same inputs and outputs, so it trains fold by fold, exports to one
ONNX graph and runs in the stream unchanged (``cardio-offline`` ships as five nets). It is
for offline nets only: a causal model runs at every epoch close of every subject, where an
ensemble would cost its width in latency, so one causal net ships per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, cast

import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets.offline_stager import OfflineStager
from models.nets.stager_net import StagerNet

__all__ = ["StagerEnsemble"]


class StagerEnsemble(StagerNet):
    """Mean of the probabilities of several offline stagers of one family and shape.

    Parameters
    ----------
    members : sequence of OfflineStager
        At least one; all of one family, with equal ``n_features``, ``n_outputs``,
        ``epoch_s`` and input layout (``channel_set``).
    """

    kind: ClassVar[Literal["causal", "offline"]] = "offline"

    def __init__(self, members: Sequence[OfflineStager]) -> None:
        members = list(members)
        if not members:
            msg = "StagerEnsemble needs at least one member; got none"
            raise ValueError(msg)
        first = members[0]
        super().__init__(first.family, first.channel_set)
        for i, m in enumerate(members):
            if not isinstance(m, OfflineStager):
                msg = (f"ensemble members must be OfflineStager nets; member {i} is "
                       f"{type(m).__name__}. Train one causal net: every epoch close would "
                       "pay for an ensemble's width.")
                raise TypeError(msg)
            for attr in ("family", "n_features", "n_outputs", "epoch_s", "channel_set"):
                if getattr(m, attr) != getattr(first, attr):
                    msg = (f"ensemble member {i} has {attr}={getattr(m, attr)!r}, member 0 "
                           f"{getattr(first, attr)!r}; members must take the same inputs")
                    raise ValueError(msg)
        self.members = nn.ModuleList(members)
        self.n_features, self.n_outputs = first.n_features, first.n_outputs
        self.epoch_s, self.context_epochs = first.epoch_s, None

    @property
    def n_members(self) -> int:
        """Number of averaged nets."""
        return len(self.members)

    @property
    def nets(self) -> list[OfflineStager]:
        """The members (checked to be offline stagers when the ensemble was built)."""
        return cast("list[OfflineStager]", list(self.members))

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Set the training-set feature statistics of every member."""
        for m in self.nets:
            m.set_feature_stats(mean, std)

    def forward(self, x: Tensor, valid: Tensor | None = None, **kw: Any) -> Tensor:
        """Average of the members' probabilities, shape (batch, n_epochs, n_outputs).

        ``x`` and ``valid`` are as for :meth:`OfflineStager.forward`.

        Raises
        ------
        ValueError
            If logits are asked for: an average of probabilities has none.
        """
        if kw.get("return_logits"):
            msg = ("an ensemble averages probabilities and has no logits; train its members "
                   "one by one")
            raise ValueError(msg)
        out = [m(x, valid) for m in self.nets]
        return torch.stack(out).mean(dim=0) if len(out) > 1 else out[0]
