"""Training corpora as per-night feature matrices and labels (one reader per corpus)."""

from __future__ import annotations

from training.datasets.base import Night, NightSet
from training.datasets.cohorts import load_wearable_cohorts
from training.datasets.sleep_accel import load_sleep_accel
from training.datasets.sleep_edf import load_sleep_edf
from training.datasets.slpdb import load_slpdb

__all__ = [
    "Night", "NightSet", "load_sleep_accel", "load_sleep_edf", "load_slpdb",
    "load_wearable_cohorts",
]
