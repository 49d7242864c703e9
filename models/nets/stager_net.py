"""What every stager net carries: the attributes the exporter writes into the model card.

A stager is a net that stages epochs: :class:`~models.nets.causal_stager.CausalStager`
(the newest epoch of a window), :class:`~models.nets.offline_stager.OfflineStager` (every
epoch of a whole night) and :class:`~models.nets.stager_ensemble.StagerEnsemble` (nets of
one of them, averaged). The architecture does not depend on the family: ``family`` is data, the
name of the feature family the net reads, recorded in the card. A net of a per-channel
family (``psg``) reads a set of channels per epoch through a
:class:`~models.nets._channel_set.ChannelSetEmbedding` front instead of the per-epoch
:class:`~models.nets._layers.FeatureEmbedding`; the temporal stacks behind it are the same.
"""

from __future__ import annotations

import re
from typing import Literal

import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets._channel_set import ChannelSetEmbedding
from models.nets._layers import FeatureEmbedding
from models.stages import CLASS_NAMES

__all__ = ["StagerNet", "check_inputs", "check_sizes", "pad_past"]

# The model card's pattern for a family name.
_FAMILY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class StagerNet(nn.Module):
    """Base of the stager nets: family, kind, input and output sizes, feature statistics.

    Parameters
    ----------
    family : str
        The feature family the net reads (``"wearable"``, ``"cardio"``, ``"psg"``): the
        model card's ``family`` and the first half of the default model name
        ``<family>-<kind>``.
    channel_set : bool
        The input carries a set of channels per epoch, ``x`` of shape (batch, n_epochs,
        n_channels, n_features) with ``valid`` (batch, n_epochs, n_channels).
    """

    kind: Literal["causal", "offline"]
    n_features: int
    n_outputs: int
    epoch_s: float
    context_epochs: int | None
    embedding: FeatureEmbedding | ChannelSetEmbedding

    def __init__(self, family: str, channel_set: bool = False) -> None:
        super().__init__()
        if not isinstance(family, str) or not _FAMILY.match(family):
            msg = (f"family must be a lower-case feature family name such as 'wearable' or "
                   f"'cardio'; got {family!r}")
            raise ValueError(msg)
        self.family = family
        self.channel_set = bool(channel_set)

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Set the training-set feature mean and std (see :class:`FeatureEmbedding`)."""
        self.embedding.set_feature_stats(mean, std)

    def make_embedding(
        self, n_features: int, n_filters: int, *, instance_norm: bool, channel_dropout: float
    ) -> FeatureEmbedding | ChannelSetEmbedding:
        """The front of the net: per-epoch features, or a channel set when ``channel_set``."""
        if self.channel_set:
            return ChannelSetEmbedding(n_features, n_filters, instance_norm=instance_norm,
                                       channel_dropout=channel_dropout)
        if channel_dropout:
            msg = f"channel_dropout needs a channel-set input; got {channel_dropout}"
            raise ValueError(msg)
        return FeatureEmbedding(n_features, n_filters, instance_norm=instance_norm)

    def embed(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Per-epoch embedding ``(batch, n_epochs, n_filters)`` and epoch validity."""
        if isinstance(self.embedding, ChannelSetEmbedding):
            return self.embedding(x, valid)
        return self.embedding(x, valid), valid

    def check_inputs(self, x: Tensor, valid: Tensor | None, n_epochs: int | None) -> Tensor:
        """Check the shapes of a forward call and return ``valid`` (ones when None)."""
        return check_inputs(x, valid, self.n_features, n_epochs, type(self).__name__,
                            self.channel_set)


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
    x: Tensor, valid: Tensor | None, n_features: int, n_epochs: int | None, name: str,
    channel_set: bool = False,
) -> Tensor:
    """Check the shapes of a forward call and return ``valid`` (all ones when None)."""
    layout = "(batch, n_epochs, n_channels, " if channel_set else "(batch, n_epochs, "
    if x.ndim != 3 + channel_set or x.shape[-1] != n_features:
        msg = f"{name} expects x of shape {layout}{n_features}); got {tuple(x.shape)}"
        raise ValueError(msg)
    if channel_set and x.shape[2] < 1:
        msg = f"{name} needs at least one channel; got x of shape {tuple(x.shape)}"
        raise ValueError(msg)
    if n_epochs is not None and x.shape[1] != n_epochs:
        msg = (
            f"{name} expects a window of {n_epochs} epochs (oldest first, left-padded with "
            f"zeros and valid=0); got {x.shape[1]}. Use forward_sequence for whole nights."
        )
        raise ValueError(msg)
    if valid is None:
        return torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)
    if valid.shape != x.shape[:-1]:
        msg = f"{name} expects valid of shape {tuple(x.shape[:-1])}; got {tuple(valid.shape)}"
        raise ValueError(msg)
    return valid.to(x.dtype)


def pad_past(t: Tensor, n_epochs: int) -> Tensor:
    """``t`` with ``n_epochs`` zero epochs prepended on its epoch axis (axis 1)."""
    return torch.cat([t.new_zeros((t.shape[0], n_epochs, *t.shape[2:])), t], dim=1)
