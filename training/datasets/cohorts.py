"""Several cohorts as one corpus: the wearable family on Sleep-Accel and SLPDB together.

The corpus folder is the shared data folder (``../shared/data``), holding each cohort in
its usual layout: ``sleep-accel-walch-cropped/cropped`` (heart rate + activity counts) and
``slpdb`` (heart rate derived from the expert beats as a watch reports it, no activity).
Every night keeps its cohort (:attr:`Night.cohort`), so that folds stay subject-wise
within each cohort, validation subjects are drawn from every cohort and training can keep
the larger cohort from swamping the other.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from models.features import feature_names
from training.datasets.base import NightSet
from training.datasets.sleep_accel import load_sleep_accel
from training.datasets.slpdb import load_slpdb

__all__ = ["COHORT_FOLDERS", "load_wearable_cohorts"]

#: Each cohort's folder inside the corpus folder.
COHORT_FOLDERS = {"sleep-accel": "sleep-accel-walch-cropped/cropped", "slpdb": "slpdb"}


def load_wearable_cohorts(folder: str | PathLike[str], *, progress: bool = True) -> NightSet:
    """Sleep-Accel and SLPDB nights with wearable features, in one corpus.

    Sleep-Accel's nights also carry rows with sleep apnoea simulated on their heart rate
    (:attr:`Night.simulated_apnoea`), which training uses with ``apnoea_share`` > 0.

    Raises
    ------
    FileNotFoundError
        If a cohort's folder is missing, naming it and the layout expected.
    """
    root = Path(folder)
    for cohort, sub in COHORT_FOLDERS.items():
        if not (root / sub).is_dir():
            msg = (f"{root / sub} not found: the corpus folder of sleep-accel+slpdb must hold "
                   f"{cohort} in {sub}/ (as ../shared/data does)")
            raise FileNotFoundError(msg)
    accel = load_sleep_accel(root / COHORT_FOLDERS["sleep-accel"], progress=progress,
                             simulate_apnoea=True)
    slpdb = load_slpdb(root / COHORT_FOLDERS["slpdb"], family="wearable", progress=progress)
    return NightSet("sleep-accel+slpdb", "wearable", feature_names("wearable"),
                    (*accel.nights, *slpdb.nights))
