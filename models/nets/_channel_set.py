"""The channel-set front of the stagers: any number of channels of any montage per epoch.

A psg net reads, per epoch, one feature vector per EEG channel of a set whose size, order
and montage vary between recordings (Fpz-Cz and Pz-Oz in training; one C3-M2 or six
channels in a sleep lab). :class:`ChannelSetEmbedding` turns such a set into one vector
per epoch that the temporal stacks of :class:`~models.nets.causal_stager.CausalStager` and
:class:`~models.nets.offline_stager.OfflineStager` read as they read the per-epoch
embedding of the other families:

* a shared per-channel encoder: :class:`~models.nets._layers.FeatureEmbedding` (training-set
  standardisation, a validity input, for offline nets each feature also against its own
  channel's night) and a second layer, the same weights for every channel;
* masked attention pooling over channels: a learned score per channel embedding, a softmax
  over the channels present in the epoch; a masked channel gets exactly zero weight, so
  masking a channel equals leaving it out, and the pooled vector does not depend on the
  channels' order;
* channel dropout in training: each channel of a training crop is hidden with probability
  ``channel_dropout`` (never all of an epoch's channels), so that the net learns to stage
  from any subset, one channel included.

The channel axis stays dynamic in the ONNX graph: one exported model takes 1, 2 or 6 channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor, nn

from models.nets._layers import MASKED_SCORE, FeatureEmbedding, linear_2d

__all__ = ["ChannelSetEmbedding"]


class ChannelSetEmbedding(nn.Module):
    """Encode every channel with shared weights, pool over the channels present.

    Parameters
    ----------
    n_features : int
        Features per channel and epoch.
    n_filters : int
        Width of the channel encoder and of the pooled output.
    instance_norm : bool
        Also feed each channel's features relative to that channel's whole night (offline
        nets only: it reads every epoch of the night).
    channel_dropout : float
        Probability of hiding a channel of a training crop (0: never); not used in eval.
    """

    def __init__(
        self, n_features: int, n_filters: int, *, instance_norm: bool = False,
        channel_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= channel_dropout < 1.0:
            msg = f"channel_dropout must be in [0, 1); got {channel_dropout}"
            raise ValueError(msg)
        self.n_features = n_features
        self.channel_dropout = channel_dropout
        self.encoder = FeatureEmbedding(n_features, n_filters, instance_norm=instance_norm)
        self.hidden = nn.Linear(n_filters, n_filters)
        self.score = nn.Linear(n_filters, 1)
        self.out = nn.Linear(n_filters + 1, n_filters)

    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Training-set mean and std of each per-channel feature (see FeatureEmbedding)."""
        self.encoder.set_feature_stats(mean, std)

    def _drop_channels(self, valid: Tensor) -> Tensor:
        """Hide random channels of each crop, keeping every epoch at least one."""
        batch, _, n_channels = valid.shape
        keep = torch.rand(batch, 1, n_channels, device=valid.device) >= self.channel_dropout
        dropped = valid * keep.to(valid.dtype)
        emptied = (dropped.sum(-1, keepdim=True) == 0) & (valid.sum(-1, keepdim=True) > 0)
        return torch.where(emptied, valid, dropped)

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Embed the channel set of every epoch.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_channels, n_features)
            Per-channel features in the registry's units; finite (zero where missing).
        valid : Tensor, shape (batch, n_epochs, n_channels)
            1 where a channel has data in an epoch, 0 for a gap, padding or no channel.

        Returns
        -------
        h : Tensor, shape (batch, n_epochs, n_filters)
            One vector per epoch.
        epoch_valid : Tensor, shape (batch, n_epochs)
            1 where at least one channel had data.
        """
        if self.training and self.channel_dropout > 0:
            valid = self._drop_channels(valid)
        e = self.encoder(x, valid)
        e = linear_2d(e, self.hidden.weight, self.hidden.bias, relu=True)
        score = linear_2d(e, self.score.weight, self.score.bias)[..., 0]
        weight = torch.softmax(score + (1.0 - valid) * MASKED_SCORE, dim=-1) * valid
        pooled = (weight.unsqueeze(-1) * e).sum(dim=2)
        epoch_valid = valid.amax(dim=-1)
        z = torch.cat([pooled, epoch_valid.unsqueeze(-1)], dim=-1)
        return F.relu(linear_2d(z, self.out.weight, self.out.bias)), epoch_valid
