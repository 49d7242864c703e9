"""Epoch-by-epoch agreement between a reference and a predicted hypnogram.

Every score is computed from one confusion matrix with a fixed class order, so that
pooling nights is a sum of matrices and no class ever disappears from a table. The
numbers equal scikit-learn's (``confusion_matrix``, ``accuracy_score``,
``balanced_accuracy_score``, ``cohen_kappa_score``, ``precision_recall_fscore_support`` and
``f1_score(average="macro")`` with ``labels=range(n_classes)`` and ``zero_division=0``),
which the tests check; scikit-learn itself is not imported here.

Conventions for the edge cases, all as scikit-learn 1.4+ computes them but without its
warnings (this project turns warnings into errors):

* Epochs whose class is :data:`~models.stages.EXCLUDED` (-1) in the reference *or* the
  prediction are dropped before anything is counted; their number is kept in
  :attr:`Scores.n_excluded`. Nothing left to score is a ``ValueError``.
* Cohen's κ is ``nan`` when chance agreement is certain, i.e. both scorers put every epoch
  in the same single class (scikit-learn: ``UndefinedMetricWarning`` and ``nan``). Two
  different constant scorers give κ = 0; perfect disagreement on two balanced classes -1.
* Precision, recall and F1 of a class with a zero denominator are 0 (``zero_division=0``).
  Macro-F1 averages over *all* ``n_classes`` classes of the set, present or not, as
  ``f1_score(..., labels=range(n_classes), average="macro")`` does: a stage missing from
  both hypnograms counts as F1 = 0 and pulls the mean down.
* Balanced accuracy is the mean recall over the classes present in the reference (a
  class never scored by the reference has no recall); scikit-learn drops them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.stages import EXCLUDED, reduce_stages, stage_names
from models.stages import n_classes as _check_stage_set

__all__ = [
    "SUMMARY_METRICS",
    "NightlyReport",
    "Scores",
    "Spread",
    "confusion_matrix",
    "score",
    "score_classes",
    "score_nights",
    "scores_from_confusion",
]

#: Scores summarised across nights by :func:`score_nights`.
SUMMARY_METRICS: tuple[str, ...] = ("kappa", "accuracy", "balanced_accuracy", "macro_f1")


@dataclass(frozen=True, eq=False)
class Scores:
    """Agreement scores of one comparison (one night, or several pooled).

    Attributes
    ----------
    class_names : tuple of str, length n_classes
        Class names in class-index order.
    confusion : ndarray of int64, shape (n_classes, n_classes)
        Epoch counts; rows are the reference class, columns the predicted class. Read-only.
    n_excluded : int
        Epochs dropped because either side was EXCLUDED (-1).
    accuracy : float
        Fraction of scored epochs on the diagonal, in [0, 1].
    balanced_accuracy : float
        Mean recall over classes present in the reference, in [0, 1].
    kappa : float
        Cohen's κ in [-1, 1]; ``nan`` when both sides use one and the same class only.
    macro_f1 : float
        Unweighted mean of ``f1`` over all ``n_classes`` classes, in [0, 1].
    precision, recall, f1 : tuple of float, length n_classes
        Per-class values; 0 where the denominator is 0.
    support : tuple of int, length n_classes
        Reference epochs per class (row sums of ``confusion``).
    """

    class_names: tuple[str, ...]
    confusion: NDArray[np.int64]
    n_excluded: int
    accuracy: float
    balanced_accuracy: float
    kappa: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]

    @property
    def n_classes(self) -> int:
        """Number of classes of the confusion matrix."""
        return len(self.class_names)

    @property
    def n_epochs(self) -> int:
        """Number of scored epochs (the confusion matrix total)."""
        return int(self.confusion.sum())

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON: floats, ints, lists; ``nan`` stays a float ``nan``."""
        per_class = {
            name: {
                "precision": self.precision[i],
                "recall": self.recall[i],
                "f1": self.f1[i],
                "support": self.support[i],
            }
            for i, name in enumerate(self.class_names)
        }
        return {
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "n_epochs": self.n_epochs,
            "n_excluded": self.n_excluded,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "kappa": self.kappa,
            "macro_f1": self.macro_f1,
            "per_class": per_class,
            "confusion": self.confusion.tolist(),
        }


def _class_array(values: ArrayLike, name: str, n_classes: int) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        msg = f"`{name}` must be a 1-D array of class indices; got shape {arr.shape}"
        raise ValueError(msg)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        msg = (
            f"`{name}` must hold integer class indices; got dtype {arr.dtype}. "
            "Convert probabilities with argmax and stage codes with reduce_stages first."
        )
        raise TypeError(msg)
    arr = arr.astype(np.int64)
    bad = (arr < EXCLUDED) | (arr >= n_classes)
    if bad.any():
        msg = (
            f"`{name}` must hold class indices in [0, {n_classes - 1}] or {EXCLUDED} "
            f"(excluded); got {arr[bad][0]} at position {int(np.flatnonzero(bad)[0])}. "
            "Check `n_classes` or map canonical stages with reduce_stages first."
        )
        raise ValueError(msg)
    return arr


def _paired(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """Validate both arrays and drop pairs with EXCLUDED on either side."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        msg = f"`n_classes` must be an int; got {type(n_classes).__name__}"
        raise TypeError(msg)
    if n_classes < 2:
        msg = f"`n_classes` must be >= 2; got {n_classes}"
        raise ValueError(msg)
    true = _class_array(y_true, "y_true", n_classes)
    pred = _class_array(y_pred, "y_pred", n_classes)
    if true.shape != pred.shape:
        msg = (
            f"`y_true` and `y_pred` must have one entry per epoch each; got {true.size} and "
            f"{pred.size}. Align the hypnograms (same start and epoch length) first."
        )
        raise ValueError(msg)
    keep = (true != EXCLUDED) & (pred != EXCLUDED)
    if not keep.any():
        msg = (
            f"no epoch left to score: all {true.size} epochs are EXCLUDED (-1) in the "
            "reference or the prediction. Check that both hypnograms cover scored sleep."
        )
        raise ValueError(msg)
    return true[keep], pred[keep], int(true.size - keep.sum())


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Count epochs per (reference, predicted) class pair.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_epochs,)
        Class indices in ``[0, n_classes)``; -1 (EXCLUDED) on either side drops the epoch.
    n_classes : int
        Number of classes; fixes the shape and order of the matrix.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        ``cm[i, j]`` = epochs with reference class ``i`` and predicted class ``j``.

    Raises
    ------
    ValueError
        If the arrays differ in length, hold indices outside the range, or nothing is
        left after dropping excluded epochs.
    """
    true, pred, _ = _paired(y_true, y_pred, n_classes)
    return _confusion(true, pred, n_classes)


def _confusion(true: NDArray[np.int64], pred: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n).astype(np.int64)


def _safe_ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _kappa(cm: NDArray[np.float64]) -> float:
    # Same arithmetic as sklearn's cohen_kappa_score (unweighted): 1 - observed/expected
    # disagreement, so the two agree to the last bits.
    total = cm.sum()
    expected = np.outer(cm.sum(axis=0), cm.sum(axis=1)) / total
    w_mat = 1.0 - np.eye(cm.shape[0])
    expected_disagreement = float(np.sum(w_mat * expected))
    if expected_disagreement == 0.0:
        return float("nan")
    return float(1.0 - np.sum(w_mat * cm) / expected_disagreement)


def scores_from_confusion(
    confusion: ArrayLike,
    class_names: Sequence[str] | None = None,
    n_excluded: int = 0,
) -> Scores:
    """Compute every score from a confusion matrix.

    Parameters
    ----------
    confusion : array-like of int, shape (n_classes, n_classes)
        Epoch counts, rows = reference, columns = predicted; must not be all zero.
    class_names : sequence of str, optional
        Names in class-index order; defaults to ``"0"``, ``"1"``, ...
    n_excluded : int
        Epochs dropped before counting, carried into :attr:`Scores.n_excluded`.

    Returns
    -------
    Scores
        All scores; see the module docstring for the edge-case conventions.
    """
    cm = np.array(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        msg = (
            "`confusion` must be a square (n_classes, n_classes) matrix with n_classes >= 2; "
            f"got shape {cm.shape}"
        )
        raise ValueError(msg)
    if not np.issubdtype(cm.dtype, np.integer) or (cm < 0).any() or cm.sum() == 0:
        msg = "`confusion` must hold non-negative integer counts with at least one epoch"
        raise ValueError(msg)
    n = cm.shape[0]
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(n))
    if len(names) != n:
        msg = f"`class_names` must name all {n} classes; got {len(names)}: {names}"
        raise ValueError(msg)
    cm = cm.astype(np.int64)
    cm.setflags(write=False)
    cmf = cm.astype(np.float64)
    tp, support, predicted = np.diag(cmf), cmf.sum(axis=1), cmf.sum(axis=0)
    precision = _safe_ratio(tp, predicted)
    recall = _safe_ratio(tp, support)
    # F1 = 2TP / (2TP + FP + FN), as sklearn >= 1.3 computes it (0 when the denominator is 0).
    f1 = _safe_ratio(2 * tp, support + predicted)
    return Scores(
        class_names=names,
        confusion=cm,
        n_excluded=int(n_excluded),
        accuracy=float(tp.sum() / cmf.sum()),
        balanced_accuracy=float(np.mean(recall[support > 0])),
        kappa=_kappa(cmf),
        macro_f1=float(np.mean(f1)),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        f1=tuple(float(x) for x in f1),
        support=tuple(int(x) for x in cm.sum(axis=1)),
    )


def score_classes(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    n_classes: int,
    class_names: Sequence[str] | None = None,
) -> Scores:
    """Score class-index arrays against each other.

    Parameters
    ----------
    y_true : array-like of int, shape (n_epochs,)
        Reference class indices in ``[0, n_classes)``, -1 for excluded epochs.
    y_pred : array-like of int, shape (n_epochs,)
        Predicted class indices, same convention.
    n_classes : int
        Number of classes (>= 2); classes absent from both arrays still get a row.
    class_names : sequence of str, optional
        Names in class-index order; defaults to ``"0"``, ``"1"``, ...

    Returns
    -------
    Scores
        Scores over the epochs where neither side is -1.

    Raises
    ------
    ValueError
        On length mismatch, out-of-range indices, or when every epoch is excluded.
    TypeError
        If the arrays are not integer.
    """
    true, pred, n_excluded = _paired(y_true, y_pred, n_classes)
    return scores_from_confusion(_confusion(true, pred, n_classes), class_names, n_excluded)


def score(reference: ArrayLike, predicted: ArrayLike, stage_set: int = 5) -> Scores:
    """Score canonical stage arrays in one of the 5/4/3/2-class sets.

    Parameters
    ----------
    reference : array-like of int, shape (n_epochs,)
        Canonical :class:`~models.stages.Stage` values of the reference scorer.
    predicted : array-like of int, shape (n_epochs,)
        Canonical stage values of the prediction, epoch-aligned with ``reference``.
    stage_set : {5, 4, 3, 2}
        Class set to reduce both to (see :func:`models.stages.reduce_stages`).

    Returns
    -------
    Scores
        Scores with the set's class names; UNSCORED and MOVEMENT epochs on either side
        are excluded.
    """
    for name, arr in (("reference", reference), ("predicted", predicted)):
        dtype = np.asarray(arr).dtype
        if np.asarray(arr).size and not np.issubdtype(dtype, np.integer):
            msg = f"`{name}` must hold integer Stage values; got dtype {dtype}"
            raise TypeError(msg)
    ref = reduce_stages(reference, stage_set)
    pred = reduce_stages(predicted, stage_set)
    return score_classes(ref, pred, stage_set, stage_names(stage_set))


class Spread(NamedTuple):
    """Median and inter-quartile range of one score across nights.

    ``n`` counts the nights with a finite value; nights whose value is ``nan`` (κ of a
    night where both sides use a single class) are left out. All three statistics are
    ``nan`` when ``n`` is 0.
    """

    median: float
    q25: float
    q75: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values``; non-finite values are left out (see the class)."""
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:  # np.nanpercentile would warn "All-NaN slice"
            return cls(float("nan"), float("nan"), float("nan"), 0)
        q25, median, q75 = np.percentile(arr, [25.0, 50.0, 75.0])
        return cls(float(median), float(q25), float(q75), int(arr.size))


@dataclass(frozen=True, eq=False)
class NightlyReport:
    """Scores of several nights in one stage set: pooled, per night, and their spread.

    Attributes
    ----------
    stage_set : int
        The class set (5, 4, 3 or 2).
    pooled : Scores
        Scores over all epochs of all nights together (sum of the nights' matrices).
    nights : Mapping[str, Scores]
        Scores of each night, keyed by night id, in input order.
    summary : Mapping[str, Spread]
        Median and IQR across nights of each score in :data:`SUMMARY_METRICS`.
    """

    stage_set: int
    pooled: Scores
    nights: Mapping[str, Scores]
    summary: Mapping[str, Spread]

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON."""
        return {
            "stage_set": self.stage_set,
            "pooled": self.pooled.as_dict(),
            "summary": {k: v._asdict() for k, v in self.summary.items()},
            "nights": {k: v.as_dict() for k, v in self.nights.items()},
        }


def score_nights(
    pairs: Mapping[str, tuple[ArrayLike, ArrayLike]], stage_set: int = 5
) -> NightlyReport:
    """Score each night and all nights pooled.

    Parameters
    ----------
    pairs : Mapping[str, tuple of array-like]
        Night id -> ``(reference, predicted)`` canonical stage arrays, epoch-aligned, each
        shape (n_epochs,) of that night.
    stage_set : {5, 4, 3, 2}
        Class set to score in.

    Returns
    -------
    NightlyReport
        Pooled scores weight every epoch equally (long nights count more); the per-night
        median and IQR weight every night equally. κ is ``nan`` for a night where both
        sides use one single class, and such nights are left out of the κ spread.

    Raises
    ------
    ValueError
        If ``pairs`` is empty, or a night has no epoch scored on both sides (named).
    """
    if not pairs:
        msg = "`pairs` must hold at least one night; got none"
        raise ValueError(msg)
    n = _check_stage_set(stage_set)
    nights: dict[str, Scores] = {}
    for night, (reference, predicted) in pairs.items():
        try:
            nights[night] = score(reference, predicted, stage_set)
        except ValueError as err:
            msg = f"night {night!r}: {err}"
            raise ValueError(msg) from err
    pooled = scores_from_confusion(
        sum((s.confusion for s in nights.values()), np.zeros((n, n), np.int64)),
        stage_names(stage_set),
        sum(s.n_excluded for s in nights.values()),
    )
    summary = {m: Spread.of([getattr(s, m) for s in nights.values()]) for m in SUMMARY_METRICS}
    return NightlyReport(stage_set, pooled, nights, summary)
