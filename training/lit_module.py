"""The LightningModule that trains any stager net, with pooled validation κ.

The net is an argument, as in Lightning's backbone example; the loss is class-weighted
cross entropy on the labels of the net's stage set (4 or 5 classes) with ``ignore_index=-1``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor

from models.card import stage_groups
from models.evaluation.metrics import scores_from_confusion
from models.nets import CausalStager, OfflineStager, to_stage_set

__all__ = ["BestState", "StagingModule", "WeightAverage", "feature_stats"]


class StagingModule(L.LightningModule):
    """Train a stager net on the labels of its stage set (``net.n_outputs`` classes).

    Parameters
    ----------
    net : CausalStager or OfflineStager
        A net of :mod:`models.nets`; causal nets are trained through
        ``forward_sequence`` (every epoch of a crop from its own causal window).
    lr, weight_decay : float
        AdamW settings.
    class_weights : array-like of float, shape (n_outputs,), optional
        Cross-entropy class weights (see :func:`training.datamodules.class_weights`).

    Notes
    -----
    Validation accumulates confusion matrices over all validation nights (reduced across
    devices) in the net's stage set and the coarser 4- and 3-class sets, and logs
    ``val_kappa5`` (5-class nets), ``val_kappa4``, ``val_kappa3`` and ``val_loss``.
    """

    def __init__(
        self,
        net: CausalStager | OfflineStager,
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        class_weights: ArrayLike | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(net, CausalStager | OfflineStager):
            msg = (f"net must be a CausalStager or an OfflineStager from models.nets (an "
                   f"ensemble is trained member by member); got {type(net).__name__}")
            raise TypeError(msg)
        if lr <= 0 or weight_decay < 0:
            msg = f"need lr > 0 and weight_decay >= 0; got lr={lr}, weight_decay={weight_decay}"
            raise ValueError(msg)
        self.net, self.lr, self.weight_decay = net, lr, weight_decay
        w = torch.ones(net.n_outputs) if class_weights is None else torch.as_tensor(
            np.asarray(class_weights, dtype=np.float32))
        if w.shape != (net.n_outputs,):
            msg = f"class_weights must have shape ({net.n_outputs},); got {tuple(w.shape)}"
            raise ValueError(msg)
        self.class_weights: Tensor
        self.register_buffer("class_weights", w)
        self.stage_sets = tuple(k for k in (5, 4, 3) if k <= net.n_outputs)
        self._cm: dict[int, Tensor] = {}
        self._val_loss: list[Tensor] = []

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Logits ``(B, T, n_outputs)`` for every epoch of ``x``, ``(B, T, [C,] F)``."""
        if isinstance(self.net, CausalStager):
            return self.net.forward_sequence(x, valid, return_logits=True)
        return self.net(x, valid, return_logits=True)

    def _loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               weight=self.class_weights, ignore_index=-1)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        """Weighted cross entropy over the scored epochs of a batch of crops."""
        x, valid, y = batch
        loss = self._loss(self(x, valid), y)
        self.log("train_loss", loss, prog_bar=False, batch_size=x.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the confusion matrices."""
        self._cm = {k: torch.zeros(k, k, device=self.device) for k in self.stage_sets}
        self._val_loss = []

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate confusion matrices of whole validation nights."""
        x, valid, y = batch
        logits = self(x, valid)
        self._val_loss.append(self._loss(logits, y).detach())
        probs = torch.softmax(logits, dim=-1)
        scored = y >= 0
        n = self.net.n_outputs
        for k, cm in self._cm.items():
            p = probs if k == n else to_stage_set(probs, k)
            ref = y if k == n else _reduce_labels(y, n, k)
            # one-hot product, not bincount: bincount has no deterministic CUDA kernel
            ref_1h = F.one_hot(ref[scored], k).to(cm.dtype)
            cm += ref_1h.T @ F.one_hot(p.argmax(-1)[scored], k).to(cm.dtype)

    def on_validation_epoch_end(self) -> None:
        """Log pooled κ (each stage set) and the mean loss."""
        for k, cm in self._cm.items():
            total = self.trainer.strategy.reduce(cm, reduce_op="sum")
            kappa = scores_from_confusion(total.detach().cpu().numpy().astype(np.int64)).kappa
            self.log(f"val_kappa{k}", float(np.nan_to_num(kappa, nan=0.0)), sync_dist=False)
        loss = torch.stack(self._val_loss).mean() if self._val_loss else torch.tensor(0.0)
        self.log("val_loss", loss, sync_dist=True)

    def predict_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        """Probabilities ``(B, T, n_outputs)`` of whole nights."""
        x, valid, _ = batch
        return torch.softmax(self(x, valid), dim=-1)

    def configure_optimizers(self) -> Any:
        """AdamW with cosine decay over the planned steps."""
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = max(int(self.trainer.max_steps), 1) if self.trainer.max_steps > 0 else 1000
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=total + 1, pct_start=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _reduce_labels(y: Tensor, n: int, k: int) -> Tensor:
    """Class labels of the ``n``-class set in the coarser ``k``-class set (-1 kept as any)."""
    table = torch.zeros(n, dtype=torch.int64, device=y.device)
    for dst, sources in enumerate(stage_groups(k, from_set=n)):
        table[list(sources)] = dst
    return table[y.clamp(min=0)]


class BestState(L.Callback):
    """Keep the best state dict by a logged metric in memory; restore it when fit ends.

    No checkpoint file is written. ``mode`` is ``"max"`` for κ and ``"min"`` for loss.
    """

    def __init__(self, monitor: str, mode: str = "max") -> None:
        self.monitor, self.sign = monitor, 1.0 if mode == "max" else -1.0
        self.best: float = -np.inf
        self.best_step = 0
        self.state: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Copy the weights when the monitored value improves."""
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.history.append((trainer.global_step, value))
        if self.sign * value > self.best:
            self.best, self.best_step = self.sign * value, trainer.global_step
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Load the best weights back."""
        if self.state is not None:
            pl_module.load_state_dict(self.state)


class WeightAverage(L.Callback):
    """Exponential moving average of the weights; validation and the kept state use it.

    After every optimizer step ``avg = decay * avg + (1 - decay) * w`` (buffers copied).
    Validation runs with the averaged weights, which are in place when a :class:`BestState`
    listed *before* this callback copies the state; training resumes with the raw weights.
    Averaging along the trajectory removes much of the step-to-step and seed-to-seed
    scatter of nets trained on few subjects.
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            msg = f"weight-average decay must be in (0, 1); got {decay}"
            raise ValueError(msg)
        self.decay = decay
        self.avg: dict[str, Tensor] | None = None
        self.raw: dict[str, Tensor] | None = None

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Fold the new weights into the average."""
        state = pl_module.state_dict()
        if self.avg is None:
            self.avg = {k: v.detach().clone() for k, v in state.items()}
            return
        for k, v in state.items():
            if v.dtype.is_floating_point:
                self.avg[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)
            else:
                self.avg[k].copy_(v)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Swap the averaged weights in."""
        if self.avg is not None and not trainer.sanity_checking:
            self.raw = copy.deepcopy(pl_module.state_dict())
            pl_module.load_state_dict(self.avg)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Swap the raw weights back for training."""
        if self.raw is not None:
            pl_module.load_state_dict(self.raw)
            self.raw = None


def feature_stats(
    features: Sequence[np.ndarray], valid: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the training nights' rows (NaN-safe).

    Parameters
    ----------
    features : sequence of ndarray, shape (n_epochs, [n_channels,] n_features)
        Each night's features; channels pool (the same features for every channel).
    valid : sequence of ndarray, shape features.shape[:-1], optional
        Only rows with validity > 0 count; default all.
    """
    rows = np.concatenate([f.reshape(-1, f.shape[-1]) for f in features]).astype(np.float64)
    if valid is not None:
        rows = rows[np.concatenate([np.asarray(v).reshape(-1) for v in valid]) > 0]
    mean = np.nan_to_num(np.nanmean(rows, axis=0))
    std = np.nan_to_num(np.nanstd(rows, axis=0), nan=1.0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
