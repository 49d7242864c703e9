"""Offline cardio stager: re-scores a whole night of RR-derived HRV and clock features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from models.nets._stagers import OfflineStager

__all__ = ["CardioOffline"]


class CardioOffline(OfflineStager):
    """Stage every epoch of a whole night of cardio features, looking both ways.

    Reads the ``"cardio"`` family of the feature registry (HRV from RR intervals or
    derived beats, clock features, beat-coverage masks), one vector per 30-s epoch, for a
    night of any length, and returns probabilities of W, light, deep and REM per epoch.

    Same architecture as :class:`~models.nets.wearable_offline.WearableOffline` (see
    :class:`models.nets._stagers.OfflineStager`); the default dropout is higher (0.2)
    because the labelled RR corpora at hand are small.

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

    Examples
    --------
    >>> import torch
    >>> net = CardioOffline(n_features=24)
    >>> net(torch.zeros(2, 100, 24), torch.ones(2, 100)).shape
    torch.Size([2, 100, 4])
    """

    family: ClassVar[str] = "cardio"

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 4,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        n_heads: int = 4,
        n_attention_blocks: int = 0,
        dropout: float = 0.2,
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
