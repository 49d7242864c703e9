from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from models.evaluation.metrics import (
    Scores,
    confusion_matrix,
    score,
    score_classes,
    score_nights,
    scores_from_confusion,
)
from models.stages import Stage


def sklearn_scores(y_true, y_pred, n_classes):
    """The same scores from scikit-learn, on the non-excluded pairs, warnings silenced."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    keep = (y_true >= 0) & (y_pred >= 0)
    t, p = y_true[keep], y_pred[keep]
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        prec, rec, f1, sup = skm.precision_recall_fscore_support(
            t, p, labels=labels, zero_division=0
        )
        return {
            "confusion": skm.confusion_matrix(t, p, labels=labels),
            "accuracy": skm.accuracy_score(t, p),
            "balanced_accuracy": skm.balanced_accuracy_score(t, p),
            "kappa": skm.cohen_kappa_score(t, p, labels=labels),
            "macro_f1": skm.f1_score(t, p, labels=labels, average="macro", zero_division=0),
            "precision": prec,
            "recall": rec,
            "f1": f1,
            "support": sup,
        }


def assert_matches_sklearn(ours: Scores, y_true, y_pred, n_classes):
    ref = sklearn_scores(y_true, y_pred, n_classes)
    np.testing.assert_array_equal(ours.confusion, ref["confusion"])
    for name in ("accuracy", "balanced_accuracy", "kappa", "macro_f1"):
        np.testing.assert_allclose(getattr(ours, name), ref[name], rtol=1e-12, atol=1e-15,
                                   equal_nan=True, err_msg=name)
    for name in ("precision", "recall", "f1"):
        np.testing.assert_allclose(getattr(ours, name), ref[name], rtol=1e-12, atol=1e-15,
                                   err_msg=name)
    np.testing.assert_array_equal(ours.support, ref["support"])


@pytest.mark.parametrize("n_classes", [2, 3, 4, 5, 7])
@pytest.mark.parametrize("seed", range(20))
def test_random_cases_match_sklearn(n_classes, seed):
    rng = np.random.default_rng(1000 * n_classes + seed)
    n = int(rng.integers(1, 400))
    y_true = rng.integers(-1, n_classes, n)
    # Predictions that mostly agree, so that kappa spans a useful range.
    y_pred = np.where(rng.random(n) < rng.random(), y_true, rng.integers(-1, n_classes, n))
    if not ((y_true >= 0) & (y_pred >= 0)).any():
        y_true[0] = y_pred[0] = 0
    assert_matches_sklearn(score_classes(y_true, y_pred, n_classes), y_true, y_pred, n_classes)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.tuples(st.integers(-1, k - 1), st.integers(-1, k - 1)), min_size=1,
                     max_size=60),
        )
    )
)
def test_hypothesis_cases_match_sklearn(case):
    n_classes, pairs = case
    y_true = np.array([a for a, _ in pairs])
    y_pred = np.array([b for _, b in pairs])
    if not ((y_true >= 0) & (y_pred >= 0)).any():
        with pytest.raises(ValueError, match="no epoch left to score"):
            score_classes(y_true, y_pred, n_classes)
        return
    assert_matches_sklearn(score_classes(y_true, y_pred, n_classes), y_true, y_pred, n_classes)


EDGE_CASES = {
    "class missing from reference": ([0, 0, 1, 1, 0], [0, 1, 2, 1, 0]),
    "class missing from prediction": ([0, 1, 2, 1, 2], [0, 0, 1, 1, 1]),
    "all labels equal": ([2, 2, 2, 2], [2, 2, 2, 2]),
    "constant but different": ([1, 1, 1], [3, 3, 3]),
    "reference constant": ([0, 0, 0, 0], [0, 1, 0, 1]),
    "prediction constant": ([0, 1, 0, 1], [0, 0, 0, 0]),
    "perfect agreement": ([0, 1, 2, 3, 4, 4, 2], [0, 1, 2, 3, 4, 4, 2]),
    "complete disagreement": ([0, 1, 0, 1], [1, 0, 1, 0]),
    "excluded entries": ([-1, 0, 1, 2, -1, 3], [0, 0, -1, 2, -1, 1]),
    "single epoch": ([3], [3]),
}


@pytest.mark.parametrize("case", EDGE_CASES, ids=list(EDGE_CASES))
def test_edge_cases_match_sklearn_without_warnings(case):
    y_true, y_pred = EDGE_CASES[case]
    ours = score_classes(y_true, y_pred, 5)  # warnings are errors: none may escape
    assert_matches_sklearn(ours, y_true, y_pred, 5)


def test_edge_case_values():
    assert math.isnan(score_classes([2, 2, 2], [2, 2, 2], 5).kappa)
    assert score_classes([1, 1, 1], [3, 3, 3], 5).kappa == 0.0
    assert score_classes([0, 1, 0, 1], [1, 0, 1, 0], 2).kappa == -1.0
    perfect = score_classes([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], 5)
    assert perfect.kappa == perfect.accuracy == perfect.macro_f1 == 1.0


def test_macro_f1_averages_over_all_classes_of_the_set():
    # Perfect on W and N2 only; N1, N3, REM absent on both sides count as F1 = 0.
    s = score_classes([0, 2, 2, 0], [0, 2, 2, 0], 5)
    assert s.f1 == (1.0, 0.0, 1.0, 0.0, 0.0)
    assert s.macro_f1 == pytest.approx(0.4)
    # Balanced accuracy averages only over classes present in the reference.
    assert s.balanced_accuracy == 1.0


def test_hand_computed_kappa_2x2():
    # po = 35/50 = 0.7; pe = (25*30 + 25*20) / 50**2 = 0.5; kappa = 0.2 / 0.5 = 0.4
    s = scores_from_confusion(np.array([[20, 5], [10, 15]]), ("W", "sleep"))
    assert s.kappa == pytest.approx(0.4, abs=1e-15)
    assert s.accuracy == pytest.approx(0.7)
    assert s.precision == pytest.approx((20 / 30, 15 / 20))
    assert s.recall == pytest.approx((0.8, 0.6))
    assert s.support == (25, 25)
    assert s.n_epochs == 50


def test_confusion_matrix_rows_reference_columns_predicted():
    cm = confusion_matrix([0, 0, 1, -1, 2], [1, 1, 1, 0, -1], 3)
    np.testing.assert_array_equal(cm, [[0, 2, 0], [0, 1, 0], [0, 0, 0]])
    assert cm.dtype == np.int64


def test_excluded_epochs_are_counted():
    s = score_classes([-1, 0, 1, 1], [0, 0, -1, 1], 2)
    assert s.n_excluded == 2
    assert s.n_epochs == 2


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "error", "match"),
    [
        ([], [], 5, ValueError, "no epoch left to score"),
        ([-1, -1], [0, 1], 5, ValueError, "no epoch left to score"),
        ([0, 1], [0], 5, ValueError, "one entry per epoch"),
        ([0, 5], [0, 1], 5, ValueError, r"class indices in \[0, 4\]"),
        ([0, -2], [0, 1], 5, ValueError, "got -2"),
        ([0.0, 1.0], [0, 1], 5, TypeError, "integer class indices"),
        ([[0, 1]], [[0, 1]], 5, ValueError, "1-D"),
        ([0, 1], [0, 1], 1, ValueError, "n_classes"),
    ],
)
def test_bad_input_raises_clear_errors(y_true, y_pred, n_classes, error, match):
    with pytest.raises(error, match=match):
        score_classes(np.asarray(y_true, dtype=None), y_pred, n_classes)


def test_scores_from_confusion_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="at least one epoch"):
        scores_from_confusion(np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="name all 2 classes"):
        scores_from_confusion(np.eye(2, dtype=int), ("W",))


def test_score_reduces_canonical_stages():
    ref = np.array([Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.REM, Stage.UNSCORED,
                    Stage.MOVEMENT], dtype=np.int8)
    pred = np.array([Stage.W, Stage.N2, Stage.N2, Stage.N2, Stage.REM, Stage.N2, Stage.W],
                    dtype=np.int8)
    five = score(ref, pred, 5)
    assert five.class_names == ("W", "N1", "N2", "N3", "REM")
    assert five.n_epochs == 5 and five.n_excluded == 2
    assert five.accuracy == pytest.approx(3 / 5)
    four = score(ref, pred, 4)  # N1 -> light agrees with N2 -> light
    assert four.accuracy == pytest.approx(4 / 5)
    assert score(ref, pred, 3).accuracy == 1.0
    assert score(ref, pred, 2).class_names == ("W", "sleep")
    with pytest.raises(ValueError, match="stage set"):
        score(ref, pred, 6)
    with pytest.raises(TypeError, match="`predicted` must hold integer"):
        score(ref, pred.astype(float), 5)


def test_scores_are_frozen_and_serialisable():
    s = score_classes([0, 1, 1], [0, 1, 0], 2, ("W", "sleep"))
    with pytest.raises(AttributeError):
        s.kappa = 1.0
    with pytest.raises(ValueError, match="read-only"):
        s.confusion[0, 0] = 9
    d = s.as_dict()
    assert d["confusion"] == [[1, 0], [1, 1]]
    assert d["per_class"]["sleep"]["support"] == 2
    assert d["n_epochs"] == 3 and d["class_names"] == ["W", "sleep"]


def test_score_nights_pooled_and_spread():
    rng = np.random.default_rng(7)
    pairs = {}
    for i in range(5):
        ref = rng.integers(-2, 5, 300).astype(np.int8)
        pred = np.where(rng.random(300) < 0.7, ref, rng.integers(0, 5, 300)).astype(np.int8)
        pairs[f"night{i}"] = (ref, pred)
    pairs["one-class"] = (np.full(20, Stage.N2, np.int8), np.full(20, Stage.N2, np.int8))
    report = score_nights(pairs, 5)
    all_ref = np.concatenate([r for r, _ in pairs.values()])
    all_pred = np.concatenate([p for _, p in pairs.values()])
    pooled = score(all_ref, all_pred, 5)
    np.testing.assert_array_equal(report.pooled.confusion, pooled.confusion)
    assert report.pooled.kappa == pytest.approx(pooled.kappa)
    assert report.pooled.n_excluded == pooled.n_excluded
    assert list(report.nights) == list(pairs)
    assert math.isnan(report.nights["one-class"].kappa)
    kappas = [report.nights[f"night{i}"].kappa for i in range(5)]
    assert report.summary["kappa"].n == 5  # the nan night is left out
    assert report.summary["kappa"].median == pytest.approx(np.median(kappas))
    assert report.summary["kappa"].q25 == pytest.approx(np.percentile(kappas, 25))
    assert report.summary["kappa"].q75 == pytest.approx(np.percentile(kappas, 75))
    assert report.summary["accuracy"].n == 6
    d = report.as_dict()
    assert set(d) == {"stage_set", "pooled", "summary", "nights"}
    assert d["summary"]["kappa"]["n"] == 5


def test_score_nights_all_nan_kappa_has_nan_spread_without_warning():
    one = (np.full(4, Stage.W, np.int8), np.full(4, Stage.W, np.int8))
    report = score_nights({"a": one, "b": one}, 3)
    assert report.summary["kappa"].n == 0
    assert math.isnan(report.summary["kappa"].median)


def test_score_nights_errors_name_the_night():
    with pytest.raises(ValueError, match="at least one night"):
        score_nights({}, 5)
    bad = (np.full(3, Stage.UNSCORED, np.int8), np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="night 'n7'"):
        score_nights({"n7": bad}, 5)
    with pytest.raises(ValueError, match="stage set"):
        score_nights({"n": (np.zeros(3, np.int8), np.zeros(3, np.int8))}, 7)
