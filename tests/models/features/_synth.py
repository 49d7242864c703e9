"""Synthetic nights with known structure, for the feature tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

START = datetime(2024, 3, 5, 23, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))


def heart_rate(rng: np.random.Generator, duration_s: float, gaps=()):
    """HR every ~5 s (jittered), slow oscillation + noise, integer bpm like a watch."""
    t = np.cumsum(rng.uniform(3.0, 7.0, int(duration_s / 4) + 10))
    t = t[t < duration_s]
    bpm = np.round(62 + 6 * np.sin(t / 900) + rng.normal(0, 2.5, t.size))
    for a, b in gaps:
        keep = (t < a) | (t >= b)
        t, bpm = t[keep], bpm[keep]
    return t, bpm


def counts(rng: np.random.Generator, duration_s: float, gaps=()) -> tuple[np.ndarray, np.ndarray]:
    """Sleep-Accel-like 15-s counts: mostly 0, bursts of movement, slightly jittered stamps."""
    t = np.arange(0, duration_s, 15.0) + rng.uniform(0, 0.05, int(np.ceil(duration_s / 15)))
    t = t[t < duration_s]
    c = np.where(rng.random(t.size) < 0.12, np.round(rng.exponential(60, t.size) / 3.07) * 3.07, 0)
    for a, b in gaps:
        keep = (t < a) | (t >= b)
        t, c = t[keep], c[keep]
    return t, c


def acceleration(rng: np.random.Generator, duration_s: float, fs: float = 32.0, gaps=()):
    """Irregular ~fs Hz wrist acceleration in g: gravity on z plus bursts of in-band motion."""
    n = int(duration_s * fs)
    t = np.cumsum(rng.uniform(0.7, 1.3, n) / fs)
    t = t[t < duration_s]
    burst = (np.sin(t / 37.0) > 0.7).astype(float)
    z = 1.0 + burst * 0.3 * np.sin(2 * np.pi * 4.7 * t) + rng.normal(0, 0.005, t.size)
    acc = np.column_stack([rng.normal(0, 0.01, t.size), rng.normal(0, 0.01, t.size), z])
    for a, b in gaps:
        keep = (t < a) | (t >= b)
        t, acc = t[keep], acc[keep]
    return t, acc


def rr(rng: np.random.Generator, duration_s: float, ectopic_rate: float = 0.01, gaps=()):
    """RR intervals with respiratory (0.25 Hz) and Mayer-wave (0.1 Hz) modulation, ectopics."""
    n = int(duration_s / 0.8) + 10
    base = 0.95 + 0.04 * np.sin(2 * np.pi * 0.1 * np.arange(n) * 0.95)
    base += 0.03 * np.sin(2 * np.pi * 0.25 * np.arange(n) * 0.95) + rng.normal(0, 0.01, n)
    types = np.full(n, "N", dtype="<U1")
    ect = np.flatnonzero(rng.random(n) < ectopic_rate)
    ect = ect[(ect > 0) & (ect < n - 1)]
    types[ect] = rng.choice(["V", "S"], ect.size)
    base[ect] *= 0.7  # premature
    base[ect + 1] *= 1.25  # compensatory pause
    t = np.cumsum(base)
    keep = t < duration_s
    t, base, types = t[keep], base[keep], types[keep]
    for a, b in gaps:
        keep = (t < a) | (t >= b)
        t, base, types = t[keep], base[keep], types[keep]
    return t, base, types
