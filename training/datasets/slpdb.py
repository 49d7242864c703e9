"""SLPDB for training: RR intervals from the expert beat annotations, with 30-s stages.

Feature rows cover the whole record from its start (the header's clock time in Boston),
so that the causal context and night-so-far statistics match a live session; epochs
before scoring starts or after it ends are unscored. ``slp01a``/``slp01b`` and
``slp02a``/``slp02b`` are one subject each.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
from rich.progress import track

from ingestors.slpdb import SlpdbRecord, list_records, read_record
from models.features import compute_features, feature_names
from models.stages import Stage
from training.datasets.base import Night, NightSet

__all__ = ["load_slpdb", "night_from_slpdb"]


def night_from_slpdb(rec: SlpdbRecord) -> Night:
    """Compute the cardio feature rows of one SLPDB record.

    Raises
    ------
    ValueError
        If the record has no beats or no stages.
    """
    if rec.beats is None or rec.hypnogram is None:
        msg = f"SLPDB record {rec.record} lacks beats or stages; it cannot be used to train"
        raise ValueError(msg)
    hyp = rec.hypnogram
    offset = round((hyp.start - rec.beats.start).total_seconds() / hyp.epoch_s)
    n_epochs = max(math.ceil(rec.header.duration_s / hyp.epoch_s), offset + len(hyp))
    stages = np.full(n_epochs, Stage.UNSCORED, dtype=np.int8)
    stages[offset: offset + len(hyp)] = hyp.stages
    beats = rec.beats
    feats = compute_features(
        "cardio", beats.start, n_epochs,
        rr=(beats.t_s, beats.rr_s, beats.beat_type),
        start_is_nominal=beats.start_is_nominal,
    )
    return Night(rec.record, rec.subject, feats, stages, beats.start, beats.start_is_nominal)


def load_slpdb(folder: str | PathLike[str], *, progress: bool = True) -> NightSet:
    """Read every SLPDB record of a folder as nights (16 subjects in 18 records)."""
    records = list_records(folder)
    nights = [
        night_from_slpdb(read_record(folder, r))
        for r in track(records, description="features", disable=not progress)
    ]
    return NightSet("slpdb", "cardio", feature_names("cardio"), tuple(nights))
