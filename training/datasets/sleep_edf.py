"""Sleep-EDF for training: the EEG measures of Fpz-Cz and Pz-Oz per epoch, with 5 stages.

The data (``shared/data/sleep-edf``, README section 6) hold, for the 20 sleep-cassette
nights of 10 subjects, one row per scored 30-s epoch of the 24-h recording (``?`` and
movement epochs dropped) with the Welch band powers, the variance and the Hjorth mobility of
both EEG channels in a log form; :func:`read_spectral_measures` recovers the physical
measures of :mod:`models.features.eeg_spec` exactly (V^2 -> uV^2). Rows are mapped back to
the recording's epochs with the expert hypnogram (row ``k`` = the ``k``-th epoch with a stage;
the labels are checked to agree), so that the dropped epochs become gaps (masked, no
measures) on the real epoch grid and the temporal context of the nets stays right.

Each night is a session as the stream would see it: with ``crop=True`` (the usual Sleep-EDF
protocol) it starts :data:`CROP_WAKE_EPOCHS` (30 min) before the first sleep epoch and ends as
long after the last one, and the night-relative features start there; with ``crop=False`` it
starts at the recording's first epoch (mid-afternoon) and runs to the last row. ``SC4011E0``'s
rows stop about 7.9 h into the recording, so its night ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from os import PathLike
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from rich.progress import track

from ingestors.hypnogram_io import read_edf_hypnogram
from ingestors.types import EPOCH_S, Hypnogram
from models.features.psg import psg_features
from models.features.registry import feature_names
from models.stages import Stage, reduce_stages
from training.datasets.base import Night, NightSet

__all__ = [
    "CROP_WAKE_EPOCHS",
    "SLEEP_EDF_CHANNELS",
    "load_sleep_edf",
    "night_from_sleep_edf",
    "read_spectral_measures",
]

#: The EEG channels of the spectral data, in column order.
SLEEP_EDF_CHANNELS: Final[tuple[str, ...]] = ("EEG Fpz-Cz", "EEG Pz-Oz")
#: Wake kept before the first and after the last sleep epoch by the cropped protocol.
CROP_WAKE_EPOCHS: Final[int] = 60
_COLUMNS_PER_CHANNEL = 9
_EPS = 1e-10  # the source's offset inside its logarithms and ratios (V^2 units)
_V2_TO_UV2 = 1e12


def read_spectral_measures(path: str | PathLike[str]) -> tuple[NDArray[np.float64],
                                                                NDArray[np.int64]]:
    """Physical EEG measures and labels of one ``eeg-spectral-features/SC4ssNE0.npz``.

    Parameters
    ----------
    path : path-like
        The file: ``X`` float64 (n_rows, >= 18) and ``y`` int (n_rows,) with 0 W, 1 N1,
        2 N2, 3 N3, 4 REM; columns 0-8 Fpz-Cz, 9-17 Pz-Oz (later columns are not read).

    Returns
    -------
    measures : ndarray of float64, shape (n_rows, 2, 7)
        ``p_delta .. p_gamma`` in uV^2/Hz, ``var`` and ``var_diff`` in uV^2 per channel.
    y : ndarray of int64, shape (n_rows,)

    Raises
    ------
    ValueError
        If the file lacks ``X`` or ``y``, or their shapes or values do not fit.
    """
    path = Path(path)
    with np.load(path) as z:
        if "X" not in z or "y" not in z:
            msg = f"{path}: expected arrays 'X' and 'y'; got {sorted(z.files)}"
            raise ValueError(msg)
        x, y = np.asarray(z["X"], dtype=np.float64), np.asarray(z["y"], dtype=np.int64)
    n_cols = _COLUMNS_PER_CHANNEL * len(SLEEP_EDF_CHANNELS)
    if x.ndim != 2 or x.shape[1] < n_cols or y.shape != (x.shape[0],):
        msg = (f"{path}: expected X of shape (n_rows, >= {n_cols}) and y of shape (n_rows,); "
               f"got {x.shape} and {y.shape}. Use the files of sleep-edf/eeg-spectral-features.")
        raise ValueError(msg)
    if y.size and (y.min() < 0 or y.max() > 4) or not np.isfinite(x[:, :n_cols]).all():
        msg = f"{path}: labels must be 0..4 and columns 0-{n_cols - 1} finite"
        raise ValueError(msg)
    out = np.empty((x.shape[0], len(SLEEP_EDF_CHANNELS), 7))
    for c in range(len(SLEEP_EDF_CHANNELS)):
        block = x[:, _COLUMNS_PER_CHANNEL * c: _COLUMNS_PER_CHANNEL * (c + 1)]
        var = np.exp(block[:, 7]) - _EPS
        out[:, c, :5] = np.exp(block[:, :5]) - _EPS
        out[:, c, 5] = var
        out[:, c, 6] = block[:, 8] ** 2 * (var + _EPS)
    return out * _V2_TO_UV2, y


def _row_epochs(hyp: Hypnogram, y: NDArray[np.int64], night: str) -> NDArray[np.int64]:
    """Epoch index of every row: the rows are the epochs with a stage, in time order."""
    scored = np.flatnonzero(hyp.stages >= 0)
    if scored.size < y.size:
        msg = (f"night {night}: {y.size} rows but only {scored.size} scored epochs in "
               f"{hyp.source}; the hypnogram does not belong to these rows")
        raise ValueError(msg)
    idx = scored[: y.size]
    bad = np.flatnonzero(reduce_stages(hyp.stages[idx], 5) != y)
    if bad.size:
        msg = (f"night {night}: row {bad[0]} is labelled {y[bad[0]]} but its epoch "
               f"{idx[bad[0]]} is {Stage(hyp.stages[idx[bad[0]]]).name} in {hyp.source}; "
               "the rows do not follow the hypnogram's scored epochs")
        raise ValueError(msg)
    return idx


def _hypnogram_path(folder: Path, night: str) -> Path:
    where = folder / "hypnograms" if (folder / "hypnograms").is_dir() else folder
    found = sorted(where.glob(f"{night[:7]}?-Hypnogram.edf"))
    if len(found) != 1:
        msg = (f"night {night}: expected one {night[:7]}?-Hypnogram.edf in {where}; found "
               f"{[p.name for p in found]}")
        raise FileNotFoundError(msg)
    return found[0]


def night_from_sleep_edf(
    npz: str | PathLike[str], hypnogram: Hypnogram, *, crop: bool = True,
    channels: Sequence[str] | None = None,
) -> Night:
    """One Sleep-EDF night as a psg session: features on the real epoch grid, gaps masked.

    Parameters
    ----------
    npz : path-like
        The night's ``eeg-spectral-features`` file.
    hypnogram : Hypnogram
        Its expert hypnogram (:func:`ingestors.hypnogram_io.read_edf_hypnogram`).
    crop : bool
        Start the session 30 min before the first sleep epoch and end it 30 min after the
        last (True), or run it over the whole recording (False).
    channels : sequence of str, optional
        Some of :data:`SLEEP_EDF_CHANNELS`, in the order wanted; default both.
    """
    night = Path(npz).stem
    measures, y = read_spectral_measures(npz)
    idx = _row_epochs(hypnogram, y, night)
    picked = tuple(channels) if channels is not None else SLEEP_EDF_CHANNELS
    unknown = [c for c in picked if c not in SLEEP_EDF_CHANNELS]
    if unknown or not picked:
        msg = f"channels must be some of {list(SLEEP_EDF_CHANNELS)}; got {list(picked)}"
        raise ValueError(msg)
    first, last = 0, int(idx[-1])
    if crop:
        asleep = idx[y > 0]
        if asleep.size == 0:
            msg = f"night {night} has no sleep epoch; it cannot be cropped to its sleep period"
            raise ValueError(msg)
        first = max(0, int(asleep[0]) - CROP_WAKE_EPOCHS)
        last = min(last, int(asleep[-1]) + CROP_WAKE_EPOCHS)
    grid = np.full((last - first + 1, len(picked), 7), np.nan)
    keep = (idx >= first) & (idx <= last)
    cols = [SLEEP_EDF_CHANNELS.index(c) for c in picked]
    grid[idx[keep] - first] = measures[keep][:, cols]
    rows = psg_features(grid, picked)
    start = hypnogram.start + timedelta(seconds=first * EPOCH_S)
    stages = hypnogram.stages[first: last + 1].copy()
    stages[~rows.present.any(axis=1)] = Stage.UNSCORED  # a gap scores nothing
    subject = night[:5]
    return Night(night, subject, rows.features, stages, start, False,
                 rows.present.astype(np.float32))


def load_sleep_edf(
    folder: str | PathLike[str], *, crop: bool = True, channels: Sequence[str] | None = None,
    progress: bool = True,
) -> NightSet:
    """Read every night of a Sleep-EDF folder as psg sessions (5 classes).

    Parameters
    ----------
    folder : str or path-like
        ``sleep-edf``: ``eeg-spectral-features/*.npz`` and the hypnograms, in
        ``hypnograms/`` or in the folder itself.
    crop : bool
        The cropped protocol (sleep period +- 30 min) or whole recordings.
    channels : sequence of str, optional
        Channels to keep (see :func:`night_from_sleep_edf`).
    progress : bool
        Show a progress bar.

    Raises
    ------
    FileNotFoundError
        If the folder holds no spectral file or a night has no (or two) hypnograms.
    """
    folder = Path(folder)
    files = sorted((folder / "eeg-spectral-features").glob("SC4*.npz"))
    if not files:
        msg = (f"no eeg-spectral-features/SC4*.npz in {folder}; pass the sleep-edf folder of "
               "the shared data (README section 6)")
        raise FileNotFoundError(msg)
    nights = []
    for f in track(files, description="features", disable=not progress):
        hyp = read_edf_hypnogram(_hypnogram_path(folder, f.stem))
        nights.append(night_from_sleep_edf(f, hyp, crop=crop, channels=channels))
    return NightSet("sleep-edf", "psg", feature_names("psg"), tuple(nights), stage_set=5)
