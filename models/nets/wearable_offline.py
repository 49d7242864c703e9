"""Offline wearable stager: re-scores a whole night of heart rate, activity and clock features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from models.nets._stagers import OfflineStager

__all__ = ["WearableOffline"]


class WearableOffline(OfflineStager):
    """Stage every epoch of a whole night of wearable features, looking both ways.

    Reads the ``"wearable"`` family of the feature registry, one vector per 30-s epoch,
    for a night of any length, and returns probabilities of W, light, deep and REM per
    epoch; the stream runs it at session end to emit revised stage events.

    Architecture (see :class:`models.nets._stagers.OfflineStager`): an embedding of
    every feature both standardised with the training-set statistics and normalised by
    the night's own mean and spread (removing between-subject offsets in heart rate and
    activity), a validity channel, then centred residual convolutions (dilations 1 to 64:
    127 epochs, about an hour, on each side), then a per-epoch MLP head. About 27k
    parameters with 60 features. Optional whole-night attention blocks
    (``n_attention_blocks``) add heads biased towards nearby epochs.

    Parameters
    ----------
    n_features : int
        Features per epoch, mask and quality columns included.
    n_outputs : int
        Classes; 4 = W, light, deep, REM.
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
        Dropout in blocks, attention and head.
    epoch_s : float
        Epoch length in seconds, recorded in the model card.
    instance_norm : bool
        Also feed each feature normalised by its whole-night mean and spread over the
        valid epochs.

    Notes
    -----
    With attention blocks, memory grows with the square of the night length (attention
    weights of shape ``(batch, n_heads, n_epochs, n_epochs)``): a 1,500-epoch night needs
    about 36 MB per block and night in float32. The convolutional default is linear.

    Examples
    --------
    >>> import torch
    >>> net = WearableOffline(n_features=40)
    >>> net(torch.zeros(1, 960, 40)).shape
    torch.Size([1, 960, 4])
    """

    family: ClassVar[str] = "wearable"

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 4,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        n_heads: int = 4,
        n_attention_blocks: int = 0,
        dropout: float = 0.1,
        epoch_s: float = 30.0,
        instance_norm: bool = True,
    ) -> None:
        super().__init__(
            n_features=n_features,
            n_outputs=n_outputs,
            n_filters=n_filters,
            kernel_size=kernel_size,
            dilations=dilations,
            n_heads=n_heads,
            n_attention_blocks=n_attention_blocks,
            dropout=dropout,
            epoch_s=epoch_s,
            instance_norm=instance_norm,
        )
