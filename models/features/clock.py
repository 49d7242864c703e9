"""Clock features: time since the session start and the local time of day.

For epoch ``k`` (starting ``k * epoch_s`` after the session start):

* ``clock_hours``: ``k * epoch_s / 3600``, hours since the session start (known even when
  the wall clock is not);
* ``clock_tod_sin``, ``clock_tod_cos``: ``sin`` / ``cos`` of ``2 pi s / 86400`` where ``s`` is
  the local time of day in seconds at the epoch start, in the session start's time zone (the
  instant is computed in UTC, so a daylight-saving change during the night is followed);
* ``clock_known``: 1, or 0 when the session start is nominal
  (:data:`ingestors.types.NOMINAL_START`, ``start_is_nominal=True``); then both time-of-day
  features are 0.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ingestors.types import require_aware

__all__ = ["clock_features", "tz_from_state", "tz_to_state"]


def clock_features(
    session_start: datetime, start_is_nominal: bool, epoch_index: int, epoch_s: float
) -> NDArray[np.float64]:
    """Clock features of one epoch.

    Parameters
    ----------
    session_start : datetime
        Timezone-aware start of epoch 0.
    start_is_nominal : bool
        True when ``session_start`` is not a real clock time.
    epoch_index : int
        Index ``k`` of the epoch.
    epoch_s : float
        Epoch length in s.

    Returns
    -------
    ndarray of float64, shape (4,)
        ``clock_hours``, ``clock_tod_sin``, ``clock_tod_cos``, ``clock_known``.
    """
    offset_s = epoch_index * epoch_s
    hours = offset_s / 3600.0
    if start_is_nominal:
        return np.array([hours, 0.0, 0.0, 0.0])
    when = (session_start.astimezone(UTC) + timedelta(seconds=offset_s)).astimezone(
        session_start.tzinfo
    )
    day_s = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6
    angle = 2.0 * math.pi * day_s / 86400.0
    return np.array([hours, math.sin(angle), math.cos(angle), 1.0])


def tz_to_state(when: datetime) -> dict[str, Any]:
    """JSON-able time zone of an aware datetime: IANA name where known, else a fixed offset."""
    require_aware(when, "session_start")
    tz = when.tzinfo
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(name, str):
        return {"name": name}
    offset = when.utcoffset()
    return {"offset_s": offset.total_seconds() if offset is not None else 0.0}


def tz_from_state(state: dict[str, Any]) -> tzinfo:
    """Inverse of :func:`tz_to_state`."""
    if "name" in state:
        return ZoneInfo(str(state["name"]))
    return timezone(timedelta(seconds=float(state["offset_s"])))
