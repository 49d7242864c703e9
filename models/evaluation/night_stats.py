"""Whole-night sleep statistics: the one implementation behind every night summary.

The stream's night summaries (:func:`stream.staging.night_summary`, hence the live page
and the ``sleep_summary`` points) and ``sleepstream evaluate``'s ``night_stats.csv`` both
come from :func:`night_stats_from_stages`, so the same night gives the same numbers
everywhere. Definitions, on canonical :class:`~models.stages.Stage` epochs:

* **In bed** (TIB window): from the first to the last epoch that is not UNSCORED. Leading
  and trailing UNSCORED epochs are time outside the study (before lights-off, after
  lights-on) and are ignored; UNSCORED epochs *inside* the window stay in TIB and are
  counted in ``unscored_min``. MOVEMENT epochs are inside the window like any scored epoch.
  A staged stream session has a stage at every epoch, so its TIB is the whole session.
* **Sleep onset**: the first epoch of N1, N2, N3 or REM (AASM: the first epoch of any
  sleep stage, no persistence rule). **SOL**: lights-off to sleep onset.
* **SPT** (sleep period time): sleep onset to the end of the last sleep epoch.
* **TST**: minutes of N1 + N2 + N3 + REM. **SE** = TST / TIB x 100.
* **WASO**: minutes of W inside SPT (MOVEMENT and UNSCORED inside SPT are reported on
  their own and are not wake), so ``spt = tst + waso + movement and unscored within SPT``.
* **REM latency**: sleep onset to the first REM epoch.
* **Awakenings**: runs of consecutive W epochs inside SPT (every run counts, one epoch
  is enough).
* **Stage minutes** are given in a stage set (``stage_set``: 5 = W/N1/N2/N3/REM,
  4 = W/light/deep/REM, 3 = W/NREM/REM, 2 = W/sleep): ``minutes[c]`` counts the epochs of
  class ``c`` inside the in-bed window (W included: all wake in bed), so the minutes add
  up to TIB less movement and unscored time; ``pct_tst[c]`` is each sleep class as a
  percent of TST. A model that tells light sleep but not N1 from N2 (today's 4-class
  models) writes light as N2 (:func:`models.stages.class_stages`); its night must be
  summarised with ``stage_set=4``, which reports light minutes and claims no N1 or N2.

Undefined values are ``None``, never ``nan``: a night with no sleep has TST = SPT =
WASO = 0 and SOL, REM latency and every ``pct_tst`` ``None``; a night without REM has REM
latency ``None``; a night that is all UNSCORED has TIB = 0 and SE ``None``. ``None``
travels as JSON ``null`` on the topics and in ``metrics.json``, as an empty cell in
``night_stats.csv``, as a left-out field in InfluxDB and as "–" on the live page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ingestors.types import EPOCH_S, Hypnogram
from models.stages import Stage, reduce_stages, stage_names

__all__ = ["NightStats", "night_stats", "night_stats_from_stages"]

_SLEEP = (Stage.N1, Stage.N2, Stage.N3, Stage.REM)


@dataclass(frozen=True)
class NightStats:
    """Summary statistics of one night; durations in minutes, percentages in %.

    Attributes
    ----------
    stage_set : int
        The stage set of ``minutes`` and ``pct_tst`` (5, 4, 3 or 2).
    epoch_s : float
        Epoch length in seconds.
    recording_min : float
        Length of the whole hypnogram, UNSCORED edges included.
    lights_off_epoch, lights_on_epoch : int or None
        First in-bed epoch, and the epoch index at which lights came on (one past the
        last in-bed epoch); ``None`` when every epoch is UNSCORED.
    sleep_onset_epoch : int or None
        Index of the first sleep epoch; ``None`` for a night without sleep.
    tib_min, spt_min, tst_min, waso_min : float
        Time in bed, sleep period time, total sleep time and wake after sleep onset.
    sol_min, rem_latency_min : float or None
        Sleep-onset latency and REM latency (from sleep onset); ``None`` when undefined.
    se_pct : float or None
        Sleep efficiency, TST / TIB x 100; ``None`` when TIB is 0.
    n_awakenings : int
        Runs of W inside SPT.
    movement_min, unscored_min : float
        MOVEMENT and UNSCORED minutes inside the in-bed window.
    minutes : Mapping[str, float]
        Minutes in bed per class of ``stage_set``, in class order (W first).
    pct_tst : Mapping[str, float or None]
        Each sleep class (every class but W) as a percent of TST; ``None`` when TST is 0.
    """

    stage_set: int
    epoch_s: float
    recording_min: float
    lights_off_epoch: int | None
    lights_on_epoch: int | None
    sleep_onset_epoch: int | None
    tib_min: float
    sol_min: float | None
    spt_min: float
    tst_min: float
    se_pct: float | None
    waso_min: float
    rem_latency_min: float | None
    n_awakenings: int
    movement_min: float
    unscored_min: float
    minutes: Mapping[str, float]
    pct_tst: Mapping[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value in field order; ``minutes`` and ``pct_tst`` as dicts."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["minutes"], out["pct_tst"] = dict(self.minutes), dict(self.pct_tst)
        return out

    def as_row(self) -> dict[str, Any]:
        """One flat table row: the scalar fields, ``minutes_<class>``, ``pct_tst_<class>``."""
        out = self.as_dict()
        minutes, pct = out.pop("minutes"), out.pop("pct_tst")
        out.update({f"minutes_{c}": v for c, v in minutes.items()})
        out.update({f"pct_tst_{c}": v for c, v in pct.items()})
        return out


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None


def _count_runs(mask: NDArray[np.bool_]) -> int:
    """Count the runs of True in ``mask``."""
    return int(np.count_nonzero(np.diff(np.concatenate(([0], mask.astype(np.int8)))) == 1))


def _validate(stages: ArrayLike, epoch_s: float) -> NDArray[np.int8]:
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
    return arr.astype(np.int8)


def _stage_minutes(
    window: NDArray[np.int8], stage_set: int, to_min: float, tst: float
) -> tuple[dict[str, float], dict[str, float | None]]:
    """Minutes per class of ``stage_set`` inside the in-bed window, and % of TST."""
    names = stage_names(stage_set)
    counts = np.bincount(reduce_stages(window, stage_set) + 1, minlength=len(names) + 1)[1:]
    minutes = {c: int(counts[i]) * to_min for i, c in enumerate(names)}
    return minutes, {c: _pct(minutes[c], tst) for c in names[1:]}


def night_stats_from_stages(
    stages: ArrayLike,
    epoch_s: float = EPOCH_S,
    *,
    stage_set: int = 5,
) -> NightStats:
    """Compute :class:`NightStats` from a plain stage array.

    Parameters
    ----------
    stages : array-like of int, shape (n_epochs,)
        Canonical :class:`~models.stages.Stage` values, one per epoch, in time order.
    epoch_s : float
        Epoch length in seconds (30 for AASM scoring).
    stage_set : {5, 4, 3, 2}
        Stage set of the per-class minutes; 4 for a 4-class model's hypnogram.

    Returns
    -------
    NightStats
        The statistics; see the module docstring for definitions and undefined values.

    Raises
    ------
    ValueError
        If ``stages`` is empty or holds values outside [-2, 4], ``epoch_s <= 0`` or
        ``stage_set`` is not 5, 4, 3 or 2.
    """
    arr = _validate(stages, epoch_s)
    to_min = float(epoch_s) / 60.0
    in_bed = np.flatnonzero(arr != Stage.UNSCORED)
    first, stop = (int(in_bed[0]), int(in_bed[-1]) + 1) if in_bed.size else (0, 0)
    window = arr[first:stop]
    # Sleep epochs are never UNSCORED, so all of them lie inside the in-bed window.
    sleep_idx = np.flatnonzero(np.isin(arr, _SLEEP))
    tst = sleep_idx.size * to_min
    minutes, pct_tst = _stage_minutes(window, stage_set, to_min, tst)
    onset: int | None = int(sleep_idx[0]) if sleep_idx.size else None
    spt_stages = arr[onset : int(sleep_idx[-1]) + 1] if onset is not None else arr[:0]
    wake_in_spt = spt_stages == Stage.W
    waso = int(np.count_nonzero(wake_in_spt)) * to_min
    rem_idx = np.flatnonzero(arr == Stage.REM)
    return NightStats(
        stage_set=stage_set,
        epoch_s=float(epoch_s),
        recording_min=arr.size * to_min,
        lights_off_epoch=first if in_bed.size else None,
        lights_on_epoch=stop if in_bed.size else None,
        sleep_onset_epoch=onset,
        tib_min=window.size * to_min,
        sol_min=(onset - first) * to_min if onset is not None else None,
        spt_min=spt_stages.size * to_min,
        tst_min=tst,
        se_pct=_pct(tst, window.size * to_min),
        waso_min=waso,
        rem_latency_min=(int(rem_idx[0]) - onset) * to_min
        if onset is not None and rem_idx.size else None,
        n_awakenings=_count_runs(wake_in_spt),
        movement_min=int(np.count_nonzero(window == Stage.MOVEMENT)) * to_min,
        unscored_min=int(np.count_nonzero(window == Stage.UNSCORED)) * to_min,
        minutes=minutes,
        pct_tst=pct_tst,
    )


def night_stats(hyp: Hypnogram, *, stage_set: int = 5) -> NightStats:
    """Compute :class:`NightStats` of a :class:`~ingestors.types.Hypnogram`.

    Parameters
    ----------
    hyp : Hypnogram
        The night, in canonical stages; its ``epoch_s`` sets the epoch length.
    stage_set : {5, 4, 3, 2}
        Stage set of the per-class minutes; 4 for a 4-class model's hypnogram.

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
    return night_stats_from_stages(hyp.stages, hyp.epoch_s, stage_set=stage_set)
