"""Synthetic nights whose stage is readable from the features (a known answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from training.datasets.base import Night, NightSet

N_FEATURES = 42


def synth_night(night: str, subject: str, n: int = 120, seed: int = 0) -> Night:
    rng = np.random.default_rng(seed)
    # stages in runs of 10 epochs; W, N2, N3, REM, with some unscored epochs
    runs = rng.choice([0, 2, 3, 4], size=n // 10 + 1)
    stages = np.repeat(runs, 10)[:n].astype(np.int8)
    stages[:3] = -1
    feats = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    feats[:, 0] += 3.0 * (stages == 0)
    feats[:, 1] += 3.0 * (stages == 3)
    feats[:, 2] += 3.0 * (stages == 4)
    return Night(night, subject, feats, stages, datetime(2024, 1, 1, 22, tzinfo=UTC), True)


def synth_set(n_subjects: int = 5, family: str = "wearable") -> NightSet:
    nights = [synth_night(f"s{i}", f"s{i}", seed=i) for i in range(n_subjects)]
    names = tuple(f"f{i}" for i in range(N_FEATURES))
    return NightSet("synthetic", family, names, tuple(nights))
