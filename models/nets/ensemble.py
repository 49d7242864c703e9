"""An average of stagers of one kind: the members' probabilities, averaged per epoch.

Nets trained from different seeds on a small cohort disagree more than their average does
(on SLPDB, 16 subjects, the 3-class kappa of single cardio nets ranges over 0.06 between seeds;
five averaged score above the best of them). :class:`StagerEnsemble` behaves like one stager of
its members' kind, with the same inputs and outputs, so it trains fold by fold, exports to
one ONNX graph and runs in the stream unchanged.

Causal members are evaluated *fused*: their first linear maps are stacked into one GEMM,
their convolutions into one grouped convolution per layer and their heads into batched
matrix products, so the exported graph has about as many nodes as one net. ONNX Runtime's
cost of a single-subject call is mostly per node, so five fused nets cost little more than
one; the arithmetic still grows with the members' total width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets._layers import _linear
from models.nets._stagers import CausalStager, StagerNet, _check_inputs

__all__ = ["StagerEnsemble"]


class StagerEnsemble(StagerNet):
    """Mean of the probabilities of several stagers of one class and shape.

    Parameters
    ----------
    members : sequence of StagerNet
        At least one; all of the same class, with equal ``n_features``, ``n_outputs``,
        ``epoch_s`` and ``context_epochs``.
    """

    def __init__(self, members: Sequence[StagerNet]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            msg = "StagerEnsemble needs at least one member; got none"
            raise ValueError(msg)
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            if type(m) is not type(first):
                msg = (f"ensemble members must be of one class; member 0 is "
                       f"{type(first).__name__}, member {i} is {type(m).__name__}")
                raise ValueError(msg)
            for attr in ("n_features", "n_outputs", "epoch_s", "context_epochs"):
                if getattr(m, attr) != getattr(first, attr):
                    msg = (f"ensemble member {i} has {attr}={getattr(m, attr)!r}, member 0 "
                           f"{getattr(first, attr)!r}; members must take the same inputs")
                    raise ValueError(msg)
        self.members = nn.ModuleList(members)
        self.member_class = type(first).__name__
        self.n_features, self.n_outputs = first.n_features, first.n_outputs
        self.epoch_s, self.context_epochs = first.epoch_s, first.context_epochs
        self._family, self._kind = first.family, first.kind
        self.fusable = isinstance(first, CausalStager) and all(
            m.dilations == first.dilations and m.embedding.weight.shape == first.embedding.weight.shape
            for m in members if isinstance(m, CausalStager)
        )

    @property
    def family(self) -> str:  # type: ignore[override]
        """The members' family."""
        return self._family

    @property
    def kind(self) -> Literal["causal", "offline"]:  # type: ignore[override]
        """The members' kind."""
        return self._kind

    @property
    def n_members(self) -> int:
        """Number of averaged nets."""
        return len(self.members)

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Set the training-set feature statistics of every member."""
        for m in self.members:
            m.set_feature_stats(mean, std)

    def _mean(self, method: str, x: Tensor, valid: Tensor | None, **kw: Any) -> Tensor:
        if kw.get("return_logits"):
            msg = ("an ensemble averages probabilities and has no logits; train its members "
                   "one by one")
            raise ValueError(msg)
        out = [getattr(m, method)(x, valid) for m in self.members]
        return torch.stack(out).mean(dim=0) if len(out) > 1 else out[0]

    def forward(self, x: Tensor, valid: Tensor | None = None, **kw: Any) -> Tensor:
        """Average of the members' :meth:`forward` probabilities (same shapes as a member).

        Causal members in eval mode are run fused (see the module notes); the result
        equals the plain average up to float rounding.
        """
        if self.fusable and not self.training and not kw.get("return_logits"):
            return self._fused_causal(x, valid)
        return self._mean("forward", x, valid, **kw)

    def _fused_causal(self, x: Tensor, valid: Tensor | None) -> Tensor:
        members: list[CausalStager] = list(self.members)  # type: ignore[arg-type]
        n_groups = len(members)
        valid = _check_inputs(x, valid, self.n_features, self.context_epochs, "StagerEnsemble")
        v = valid.unsqueeze(-1)
        weights, biases = zip(*(m.embedding.folded() for m in members), strict=True)
        h = _linear(torch.cat([x * v, v], dim=-1), torch.cat(weights), torch.cat(biases),
                    relu=True)
        h = h.permute(2, 0, 1).unsqueeze(0)  # (1, members * filters, batch, epochs)
        for blocks in zip(*(m.temporal.blocks for m in members), strict=True):
            conv = blocks[0].conv
            w = torch.cat([b.conv.weight() for b in blocks])
            b = torch.cat([b.conv.bias for b in blocks])
            h = h[..., conv.span:] + F.relu(
                F.conv2d(h, w, b, dilation=(1, conv.dilation), groups=n_groups))
        last = h[0, :, :, -1]  # (members * filters, batch)
        last = last.reshape(n_groups, -1, last.shape[-1]).transpose(1, 2)  # (members, batch, f)
        heads = [m.head for m in members]
        norm = F.layer_norm(last, last.shape[-1:], eps=heads[0].norm.eps)
        norm = (norm * torch.stack([hd.norm.weight for hd in heads])[:, None]
                + torch.stack([hd.norm.bias for hd in heads])[:, None])
        hidden = F.relu(torch.matmul(norm, torch.stack([hd.hidden.weight for hd in heads])
                                     .transpose(1, 2))
                        + torch.stack([hd.hidden.bias for hd in heads])[:, None])
        logits = (torch.matmul(hidden, torch.stack([hd.out.weight for hd in heads])
                               .transpose(1, 2))
                  + torch.stack([hd.out.bias for hd in heads])[:, None])
        return torch.softmax(logits, dim=-1).mean(dim=0)

    def forward_sequence(self, x: Tensor, valid: Tensor | None = None, **kw: Any) -> Tensor:
        """Average of the members' ``forward_sequence`` (causal members only)."""
        if self.kind != "causal":
            msg = f"forward_sequence is for causal stagers; these members are {self.kind}"
            raise TypeError(msg)
        return self._mean("forward_sequence", x, valid, **kw)
