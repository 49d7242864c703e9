"""Evaluate predicted hypnograms against a reference and render the results.

:func:`evaluate_hypnograms` is what ``sleepstream evaluate`` calls: it aligns each night,
scores it in every requested stage set, computes night statistics for both sides and,
given an output folder, writes them with :func:`write_evaluation`:

``metrics.json``
    :meth:`EvaluationResult.as_dict`; ``nan`` is written as ``null``.
``metrics.md``
    Notes, missing nights, and per stage set the pooled scores, the spread across nights,
    per-night scores and the pooled confusion matrix.
``confusion_<n>class.png``
    Pooled confusion matrix per stage set.
``hypnograms/<night>.png``
    Predicted over reference, 5-class, per night.
``night_stats.csv``
    One row per night and scorer (``reference`` / ``predicted``):
    :meth:`~models.evaluation.night_stats.NightStats.as_row`, undefined values empty.

Night statistics give stage minutes in the finest stage set scored (``--stage-sets
4,3,2`` for a 4-class model's predictions: light and deep minutes, no N1 or N2 claimed);
they are those of :mod:`models.evaluation.night_stats`, the same code as the stream's
night summaries.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from rich.table import Table

from ingestors.types import Hypnogram
from models.evaluation.alignment import AlignedNight, align_pair
from models.evaluation.metrics import NightlyReport, Scores, score_nights
from models.evaluation.night_stats import NightStats, night_stats
from models.evaluation.plots import plot_confusion_matrix, plot_hypnogram
from models.stages import stage_names

__all__ = [
    "EvaluationResult",
    "StatsPair",
    "evaluate_hypnograms",
    "nightly_report_markdown",
    "scores_table_markdown",
    "scores_table_rich",
    "write_evaluation",
]

_HEADER = ("", "epochs", "accuracy", "balanced acc.", "kappa", "macro-F1", "F1 per class")
_LABELS = {"kappa": "kappa", "accuracy": "accuracy", "balanced_accuracy": "balanced acc.",
           "macro_f1": "macro-F1"}


class StatsPair(NamedTuple):
    """Night statistics of the reference and the prediction over the compared epochs."""

    reference: NightStats
    predicted: NightStats


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything :func:`evaluate_hypnograms` found.

    Attributes
    ----------
    reports : Mapping[int, NightlyReport]
        Stage set -> pooled, per-night and summary scores.
    nights : Mapping[str, AlignedNight]
        The scored nights, cropped to the epochs both sides cover.
    stats : Mapping[str, StatsPair]
        Night statistics of both sides of each scored night, with stage minutes in the
        finest stage set scored.
    missing_in_predicted, missing_in_reference : tuple of str
        Nights present on one side only; they are not scored.
    notes : tuple of str
        What was cropped or skipped, and why, one sentence each.
    files : tuple of Path
        Files written (empty unless an output folder was given).
    """

    reports: Mapping[int, NightlyReport]
    nights: Mapping[str, AlignedNight]
    stats: Mapping[str, StatsPair]
    missing_in_predicted: tuple[str, ...] = ()
    missing_in_reference: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    files: tuple[Path, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON (``nan`` stays a float here)."""
        return {
            "nights": list(self.nights),
            "missing_in_predicted": list(self.missing_in_predicted),
            "missing_in_reference": list(self.missing_in_reference),
            "notes": list(self.notes),
            "stage_sets": {str(k): v.as_dict() for k, v in self.reports.items()},
            "night_stats": {
                night: {"reference": p.reference.as_dict(), "predicted": p.predicted.as_dict()}
                for night, p in self.stats.items()
            },
        }


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _score_cells(name: str, s: Scores) -> list[str]:
    per_class = ", ".join(f"{c} {f:.2f}" for c, f in zip(s.class_names, s.f1, strict=True))
    return [name, str(s.n_epochs), _fmt(s.accuracy), _fmt(s.balanced_accuracy), _fmt(s.kappa),
            _fmt(s.macro_f1), per_class]


def _markdown_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scores_table_markdown(rows: Mapping[str, Scores]) -> str:
    """Render scores as a Markdown table, one row per entry (κ ``nan`` shows as n/a).

    Parameters
    ----------
    rows : Mapping[str, Scores]
        Row label -> scores; rows may come from different stage sets.

    Returns
    -------
    str
        A GitHub-flavoured Markdown table without a trailing newline.
    """
    return _markdown_table(_HEADER, (_score_cells(k, v) for k, v in rows.items()))


def scores_table_rich(rows: Mapping[str, Scores], title: str | None = None) -> Table:
    """Render scores as a :class:`rich.table.Table` for the terminal (same columns)."""
    table = Table(*_HEADER, title=title)
    for name, s in rows.items():
        table.add_row(*_score_cells(name, s))
    return table


def nightly_report_markdown(report: NightlyReport) -> str:
    """Render one stage set's :class:`NightlyReport` as a Markdown section.

    Parameters
    ----------
    report : NightlyReport
        Result of :func:`~models.evaluation.metrics.score_nights`.

    Returns
    -------
    str
        Heading, pooled scores, median and IQR across nights, per-night scores and the
        pooled confusion matrix (rows reference, columns predicted).
    """
    names = report.pooled.class_names
    pooled = report.pooled
    spread = _markdown_table(
        ("score", "median", "25th pct", "75th pct", "nights with a value"),
        ([_LABELS.get(m, m), _fmt(s.median), _fmt(s.q25), _fmt(s.q75), str(s.n)]
         for m, s in report.summary.items()),
    )
    cm = _markdown_table(
        ("reference \\ predicted", *names),
        ([name, *(str(int(c)) for c in row)] for name, row in zip(names, pooled.confusion,
                                                                   strict=True)),
    )
    return "\n\n".join([
        f"## {report.stage_set}-class ({', '.join(names)})",
        f"Pooled over {len(report.nights)} nights: {pooled.n_epochs} epochs scored, "
        f"{pooled.n_excluded} excluded (unscored or movement on either side).",
        scores_table_markdown({"pooled": pooled}),
        "Across nights (each night weighs the same; κ is n/a for a night where both "
        "sides use a single class, and such nights are left out of its spread):",
        spread,
        "Per night:",
        scores_table_markdown(report.nights),
        "Pooled confusion matrix (epochs):",
        cm,
    ])


def _pair_nights(
    reference: Mapping[str, Hypnogram], predicted: Mapping[str, Hypnogram]
) -> tuple[dict[str, AlignedNight], list[str]]:
    """Align the nights present on both sides; drop (with a note) unscorable ones."""
    nights: dict[str, AlignedNight] = {}
    notes: list[str] = []
    for name in (n for n in reference if n in predicted):
        aligned = align_pair(reference[name], predicted[name], name)
        if aligned.note:
            notes.append(aligned.note)
        both = (aligned.reference.stages >= 0) & (aligned.predicted.stages >= 0)
        if not both.any():
            notes.append(f"{name}: not scored: no epoch is scored on both sides of the overlap")
            continue
        nights[name] = aligned
    return nights, notes


def evaluate_hypnograms(
    reference: Mapping[str, Hypnogram],
    predicted: Mapping[str, Hypnogram],
    stage_sets: Iterable[int] = (5, 4, 3, 2),
    outdir: str | Path | None = None,
) -> EvaluationResult:
    """Score predicted hypnograms against reference hypnograms, night by night.

    Parameters
    ----------
    reference, predicted : Mapping[str, Hypnogram]
        Night id -> hypnogram in canonical stages. Nights are matched by key.
    stage_sets : iterable of {5, 4, 3, 2}
        Class sets to score in.
    outdir : str or Path, optional
        When given, :func:`write_evaluation` writes the results there.

    Returns
    -------
    EvaluationResult
        Scores, aligned nights, night statistics over the compared epochs (stage minutes
        in the finest of ``stage_sets``), nights missing on either side, and notes on
        every crop or skip.

    Raises
    ------
    ValueError
        If no night is on both sides, a pair cannot be aligned (epoch lengths differ, no
        overlap, off-grid starts), or no night has an epoch scored on both sides.
    """
    sets = tuple(dict.fromkeys(stage_sets))
    if not sets:
        msg = "`stage_sets` must name at least one of 5, 4, 3, 2; got none"
        raise ValueError(msg)
    missing_pred = tuple(n for n in reference if n not in predicted)
    missing_ref = tuple(n for n in predicted if n not in reference)
    nights, notes = _pair_nights(reference, predicted)
    if not nights:
        msg = (
            f"no night to score: {len(reference)} reference and {len(predicted)} predicted "
            f"nights, none matched by id with an epoch scored on both sides "
            f"(reference ids {sorted(reference)[:5]}, predicted ids {sorted(predicted)[:5]})."
        )
        raise ValueError(msg)
    notes += [f"{n}: no prediction for this reference night" for n in missing_pred]
    notes += [f"{n}: no reference for this predicted night" for n in missing_ref]
    pairs = {n: (a.reference.stages, a.predicted.stages) for n, a in nights.items()}
    result = EvaluationResult(
        reports={s: score_nights(pairs, s) for s in sets},
        nights=nights,
        stats={n: StatsPair(night_stats(a.reference, stage_set=max(sets)),
                            night_stats(a.predicted, stage_set=max(sets)))
               for n, a in nights.items()},
        missing_in_predicted=missing_pred,
        missing_in_reference=missing_ref,
        notes=tuple(notes),
    )
    if outdir is None:
        return result
    return replace(result, files=write_evaluation(outdir, result))


def _json_safe(value: Any) -> Any:
    """Replace ``nan``/``inf`` by ``None`` so that the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _file_names(nights: Iterable[str]) -> dict[str, str]:
    """Night id -> a unique, filesystem-safe file stem."""
    out: dict[str, str] = {}
    for night in nights:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", night).strip("._") or "night"
        unique, i = stem, 1
        while unique in out.values():
            i += 1
            unique = f"{stem}_{i}"
        out[night] = unique
    return out


def _metrics_markdown(result: EvaluationResult) -> str:
    lines = ["# Evaluation", "", f"Nights scored: {len(result.nights)}."]
    if result.notes:
        lines += ["", "Notes:", "", *(f"* {note}" for note in result.notes)]
    sections = [nightly_report_markdown(r) for r in result.reports.values()]
    return "\n\n".join(["\n".join(lines), *sections]) + "\n"


def _write_stats_csv(path: Path, stats: Mapping[str, StatsPair]) -> None:
    rows = [(night, scorer, st.as_row()) for night, pair in stats.items()
            for scorer, st in zip(("reference", "predicted"), pair, strict=True)]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["night", "scorer", *(rows[0][2] if rows else ())])
        for night, scorer, row in rows:
            writer.writerow([night, scorer, *("" if v is None else v for v in row.values())])


def write_evaluation(outdir: str | Path, result: EvaluationResult) -> tuple[Path, ...]:
    """Write an :class:`EvaluationResult` to a folder (see the module docstring).

    Parameters
    ----------
    outdir : str or Path
        Output folder; created with its parents if missing. Existing files of the same
        names are overwritten.
    result : EvaluationResult
        What :func:`evaluate_hypnograms` returned.

    Returns
    -------
    tuple of Path
        The files written.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "metrics.md", out / "night_stats.csv"]
    written[0].write_text(json.dumps(_json_safe(result.as_dict()), indent=2, allow_nan=False)
                          + "\n", encoding="utf-8")
    written[1].write_text(_metrics_markdown(result), encoding="utf-8")
    _write_stats_csv(written[2], result.stats)
    for stage_set, report in result.reports.items():
        path = out / f"confusion_{stage_set}class.png"
        plot_confusion_matrix(report.pooled.confusion, stage_names(stage_set),
                              title=f"{stage_set}-class, pooled", path=path)
        written.append(path)
    (out / "hypnograms").mkdir(exist_ok=True)
    for night, stem in _file_names(result.nights).items():
        pair = result.nights[night]
        path = out / "hypnograms" / f"{stem}.png"
        plot_hypnogram(pair.predicted, reference=pair.reference, title=night, path=path)
        written.append(path)
    return tuple(written)
