"""The Sleep-Accel authors' per-epoch feature files (``outputs/features/<id>_*.out``).

Walch et al. (2019) reduce each night to one row per *valid* 30-s epoch (scored, with both
accelerometer and heart-rate samples) and write six one-column files per subject, one float
per line (``shared/data/README.md`` section 3). :func:`read_walch_features` reads them into
a :class:`WalchFeatures`; :data:`FEATURE_NAMES` is the ordered feature registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.errors import DataFormatError
from ingestors.sleep_accel import PathArg, _read_table, _stage_codes, _subject_key
from ingestors.types import EPOCH_S

__all__ = [
    "FEATURE_NAMES",
    "FeatureMatrix",
    "WalchFeatures",
    "list_feature_subjects",
    "read_walch_features",
]

#: Feature names in the order of the authors' pipeline (count, heart rate, time, clock).
FEATURE_NAMES: Final[tuple[str, ...]] = ("count", "hr", "time", "circadian", "cosine")

# File stem of each column; the labels file first, then the features in FEATURE_NAMES order.
_FILES: Final[dict[str, str]] = {
    "labels": "psg_labels",
    "count": "count_feature",
    "hr": "hr_feature",
    "time": "time_feature",
    "circadian": "circadian_feature",
    "cosine": "cosine_feature",
}
# time_feature has 6 decimals of an hour (3.6 ms); anything further from the grid is not it.
_GRID_TOLERANCE_S: Final[float] = 0.5


class FeatureMatrix(NamedTuple):
    """A feature matrix and the name of each of its columns."""

    values: NDArray[np.float64]  # (n_epochs, n_features)
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class WalchFeatures:
    """The per-epoch features and PSG labels of one subject.

    Attributes
    ----------
    subject : str
        Subject id.
    epoch_start_s : ndarray of float64, shape (n_epochs,)
        Start of each epoch in seconds after the first valid epoch, from ``time_feature``
        (snapped to the 30-s grid). Valid epochs only, so steps of more than 30 s occur.
    stages : ndarray of int8, shape (n_epochs,)
        Canonical :class:`models.stages.Stage` of each epoch (N4 merged into N3).
    codes : tuple of str, length n_epochs
        Source label code of each epoch (``"0"`` ... ``"5"``).
    count, hr, time, circadian, cosine : ndarray of float64, shape (n_epochs,)
        Smoothed activity counts; heart-rate variability feature (dimensionless);
        hours since the first valid epoch; circadian model output; cosine clock proxy.
    source : str
        The folder the files were read from.
    """

    subject: str
    epoch_start_s: NDArray[np.float64]
    stages: NDArray[np.int8]
    codes: tuple[str, ...]
    count: NDArray[np.float64]
    hr: NDArray[np.float64]
    time: NDArray[np.float64]
    circadian: NDArray[np.float64]
    cosine: NDArray[np.float64]
    source: str = ""

    def __len__(self) -> int:
        return int(self.stages.shape[0])

    def matrix(self, names: Sequence[str] | None = None) -> FeatureMatrix:
        """Stack features into an ``(n_epochs, n_features)`` matrix.

        Parameters
        ----------
        names : sequence of str or None
            Features to use, in this order; default all of :data:`FEATURE_NAMES`.

        Returns
        -------
        FeatureMatrix
            ``values`` shape (n_epochs, len(names)) and the column ``names``.

        Raises
        ------
        ValueError
            If a name is not a feature.
        """
        chosen = FEATURE_NAMES if names is None else tuple(names)
        unknown = [n for n in chosen if n not in FEATURE_NAMES]
        if unknown or not chosen:
            msg = (f"feature names must be a non-empty selection of {FEATURE_NAMES}; got "
                   f"{list(chosen)}. Use the names of FEATURE_NAMES.")
            raise ValueError(msg)
        values = np.column_stack([getattr(self, n) for n in chosen]).astype(np.float64)
        return FeatureMatrix(values, chosen)


def _features_folder(folder: PathArg) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise DataFormatError(path, "folder not found",
                              expected="a folder of <id>_psg_labels.out, <id>_hr_feature.out ...",
                              fix="Pass the authors' outputs/features folder.")
    return path


def list_feature_subjects(folder: PathArg) -> tuple[str, ...]:
    """Subjects with at least one feature file in ``folder``, sorted numerically."""
    path = _features_folder(folder)
    found = {file.name[: -len(f"_{stem}.out")]
             for stem in _FILES.values() for file in path.glob(f"*_{stem}.out")}
    return tuple(sorted(found, key=_subject_key))


def _epoch_starts(path: Path, hours: NDArray[np.float64],
                  lines: NDArray[np.int64]) -> NDArray[np.float64]:
    seconds = hours * 3600.0
    back = np.flatnonzero(np.diff(seconds) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataFormatError(path, "time is not increasing", line=int(lines[i]),
                              field="time_feature",
                              expected=f"more than {hours[i - 1]:g} h (epochs in time order)",
                              got=float(hours[i]), fix="Use the file as written by the pipeline.")
    snapped = np.round(seconds / EPOCH_S) * EPOCH_S
    if np.abs(seconds - snapped).max() <= _GRID_TOLERANCE_S:
        return snapped
    return seconds


def read_walch_features(folder: PathArg, subject: str | int) -> WalchFeatures:
    """Read the six feature files of one subject.

    Parameters
    ----------
    folder : str or path-like
        The authors' ``outputs/features`` folder.
    subject : str or int
        Subject id.

    Returns
    -------
    WalchFeatures
        Labels, epoch starts and the five features, one row per valid epoch.

    Raises
    ------
    DataFormatError
        If a file is missing or malformed, a label code is unknown, ``time_feature`` is
        not increasing, or the files have different numbers of lines.
    """
    path = _features_folder(folder)
    subject = str(subject)
    files = {key: path / f"{subject}_{stem}.out" for key, stem in _FILES.items()}
    missing = [f.name for f in files.values() if not f.is_file()]
    if missing:
        raise DataFormatError(path, f"feature files of subject {subject!r} missing",
                              expected="all of " + ", ".join(f.name for f in files.values()),
                              got=missing, fix="Copy the complete set of six files.")
    tables = {key: _read_table(files[key], (stem,), None) for key, stem in _FILES.items()}
    n = len(tables["labels"].lines)
    for key, table in tables.items():
        if len(table.lines) != n:
            raise DataFormatError(
                files[key], "feature files of unequal length", field=_FILES[key],
                expected=f"{n} lines, as {files['labels'].name}", got=len(table.lines),
                fix="All six files must come from one processing run; re-export them.",
            )
    stages, codes = _stage_codes(files["labels"], tables["labels"], 0, _FILES["labels"])
    col = {key: np.ascontiguousarray(table.values[:, 0]) for key, table in tables.items()}
    starts = _epoch_starts(files["time"], col["time"], tables["time"].lines)
    return WalchFeatures(subject, starts, stages, codes, col["count"], col["hr"], col["time"],
                         col["circadian"], col["cosine"], source=str(path))
