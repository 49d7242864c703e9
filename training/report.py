"""The cross-validation report: scores of every saved prediction set of a run folder.

A run folder holds ``predictions-<model>.npz`` files (written by :mod:`training.cv` and
:mod:`training.baselines`; a test view's are ``predictions-<variant>-<view>.npz``): per
night ``probs/<night>`` (n_epochs, n_classes) and ``stages/<night>`` (canonical stages),
plus ``meta`` rows ``(night, subject, fold, ...)``. For each model and each of the
5/4/3/2-class sets it fits, the report gives pooled κ, macro-F1, accuracy, per-class F1 and
the median per-subject κ, writes ``results.md`` and ``results.json``, confusion-matrix PNGs
and, for the networks, one hypnogram per night (reference vs predicted with the
probabilities). Everything is recomputed from the saved predictions, so no retraining is
needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.card import stage_groups
from models.evaluation.metrics import Scores, Spread, score_classes
from models.evaluation.plots import plot_confusion_matrix, plot_hypnogram
from models.stages import class_stages, reduce_stages, stage_names

__all__ = [
    "STAGE_SETS",
    "ModelPredictions",
    "Report",
    "build_report",
    "load_predictions",
    "score_model",
    "summary_metrics",
]

#: The stage sets a report scores, where the predictions have at least as many classes.
STAGE_SETS = (5, 4, 3, 2)


@dataclass(frozen=True)
class ModelPredictions:
    """Saved CV predictions of one model: per night probabilities and reference stages."""

    name: str
    probs: dict[str, NDArray[np.float32]]
    stages: dict[str, NDArray[np.int8]]
    subject: dict[str, str]

    @property
    def n_classes(self) -> int:
        """Classes of the saved probabilities (5 or 4 for the nets, 3 for Walch et al.'s)."""
        return int(next(iter(self.probs.values())).shape[-1])


def load_predictions(path: str | Path) -> ModelPredictions:
    """Read one ``predictions-<model>.npz``."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        meta = z["meta"]
        probs = {str(m[0]): z[f"probs/{m[0]}"] for m in meta}
        stages = {str(m[0]): z[f"stages/{m[0]}"] for m in meta}
    return ModelPredictions(path.stem.removeprefix("predictions-"), probs, stages,
                            {str(m[0]): str(m[1]) for m in meta})


def predicted_classes(probs: NDArray[np.floating], stage_set: int) -> NDArray[np.int64]:
    """Arg-max class in ``stage_set`` after summing probabilities into its groups."""
    groups = stage_groups(stage_set, from_set=int(probs.shape[-1]))
    summed = np.stack([probs[..., list(g)].sum(axis=-1) for g in groups], axis=-1)
    return summed.argmax(axis=-1)


class ModelScores:
    """Pooled scores, per-subject κ and its spread for one model and stage set."""

    def __init__(self, pooled: Scores, subject_kappa: dict[str, float]) -> None:
        self.pooled, self.subject_kappa = pooled, subject_kappa
        self.spread: Spread = Spread.of(list(subject_kappa.values()))


def score_model(pred: ModelPredictions, stage_set: int) -> ModelScores:
    """Score one model in one stage set (epochs unscored in the reference are left out)."""
    by_subject: dict[str, tuple[list[Any], list[Any]]] = {}
    for night, p in pred.probs.items():
        ref, guess = by_subject.setdefault(pred.subject[night], ([], []))
        ref.append(reduce_stages(pred.stages[night], stage_set))
        guess.append(predicted_classes(p, stage_set))
    names = stage_names(stage_set)
    pooled = score_classes(np.concatenate([np.concatenate(r) for r, _ in by_subject.values()]),
                           np.concatenate([np.concatenate(g) for _, g in by_subject.values()]),
                           stage_set, names)
    kappa = {s: score_classes(np.concatenate(r), np.concatenate(g), stage_set, names).kappa
             for s, (r, g) in by_subject.items()}
    return ModelScores(pooled, kappa)


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` computed and wrote."""

    scores: dict[str, dict[int, ModelScores]]
    markdown: str
    files: tuple[Path, ...]


def _row(model: str, k: int, s: ModelScores) -> str:
    p = s.pooled
    f1 = ", ".join(f"{c} {v:.2f}" for c, v in zip(p.class_names, p.f1, strict=True))
    return (f"| {model} | {k} | {p.kappa:.3f} | {p.macro_f1:.3f} | {p.accuracy:.3f} | "
            f"{s.spread.median:.3f} ({s.spread.q25:.2f}-{s.spread.q75:.2f}) | {f1} | "
            f"{p.n_epochs} |")


def _markdown(title: str, scores: dict[str, dict[int, ModelScores]]) -> str:
    lines = [f"## {title}", "",
             "| model | classes | pooled κ | macro-F1 | accuracy | median subject κ (IQR) "
             "| F1 per class | epochs |", "|---|---|---|---|---|---|---|---|"]
    for k in STAGE_SETS:
        lines += [_row(m, k, per[k]) for m, per in scores.items() if k in per]
    return "\n".join(lines) + "\n"


def _order(name: str) -> tuple[int, str]:
    """Networks first (causal, offline, then their test views), then baselines."""
    rank = {"causal": 0, "offline": 1}
    variant, _, view = name.partition("-")
    return (rank.get(variant, 2), f"{variant} {view}")


def _plots(run: Path, pred: ModelPredictions, per: dict[int, ModelScores]) -> list[Path]:
    figs = run / "figures"
    figs.mkdir(exist_ok=True)
    files = []
    for k, s in per.items():
        path = figs / f"confusion-{pred.name}-{k}class.png"
        plot_confusion_matrix(s.pooled.confusion, s.pooled.class_names,
                              title=f"{pred.name}, {k} classes, pooled", path=path)
        files.append(path)
    if pred.name in ("causal", "offline"):
        for night, p in pred.probs.items():
            path = figs / f"hypnogram-{pred.name}-{night}.png"
            plot_hypnogram(class_stages(p.argmax(-1), pred.n_classes), probabilities=p,
                           reference=pred.stages[night], stage_set=pred.n_classes,
                           title=f"{night} ({pred.name})", path=path)
            files.append(path)
    return files


def summary_metrics(per_set: Mapping[str, Any]) -> dict[str, float]:
    """Headline numbers of one model's ``results.json`` entry, by stage set ``k``.

    ``kappa_<k>class``, ``macro_f1_<k>class``, ``accuracy_<k>class`` (pooled) and
    ``median_subject_kappa_<k>class``: the model cards' CV metrics and the tracked ones.
    """
    out: dict[str, float] = {}
    for k, r in per_set.items():
        out[f"kappa_{k}class"] = float(r["pooled"]["kappa"])
        out[f"macro_f1_{k}class"] = float(r["pooled"]["macro_f1"])
        out[f"accuracy_{k}class"] = float(r["pooled"]["accuracy"])
        out[f"median_subject_kappa_{k}class"] = float(r["median_subject_kappa"])
    return out


def build_report(run: str | Path, *, plots: bool = True) -> Report:
    """Score every ``predictions-*.npz`` of a run folder; write results.md/.json (+ PNGs).

    Raises
    ------
    FileNotFoundError
        If the folder holds no predictions.
    """
    import matplotlib.pyplot as plt

    run = Path(run)
    paths = sorted(run.glob("predictions-*.npz"), key=lambda p: _order(p.stem[12:]))
    if not paths:
        msg = f"no predictions-*.npz in {run}; run `sleepstream train cv` first"
        raise FileNotFoundError(msg)
    meta = json.loads((run / "cv.json").read_text()) if (run / "cv.json").is_file() else {}
    scores: dict[str, dict[int, ModelScores]] = {}
    files: list[Path] = []
    for path in paths:
        pred = load_predictions(path)
        scores[pred.name] = {k: score_model(pred, k) for k in STAGE_SETS if k <= pred.n_classes}
        if plots:
            files += _plots(run, pred, scores[pred.name])
            plt.close("all")
    title = (f"{meta.get('dataset', run.name)} ({meta.get('family', '')}), "
             f"{meta.get('folds', 'loso')} cross-validation")
    md = _markdown(title, scores)
    (run / "results.md").write_text(md)
    js = {m: {str(k): {"pooled": s.pooled.as_dict(), "subject_kappa": s.subject_kappa,
                        "median_subject_kappa": s.spread.median} for k, s in per.items()}
          for m, per in scores.items()}
    (run / "results.json").write_text(json.dumps(js, indent=1, default=float))
    files += [run / "results.md", run / "results.json"]
    return Report(scores, md, tuple(files))
