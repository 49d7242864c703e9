"""Causal wearable stager: heart rate, activity and clock features, last 12.5 min."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from models.nets._stagers import CausalStager

__all__ = ["WearableCausal"]


class WearableCausal(CausalStager):
    """Stage the newest epoch from the last ``context_epochs`` epochs of wearable features.

    Reads the ``"wearable"`` family of the feature registry (heart rate, activity counts,
    clock / time-in-bed features, with their mask and quality columns), one vector per
    30-s epoch, and emits probabilities of W, light, deep and REM at every epoch close.

    Architecture (see :class:`models.nets._stagers.CausalStager`): per-feature
    standardisation folded into an embedding with a validity channel, then one
    weight-normalised residual causal convolution per dilation (widest first; the
    default ``(5, 4, 2, 1)`` with ``kernel_size=3`` covers exactly 25 epochs), then a
    layer-norm MLP head on the newest epoch. About 15k parameters with 40 features; one
    epoch of one subject runs in tens of microseconds in ONNX Runtime.

    Parameters
    ----------
    n_features : int
        Features per epoch, mask and quality columns included.
    n_outputs : int
        Classes; 4 = W, light, deep, REM.
    context_epochs : int
        Window length in epochs (25 = 12.5 min of 30-s epochs), oldest first.
    n_filters : int
        Channels of every layer.
    kernel_size : int
        Taps of each temporal convolution.
    dilations : sequence of int, optional
        One residual block per dilation; ``(kernel_size - 1) * sum(dilations)`` must be
        ``context_epochs - 1``. Default: powers of two plus a remainder, widest first.
    dropout : float
        Dropout after each block and in the head.
    epoch_s : float
        Epoch length in seconds, recorded in the model card.

    Examples
    --------
    >>> import torch
    >>> net = WearableCausal(n_features=40)
    >>> net(torch.zeros(8, 25, 40), torch.ones(8, 25)).shape
    torch.Size([8, 4])
    """

    family: ClassVar[str] = "wearable"

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 4,
        context_epochs: int = 25,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] | None = None,
        dropout: float = 0.1,
        epoch_s: float = 30.0,
    ) -> None:
        super().__init__(
            n_features=n_features,
            n_outputs=n_outputs,
            context_epochs=context_epochs,
            n_filters=n_filters,
            kernel_size=kernel_size,
            dilations=dilations,
            dropout=dropout,
            epoch_s=epoch_s,
        )
