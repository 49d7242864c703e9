"""Drivers behind ``sleepstream train``: load a dataset, run a whole CV with progress."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.config import DATASET_FAMILY, config_path, load_config
from training.cv import FoldResult, TrainerOptions, make_folds, run_cv, save_predictions
from training.datasets.base import NightSet

__all__ = ["load_dataset", "load_views", "quiet_lightning", "run_cv_command"]


def quiet_lightning() -> None:
    """Silence Lightning's per-Trainer info lines and one torch-internal FutureWarning."""
    import lightning  # noqa: F401  (its import sets the log level; set ours after it)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*LeafSpec.*", FutureWarning)


def load_dataset(dataset: str, data: str | Path, progress: bool = True) -> NightSet:
    """Nights of a corpus, by its ``--dataset`` name.

    ``sleep-accel`` (the cropped folder), ``slpdb``, ``sleep-edf`` (cropped) or
    ``sleep-accel+slpdb`` (the shared data folder, holding both).
    """
    from training.datasets import (
        load_sleep_accel,
        load_sleep_edf,
        load_slpdb,
        load_wearable_cohorts,
    )

    if dataset not in DATASET_FAMILY:
        msg = f"--dataset must be one of {sorted(DATASET_FAMILY)}; got {dataset!r}"
        raise ValueError(msg)
    loaders: dict[str, Callable[..., NightSet]] = {
        "sleep-accel": load_sleep_accel, "slpdb": load_slpdb, "sleep-edf": load_sleep_edf,
        "sleep-accel+slpdb": load_wearable_cohorts}
    return loaders[dataset](data, progress=progress)


def load_views(dataset: str, data: str | Path, nights: NightSet) -> dict[str, NightSet]:
    """The test views of a corpus (:mod:`training.cv`).

    Sleep-EDF: ``uncropped``, whole recordings, the session (and its night-relative features)
    starting at the recording's first epoch in the afternoon; ``fpz-cz`` and ``pz-oz``: the
    cropped nights with that EEG channel alone. Wearable and cardio corpora: each cohort with
    each set of inputs its nights have (:meth:`NightSet.input_views`, e.g.
    ``sleep-accel-heart_rate``), but not a single cohort's full inputs, which the main
    predictions already are.
    """
    if dataset != "sleep-edf":
        views = nights.input_views()
        if len({n.cohort for n in nights}) == 1:
            for n in nights:
                views.pop(f"{n.cohort}-{'+'.join(n.inputs)}", None)
        return views
    from training.datasets import load_sleep_edf

    return {
        "uncropped": load_sleep_edf(data, crop=False, progress=False),
        "fpz-cz": load_sleep_edf(data, channels=("EEG Fpz-Cz",), progress=False),
        "pz-oz": load_sleep_edf(data, channels=("EEG Pz-Oz",), progress=False),
    }


def _feature_version(family: str) -> str:
    from models.features.registry import feature_version

    return feature_version(family)


def _kappa_so_far(nights: NightSet, results: Sequence[FoldResult]) -> float:
    import numpy as np

    from models.evaluation.metrics import score_classes

    by_night = {n.night: n for n in nights}
    ref, pred = [], []
    for r in results:
        for night_id, p in r.probs.items():
            ref.append(by_night[night_id].labels(nights.stage_set))
            pred.append(p.argmax(-1))
    return score_classes(np.concatenate(ref), np.concatenate(pred), nights.stage_set).kappa


def run_cv_command(
    dataset: str, data: str | Path, variants: Sequence[str], folds: str, out: str | Path,
    *, opts: TrainerOptions, jobs: int = 1, config_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the CV of each variant, write predictions (+ test views) and a run record."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    quiet_lightning()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nights = load_dataset(dataset, data, progress)
    views = load_views(dataset, data, nights)
    old = json.loads((out / "cv.json").read_text()) if (out / "cv.json").is_file() else {}
    record: dict[str, Any] = {"dataset": dataset, "family": nights.family, "folds": folds,
                              "data": str(data), "variants": old.get("variants", {})}
    for variant in variants:
        cfg = load_config(config_path(dataset, variant, config_dir))
        fold_list = make_folds(nights.subjects, folds, n_val_subjects=cfg.n_val_subjects,
                               seed=cfg.seed, cohorts=nights.cohorts)
        done: list[FoldResult] = []
        t0 = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[kappa]}"), TimeElapsedColumn(),
                      disable=not progress) as bar:
            task = bar.add_task(f"{nights.family}-{variant}", total=len(fold_list), kappa="")

            def on_fold(r: FoldResult, task: Any = task, bar: Any = bar,
                        done: list[FoldResult] = done) -> None:
                done.append(r)
                kappa = _kappa_so_far(nights, done)
                bar.update(task, advance=1,
                           kappa=f"pooled {nights.stage_set}-class κ so far {kappa:.3f}")

            results = run_cv(nights, variant, cfg, fold_list, opts, jobs, on_fold, views)
        wall = time.perf_counter() - t0
        save_predictions(out, nights, variant, results)
        for view, view_nights in views.items():
            save_predictions(out, view_nights, variant, results, view)
        record["variants"][variant] = {
            "config": cfg.model_dump(), "wall_s": wall, "jobs": jobs, "views": list(views),
            "feature_version": _feature_version(nights.family),
            "folds": [{"index": r.fold.number, "train": r.fold.train, "val": r.fold.val,
                       "test": r.fold.test, "best_step": r.best_step,
                       "best_value": r.best_value, "steps": r.steps, "seconds": r.seconds}
                      for r in results],
        }
        (out / "cv.json").write_text(json.dumps(record, indent=2))
    return record
