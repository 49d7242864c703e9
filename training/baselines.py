"""Baselines on the same subject-wise folds as the networks.

* ``logreg``: logistic regression on our own per-epoch features (the networks' input
  rows, one epoch at a time, no context; a channel set's rows side by side, so every night
  must have the same channels), standardised on the training subjects,
  ``class_weight="balanced"``, in the corpus's stage set (4 classes; 5 for Sleep-EDF).
  Epochs without data (validity 0) are neither trained on nor scored.
* ``walch-*`` (Sleep-Accel only): the dataset authors' classifiers (Walch et al. 2019:
  logistic regression, random forest, k-NN, MLP) on their own per-epoch features
  (count, hr, time, circadian, cosine), wake/NREM/REM (3 classes). They only have valid
  epochs; their epochs are mapped onto our folds by subject and scored as they are.

Each model's test probabilities are written as ``predictions-baseline-<name>.npz`` in the
run folder, in the format :mod:`training.report` reads. Each fold trains on every
non-test subject (validation subjects are only needed for early stopping).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.cv import make_folds
from training.datasets.base import Night, NightSet

__all__ = ["logreg_baseline", "run_baselines", "walch_baselines"]

Arrays = dict[str, NDArray[Any]]


def _save(out: Path, name: str, probs: Arrays, stages: Arrays, meta: list[tuple[str, ...]]) -> Path:
    arrays: dict[str, Any] = {f"probs/{k}": v.astype(np.float32) for k, v in probs.items()}
    arrays |= {f"stages/{k}": v for k, v in stages.items()}
    arrays["meta"] = np.array(meta, dtype=str)
    path = out / f"predictions-baseline-{name}.npz"
    np.savez_compressed(path, **arrays)
    return path


def _proba(model: Any, x: NDArray[np.float64], n_classes: int) -> NDArray[np.float64]:
    """Probabilities over all classes, zero for a class absent from training."""
    p = np.zeros((x.shape[0], n_classes))
    p[:, model.classes_] = model.predict_proba(x)
    return p


def logreg_baseline(
    nights: NightSet, folds: str = "loso", seed: int = 0,
    views: Mapping[str, NightSet] | None = None,
) -> dict[str, tuple[Arrays, Arrays, list[Any]]]:
    """Per-epoch logistic regression on our features: probs, stages, meta per result.

    Results are ``"logreg"`` (the nights as given) and ``"logreg-<view>"`` for each test
    view. Training rows are the training nights' rows and, like the nets' input dropout,
    those of their :attr:`Night.subsets`, so that one model serves every set of inputs.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = nights.stage_set
    tests = {"logreg": nights, **{f"logreg-{v}": vs for v, vs in (views or {}).items()}}
    probs: dict[str, Arrays] = {name: {} for name in tests}
    meta: dict[str, list[Any]] = {name: [] for name in tests}
    for fold in make_folds(nights.subjects, folds, seed=seed, cohorts=nights.cohorts):
        train = [m for n in nights.select(fold.train + fold.val)
                 for m in (n, *(n.with_inputs(i) for i in n.subsets))]
        x = np.concatenate([_rows(n) for n in train])
        y = np.concatenate([_scored(n, k) for n in train])
        model = make_pipeline(StandardScaler(), LogisticRegression(
            class_weight="balanced", max_iter=300, tol=1e-3))
        model.fit(x[y >= 0], y[y >= 0])
        for name, test_set in tests.items():
            for n in test_set.select(fold.test):
                probs[name][n.night] = _proba(model, _rows(n), k)
                meta[name].append((n.night, n.subject, str(fold.number)))
    return {name: (probs[name], _stages(test_set, k), meta[name])
            for name, test_set in tests.items()}


def _stages(nights: NightSet, stage_set: int) -> Arrays:
    return {n.night: np.where(_scored(n, stage_set) >= 0, n.stages, -1).astype(np.int8)
            for n in nights}


def _rows(night: Night) -> NDArray[np.float64]:
    """One row per epoch: the features, a channel set's side by side."""
    return np.nan_to_num(night.features.reshape(len(night), -1).astype(np.float64))


def _scored(night: Night, stage_set: int) -> NDArray[np.int8]:
    """Labels of ``stage_set``; -1 where the epoch has no data in any channel."""
    valid = night.validity().reshape(len(night), -1).max(axis=1) > 0
    return np.where(valid, night.labels(stage_set), -1).astype(np.int8)


def _walch_models(seed: int) -> dict[str, Callable[[], Any]]:
    """The authors' four classifiers with their published settings (where given)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "walch-logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(
            class_weight="balanced", max_iter=300)),
        "walch-rf": lambda: RandomForestClassifier(
            n_estimators=100, max_features=1.0, max_depth=10, min_samples_split=10,
            min_samples_leaf=32, class_weight="balanced", random_state=seed, n_jobs=1),
        "walch-knn": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(
            n_neighbors=100, weights="distance")),
        "walch-mlp": lambda: make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(15, 15, 15), alpha=0.01, max_iter=200, early_stopping=True,
            random_state=seed)),
    }


def walch_baselines(folder: str | Path, subjects: tuple[str, ...], folds: str = "loso",
                    seed: int = 0, names: Sequence[str] | None = None,
                    ) -> dict[str, tuple[Arrays, Arrays, list[Any]]]:
    """The authors' classifiers on their features, our folds, 3 classes (W/NREM/REM).

    ``names`` picks some of ``walch-logreg``, ``walch-rf``, ``walch-knn``, ``walch-mlp``
    (default all).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ingestors.sleep_accel_features import read_walch_features
    from models.stages import reduce_stages

    feats = {s: read_walch_features(folder, s) for s in subjects}
    out: dict[str, tuple[Arrays, Arrays, list[Any]]] = {}
    for name, make in _walch_models(seed).items():
        if names is not None and name not in names:
            continue
        probs: Arrays = {}
        meta: list[Any] = []
        for fold in make_folds(subjects, folds, seed=seed):
            train = [feats[s] for s in fold.train + fold.val]
            x = np.concatenate([f.matrix().values for f in train])
            y = np.concatenate([reduce_stages(f.stages, 3) for f in train])
            model = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[y >= 0], y[y >= 0])
            for s in fold.test:
                probs[s] = _proba(model, feats[s].matrix().values, 3)
                meta.append((s, s, str(fold.number)))
        out[name] = (probs, {s: feats[s].stages for s in subjects}, meta)
    return out


def run_baselines(dataset: str, data: str | Path, out: str | Path, *,
                  walch: str | Path | None = None, folds: str = "loso") -> dict[str, float]:
    """Run the baselines of a dataset into a run folder; return wall seconds per model."""
    from threadpoolctl import threadpool_limits

    from models.features.registry import PER_CHANNEL_FAMILIES
    from training.run import load_dataset, load_views

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nights = load_dataset(dataset, data, progress=False)
    views = load_views(dataset, data, nights) if nights.family not in PER_CHANNEL_FAMILIES \
        else {}
    times = {}
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for name, result in logreg_baseline(nights, folds, views=views).items():
            _save(out, name, *result)
        times["logreg"] = time.perf_counter() - t0
        if walch is not None:
            t0 = time.perf_counter()
            for name, result in walch_baselines(walch, nights.subjects, folds).items():
                _save(out, name, *result)
            times["walch"] = time.perf_counter() - t0
    return times
