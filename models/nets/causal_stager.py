"""The causal stager: stages each epoch as it closes, from the last ``context_epochs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from models.nets._layers import ClassifierHead, TemporalConvStack, causal_dilations
from models.nets.stager_net import StagerNet, check_sizes, pad_past

__all__ = ["CausalStager"]


class CausalStager(StagerNet):
    """Stage the newest epoch from the last ``context_epochs`` epochs of a family's features.

    Reads one feature vector per 30-s epoch of the family's registry (``wearable``: heart
    rate, activity counts, clock and time-in-bed features; ``cardio``: heart-rate
    variability from RR intervals or derived beats, clock features; each with its mask
    and quality columns), or for ``psg`` one per EEG channel of a channel set, and emits
    class probabilities (W, light, deep, REM; W, N1, N2, N3, REM for ``psg``) at every
    epoch close. The architecture is the same for every family; a channel set enters
    through a :class:`~models.nets._channel_set.ChannelSetEmbedding` front.

    ``FeatureEmbedding (or ChannelSetEmbedding) -> ResidualConvBlock(causal) x
    len(dilations) -> ClassifierHead`` on
    the newest position: per-feature standardisation folded into an embedding with a
    validity channel, one weight-normalised residual causal convolution per dilation
    (widest first; the default ``(5, 4, 2, 1)`` with ``kernel_size=3`` covers exactly 25
    epochs), then a layer-norm MLP head. The receptive field is exactly
    ``context_epochs``, so :meth:`forward_sequence` on a whole night equals sliding
    :meth:`forward` over it and the output for an epoch never changes when later epochs
    arrive. About 15k parameters with 40 features; one epoch of one subject runs in tens
    of microseconds in ONNX Runtime.

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
        Dropout after each block and in the head (the shipped cardio model uses 0.2: its
        labelled corpus is small and HRV from short windows is noisy).
    epoch_s : float
        Epoch length in seconds, recorded in the model card.
    channel_set : bool
        Read a set of channels per epoch (the psg family; see :class:`StagerNet`).
    channel_dropout : float
        With ``channel_set``: probability of hiding a channel of a training crop.

    Examples
    --------
    >>> import torch
    >>> net = CausalStager(n_features=40, family="wearable")
    >>> net(torch.zeros(8, 25, 40), torch.ones(8, 25)).shape
    torch.Size([8, 4])
    """

    kind: Literal["causal", "offline"] = "causal"
    context_epochs: int

    def __init__(
        self,
        n_features: int,
        family: str,
        n_outputs: int = 4,
        context_epochs: int = 25,
        n_filters: int = 32,
        kernel_size: int = 3,
        dilations: Sequence[int] | None = None,
        dropout: float = 0.1,
        epoch_s: float = 30.0,
        channel_set: bool = False,
        channel_dropout: float = 0.0,
    ) -> None:
        super().__init__(family, channel_set)
        check_sizes(n_features, n_outputs, n_filters, dropout, epoch_s)
        if context_epochs < 1:
            msg = f"context_epochs must be >= 1; got {context_epochs}"
            raise ValueError(msg)
        if dilations is None:
            dilations = causal_dilations(context_epochs, kernel_size) if context_epochs > 1 else ()
        receptive = 1 + (kernel_size - 1) * sum(dilations)
        if receptive != context_epochs:
            msg = (
                f"dilations {tuple(dilations)} with kernel_size {kernel_size} give a receptive "
                f"field of {receptive} epochs; it must equal context_epochs ({context_epochs})."
            )
            raise ValueError(msg)
        self.n_features, self.n_outputs, self.epoch_s = n_features, n_outputs, float(epoch_s)
        self.context_epochs = context_epochs
        self.embedding = self.make_embedding(n_features, n_filters, instance_norm=False,
                                             channel_dropout=channel_dropout)
        self.temporal = TemporalConvStack(n_filters, kernel_size, dilations, dropout, causal=True)
        self.head = ClassifierHead(n_filters, n_outputs, dropout)

    def forward(
        self, x: Tensor, valid: Tensor | None = None, *, return_logits: bool = False
    ) -> Tensor:
        """Stage the newest epoch of each window.

        Parameters
        ----------
        x : Tensor, shape (batch, context_epochs, n_features), float32
            Per-epoch features, oldest first, in the units of the feature registry. A
            night younger than the context is left-padded with zero rows. With
            ``channel_set``: (batch, context_epochs, n_channels, n_features).
        valid : Tensor, shape x.shape[:-1], optional
            1 for a real epoch (channel), 0 for padding or no data; all ones if None.
        return_logits : bool
            Return unnormalised logits (for the training loss) instead of probabilities.

        Returns
        -------
        Tensor, shape (batch, n_outputs)
            Class probabilities for the newest epoch (sum to 1), or logits.
        """
        valid = self.check_inputs(x, valid, self.context_epochs)
        logits = self.head(self.temporal(self.embed(x, valid)[0])[:, -1])
        return logits if return_logits else torch.softmax(logits, dim=-1)

    def forward_sequence(
        self, x: Tensor, valid: Tensor | None = None, *, return_logits: bool = False
    ) -> Tensor:
        """Stage every epoch of whole nights, each from its own causal window.

        Equal to sliding :meth:`forward` over the night (left-padding the first
        ``context_epochs - 1`` windows) but computed in one pass: use it for training.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_features), float32
            Whole nights, oldest epoch first (with ``channel_set``: (batch, n_epochs,
            n_channels, n_features)).
        valid : Tensor, shape x.shape[:-1], optional
            1 for a real epoch (channel), 0 for padding or no data; all ones if None.
        return_logits : bool
            Return logits instead of probabilities.

        Returns
        -------
        Tensor, shape (batch, n_epochs, n_outputs)
        """
        valid = self.check_inputs(x, valid, None)
        pad = self.context_epochs - 1
        h, _ = self.embed(pad_past(x, pad), pad_past(valid, pad))
        logits = self.head(self.temporal(h))
        return logits if return_logits else torch.softmax(logits, dim=-1)
