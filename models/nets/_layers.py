"""Layers shared by the stager nets (``causal_stager``, ``offline_stager``, ``stager_net``).

Sequence tensors are laid out ``(batch, n_epochs, channels)``: per-epoch feature vectors
come in that way, the layer norms act on the last axis and every linear map is one GEMM
over ``batch * n_epochs`` rows. Only inside :class:`TemporalConvStack` the layout is the
image ``(1, channels, batch, n_epochs)``, so that ONNX Runtime runs each temporal
convolution once for the whole batch with the ReLU fused (about 35 graph nodes for the
causal net after ORT's fusions; each costs about a microsecond at batch 1).

Shared pieces
-------------
:class:`FeatureEmbedding`
    per-feature standardisation (statistics stored as buffers and folded into the first
    weight matrix), masking of invalid epochs, a validity channel, ReLU; it also encodes
    each channel of a channel set (``_channel_set.ChannelSetEmbedding``, the psg front).
:class:`DilatedConv` / :class:`ResidualConvBlock` / :class:`TemporalConvStack`
    weight-normalised dilated convolution over epochs, causal ("valid", cropped on the
    left) or centred ("same"); the TCN block of Bai et al. (2018) with one convolution.
:class:`BidirectionalAttentionBlock`
    pre-norm transformer block whose attention is biased towards nearby epochs
    (ALiBi, Press et al. 2022) and ignores invalid epochs; the whole-night sequence block.
:class:`ClassifierHead`
    layer norm and a two-layer MLP to class logits.
:func:`to_stage_set`
    folds 4-class probabilities into 3 or 2 classes (torch or numpy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import Tensor, nn

from models.card import stage_groups

__all__ = [
    "MASKED_SCORE",
    "BidirectionalAttentionBlock",
    "ClassifierHead",
    "DilatedConv",
    "FeatureEmbedding",
    "ResidualConvBlock",
    "TemporalConvStack",
    "causal_dilations",
    "linear_2d",
    "to_stage_set",
]

#: Added to the attention score of an invalid key; large enough to silence it, small
#: enough that a row with no valid key stays finite (uniform attention, not NaN).
MASKED_SCORE = -1.0e4

#: Added to a night's variance (in training-set standard units) before the per-night
#: standardisation of :class:`FeatureEmbedding`, so that a feature that is constant over
#: a night (or a night of one epoch) is centred, not blown up.
_INSTANCE_EPS = 0.1

#: A training-set standard deviation below this is a constant feature: it is centred
#: and left unscaled.
_MIN_STD = 1e-6


def linear_2d(x: Tensor, weight: Tensor, bias: Tensor | None, *, relu: bool = False) -> Tensor:
    """``F.linear`` (and ReLU) on a 2-D view: one ONNX ``Gemm`` with bias and ReLU fused."""
    flat = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
    out = F.linear(flat, weight, bias)
    if relu:
        out = F.relu(out)
    return out if x.ndim == 2 else out.reshape(*x.shape[:-1], out.shape[-1])


def causal_dilations(context_epochs: int, kernel_size: int) -> tuple[int, ...]:
    """Dilations whose causal receptive field is exactly ``context_epochs``.

    Powers of two (1, 2, 4, ...) while they fit, then the remainder, returned widest
    first. On a window of exactly ``context_epochs`` the widest-first order computes
    fewer positions (15, 7, 3, 1 for 25 epochs instead of 23, 19, 11, 1), with the same
    receptive field and the same coverage of every lag.

    Raises
    ------
    ValueError
        If ``context_epochs - 1`` is not a multiple of ``kernel_size - 1``.
    """
    if kernel_size < 2:
        msg = f"kernel_size must be >= 2 for a temporal convolution; got {kernel_size}"
        raise ValueError(msg)
    total, rest = divmod(context_epochs - 1, kernel_size - 1)
    if rest:
        msg = (
            f"context_epochs - 1 ({context_epochs - 1}) must be a multiple of "
            f"kernel_size - 1 ({kernel_size - 1}) so that the receptive field equals the "
            "context; choose kernel_size=2 or another context_epochs."
        )
        raise ValueError(msg)
    dilations: list[int] = []
    step = 1
    while sum(dilations) + step <= total:
        dilations.append(step)
        step *= 2
    if total - sum(dilations):
        dilations.append(total - sum(dilations))
    return tuple(sorted(dilations, reverse=True))


class FeatureEmbedding(nn.Module):
    """Standardise per-epoch features, mask invalid epochs and embed them.

    Computes ``relu(W [(x * v - mean) / std, v] + b)`` where ``v`` is the epoch validity.
    ``mean`` and ``std`` are buffers (set them from the training set with
    :meth:`set_feature_stats`), so they travel inside the state dict and the ONNX file;
    they are folded into ``W`` before the product, which costs nothing at inference.

    Parameters
    ----------
    n_features : int
        Number of per-epoch features (mask and quality columns included).
    n_filters : int
        Embedding width.
    """

    def __init__(self, n_features: int, n_filters: int, *, instance_norm: bool = False) -> None:
        super().__init__()
        self.n_features = n_features
        self.instance_norm = instance_norm
        n_in = 2 * n_features + 1 if instance_norm else n_features + 1
        self.weight = nn.Parameter(torch.empty(n_filters, n_in))
        self.bias = nn.Parameter(torch.zeros(n_filters))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.feature_mean: Tensor
        self.feature_std: Tensor
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))

    @torch.no_grad()
    def set_feature_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Store the training-set mean and standard deviation of each feature.

        Parameters
        ----------
        mean, std : array-like, shape (n_features,)
            In the features' own units. A ``std`` below 1e-6 (a constant feature) is
            replaced by 1 so that the feature is centred but not blown up.
        """
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32))
        for label, value in (("mean", mean_t), ("std", std_t)):
            if value.shape != (self.n_features,):
                msg = (
                    f"feature {label} must have shape ({self.n_features},); "
                    f"got {tuple(value.shape)}"
                )
                raise ValueError(msg)
            if not bool(torch.isfinite(value).all()):
                msg = f"feature {label} must be finite; check the training features for NaN"
                raise ValueError(msg)
        self.feature_mean.copy_(mean_t)
        self.feature_std.copy_(torch.where(std_t < _MIN_STD, torch.ones_like(std_t), std_t))

    def folded(self) -> tuple[Tensor, Tensor]:
        """Weight ``(n_filters, n_features + 1)`` and bias acting on ``[x * v, v]``.

        The training-set standardisation folded into the first linear map (without
        ``instance_norm`` only; the per-night statistics cannot be folded).
        """
        if self.instance_norm:
            msg = "an instance-normalised embedding has no folded linear form"
            raise TypeError(msg)
        n = self.n_features
        scale = self.weight[:, :n] / self.feature_std
        bias = self.bias - scale @ self.feature_mean
        return torch.cat([scale, self.weight[:, -1:]], dim=1), bias

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Embed epochs.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, [n_channels,] n_features)
            Features in their own units; must be finite (missing values zero-filled and
            flagged by mask columns). With a channel axis every channel is embedded alike
            and the night statistics are each channel's own.
        valid : Tensor, shape x.shape[:-1]
            1 for a real epoch (channel), 0 for padding or an epoch without data.

        Returns
        -------
        Tensor, shape x.shape[:-1] + (n_filters,)
        """
        n = self.n_features
        w_feat, w_valid = self.weight[:, :n], self.weight[:, -1:]
        v = valid.unsqueeze(-1)
        if not self.instance_norm:
            z = torch.cat([x * v, v], dim=-1)
            return linear_2d(z, *self.folded(), relu=True)
        # Whole-sequence statistics (offline nets only): each feature, standardised with
        # the training-set statistics, is also expressed relative to its own night's mean
        # and spread over the valid epochs, which removes between-subject offsets.
        z = (x - self.feature_mean) / self.feature_std * v
        count = v.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = z.sum(dim=1, keepdim=True) / count
        centred = (z - mean) * v
        var = (centred * centred).sum(dim=1, keepdim=True) / count
        relative = centred / torch.sqrt(var + _INSTANCE_EPS)
        w_rel = self.weight[:, n : 2 * n]
        zz = torch.cat([z, relative, v], dim=-1)
        return linear_2d(zz, torch.cat([w_feat, w_rel, w_valid], dim=1), self.bias, relu=True)


class DilatedConv(nn.Module):
    """Weight-normalised dilated convolution over epochs, without padding.

    Works on the "image" layout ``(1, n_in, batch, n_epochs)``: the batch rides on the
    height axis of a 2-D convolution with a ``(1, kernel_size)`` kernel, so that ONNX
    Runtime runs one blocked convolution per layer for the whole batch (its ``Conv`` on
    ``(batch, channels, n_epochs)`` loops over batch items with tiny GEMMs) and the
    activation fuses into it. The weight is ``gain * direction / ||direction||`` per output
    channel (Salimans & Kingma 2016, as in the TCN of Bai et al. 2018).

    Parameters
    ----------
    n_in, n_out : int
        Channels in and out.
    kernel_size : int
        Taps per output.
    dilation : int
        Epochs between taps.
    """

    def __init__(self, n_in: int, n_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            msg = f"kernel_size and dilation must be >= 1; got {kernel_size} and {dilation}"
            raise ValueError(msg)
        self.dilation = dilation
        self.span = (kernel_size - 1) * dilation
        direction = torch.empty(n_out, n_in, 1, kernel_size)
        nn.init.kaiming_uniform_(direction, a=math.sqrt(5))
        self.direction = nn.Parameter(direction)
        self.gain = nn.Parameter(direction.flatten(1).norm(dim=1))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def weight(self) -> Tensor:
        """The effective weight, shape (n_out, n_in, 1, kernel_size), oldest tap first."""
        norm = self.direction.flatten(1).norm(dim=1)
        return (self.gain / norm)[:, None, None, None] * self.direction

    def forward(self, h: Tensor) -> Tensor:
        """Convolve: (1, n_in, batch, n_epochs) -> (1, n_out, batch, n_epochs - span)."""
        return F.conv2d(h, self.weight(), self.bias, dilation=(1, self.dilation))


class ResidualConvBlock(nn.Module):
    """``h + dropout(relu(conv(h)))`` with a causal or a centred dilated convolution.

    Works on the layout ``(1, n_filters, batch, n_epochs)`` of :class:`DilatedConv`.

    Parameters
    ----------
    n_filters : int
        Channels.
    kernel_size, dilation : int
        Of the convolution.
    dropout : float
        Dropout probability after the activation.
    causal : bool
        True: no padding, the output is ``span`` epochs shorter and aligned on the newest
        epoch (the residual is cropped on the left). False: zero padding on both sides
        (``kernel_size`` must be odd), same length out.
    """

    def __init__(
        self, n_filters: int, kernel_size: int, dilation: int, dropout: float, *, causal: bool
    ) -> None:
        super().__init__()
        self.conv = DilatedConv(n_filters, n_filters, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.causal = causal
        if not causal and self.conv.span % 2:
            msg = f"a centred convolution needs an odd kernel_size; got {kernel_size}"
            raise ValueError(msg)

    def forward(self, h: Tensor) -> Tensor:
        """Apply the block; see ``causal`` for the length of the output."""
        span = self.conv.span
        if self.causal:
            return h[..., span:] + self.dropout(F.relu(self.conv(h)))
        padded = F.pad(h, (span // 2, span // 2))
        return h + self.dropout(F.relu(self.conv(padded)))


class TemporalConvStack(nn.Module):
    """Residual dilated convolutions over epochs, one block per dilation (a TCN).

    Parameters
    ----------
    n_filters : int
        Channels.
    kernel_size : int
        Taps of each convolution.
    dilations : sequence of int
        One :class:`ResidualConvBlock` per dilation, in order.
    dropout : float
        Dropout after each block.
    causal : bool
        Causal blocks shorten the sequence by ``(kernel_size - 1) * sum(dilations)``
        epochs; centred blocks keep its length.
    """

    def __init__(
        self,
        n_filters: int,
        kernel_size: int,
        dilations: Sequence[int],
        dropout: float,
        *,
        causal: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualConvBlock(n_filters, kernel_size, d, dropout, causal=causal) for d in dilations
        )

    def forward(self, h: Tensor) -> Tensor:
        """(batch, n_epochs, n_filters) -> (batch, n_epochs_out, n_filters)."""
        h = h.permute(2, 0, 1).unsqueeze(0)
        for block in self.blocks:
            h = block(h)
        return h[0].permute(1, 2, 0)


class BidirectionalAttentionBlock(nn.Module):
    """Pre-norm transformer block over a whole night, biased towards nearby epochs.

    Each head adds ``-slope * |i - j|`` to the score of epoch ``j`` seen from epoch ``i``
    (ALiBi); slopes ``2**-1, 2**-3, ...`` give heads that look about 1 min, 4 min, 16 min,
    1 h around, which needs no positional embedding and works for any night length.
    Invalid epochs are masked as keys; they still get an output as queries.

    Parameters
    ----------
    n_filters : int
        Channels; divisible by ``n_heads``.
    n_heads : int
        Attention heads.
    dropout : float
        Dropout on the attention weights and on both residual branches.
    """

    def __init__(self, n_filters: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if n_heads < 1 or n_filters % n_heads:
            msg = f"n_filters ({n_filters}) must be a multiple of n_heads ({n_heads})"
            raise ValueError(msg)
        self.n_heads = n_heads
        self.norm_attention = nn.LayerNorm(n_filters)
        self.qkv = nn.Linear(n_filters, 3 * n_filters)
        self.project = nn.Linear(n_filters, n_filters)
        self.norm_mlp = nn.LayerNorm(n_filters)
        self.mlp = nn.Sequential(
            nn.Linear(n_filters, 2 * n_filters),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(2 * n_filters, n_filters),
        )
        self.dropout = nn.Dropout(dropout)
        self.slopes: Tensor
        slopes = 2.0 ** -(1.0 + 2.0 * torch.arange(n_heads, dtype=torch.float32))
        self.register_buffer("slopes", slopes)

    def _attend(self, h: Tensor, valid: Tensor) -> Tensor:
        batch, n_epochs, n_filters = h.shape
        head_dim = n_filters // self.n_heads
        qkv = linear_2d(self.norm_attention(h), self.qkv.weight, self.qkv.bias)
        q, k, v = qkv.reshape(batch, n_epochs, 3, self.n_heads, head_dim).permute(2, 0, 3, 1, 4)
        position = torch.arange(n_epochs, device=h.device, dtype=h.dtype)
        distance = (position[None, :] - position[:, None]).abs()
        bias = (
            -self.slopes[:, None, None] * distance + (1.0 - valid[:, None, None, :]) * MASKED_SCORE
        )
        # Fused kernels in training (less memory on GPU); MatMul/Softmax ops in ONNX.
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout.p if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(batch, n_epochs, n_filters)
        return linear_2d(out, self.project.weight, self.project.bias)

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        """Mix every epoch with the whole night.

        Parameters
        ----------
        h : Tensor, shape (batch, n_epochs, n_filters)
        valid : Tensor, shape (batch, n_epochs)
            1 for a real epoch, 0 for padding / no data.

        Returns
        -------
        Tensor, shape (batch, n_epochs, n_filters)
        """
        h = h + self.dropout(self._attend(h, valid))
        return h + self.dropout(self.mlp(self.norm_mlp(h)))


class ClassifierHead(nn.Module):
    """LayerNorm, then ``Linear -> ReLU -> Dropout -> Linear`` to class logits (last axis)."""

    def __init__(self, n_filters: int, n_outputs: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n_filters)
        self.hidden = nn.Linear(n_filters, n_filters)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(n_filters, n_outputs)

    def forward(self, h: Tensor) -> Tensor:
        """(..., n_filters) -> (..., n_outputs) logits."""
        h = self.dropout(linear_2d(self.norm(h), self.hidden.weight, self.hidden.bias, relu=True))
        return linear_2d(h, self.out.weight, self.out.bias)


@overload
def to_stage_set(probs: Tensor, stage_set: int) -> Tensor: ...
@overload
def to_stage_set(probs: NDArray[np.floating], stage_set: int) -> NDArray[np.floating]: ...
def to_stage_set(
    probs: Tensor | NDArray[np.floating], stage_set: int
) -> Tensor | NDArray[np.floating]:
    """Sum class probabilities into a coarser stage set.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (..., n_classes)
        Probabilities over a stage set (4: W, light, deep, REM).
    stage_set : {4, 3, 2}
        3 gives W, NREM (= light + deep), REM; 2 gives W, sleep.

    Returns
    -------
    Tensor or ndarray, shape (..., stage_set)
        Same type, dtype and device as ``probs``.
    """
    groups = stage_groups(stage_set, from_set=int(probs.shape[-1]))
    matrix = np.zeros((probs.shape[-1], stage_set), dtype=np.float32)
    for dst, sources in enumerate(groups):
        matrix[list(sources), dst] = 1.0
    if isinstance(probs, Tensor):
        return probs @ torch.as_tensor(matrix, dtype=probs.dtype, device=probs.device)
    return np.asarray(probs) @ matrix.astype(probs.dtype, copy=False)
