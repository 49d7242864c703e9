"""Synthetic nights whose stage is readable from the features (a known answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from training.datasets.base import Night, NightSet

N_FEATURES = 42
N_PSG_FEATURES = 8


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


def synth_psg_night(night: str, subject: str, n: int = 150, seed: int = 0,
                    n_channels: int = 2) -> Night:
    """A channel-set night, 5 classes: each channel tells the stage, with a masked gap."""
    rng = np.random.default_rng(seed)
    stages = np.repeat(rng.choice([0, 1, 2, 3, 4], size=n // 10 + 1), 10)[:n].astype(np.int8)
    feats = rng.normal(size=(n, n_channels, N_PSG_FEATURES)).astype(np.float32)
    for k in range(5):
        feats[:, :, k] += 3.0 * (stages == k)[:, None]
    valid = np.ones((n, n_channels), np.float32)
    valid[20:24] = 0.0  # a gap: no channel has data
    stages[20:24] = -2
    feats[20:24] = 0.0
    valid[40:50, 0] = 0.0  # one channel missing for a while
    feats[40:50, 0] = 0.0
    return Night(night, subject, feats, stages, datetime(2024, 1, 1, 22, tzinfo=UTC), False,
                 valid)


def synth_psg_set(n_subjects: int = 4, n_channels: int = 2) -> NightSet:
    nights = [synth_psg_night(f"p{i}", f"p{i}", seed=i, n_channels=n_channels)
              for i in range(n_subjects)]
    names = tuple(f"e{i}" for i in range(N_PSG_FEATURES))
    return NightSet("synthetic-psg", "psg", names, tuple(nights), stage_set=5)
