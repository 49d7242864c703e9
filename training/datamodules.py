"""Nights as batches: seeded random crops for training, whole nights for validation and test.

A batch is ``(x, valid, y)``: features ``(B, T, F)`` float32 (``(B, T, C, F)`` for a
channel set), ``valid`` ``x.shape[:-1]`` (the night's own validity, 0 for padding) and class
labels ``(B, T)`` int64 in the corpus's stage set (4 or 5 classes) with -1 where the epoch is
not scored or is padding. Nights of unequal length are right-padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from training.datasets.base import Night

__all__ = [
    "CropDataset", "NightDataModule", "NightDataset", "class_weights", "collate_nights",
    "draw_weights", "night_item",
]

#: ``(features, valid, labels)`` of one night or crop.
Item = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]


def night_item(night: Night, stage_set: int) -> Item:
    """A whole night as an item: features, validity and class labels of ``stage_set``."""
    return night.features, night.validity(), night.labels(stage_set).astype(np.int64)


def collate_nights(items: Sequence[Item]) -> tuple[Tensor, Tensor, Tensor]:
    """Right-pad ``(features, valid, labels)`` items into ``(x, valid, y)`` tensors."""
    n_max = max(f.shape[0] for f, _, _ in items)
    inner = items[0][0].shape[1:]
    if any(f.shape[1:] != inner for f, _, _ in items):
        msg = (f"nights of one batch must have the same channels and features; got "
               f"{sorted({f.shape[1:] for f, _, _ in items})}")
        raise ValueError(msg)
    x = torch.zeros(len(items), n_max, *inner, dtype=torch.float32)
    valid = torch.zeros(len(items), n_max, *inner[:-1], dtype=torch.float32)
    y = torch.full((len(items), n_max), -1, dtype=torch.int64)
    for i, (f, v, lab) in enumerate(items):
        n = f.shape[0]
        x[i, :n] = torch.from_numpy(np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0))
        valid[i, :n] = torch.from_numpy(np.asarray(v, dtype=np.float32))
        y[i, :n] = torch.from_numpy(lab)
    return x, valid, y


class NightDataset(Dataset[Item]):
    """Whole nights, one item per night, in the given order."""

    def __init__(self, nights: Sequence[Night], stage_set: int = 4) -> None:
        self.nights, self.stage_set = tuple(nights), stage_set

    def __len__(self) -> int:
        return len(self.nights)

    def __getitem__(self, i: int) -> Item:
        return night_item(self.nights[i], self.stage_set)


class CropDataset(Dataset[Item]):
    """``length`` random crops; item ``i`` is a pure function of ``(seed, i)``.

    Determinism does not depend on worker processes or on a sampler (a DDP sampler just
    shards the indices). A night shorter than ``crop_epochs`` is returned whole; nights
    are drawn in proportion to their length, or with ``cohort_balance`` so that every
    cohort gets the same share (in proportion to length within it). With probability
    ``input_dropout`` a crop of a night that has :attr:`Night.subsets` comes from one of
    them, drawn uniformly: modality dropout, with the rows the stream computes when a
    device sends only those inputs. With probability ``apnoea_share`` a crop of a night
    that has :attr:`Night.simulated_apnoea` rows comes from them instead.
    """

    def __init__(
        self, nights: Sequence[Night], crop_epochs: int | None, length: int, seed: int = 0,
        stage_set: int = 4, *, input_dropout: float = 0.0, cohort_balance: bool = False,
        apnoea_share: float = 0.0,
    ) -> None:
        if not nights:
            msg = "CropDataset needs at least one night; got none"
            raise ValueError(msg)
        self.nights = tuple(nights)
        self.crop_epochs, self.length, self.seed = crop_epochs, length, seed
        self.input_dropout, self.apnoea_share = input_dropout, apnoea_share
        self.p = draw_weights(self.nights, cohort_balance)
        self.items = [night_item(n, stage_set) for n in self.nights]
        self.subsets = [[(rows, *item[1:]) for rows in n.subsets.values()]
                        for n, item in zip(self.nights, self.items, strict=True)]
        self.apnoea = [None if n.simulated_apnoea is None else (n.simulated_apnoea, *item[1:])
                       for n, item in zip(self.nights, self.items, strict=True)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Item:
        rng = np.random.default_rng([self.seed, i])
        k = int(rng.choice(len(self.nights), p=self.p))
        item, n = self.items[k], len(self.nights[k])
        apnoea = self.apnoea[k]
        if apnoea is not None and self.apnoea_share > 0 and rng.random() < self.apnoea_share:
            item = apnoea
        elif self.subsets[k] and rng.random() < self.input_dropout:
            item = self.subsets[k][int(rng.integers(len(self.subsets[k])))]
        if self.crop_epochs is None or n <= self.crop_epochs:
            return item
        start = int(rng.integers(0, n - self.crop_epochs + 1))
        stop = start + self.crop_epochs
        features, valid, labels = item
        return features[start:stop], valid[start:stop], labels[start:stop]


def draw_weights(nights: Sequence[Night], cohort_balance: bool) -> NDArray[np.float64]:
    """Probability of drawing each night: by length, or by length within equal cohorts."""
    sizes = np.array([len(n) for n in nights], dtype=np.float64)
    if cohort_balance:
        cohorts = np.array([n.cohort for n in nights])
        for c in set(cohorts.tolist()):
            sizes[cohorts == c] /= sizes[cohorts == c].sum()
    return sizes / sizes.sum()


def class_weights(nights: Sequence[Night], power: float, n_classes: int = 4) -> NDArray[np.float32]:
    """Cross-entropy class weights ``frequency ** -power``, normalised to mean 1 per epoch.

    Parameters
    ----------
    nights : sequence of Night
        Training nights (scored epochs only are counted).
    power : float
        0 = unweighted, 1 = fully balanced.
    n_classes : int
        Number of classes: the stage set (4 or 5).
    """
    labels = np.concatenate([n.labels(n_classes) for n in nights])
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    freq = np.maximum(counts, 1.0) / max(counts.sum(), 1.0)
    w = freq ** -float(power)
    w /= float((freq * w).sum())
    return w.astype(np.float32)


class NightDataModule(L.LightningDataModule):
    """Training crops and whole validation/test nights for one fold.

    Parameters
    ----------
    train_nights, val_nights : sequence of Night
        Training and validation nights (subject-disjoint; see :mod:`training.cv`).
    crop_epochs : int or None
        Training crop length in epochs; None = whole nights.
    batch_size : int
        Training crops per batch.
    max_steps : int
        Training steps the crop stream must cover (one Lightning epoch).
    test_nights : sequence of Night
        Nights for ``predict`` (whole, one per batch).
    seed : int
        Seed of the crops.
    val_batch_size : int
        Whole nights per validation batch.
    stage_set : int
        Classes of the labels (4: W, light, deep, REM; 5: W, N1, N2, N3, REM).
    input_dropout, cohort_balance, apnoea_share
        How training crops are drawn (:class:`CropDataset`).
    """

    def __init__(
        self,
        train_nights: Sequence[Night],
        val_nights: Sequence[Night],
        crop_epochs: int | None,
        batch_size: int,
        *,
        max_steps: int = 1000,
        test_nights: Sequence[Night] = (),
        seed: int = 0,
        val_batch_size: int = 4,
        stage_set: int = 4,
        input_dropout: float = 0.0,
        cohort_balance: bool = False,
        apnoea_share: float = 0.0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            msg = f"batch_size must be >= 1; got {batch_size}"
            raise ValueError(msg)
        self.train_nights, self.val_nights = tuple(train_nights), tuple(val_nights)
        self.test_nights = tuple(test_nights)
        self.crop_epochs, self.batch_size, self.max_steps = crop_epochs, batch_size, max_steps
        self.seed, self.val_batch_size, self.stage_set = seed, val_batch_size, stage_set
        self.input_dropout, self.cohort_balance = input_dropout, cohort_balance
        self.apnoea_share = apnoea_share

    def train_dataloader(self) -> DataLoader[Item]:
        """Seeded crops, ``max_steps * batch_size`` of them."""
        ds = CropDataset(self.train_nights, self.crop_epochs,
                         self.max_steps * self.batch_size, self.seed, self.stage_set,
                         input_dropout=self.input_dropout, cohort_balance=self.cohort_balance,
                         apnoea_share=self.apnoea_share)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False,
                          collate_fn=collate_nights)

    def val_dataloader(self) -> DataLoader[Item]:
        """Whole validation nights."""
        return DataLoader(NightDataset(self.val_nights, self.stage_set),
                          batch_size=self.val_batch_size, collate_fn=collate_nights)

    def predict_dataloader(self) -> DataLoader[Item]:
        """Whole test nights, one per batch, in order."""
        return DataLoader(NightDataset(self.test_nights, self.stage_set), batch_size=1,
                          collate_fn=collate_nights)
