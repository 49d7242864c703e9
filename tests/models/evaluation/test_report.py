from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table

from ingestors.types import NOMINAL_START, Hypnogram
from models.evaluation.alignment import align_pair
from models.evaluation.metrics import score, score_classes, score_nights
from models.evaluation.report import (
    evaluate_hypnograms,
    nightly_report_markdown,
    scores_table_markdown,
    scores_table_rich,
    write_evaluation,
)
from models.stages import Stage

START = datetime(2024, 5, 1, 22, 30, tzinfo=UTC)


def synthetic_night(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cycle = np.repeat([0, 1, 2, 3, 2, 4], 10)
    out = np.resize(cycle, n).astype(np.int8)
    flip = rng.random(n) < 0.05
    out[flip] = rng.integers(0, 5, flip.sum())
    out[:6] = Stage.UNSCORED
    return out


def noisy(stages: np.ndarray, seed: int, p: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = stages.copy()
    flip = (rng.random(stages.size) < p) & (stages >= 0)
    out[flip] = rng.integers(0, 5, flip.sum())
    return out


def test_scores_table_markdown():
    rows = {
        "5-class": score_classes([0, 1, 2, 3, 4, 4], [0, 1, 2, 3, 4, 2], 5,
                                 ("W", "N1", "N2", "N3", "REM")),
        "constant": score_classes([1, 1], [1, 1], 2, ("W", "sleep")),
    }
    md = scores_table_markdown(rows)
    lines = md.splitlines()
    assert lines[0] == ("|  | epochs | accuracy | balanced acc. | kappa | macro-F1 | "
                        "F1 per class |")
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2].startswith("| 5-class | 6 | 0.833 |")
    assert "REM 0.67" in lines[2]
    assert "| n/a |" in lines[3]  # nan kappa of a one-class night


def test_scores_table_rich():
    table = scores_table_rich({"pooled": score_classes([0, 1, 1], [0, 1, 0], 2)}, title="t")
    assert isinstance(table, Table)
    assert table.row_count == 1
    console = Console(width=160, record=True)
    console.print(table)
    text = console.export_text()
    assert "pooled" in text and "macro-F1" in text and "0.667" in text


def test_nightly_report_markdown():
    pairs = {f"n{i}": (synthetic_night(i), noisy(synthetic_night(i), 10 + i)) for i in range(3)}
    report = score_nights(pairs, 4)
    md = nightly_report_markdown(report)
    assert md.startswith("## 4-class (W, light, deep, REM)")
    assert "Pooled over 3 nights" in md
    for name in ("| kappa |", "| accuracy |", "| macro-F1 |", "| n0 |", "| n2 |"):
        assert name in md
    assert "| reference \\ predicted | W | light | deep | REM |" in md


def test_align_pair_crops_to_overlap_and_says_so():
    ref = Hypnogram(synthetic_night(1, 100), START)
    pred = Hypnogram(synthetic_night(1, 100)[10:], START + timedelta(minutes=5))
    pred = Hypnogram(np.concatenate([pred.stages, np.zeros(20, np.int8)]), pred.start)
    aligned = align_pair(ref, pred, "s1")
    assert aligned.reference.start == aligned.predicted.start == START + timedelta(minutes=5)
    assert len(aligned.reference) == len(aligned.predicted) == 90
    np.testing.assert_array_equal(aligned.reference.stages, aligned.predicted.stages)
    assert aligned.note is not None
    assert "s1" in aligned.note and "10 reference and 20 predicted" in aligned.note
    same = align_pair(ref, ref)
    assert same.note is None and len(same.reference) == 100


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        (Hypnogram(np.zeros(10, np.int8), START, epoch_s=20), "epoch lengths differ"),
        (Hypnogram(np.zeros(10, np.int8), START + timedelta(hours=5)), "do not overlap"),
        (Hypnogram(np.zeros(10, np.int8), START + timedelta(seconds=10)), "whole number"),
        (Hypnogram(np.zeros(10, np.int8), NOMINAL_START, start_is_nominal=True), "nominal"),
    ],
)
def test_align_pair_errors(pred, match):
    ref = Hypnogram(np.zeros(10, np.int8), START)
    with pytest.raises(ValueError, match=match):
        align_pair(ref, pred, "s9")


def make_cohort():
    reference, predicted = {}, {}
    for i in range(4):
        st = synthetic_night(i)
        reference[f"s{i}"] = Hypnogram(st, START + timedelta(days=i), subject=f"s{i}")
        predicted[f"s{i}"] = Hypnogram(noisy(st, 100 + i), START + timedelta(days=i))
    # s3's prediction starts 10 epochs late: cropped to the overlap.
    predicted["s3"] = Hypnogram(predicted["s3"].stages[10:],
                                START + timedelta(days=3, seconds=300))
    reference["only-ref"] = Hypnogram(synthetic_night(9), START)
    predicted["only/pred"] = Hypnogram(synthetic_night(8), START)
    return reference, predicted


def test_evaluate_hypnograms_in_memory():
    reference, predicted = make_cohort()
    result = evaluate_hypnograms(reference, predicted, stage_sets=(5, 3))
    assert list(result.reports) == [5, 3]
    assert list(result.nights) == ["s0", "s1", "s2", "s3"]
    assert result.missing_in_predicted == ("only-ref",)
    assert result.missing_in_reference == ("only/pred",)
    assert any(n.startswith("s3:") and "overlap" in n for n in result.notes)
    assert any("only-ref" in n for n in result.notes)
    assert result.files == ()
    # The pooled score equals scoring the aligned arrays concatenated.
    ref = np.concatenate([a.reference.stages for a in result.nights.values()])
    pred = np.concatenate([a.predicted.stages for a in result.nights.values()])
    np.testing.assert_array_equal(result.reports[5].pooled.confusion, score(ref, pred).confusion)
    assert result.reports[3].pooled.accuracy > result.reports[5].pooled.accuracy
    s3 = result.stats["s3"]
    assert s3.reference.recording_min == s3.predicted.recording_min == 295


def test_evaluate_hypnograms_writes_files(tmp_path):
    reference, predicted = make_cohort()
    out = tmp_path / "eval"
    result = evaluate_hypnograms(reference, predicted, outdir=out)
    names = {p.relative_to(out).as_posix() for p in result.files}
    assert names == {
        "metrics.json", "metrics.md", "night_stats.csv",
        "confusion_5class.png", "confusion_4class.png", "confusion_3class.png",
        "confusion_2class.png",
        "hypnograms/s0.png", "hypnograms/s1.png", "hypnograms/s2.png", "hypnograms/s3.png",
    }
    for p in result.files:
        assert p.stat().st_size > 0
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.files if p.suffix == ".png")
    data = json.loads((out / "metrics.json").read_text())  # strict JSON: nan is null
    assert set(data["stage_sets"]) == {"5", "4", "3", "2"}
    assert data["missing_in_predicted"] == ["only-ref"]
    assert data["stage_sets"]["5"]["pooled"]["n_epochs"] == result.reports[5].pooled.n_epochs
    assert data["night_stats"]["s0"]["reference"]["tst_min"] > 0
    md = (out / "metrics.md").read_text()
    assert md.startswith("# Evaluation") and "## 2-class (W, sleep)" in md
    assert "no reference for this predicted night" in md
    with (out / "night_stats.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    assert {r["scorer"] for r in rows} == {"reference", "predicted"}
    assert float(rows[0]["tib_min"]) == pytest.approx(297.0)


def test_json_writes_nan_as_null(tmp_path):
    wake = np.zeros(20, np.int8)
    result = evaluate_hypnograms({"a": Hypnogram(wake, START)}, {"a": Hypnogram(wake, START)},
                                 stage_sets=(5,))
    assert math.isnan(result.reports[5].pooled.kappa)
    write_evaluation(tmp_path, result)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["stage_sets"]["5"]["pooled"]["kappa"] is None
    assert data["night_stats"]["a"]["reference"]["sol_min"] is None


def test_unscorable_night_is_skipped_with_a_note():
    good = Hypnogram(synthetic_night(1), START)
    blank = Hypnogram(np.full(50, Stage.UNSCORED, np.int8), START)
    result = evaluate_hypnograms({"a": good, "b": blank}, {"a": good, "b": good},
                                 stage_sets=(5,))
    assert list(result.nights) == ["a"]
    assert any(n.startswith("b: not scored") for n in result.notes)


def test_evaluate_errors():
    h = Hypnogram(synthetic_night(1), START)
    with pytest.raises(ValueError, match="no night to score"):
        evaluate_hypnograms({"a": h}, {"b": h})
    with pytest.raises(ValueError, match="epoch lengths differ"):
        evaluate_hypnograms({"a": h}, {"a": Hypnogram(h.stages, START, epoch_s=60)})
    with pytest.raises(ValueError, match="at least one"):
        evaluate_hypnograms({"a": h}, {"a": h}, stage_sets=())
    with pytest.raises(ValueError, match="stage set"):
        evaluate_hypnograms({"a": h}, {"a": h}, stage_sets=(6,))
