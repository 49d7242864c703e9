"""The offline stager: re-scores a whole night at session end, looking both ways."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from models.nets._layers import BidirectionalAttentionBlock, ClassifierHead, TemporalConvStack
from models.nets.stager_net import StagerNet, check_sizes

__all__ = ["OfflineStager"]


class OfflineStager(StagerNet):
    """Stage every epoch of a whole night of a family's features, looking both ways.

    Reads one feature vector per 30-s epoch of the family's registry (for ``psg`` one per
    EEG channel of a channel set, through a
    :class:`~models.nets._channel_set.ChannelSetEmbedding` front), for a night of any
    length, and returns class probabilities per epoch (W, light, deep, REM; W, N1, N2, N3,
    REM for ``psg``); the stream runs it at session end to emit revised stage events. The
    architecture is the same for every family.

    ``FeatureEmbedding(instance_norm) -> ResidualConvBlock(centred) x len(dilations) ->
    BidirectionalAttentionBlock x n_attention_blocks -> ClassifierHead`` at every epoch.
    The embedding receives each feature twice, standardised with the training-set
    statistics and normalised by the night's own mean and spread over its valid epochs
    (an offline net may use whole-night statistics; the causal one may not), which
    removes between-subject offsets in heart rate and activity. The default is a pure
    convolutional net: dilations 1 to 64 with ``kernel_size=3`` see 127 epochs (63.5 min)
    on each side of every epoch; about 27k parameters with 60 features. A training step
    on 8 whole nights takes about 0.07 s on one CPU thread, against about 3.3 s with two
    attention blocks (``n_attention_blocks > 0``: heads biased towards nearby epochs).

    Parameters
    ----------
    n_features : int
        Features per epoch (per channel with ``channel_set``), mask and quality columns
        included.
    family : str
        The feature family read (``"wearable"``, ``"cardio"``, ``"psg"``), recorded in the
        model card.
    n_outputs : int
        Classes; 4 = W, light, deep, REM; 5 = W, N1, N2, N3, REM.
    n_filters : int
        Channels of every layer; a multiple of ``n_heads``.
    kernel_size : int
        Taps of each temporal convolution (odd).
    dilations : sequence of int
        One centred residual block per dilation.
    n_heads : int
        Attention heads per block.
    n_attention_blocks : int
        Whole-night attention blocks after the convolutions (0: none).
    dropout : float
        Dropout in blocks, attention and head (the shipped cardio model uses 0.2).
    epoch_s : float
        Epoch length in seconds, recorded in the model card.
    instance_norm : bool
        Also feed each feature normalised by its whole-night mean and spread over the
        valid epochs (per channel with ``channel_set``).
    channel_set : bool
        Read a set of channels per epoch (the psg family; see :class:`StagerNet`).
    channel_dropout : float
        With ``channel_set``: probability of hiding a channel of a training crop.

    Notes
    -----
    With attention blocks, memory grows with the square of the night length (attention
    weights of shape ``(batch, n_heads, n_epochs, n_epochs)``): a 1,500-epoch night needs
    about 36 MB per block and night in float32. The convolutional default is linear.

    Examples
    --------
    >>> import torch
    >>> net = OfflineStager(n_features=40, family="wearable")
    >>> net(torch.zeros(1, 960, 40)).shape
    torch.Size([1, 960, 4])
    """

    kind: Literal["causal", "offline"] = "offline"

    def __init__(
        self,
        n_features: int,
        family: str,
        n_outputs: int = 4,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        n_heads: int = 4,
        n_attention_blocks: int = 0,
        dropout: float = 0.1,
        epoch_s: float = 30.0,
        instance_norm: bool = True,
        channel_set: bool = False,
        channel_dropout: float = 0.0,
    ) -> None:
        super().__init__(family, channel_set)
        check_sizes(n_features, n_outputs, n_filters, dropout, epoch_s)
        if n_heads < 1 or n_filters % n_heads:
            msg = f"n_filters ({n_filters}) must be a multiple of n_heads ({n_heads})"
            raise ValueError(msg)
        self.n_features, self.n_outputs, self.epoch_s = n_features, n_outputs, float(epoch_s)
        self.context_epochs = None
        self.embedding = self.make_embedding(n_features, n_filters, instance_norm=instance_norm,
                                             channel_dropout=channel_dropout)
        self.temporal = TemporalConvStack(n_filters, kernel_size, dilations, dropout, causal=False)
        self.attention = nn.ModuleList(
            BidirectionalAttentionBlock(n_filters, n_heads, dropout)
            for _ in range(n_attention_blocks)
        )
        self.head = ClassifierHead(n_filters, n_outputs, dropout)

    def forward(
        self, x: Tensor, valid: Tensor | None = None, *, return_logits: bool = False
    ) -> Tensor:
        """Stage every epoch of whole nights.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_features), float32
            Whole nights, oldest epoch first, in the units of the feature registry (with
            ``channel_set``: (batch, n_epochs, n_channels, n_features)).
        valid : Tensor, shape x.shape[:-1], optional
            1 for a real epoch (channel), 0 for padding (nights of unequal length in one
            batch) or an epoch without data; all ones if None.
        return_logits : bool
            Return logits instead of probabilities.

        Returns
        -------
        Tensor, shape (batch, n_epochs, n_outputs)
            Class probabilities per epoch (sum to 1), or logits.
        """
        valid = self.check_inputs(x, valid, None)
        h, epoch_valid = self.embed(x, valid)
        h = self.temporal(h)
        for attention in self.attention:
            h = attention(h, epoch_valid)
        logits = self.head(h)
        return logits if return_logits else torch.softmax(logits, dim=-1)
