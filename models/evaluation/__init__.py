"""Evaluate hypnograms: agreement scores, night statistics, figures and reports."""

from __future__ import annotations

from models.evaluation.alignment import AlignedNight, align_pair
from models.evaluation.metrics import (
    NightlyReport,
    Scores,
    Spread,
    confusion_matrix,
    score,
    score_classes,
    score_nights,
    scores_from_confusion,
)
from models.evaluation.night_stats import NightStats, night_stats, night_stats_from_stages
from models.evaluation.plots import plot_confusion_matrix, plot_hypnogram
from models.evaluation.report import (
    EvaluationResult,
    StatsPair,
    evaluate_hypnograms,
    nightly_report_markdown,
    scores_table_markdown,
    scores_table_rich,
    write_evaluation,
)

__all__ = [
    "AlignedNight",
    "EvaluationResult",
    "NightStats",
    "NightlyReport",
    "Scores",
    "Spread",
    "StatsPair",
    "align_pair",
    "confusion_matrix",
    "evaluate_hypnograms",
    "night_stats",
    "night_stats_from_stages",
    "nightly_report_markdown",
    "plot_confusion_matrix",
    "plot_hypnogram",
    "score",
    "score_classes",
    "score_nights",
    "scores_from_confusion",
    "scores_table_markdown",
    "scores_table_rich",
    "write_evaluation",
]
