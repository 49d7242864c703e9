"""SLPDB for training: the expert beat annotations with the 30-s stages.

The beats become RR intervals (cardio) or the heart rate a watch would report on a 5-s
grid (wearable, no activity: SLPDB has none).

Feature rows cover the whole record from its start (the header's clock time in Boston),
so that the causal context and night-so-far statistics match a live session; epochs
before scoring starts or after it ends are unscored. ``slp01a``/``slp01b`` and
``slp02a``/``slp02b`` are one subject each.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
from numpy.typing import NDArray
from rich.progress import track

from ingestors.slpdb import SlpdbRecord, list_records, read_record
from ingestors.types import Hypnogram
from ingestors.wfdb_text import Beats
from models.features import compute_features, feature_names
from models.stages import Stage
from training.datasets.base import Night, NightSet

__all__ = ["WATCH_PERIOD_S", "WATCH_WINDOW_S", "load_slpdb", "night_from_slpdb", "watch_heart_rate"]


#: A watch's heart-rate period: Sleep-Accel's Apple Watch reports about every 5 s.
WATCH_PERIOD_S = 5.0
#: The span each reported heart rate averages. A watch smooths: Sleep-Accel's heart rate
#: changes between successive reports by 2.3 bpm (SD, median over 10 subjects); SLPDB beats
#: averaged over 5 s change by 5.7 bpm, over 15 s by 2.6 bpm (scratch measurement of
#: 2026-12-06 on 10 records of each; no labels involved).
WATCH_WINDOW_S = 15.0


def watch_heart_rate(beats: Beats, period_s: float = WATCH_PERIOD_S,
                     window_s: float = WATCH_WINDOW_S) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Heart rate as a watch reports it, from expert-annotated beats.

    Every ``period_s`` seconds, 60 / the mean of the RR intervals between two normal beats
    (``N`` after ``N``, 0.3-2 s) that ended in the last ``window_s``; no sample where there
    was none (a watch reports nothing while it loses the pulse).

    Returns
    -------
    t_s, bpm : ndarray of float64
        Sample times in seconds since the beats' start, and the heart rate.
    """
    normal = ((beats.beat_type == "N") & (beats.prev_type == "N")
              & (beats.rr_s >= 0.3) & (beats.rr_s <= 2.0))
    t, rr = beats.t_s[normal], beats.rr_s[normal]
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    grid = np.arange(period_s, t[-1] + period_s, period_s)
    end = np.searchsorted(t, grid, side="right")
    n = end - np.searchsorted(t, grid - window_s, side="right")
    total = np.concatenate([[0.0], np.cumsum(rr)])
    keep = n > 0
    mean_rr = (total[end[keep]] - total[end[keep] - n[keep]]) / n[keep]
    return grid[keep], 60.0 / mean_rr


def _stages(rec: SlpdbRecord, beats: Beats, hyp: Hypnogram) -> NDArray[np.int8]:
    """The record's stages on epochs from the beats' start (unscored before and after)."""
    offset = round((hyp.start - beats.start).total_seconds() / hyp.epoch_s)
    n_epochs = max(math.ceil(rec.header.duration_s / hyp.epoch_s), offset + len(hyp))
    stages = np.full(n_epochs, Stage.UNSCORED, dtype=np.int8)
    stages[offset: offset + len(hyp)] = hyp.stages
    return stages


def night_from_slpdb(rec: SlpdbRecord, family: str = "cardio") -> Night:
    """Compute the feature rows of one SLPDB record for the cardio or wearable family.

    ``cardio``: from the RR intervals; ``wearable``: from the heart rate a watch would
    report (:func:`watch_heart_rate`), without activity (SLPDB has none).

    Raises
    ------
    ValueError
        If the record has no beats or no stages, or the family is neither.
    """
    if rec.beats is None or rec.hypnogram is None:
        msg = f"SLPDB record {rec.record} lacks beats or stages; it cannot be used to train"
        raise ValueError(msg)
    beats = rec.beats
    stages = _stages(rec, beats, rec.hypnogram)
    if family == "cardio":
        inputs: tuple[str, ...] = ("rr",)
        feats = compute_features("cardio", beats.start, stages.size,
                                 rr=(beats.t_s, beats.rr_s, beats.beat_type),
                                 start_is_nominal=beats.start_is_nominal)
    elif family == "wearable":
        inputs = ("heart_rate",)
        feats = compute_features("wearable", beats.start, stages.size,
                                 heart_rate=watch_heart_rate(beats),
                                 start_is_nominal=beats.start_is_nominal)
    else:
        msg = f"SLPDB nights are made for the cardio or wearable family; got {family!r}"
        raise ValueError(msg)
    return Night(rec.record, rec.subject, feats, stages, beats.start, beats.start_is_nominal,
                 cohort="slpdb", inputs=inputs)


def load_slpdb(folder: str | PathLike[str], *, family: str = "cardio",
               progress: bool = True) -> NightSet:
    """Read every SLPDB record of a folder as nights (16 subjects in 18 records).

    ``family``: ``cardio`` (RR intervals) or ``wearable`` (a watch's heart rate).
    """
    records = list_records(folder)
    nights = [
        night_from_slpdb(read_record(folder, r), family)
        for r in track(records, description="features", disable=not progress)
    ]
    return NightSet("slpdb", family, feature_names(family), tuple(nights))
