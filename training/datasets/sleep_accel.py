"""Sleep-Accel for training: the authors' cropped heart rate and activity counts with PSG.

Each subject's night starts at PSG start (``t = 0``); the release publishes no clock time,
so the start is nominal and the time-of-day features are masked (``clock_known = 0``).
Epochs labelled ``-1`` stay in the sequence (the models see the whole night) but carry no
loss and no score; R&K stage 4 is N3.
"""

from __future__ import annotations

import warnings
from os import PathLike

from rich.progress import track

from ingestors.errors import DataQualityWarning
from ingestors.sleep_accel import SleepAccelNight, list_subjects, read_subject
from models.features import compute_features, feature_names
from training.datasets.base import Night, NightSet

__all__ = ["load_sleep_accel", "night_from_sleep_accel"]


def night_from_sleep_accel(night: SleepAccelNight) -> Night:
    """Compute the wearable feature rows of one Sleep-Accel night.

    Raises
    ------
    ValueError
        If the night has no labels (nothing to train on).
    """
    if night.labels is None:
        msg = f"Sleep-Accel subject {night.subject} has no labels; it cannot be used to train"
        raise ValueError(msg)
    hyp = night.labels
    hr = night.heart_rate
    counts = night.counts
    feats = compute_features(
        "wearable", hyp.start, len(hyp),
        heart_rate=(hr.t_s, hr.values) if hr is not None else None,
        activity_counts=(counts.t_s, counts.values) if counts is not None else None,
        acceleration=(night.motion.t_s, night.motion.values) if night.motion is not None
        and counts is None else None,
        start_is_nominal=hyp.start_is_nominal,
    )
    return Night(night.subject, night.subject, feats, hyp.stages, hyp.start,
                 hyp.start_is_nominal)


def load_sleep_accel(folder: str | PathLike[str], *, progress: bool = True) -> NightSet:
    """Read every subject of a Sleep-Accel folder (release or cropped layout) as nights.

    Parameters
    ----------
    folder : str or path-like
        ``sleep-accel-walch-cropped/cropped`` (heart rate + activity counts, what the
        wearable models are trained on) or a PhysioNet release folder with motion.
    progress : bool
        Show a progress bar.
    """
    subjects = list_subjects(folder)
    nights = []
    for subject in track(subjects, description="features", disable=not progress):
        with warnings.catch_warnings():
            # repairs are listed in `problems`; training only needs the repaired data
            warnings.simplefilter("ignore", DataQualityWarning)
            raw = read_subject(folder, subject)
        nights.append(night_from_sleep_accel(raw))
    return NightSet("sleep-accel", "wearable", feature_names("wearable"), tuple(nights))
