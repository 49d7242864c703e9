"""What every stager net carries: the attributes the exporter writes into the model card.

A stager is a net that stages epochs: :class:`~models.nets.causal_stager.CausalStager`
(the newest epoch of a window), :class:`~models.nets.offline_stager.OfflineStager` (every
epoch of a whole night) and :class:`~models.nets.stager_ensemble.StagerEnsemble` (offline
nets averaged). The architecture does not depend on the family: ``family`` is data, the
name of the feature family the net reads, recorded in the card.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets._layers import FeatureEmbedding
from models.stages import CLASS_NAMES

__all__ = ["StagerNet", "check_inputs", "check_sizes"]

# The model card's pattern for a family name.
_FAMILY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class StagerNet(nn.Module):
    """Base of the stager nets: family, kind, input and output sizes, feature statistics.

    Parameters
    ----------
    family : str
        The feature family the net reads (``"wearable"``, ``"cardio"``): the model card's
        ``family`` and the first half of the default model name ``<family>-<kind>``.
    """

    kind: ClassVar[Literal["causal", "offline"]]
    n_features: int
    n_outputs: int
    epoch_s: float
    context_epochs: int | None
    embedding: FeatureEmbedding

    def __init__(self, family: str) -> None:
        super().__init__()
        if not isinstance(family, str) or not _FAMILY.match(family):
            msg = (f"family must be a lower-case feature family name such as 'wearable' or "
                   f"'cardio'; got {family!r}")
            raise ValueError(msg)
        self.family = family

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Set the training-set feature mean and std (see :class:`FeatureEmbedding`)."""
        self.embedding.set_feature_stats(mean, std)


def check_sizes(
    n_features: int, n_outputs: int, n_filters: int, dropout: float, epoch_s: float
) -> None:
    """Check the constructor arguments every stager shares; raise ``ValueError``."""
    if n_features < 1:
        msg = f"n_features must be >= 1; got {n_features}"
        raise ValueError(msg)
    if n_outputs not in CLASS_NAMES:
        msg = f"n_outputs must be a stage set size {sorted(CLASS_NAMES)}; got {n_outputs}"
        raise ValueError(msg)
    if n_filters < 1:
        msg = f"n_filters must be >= 1; got {n_filters}"
        raise ValueError(msg)
    if not 0.0 <= dropout < 1.0:
        msg = f"dropout must be in [0, 1); got {dropout}"
        raise ValueError(msg)
    if not epoch_s > 0:
        msg = f"epoch_s must be > 0 s; got {epoch_s}"
        raise ValueError(msg)


def check_inputs(
    x: Tensor, valid: Tensor | None, n_features: int, n_epochs: int | None, name: str
) -> Tensor:
    """Check the shapes of a forward call and return ``valid`` (all ones when None)."""
    if x.ndim != 3 or x.shape[-1] != n_features:
        msg = f"{name} expects x of shape (batch, n_epochs, {n_features}); got {tuple(x.shape)}"
        raise ValueError(msg)
    if n_epochs is not None and x.shape[1] != n_epochs:
        msg = (
            f"{name} expects a window of {n_epochs} epochs (oldest first, left-padded with "
            f"zeros and valid=0); got {x.shape[1]}. Use forward_sequence for whole nights."
        )
        raise ValueError(msg)
    if valid is None:
        return torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    if valid.shape != x.shape[:2]:
        msg = f"{name} expects valid of shape {tuple(x.shape[:2])}; got {tuple(valid.shape)}"
        raise ValueError(msg)
    return valid.to(x.dtype)
