"""The measurement layout: how stage events, summaries, inputs and health become points.

One builder serves every sink: :func:`to_points` turns a payload into influxdb-client
:class:`~influxdb_client.Point` objects (a causal stage event gives two: its stage and its
inputs); the v2 sink hands the points to influxdb-client, the v1 sink posts their
:meth:`~influxdb_client.Point.to_line_protocol`. Dashboards (issue 5)
query this layout in InfluxQL, so changing a name here breaks them: treat it as an API.

Measurements
------------
``sleep_stage``, one point per staged epoch and model kind (a :class:`StageEvent`)
    tags ``subject``, ``session``, ``kind`` (``causal`` | ``offline``), ``model``;
    fields ``stage`` (string class name: ``W``, ``light``, ``deep``, ``REM`` of the
    4-class models; ``W``, ``N1``, ``N2``, ``N3``, ``REM`` of the 5-class psg models),
    ``stage_code`` (int, :data:`STAGE_CODES`: one code per class name whatever the stage
    set, 0 = W, 1 = light, 2 = deep, 3 = REM, 4 = N1, 5 = N2, 6 = N3, 7 = NREM, 8 = sleep,
    for Grafana value mappings that read every model alike), ``p_<class>`` (float, one
    per class of the stage set, e.g. ``p_W``, ``p_light``, ``p_deep``, ``p_REM``, or
    ``p_N1``, ``p_N2``, ``p_N3``), ``confidence`` (float), ``epoch_index`` (int),
    ``latency_s`` (float, epoch close -> event), ``valid`` (bool); time = epoch start.
``sleep_summary``, one point per night and model kind (a :class:`NightSummary`)
    tags ``subject``, ``session``, ``kind``, ``model``; fields ``n_epochs``,
    ``n_valid_epochs`` (int), ``tib_min``, ``tst_min``, ``se_pct``, ``sol_min``,
    ``waso_min``, ``rem_latency_min`` (float; an undefined value, e.g. no REM, is left
    out), ``minutes_<class>`` (float, one per class) and ``pct_<class>`` (float, % of
    total sleep time, one per sleep class; left out for a night without sleep);
    time = session start, so a revised summary overwrites the previous one.
``sleep_inputs``, one point per closed epoch (the ``inputs`` of its causal
:class:`StageEvent`, a :class:`~stream.schemas.EpochInputStats`)
    tags ``subject``, ``session``; fields of a wearable or cardio session:
    ``hr_mean_bpm`` (float), ``hr_samples`` (int), ``activity_counts`` (float, sum over
    the epoch), ``activity_samples`` (int), ``rr_mean_s`` (float), ``beats`` (int), a
    mean with no samples left out; of an EEG (psg) session instead: ``eeg_channels`` (int,
    channels with measures in the epoch) and ``eeg_rms_uv`` (float, their RMS amplitude,
    left out when no channel had measures); time = epoch start.
``sleep_pipeline``, one point per worker and report (a :class:`PipelineStats`)
    tag ``worker``; fields ``events_per_s`` (float), ``stage_events``, ``dead_letters``,
    ``consumer_lag``, ``active_subjects`` (int), ``epoch_close_latency_p50_s``,
    ``epoch_close_latency_p99_s`` (float); time = when the worker measured them.

Idempotence: a point with the same measurement, tag set and timestamp as an earlier one
overwrites it, which is what keeps re-processing from duplicating anything. All
timestamps are therefore taken from the payload, in integer nanoseconds, never from the
wall clock (``sleep_pipeline`` is the one exception). The database merges fields of
such points: a field left out of a rewrite keeps its earlier value.

Example InfluxQL::

    SELECT "stage_code" FROM "sleep_stage"
    WHERE "subject" = 's1' AND "kind" = 'causal' AND $timeFilter
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from influxdb_client import Point, WritePrecision

from models.stages import CLASS_NAMES
from stream.schemas import NightSummary, StageEvent

__all__ = [
    "MEASUREMENTS",
    "STAGE_CODES",
    "PipelineStats",
    "SinkItem",
    "inputs_point",
    "pipeline_point",
    "stage_point",
    "summary_point",
    "time_ns",
    "to_points",
]

STAGE: Final = "sleep_stage"
SUMMARY: Final = "sleep_summary"
INPUTS: Final = "sleep_inputs"
PIPELINE: Final = "sleep_pipeline"
#: The measurement names, in the order documented above.
MEASUREMENTS: Final = (STAGE, SUMMARY, INPUTS, PIPELINE)

#: ``stage_code`` of each class name of every stage set: a code means one class whatever
#: model wrote it (the 4-class codes 0-3 kept their values when the 5-class set came).
STAGE_CODES: Final[dict[str, int]] = {
    "W": 0, "light": 1, "deep": 2, "REM": 3, "N1": 4, "N2": 5, "N3": 6, "NREM": 7, "sleep": 8,
}

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SUMMARY_INT_FIELDS: Final = ("n_epochs", "n_valid_epochs")
_SUMMARY_FLOAT_FIELDS: Final = (
    "tib_min", "tst_min", "se_pct", "sol_min", "waso_min", "rem_latency_min",
)


def time_ns(t: datetime) -> int:
    """Nanoseconds since the Unix epoch of a timezone-aware datetime, computed exactly."""
    if t.tzinfo is None or t.utcoffset() is None:
        msg = (
            f"point timestamps must be timezone-aware; got the naive datetime {t.isoformat()}. "
            "Attach a zone, e.g. datetime(..., tzinfo=UTC)."
        )
        raise ValueError(msg)
    return (t - _EPOCH) // timedelta(microseconds=1) * 1000


def _check_optional_finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        msg = f"`{name}` must be a finite number or None; got {value}"
        raise ValueError(msg)


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"`{name}` must be an int >= 0; got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Health of one worker at one moment (the ``sleep_pipeline`` measurement).

    Attributes
    ----------
    worker : str
        Worker id (host name and process, or the Faust worker id).
    events_per_s : float
        Stage events emitted per second since the previous report.
    stage_events, dead_letters : int
        Totals since the worker started.
    consumer_lag : int
        Messages behind the end of the input topics, summed over assigned partitions.
    epoch_close_latency_p50_s, epoch_close_latency_p99_s : float or None
        Median and 99th percentile of epoch close -> stage event latency in s since the
        previous report; None when no epoch closed.
    active_subjects : int
        Subjects with an open session on this worker.
    t_utc : datetime
        When the figures were taken (timezone-aware; defaults to now).
    """

    worker: str
    events_per_s: float
    stage_events: int
    dead_letters: int
    consumer_lag: int
    epoch_close_latency_p50_s: float | None
    epoch_close_latency_p99_s: float | None
    active_subjects: int
    t_utc: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        time_ns(self.t_utc)
        for name in ("stage_events", "dead_letters", "consumer_lag", "active_subjects"):
            _check_count(name, getattr(self, name))
        for name in ("events_per_s", "epoch_close_latency_p50_s", "epoch_close_latency_p99_s"):
            _check_optional_finite(name, getattr(self, name))


#: What the sinks accept: the payloads above, or a ready-made point.
SinkItem = StageEvent | NightSummary | PipelineStats | Point


def _fields(point: Point, values: dict[str, float | int | bool | str | None]) -> Point:
    for name, value in values.items():
        if value is not None:  # undefined: left out, never invented
            point.field(name, value)
    return point


def stage_point(event: StageEvent) -> Point:
    """``sleep_stage`` point of one stage event (time = epoch start)."""
    point = (
        Point(STAGE)
        .tag("subject", event.subject_id)
        .tag("session", event.session_id)
        .tag("kind", event.kind)
        .tag("model", event.model_name)
        .time(time_ns(event.epoch_start_utc), WritePrecision.NS)
    )
    names = CLASS_NAMES[event.stage_set]
    values: dict[str, float | int | bool | str | None] = {
        "stage": event.stage,
        "stage_code": STAGE_CODES[event.stage],
    }
    values.update({f"p_{name}": float(event.probabilities[name]) for name in names})
    values.update(
        confidence=float(event.confidence),
        epoch_index=int(event.epoch_index),
        latency_s=float(event.latency_s),
        valid=bool(event.valid),
    )
    return _fields(point, values)


def summary_point(summary: NightSummary) -> Point:
    """``sleep_summary`` point of one night summary (time = session start)."""
    point = (
        Point(SUMMARY)
        .tag("subject", summary.subject_id)
        .tag("session", summary.session_id)
        .tag("kind", summary.kind)
        .tag("model", summary.model_name)
        .time(time_ns(summary.t_start_utc), WritePrecision.NS)
    )
    values: dict[str, float | int | bool | str | None] = {
        name: int(getattr(summary, name)) for name in _SUMMARY_INT_FIELDS
    }
    for name in _SUMMARY_FLOAT_FIELDS:
        value = getattr(summary, name)
        values[name] = None if value is None else float(value)
    values.update({f"minutes_{k}": float(v) for k, v in summary.minutes.items()})
    values.update({f"pct_{k}": None if v is None else float(v)
                   for k, v in summary.percent_of_tst.items()})
    return _fields(point, values)


def inputs_point(event: StageEvent) -> Point:
    """``sleep_inputs`` point of the epoch of a causal stage event (time = epoch start).

    Raises
    ------
    ValueError
        If the event carries no ``inputs`` (offline events never do).
    """
    inputs = event.inputs
    if inputs is None:
        msg = (
            f"stage event {event.event_id} carries no inputs; only causal events have the "
            "sample statistics of their epoch"
        )
        raise ValueError(msg)
    point = (
        Point(INPUTS)
        .tag("subject", event.subject_id)
        .tag("session", event.session_id)
        .time(time_ns(event.epoch_start_utc), WritePrecision.NS)
    )
    values: dict[str, float | int | bool | str | None]
    if inputs.eeg_channels is not None:  # an EEG session: its counts of samples mean nothing
        values = {"eeg_channels": inputs.eeg_channels, "eeg_rms_uv": inputs.eeg_rms_uv}
        return _fields(point, values)
    opt = {"hr_mean_bpm": inputs.hr_mean_bpm, "activity_counts": inputs.activity_counts,
           "rr_mean_s": inputs.rr_mean_s}
    values = {k: None if v is None else float(v) for k, v in opt.items()}
    values.update(hr_samples=inputs.hr_samples, activity_samples=inputs.activity_samples,
                  beats=inputs.beats)
    return _fields(point, values)


def pipeline_point(stats: PipelineStats) -> Point:
    """``sleep_pipeline`` point of one health report (time = when it was measured)."""
    point = Point(PIPELINE).tag("worker", stats.worker).time(time_ns(stats.t_utc),
                                                            WritePrecision.NS)
    p50, p99 = stats.epoch_close_latency_p50_s, stats.epoch_close_latency_p99_s
    values: dict[str, float | int | bool | str | None] = {
        "events_per_s": float(stats.events_per_s),
        "stage_events": stats.stage_events,
        "dead_letters": stats.dead_letters,
        "consumer_lag": stats.consumer_lag,
        "active_subjects": stats.active_subjects,
        "epoch_close_latency_p50_s": None if p50 is None else float(p50),
        "epoch_close_latency_p99_s": None if p99 is None else float(p99),
    }
    return _fields(point, values)


def to_points(item: SinkItem) -> list[Point]:
    """The points of any item a sink accepts (a :class:`~influxdb_client.Point` as is).

    A stage event with ``inputs`` (a causal one) gives its ``sleep_stage`` and its
    ``sleep_inputs`` point; every other item gives one point.
    """
    if isinstance(item, StageEvent):
        if item.inputs is None:
            return [stage_point(item)]
        return [stage_point(item), inputs_point(item)]
    if isinstance(item, NightSummary):
        return [summary_point(item)]
    if isinstance(item, PipelineStats):
        return [pipeline_point(item)]
    if isinstance(item, Point):
        return [item]
    msg = (
        "a sink accepts StageEvent, NightSummary, PipelineStats or influxdb_client.Point "
        f"items; got {type(item).__name__}"
    )
    raise TypeError(msg)
