"""Sleep-Accel for training: the authors' cropped heart rate and activity counts with PSG.

Each subject's night starts at PSG start (``t = 0``); the release publishes no clock time,
so the start is nominal and the time-of-day features are masked (``clock_known = 0``).
Epochs labelled ``-1`` stay in the sequence (the models see the whole night) but carry no
loss and no score; R&K stage 4 is N3.
"""

from __future__ import annotations

import warnings
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.progress import track

from ingestors.errors import DataQualityWarning
from ingestors.sleep_accel import SleepAccelNight, list_subjects, read_subject
from models.features import compute_features, feature_names
from training.datasets.apnoea import apnoea_heart_rate, apnoea_seed
from training.datasets.base import Night, NightSet

__all__ = ["load_sleep_accel", "night_from_sleep_accel"]


def night_from_sleep_accel(night: SleepAccelNight, *, simulate_apnoea: bool = False) -> Night:
    """Compute the wearable feature rows of one Sleep-Accel night.

    The night's features use every input it has (heart rate, activity counts or
    acceleration turned into counts); with both, its ``subsets`` hold the rows of heart rate
    alone and of activity alone, computed by the same code with the other input missing:
    what a watch sending one of them gives. ``simulate_apnoea``: also the rows of its heart
    rate alone with sleep apnoea simulated on it (:attr:`Night.simulated_apnoea`, seeded by
    the subject, :mod:`training.datasets.apnoea`).

    Raises
    ------
    ValueError
        If the night has no labels (nothing to train on).
    """
    if night.labels is None:
        msg = f"Sleep-Accel subject {night.subject} has no labels; it cannot be used to train"
        raise ValueError(msg)
    hyp = night.labels
    hr = (night.heart_rate.t_s, night.heart_rate.values) if night.heart_rate is not None else None
    counts = night.counts
    activity: dict[str, Any] = (
        {"activity_counts": (counts.t_s, counts.values)} if counts is not None
        else {"acceleration": (night.motion.t_s, night.motion.values)}
        if night.motion is not None else {})

    def rows(with_hr: bool, with_activity: bool) -> NDArray[np.float32]:
        return compute_features("wearable", hyp.start, len(hyp),
                                heart_rate=hr if with_hr else None,
                                **(activity if with_activity else {}),
                                start_is_nominal=hyp.start_is_nominal)

    inputs = tuple(sorted(name for name, given in (("heart_rate", hr is not None),
                                                   ("activity", bool(activity))) if given))
    subsets: dict[tuple[str, ...], NDArray[np.float32]] = (
        {("heart_rate",): rows(True, False), ("activity",): rows(False, True)}
        if len(inputs) == 2 else {})
    apnoea = None
    if simulate_apnoea and hr is not None:
        rng = np.random.default_rng(apnoea_seed(night.subject))
        apnoea = compute_features("wearable", hyp.start, len(hyp),
                                  heart_rate=(hr[0], apnoea_heart_rate(
                                      hr[0], hr[1], hyp.stages, rng, epoch_s=hyp.epoch_s)),
                                  start_is_nominal=hyp.start_is_nominal)
    return Night(night.subject, night.subject, rows(True, True), hyp.stages, hyp.start,
                 hyp.start_is_nominal, cohort="sleep-accel", inputs=inputs, subsets=subsets,
                 simulated_apnoea=apnoea)


def load_sleep_accel(folder: str | PathLike[str], *, progress: bool = True,
                     simulate_apnoea: bool = False) -> NightSet:
    """Read every subject of a Sleep-Accel folder (release or cropped layout) as nights.

    Parameters
    ----------
    folder : str or path-like
        ``sleep-accel-walch-cropped/cropped`` (heart rate + activity counts, what the
        wearable models are trained on) or a PhysioNet release folder with motion.
    progress : bool
        Show a progress bar.
    simulate_apnoea : bool
        Give every night simulated-apnoea rows as well (:func:`night_from_sleep_accel`).
    """
    subjects = list_subjects(folder)
    nights = []
    for subject in track(subjects, description="features", disable=not progress):
        with warnings.catch_warnings():
            # repairs are listed in `problems`; training only needs the repaired data
            warnings.simplefilter("ignore", DataQualityWarning)
            raw = read_subject(folder, subject)
        nights.append(night_from_sleep_accel(raw, simulate_apnoea=simulate_apnoea))
    return NightSet("sleep-accel", "wearable", feature_names("wearable"), tuple(nights))
