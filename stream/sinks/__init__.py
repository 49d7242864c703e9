"""Sinks: stage events, night summaries, epoch inputs and worker health into InfluxDB.

See :mod:`stream.sinks.points` for the measurement layout the dashboards query, and
:mod:`stream.sinks.base` for the delivery rules (batching, retries, back-pressure).
"""

from __future__ import annotations

from stream.sinks.base import BatchingSink, SinkOptions
from stream.sinks.errors import (
    RejectedBatch,
    SinkClosedError,
    SinkConfigurationError,
    SinkError,
    SinkStats,
    SinkUnavailableError,
)
from stream.sinks.factory import NullSink, Sink, make_sink
from stream.sinks.influx import InfluxV1Sink, InfluxV2Sink
from stream.sinks.points import (
    MEASUREMENTS,
    PipelineStats,
    SinkItem,
    inputs_point,
    pipeline_point,
    stage_point,
    summary_point,
    to_points,
)

__all__ = [
    "MEASUREMENTS",
    "BatchingSink",
    "InfluxV1Sink",
    "InfluxV2Sink",
    "NullSink",
    "PipelineStats",
    "RejectedBatch",
    "Sink",
    "SinkClosedError",
    "SinkConfigurationError",
    "SinkError",
    "SinkItem",
    "SinkOptions",
    "SinkStats",
    "SinkUnavailableError",
    "inputs_point",
    "make_sink",
    "pipeline_point",
    "stage_point",
    "summary_point",
    "to_points",
]
