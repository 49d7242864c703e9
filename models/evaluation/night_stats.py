"""Whole-night sleep statistics from a hypnogram (TIB, TST, SE, SOL, WASO, stage minutes).

Definitions, on canonical :class:`~models.stages.Stage` epochs:

* **In bed** (TIB window): from the first to the last epoch that is not UNSCORED. Leading
  and trailing UNSCORED epochs are time outside the study (before lights-off, after
  lights-on) and are ignored; UNSCORED epochs *inside* the window stay in TIB and are
  counted in ``unscored_min``. MOVEMENT epochs are inside the window like any scored epoch.
* **Sleep onset**: the first epoch of N1, N2, N3 or REM (AASM: the first epoch of any
  sleep stage, no persistence rule). **SOL**: lights-off to sleep onset.
* **SPT** (sleep period time): sleep onset to the end of the last sleep epoch.
* **TST**: minutes of N1 + N2 + N3 + REM. **SE** = TST / TIB x 100.
* **WASO**: minutes of W inside SPT (MOVEMENT and UNSCORED inside SPT are reported on
  their own and are not wake), so ``spt = tst + waso + movement and unscored within SPT``.
* **REM latency**: sleep onset to the first REM epoch.
* **Awakenings**: runs of consecutive W epochs inside SPT, each at least
  ``min_awakening_epochs`` long (default 1: every run counts).
* Stage minutes: N1/N2/N3/REM minutes and their percent of TST; W minutes are the wake
  inside SPT (equal to WASO), with their percent of SPT.

Undefined values are ``nan`` (never ``None``), so that every field is a float and tables
stay numeric: a night with no sleep has TST = SPT = WASO = 0, SOL, REM latency and the
per-stage percentages ``nan``; a night without REM has REM latency ``nan``; a night that
is all UNSCORED has TIB = 0 and SE ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ingestors.types import EPOCH_S, Hypnogram
from models.stages import Stage

__all__ = ["NightStats", "night_stats", "night_stats_from_stages"]

_NAN = float("nan")
_SLEEP = (Stage.N1, Stage.N2, Stage.N3, Stage.REM)


@dataclass(frozen=True)
class NightStats:
    """Summary statistics of one night; durations in minutes, percentages in %.

    Attributes
    ----------
    epoch_s : float
        Epoch length in seconds.
    recording_min : float
        Length of the whole hypnogram, UNSCORED edges included.
    lights_off_epoch, lights_on_epoch : int or None
        First in-bed epoch, and the epoch index at which lights came on (one past the
        last in-bed epoch); ``None`` when every epoch is UNSCORED.
    sleep_onset_epoch : int or None
        Index of the first sleep epoch; ``None`` for a night without sleep.
    tib_min, sol_min, spt_min, tst_min, waso_min, rem_latency_min : float
        Time in bed, sleep-onset latency, sleep period time, total sleep time, wake after
        sleep onset and REM latency (from sleep onset); see the module docstring.
    se_pct : float
        Sleep efficiency, TST / TIB x 100.
    n_awakenings : int
        Runs of W inside SPT at least ``min_awakening_epochs`` long.
    w_min, n1_min, n2_min, n3_min, rem_min : float
        Minutes per stage; W counts only the wake inside SPT.
    w_pct_spt : float
        W minutes as a percent of SPT.
    n1_pct_tst, n2_pct_tst, n3_pct_tst, rem_pct_tst : float
        Stage minutes as a percent of TST.
    movement_min, unscored_min : float
        MOVEMENT and UNSCORED minutes inside the in-bed window.
    """

    epoch_s: float
    recording_min: float
    lights_off_epoch: int | None
    lights_on_epoch: int | None
    sleep_onset_epoch: int | None
    tib_min: float
    sol_min: float
    spt_min: float
    tst_min: float
    se_pct: float
    waso_min: float
    rem_latency_min: float
    n_awakenings: int
    w_min: float
    n1_min: float
    n2_min: float
    n3_min: float
    rem_min: float
    w_pct_spt: float
    n1_pct_tst: float
    n2_pct_tst: float
    n3_pct_tst: float
    rem_pct_tst: float
    movement_min: float
    unscored_min: float

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, in field order (``nan`` and ``None`` kept as they are)."""
        return asdict(self)


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else _NAN


def _count_runs(mask: NDArray[np.bool_], min_len: int) -> int:
    """Count the runs of True in ``mask`` that are at least ``min_len`` long."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(np.count_nonzero(lengths >= min_len))


def _validate(stages: ArrayLike, epoch_s: float, min_awakening_epochs: int) -> NDArray[np.int8]:
    arr = np.asarray(stages)
    if arr.ndim != 1 or arr.size == 0:
        msg = (
            f"`stages` must be a non-empty 1-D array of Stage values; got shape {arr.shape}. "
            "A night needs at least one epoch."
        )
        raise ValueError(msg)
    if not np.issubdtype(arr.dtype, np.integer):
        msg = f"`stages` must hold integer Stage values; got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.min() < Stage.MOVEMENT or arr.max() > Stage.REM:
        bad = arr[(arr < Stage.MOVEMENT) | (arr > Stage.REM)][0]
        msg = (
            f"`stages` must hold canonical Stage values in [-2, 4]; got {bad}. "
            "Parse source codes with models.stages.parse_stages first."
        )
        raise ValueError(msg)
    if not (isinstance(epoch_s, (int, float)) and math.isfinite(epoch_s) and epoch_s > 0):
        msg = f"`epoch_s` must be a finite number of seconds > 0; got {epoch_s!r}"
        raise ValueError(msg)
    if min_awakening_epochs < 1:
        msg = f"`min_awakening_epochs` must be >= 1; got {min_awakening_epochs}"
        raise ValueError(msg)
    return arr.astype(np.int8)


def night_stats_from_stages(
    stages: ArrayLike, epoch_s: float = EPOCH_S, *, min_awakening_epochs: int = 1
) -> NightStats:
    """Compute :class:`NightStats` from a plain stage array.

    Parameters
    ----------
    stages : array-like of int, shape (n_epochs,)
        Canonical :class:`~models.stages.Stage` values, one per epoch, in time order.
    epoch_s : float
        Epoch length in seconds (30 for AASM scoring).
    min_awakening_epochs : int
        Shortest run of W inside SPT counted as an awakening (1 = every run).

    Returns
    -------
    NightStats
        The statistics; see the module docstring for definitions and undefined values.

    Raises
    ------
    ValueError
        If ``stages`` is empty or holds values outside [-2, 4], or ``epoch_s <= 0``.
    """
    arr = _validate(stages, epoch_s, min_awakening_epochs)
    to_min = float(epoch_s) / 60.0
    in_bed = np.flatnonzero(arr != Stage.UNSCORED)
    if in_bed.size == 0:
        return _empty_night(arr.size, float(epoch_s))
    first, stop = int(in_bed[0]), int(in_bed[-1]) + 1
    window = arr[first:stop]
    tib = window.size * to_min
    # Sleep epochs are never UNSCORED, so all of them lie inside the in-bed window.
    minutes = {s: int(np.count_nonzero(arr == s)) * to_min for s in _SLEEP}
    tst = sum(minutes.values())
    sleep_idx = np.flatnonzero(np.isin(arr, _SLEEP))
    onset: int | None = int(sleep_idx[0]) if sleep_idx.size else None
    spt_stages = arr[onset : int(sleep_idx[-1]) + 1] if onset is not None else arr[:0]
    wake_in_spt = spt_stages == Stage.W
    waso = int(np.count_nonzero(wake_in_spt)) * to_min
    spt = spt_stages.size * to_min
    rem_idx = np.flatnonzero(arr == Stage.REM)
    rem_latency = (rem_idx[0] - onset) * to_min if onset is not None and rem_idx.size else _NAN
    return NightStats(
        epoch_s=float(epoch_s),
        recording_min=arr.size * to_min,
        lights_off_epoch=first,
        lights_on_epoch=stop,
        sleep_onset_epoch=onset,
        tib_min=tib,
        sol_min=(onset - first) * to_min if onset is not None else _NAN,
        spt_min=spt,
        tst_min=tst,
        se_pct=_pct(tst, tib),
        waso_min=waso,
        rem_latency_min=float(rem_latency),
        n_awakenings=_count_runs(wake_in_spt, min_awakening_epochs),
        w_min=waso,
        n1_min=minutes[Stage.N1],
        n2_min=minutes[Stage.N2],
        n3_min=minutes[Stage.N3],
        rem_min=minutes[Stage.REM],
        w_pct_spt=_pct(waso, spt),
        n1_pct_tst=_pct(minutes[Stage.N1], tst),
        n2_pct_tst=_pct(minutes[Stage.N2], tst),
        n3_pct_tst=_pct(minutes[Stage.N3], tst),
        rem_pct_tst=_pct(minutes[Stage.REM], tst),
        movement_min=int(np.count_nonzero(window == Stage.MOVEMENT)) * to_min,
        unscored_min=int(np.count_nonzero(window == Stage.UNSCORED)) * to_min,
    )


def _empty_night(n_epochs: int, epoch_s: float) -> NightStats:
    """Statistics of a hypnogram that is UNSCORED throughout: nothing in bed."""
    return NightStats(
        epoch_s=epoch_s, recording_min=n_epochs * epoch_s / 60.0,
        lights_off_epoch=None, lights_on_epoch=None, sleep_onset_epoch=None,
        tib_min=0.0, sol_min=_NAN, spt_min=0.0, tst_min=0.0, se_pct=_NAN, waso_min=0.0,
        rem_latency_min=_NAN, n_awakenings=0,
        w_min=0.0, n1_min=0.0, n2_min=0.0, n3_min=0.0, rem_min=0.0,
        w_pct_spt=_NAN, n1_pct_tst=_NAN, n2_pct_tst=_NAN, n3_pct_tst=_NAN, rem_pct_tst=_NAN,
        movement_min=0.0, unscored_min=0.0,
    )


def night_stats(hyp: Hypnogram, *, min_awakening_epochs: int = 1) -> NightStats:
    """Compute :class:`NightStats` of a :class:`~ingestors.types.Hypnogram`.

    Parameters
    ----------
    hyp : Hypnogram
        The night, in canonical stages; its ``epoch_s`` sets the epoch length.
    min_awakening_epochs : int
        Shortest run of W inside SPT counted as an awakening (1 = every run).

    Returns
    -------
    NightStats
        See :func:`night_stats_from_stages`. Clock times follow as
        ``hyp.start + timedelta(seconds=epoch * hyp.epoch_s)``.
    """
    if not isinstance(hyp, Hypnogram):
        msg = (
            f"`hyp` must be an ingestors.types.Hypnogram; got {type(hyp).__name__}. "
            "Use night_stats_from_stages for a plain array."
        )
        raise TypeError(msg)
    return night_stats_from_stages(
        hyp.stages, hyp.epoch_s, min_awakening_epochs=min_awakening_epochs
    )
