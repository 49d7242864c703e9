"""The stage vocabulary: one canonical AASM enum, source-code maps and class reductions.

Every hypnogram inside sleepstream is an ``int8`` array of :class:`Stage` values. Source
files speak many dialects (Sleep-Accel ``-1..5``, SLPDB ``W/1/2/3/4/R/MT``, Sleep-EDF
``"Sleep stage 3"``, NSRR ``"Stage 4 sleep|4"``, BIDS strings); :func:`parse_stage` turns
any of them into the canonical enum, and :func:`reduce_stages` maps the canonical
5-class stages onto the 4-, 3- and 2-class sets used by wearable models.

R&K stages 3 and 4 both map to AASM N3. Movement time and artefacts are kept apart from
unscored epochs so that counts match the source, but both are excluded from scoring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CLASS_NAMES",
    "EXCLUDED",
    "Stage",
    "StageCodeError",
    "StageSet",
    "Scheme",
    "class_stages",
    "n_classes",
    "parse_stage",
    "parse_stages",
    "reduce_stages",
    "stage_names",
]


class Stage(IntEnum):
    """Canonical 5-stage AASM vocabulary plus the two non-sleep-scoring labels.

    The five scored stages are ``0..4`` so that they can index arrays; the two
    labels that are never scored are negative.
    """

    W = 0
    N1 = 1
    N2 = 2
    N3 = 3
    REM = 4
    MOVEMENT = -2  # movement time / artefact: the epoch could not be scored
    UNSCORED = -1  # not scored at all ("?", -1, outside the study window)


#: Value used in reduced (4/3/2-class) arrays for epochs that do not count.
EXCLUDED: Final[int] = -1

StageSet = Literal[5, 4, 3, 2]

#: Class names of each stage set, in class-index order.
CLASS_NAMES: Final[Mapping[int, tuple[str, ...]]] = {
    5: ("W", "N1", "N2", "N3", "REM"),
    4: ("W", "light", "deep", "REM"),
    3: ("W", "NREM", "REM"),
    2: ("W", "sleep"),
}

# Reduction tables indexed by canonical stage 0..4.
_REDUCE: Final[Mapping[int, NDArray[np.int8]]] = {
    5: np.array([0, 1, 2, 3, 4], dtype=np.int8),
    4: np.array([0, 1, 1, 2, 3], dtype=np.int8),
    3: np.array([0, 1, 1, 1, 2], dtype=np.int8),
    2: np.array([0, 1, 1, 1, 1], dtype=np.int8),
}

# The canonical stage written for each class of a stage set (the first stage of the
# class, except that light and NREM sleep are written as N2, their commonest stage).
_STAND_IN: Final[Mapping[int, NDArray[np.int8]]] = {
    5: np.array([0, 1, 2, 3, 4], dtype=np.int8),
    4: np.array([0, 2, 3, 4], dtype=np.int8),
    3: np.array([0, 2, 4], dtype=np.int8),
    2: np.array([0, 2], dtype=np.int8),
}

Scheme = Literal["sleep-accel", "slpdb", "sleep-edf", "nsrr", "text"]

_SLEEP_ACCEL: Final[Mapping[str, Stage]] = {
    "-1": Stage.UNSCORED,
    "0": Stage.W,
    "1": Stage.N1,
    "2": Stage.N2,
    "3": Stage.N3,
    "4": Stage.N3,  # R&K stage 4, used by 3 subjects
    "5": Stage.REM,
}
_SLPDB: Final[Mapping[str, Stage]] = {
    "W": Stage.W,
    "1": Stage.N1,
    "2": Stage.N2,
    "3": Stage.N3,
    "4": Stage.N3,
    "R": Stage.REM,
    "MT": Stage.MOVEMENT,
    "M": Stage.MOVEMENT,  # slp45 uses a bare M for movement time
}
_SLEEP_EDF: Final[Mapping[str, Stage]] = {
    "sleep stage w": Stage.W,
    "sleep stage 1": Stage.N1,
    "sleep stage 2": Stage.N2,
    "sleep stage 3": Stage.N3,
    "sleep stage 4": Stage.N3,
    "sleep stage r": Stage.REM,
    "sleep stage ?": Stage.UNSCORED,
    "movement time": Stage.MOVEMENT,
}
# NSRR XML ScoredEvents: "Wake|0", "Stage 1 sleep|1", ..., "Stage 4 sleep|4", "REM sleep|5",
# "Movement|6", "Unscored|9". The number after the bar is authoritative.
_NSRR_NUMBER: Final[Mapping[str, Stage]] = {
    "0": Stage.W,
    "1": Stage.N1,
    "2": Stage.N2,
    "3": Stage.N3,
    "4": Stage.N3,
    "5": Stage.REM,
    "6": Stage.MOVEMENT,
    "9": Stage.UNSCORED,
}
# Free-text names as written in CSV/TSV/BIDS files (and our own exports). Lower-cased,
# spaces, dashes and underscores removed before lookup.
_TEXT: Final[Mapping[str, Stage]] = {
    **{k: Stage.W for k in ("w", "wake", "awake", "sleepstagew", "0")},
    **{k: Stage.N1 for k in ("n1", "s1", "1", "stage1", "sleepstage1", "nrem1")},
    **{k: Stage.N2 for k in ("n2", "s2", "2", "stage2", "sleepstage2", "nrem2")},
    **{k: Stage.N3 for k in ("n3", "s3", "3", "stage3", "sleepstage3", "nrem3", "sws")},
    **{k: Stage.N3 for k in ("n4", "s4", "4", "stage4", "sleepstage4", "nrem4")},
    **{k: Stage.REM for k in ("r", "rem", "sleepstager", "remsleep", "5")},
    **{k: Stage.MOVEMENT for k in ("mt", "m", "movement", "movementtime", "artefact",
                                   "artifact", "6")},
    **{
        k: Stage.UNSCORED
        for k in ("?", "-1", "unscored", "sleepstage?", "n/a", "na", "nan", "unknown", "9")
    },
}

_SCHEMES: Final[Mapping[str, Mapping[str, Stage]]] = {
    "sleep-accel": _SLEEP_ACCEL,
    "slpdb": _SLPDB,
    "sleep-edf": _SLEEP_EDF,
    "nsrr": _NSRR_NUMBER,
    "text": _TEXT,
}

_FOLD = re.compile(r"[\s_\-]+")


class StageCodeError(ValueError):
    """A stage code that the chosen scheme does not know."""


def _normalise(code: object, scheme: Scheme) -> str:
    if isinstance(code, (float, np.floating)):
        if not np.isfinite(code):
            return "nan"
        if float(code).is_integer():
            code = int(code)
    text = str(code).strip()
    if scheme == "sleep-edf":
        return " ".join(text.lower().split())
    if scheme == "nsrr":
        # "Stage 2 sleep|2" -> "2"; a bare number is accepted too.
        return text.rsplit("|", 1)[-1].strip()
    if scheme == "text":
        return _FOLD.sub("", text.lower())
    return text


def parse_stage(code: object, scheme: Scheme) -> Stage:
    """Map one source stage code to the canonical :class:`Stage`.

    Parameters
    ----------
    code : object
        The code as read from the file (``-1``, ``"R"``, ``"Sleep stage 4"``,
        ``"REM sleep|5"``, ``"N2"`` ...). Floats holding integers are accepted.
    scheme : {"sleep-accel", "slpdb", "sleep-edf", "nsrr", "text"}
        The dialect of the source.

    Returns
    -------
    Stage
        The canonical stage.

    Raises
    ------
    StageCodeError
        If the code is not part of the scheme; the message lists the codes it knows.
    """
    if scheme not in _SCHEMES:
        msg = f"stage scheme must be one of {sorted(_SCHEMES)}; got {scheme!r}"
        raise ValueError(msg)
    table = _SCHEMES[scheme]
    key = _normalise(code, scheme)
    try:
        return table[key]
    except KeyError:
        known = ", ".join(repr(k) for k in sorted(table))
        msg = (
            f"unknown {scheme} stage code {code!r}; expected one of {known}. "
            "Fix the label file or map the code to a sleepstream Stage before reading."
        )
        raise StageCodeError(msg) from None


def parse_stages(codes: Iterable[object], scheme: Scheme) -> NDArray[np.int8]:
    """Map a sequence of source codes to an ``int8`` array of :class:`Stage` values."""
    cache: dict[object, int] = {}
    out: list[int] = []
    for code in codes:
        hashable = code.item() if isinstance(code, np.generic) else code
        if hashable not in cache:
            cache[hashable] = int(parse_stage(hashable, scheme))
        out.append(cache[hashable])
    return np.asarray(out, dtype=np.int8)


def n_classes(stage_set: int) -> int:
    """Number of classes of a stage set (5, 4, 3 or 2), validating it."""
    if stage_set not in _REDUCE:
        msg = f"stage set must be one of 5, 4, 3, 2; got {stage_set!r}"
        raise ValueError(msg)
    return stage_set


def reduce_stages(stages: ArrayLike, stage_set: int) -> NDArray[np.int8]:
    """Map canonical stages to class indices of a 5-, 4-, 3- or 2-class set.

    Parameters
    ----------
    stages : array-like of int, shape (n_epochs,)
        Canonical :class:`Stage` values.
    stage_set : {5, 4, 3, 2}
        Target set: 5 = W/N1/N2/N3/REM, 4 = W/light(N1+N2)/deep(N3)/REM,
        3 = W/NREM/REM, 2 = W/sleep.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Class indices; unscored and movement epochs are :data:`EXCLUDED` (-1).
    """
    table = _REDUCE[n_classes(stage_set)]
    arr = np.asarray(stages)
    if arr.size and (arr.min() < Stage.MOVEMENT or arr.max() > Stage.REM):
        bad = arr[(arr < Stage.MOVEMENT) | (arr > Stage.REM)][0]
        msg = f"stages must be sleepstream Stage values in [-2, 4]; got {bad}"
        raise ValueError(msg)
    out = np.full(arr.shape, EXCLUDED, dtype=np.int8)
    scored = arr >= 0
    out[scored] = table[arr[scored]]
    return out


def class_stages(classes: ArrayLike, stage_set: int) -> NDArray[np.int8]:
    """Canonical stages standing for class indices of a stage set (a model's hypnogram).

    The inverse of :func:`reduce_stages` up to the detail the set does not have: light is
    written as N2, deep as N3, NREM and sleep as N2, so that
    ``reduce_stages(class_stages(k, s), s) == k``. Summarise such a hypnogram in its own
    stage set (``stage_set=s`` of
    :func:`models.evaluation.night_stats.night_stats_from_stages`) so that nothing finer
    than the model tells is claimed.

    Parameters
    ----------
    classes : array-like of int, shape (n_epochs,)
        Class indices of ``stage_set``; :data:`EXCLUDED` (-1) becomes UNSCORED.
    stage_set : {5, 4, 3, 2}
        The stage set of the classes.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Canonical :class:`Stage` values.
    """
    table = _STAND_IN[n_classes(stage_set)]
    arr = np.asarray(classes)
    if arr.size and (arr.min() < EXCLUDED or arr.max() >= stage_set):
        bad = arr[(arr < EXCLUDED) | (arr >= stage_set)][0]
        msg = (f"classes of the {stage_set}-class set must be in [-1, {stage_set - 1}]; "
               f"got {bad}")
        raise ValueError(msg)
    out = np.full(arr.shape, Stage.UNSCORED, dtype=np.int8)
    scored = arr >= 0
    out[scored] = table[arr[scored]]
    return out


def stage_names(stage_set: int) -> tuple[str, ...]:
    """Class names of a stage set, in class-index order."""
    return CLASS_NAMES[n_classes(stage_set)]
