"""Causal cardio stager: RR-derived HRV and clock features, last 12.5 min."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from models.nets._stagers import CausalStager

__all__ = ["CardioCausal"]


class CardioCausal(CausalStager):
    """Stage the newest epoch from the last ``context_epochs`` epochs of cardio features.

    Reads the ``"cardio"`` family of the feature registry (heart-rate variability from RR
    intervals or ECG/PPG-derived beats, clock features, beat-coverage masks), one vector
    per 30-s epoch, and emits probabilities of W, light, deep and REM at every epoch close.

    Same architecture as :class:`~models.nets.wearable_causal.WearableCausal` (see
    :class:`models.nets._stagers.CausalStager`); the default dropout is higher (0.2)
    because the labelled RR corpora at hand are small (18 SLPDB records) and HRV features
    from short windows are noisy.

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
    >>> net = CardioCausal(n_features=24)
    >>> net(torch.zeros(2, 25, 24)).shape
    torch.Size([2, 4])
    """

    family: ClassVar[str] = "cardio"

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 4,
        context_epochs: int = 25,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] | None = None,
        dropout: float = 0.2,
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
