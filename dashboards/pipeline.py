"""The "Pipeline health" dashboard: the workers' own figures (``sleep_pipeline``).

A row of totals over all workers (each worker's latest report, summed or maxed in an
InfluxQL subquery), then one time series per figure with a line per worker: stage events
per second, consumer lag, dead letters, active subjects and the epoch close -> stage
event latency (median and 99th percentile).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from grafana_foundation_sdk.builders import common, stat, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model

from dashboards._common import finish, new_dashboard, query

__all__ = ["UID", "pipeline_health"]

UID: Final = "sleepstream-pipeline"

_WHERE: Final = 'FROM "sleep_pipeline" WHERE $timeFilter'
_PER_WORKER: Final = 'GROUP BY time($__interval), "worker" fill(null)'

#: (title, field, aggregate over workers, unit, description) of the totals row.
_TOTALS: Final = (
    ("Workers reporting", "events_per_s", "count", "none",
     "Workers with a health report in the time range."),
    ("Stage events / s", "events_per_s", "sum", "none",
     "Stage events per second, summed over the workers' latest reports."),
    ("Consumer lag", "consumer_lag", "sum", "none",
     "Messages behind the end of the input topics, all workers."),
    ("Dead letters", "dead_letters", "sum", "none",
     "Messages sent to the dead-letter topic since each worker started, all workers."),
    ("Active subjects", "active_subjects", "sum", "none",
     "Subjects with an open session, all workers."),
    ("Close latency p99", "epoch_close_latency_p99_s", "max", "s",
     "99th percentile of epoch close -> stage event latency, worst worker."),
)


def _total(title: str, field: str, agg: str, unit: str, description: str) -> stat.Panel:
    text = (f'SELECT {agg}("last") AS "{field}" FROM '
            f'(SELECT last("{field}") {_WHERE} GROUP BY "worker")')
    return (
        stat.Panel().title(title).span(4).height(4).description(description)
        .with_target(query(text)).unit(unit).no_value("–")
        .decimals(3 if unit == "s" else 0)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.NONE).graph_mode(cm.BigValueGraphMode.NONE)
    )


def _per_worker(title: str, selects: Sequence[tuple[str, str]], unit: str, description: str,
                span: int = 12) -> timeseries.Panel:
    """A time series with one line per worker and ``select`` (``(expression, alias)``)."""
    panel = (
        timeseries.Panel().title(title).span(span).height(8).description(description)
        .unit(unit).fill_opacity(10).line_width(1).show_points(cm.VisibilityMode.NEVER)
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                 .sort(cm.SortOrder.DESCENDING))
        .legend(common.VizLegendOptions().show_legend(True)
                .display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.RIGHT)
                .calcs(["lastNotNull", "max"]))
    )
    for select, alias in selects:
        panel = panel.with_target(query(f"SELECT {select} {_WHERE} {_PER_WORKER}", alias=alias))
    return panel


def _latency() -> timeseries.Panel:
    return _per_worker(
        "Epoch close -> stage event latency",
        [('mean("epoch_close_latency_p50_s") AS "p50"', "$tag_worker p50"),
         ('max("epoch_close_latency_p99_s") AS "p99"', "$tag_worker p99")],
        "s", "Median (solid) and 99th percentile (dashed) of the time from an epoch's close "
        "to its stage event, per worker.", span=24,
    ).override_by_regexp(".* p99$", [
        model.DynamicConfigValue("custom.lineStyle", {"dash": [10, 10], "fill": "dash"}),
    ])


def _worker(title: str, field: str, agg: str, description: str) -> timeseries.Panel:
    return _per_worker(title, [(f'{agg}("{field}") AS "{field}"', "$tag_worker")], "none",
                       description)


def pipeline_health() -> model.Dashboard:
    """The "Pipeline health" dashboard (uid ``sleepstream-pipeline``)."""
    builder = new_dashboard(
        UID, "Pipeline health",
        "The workers' health reports: throughput, lag, dead letters, load and latency.",
        time_from="now-1h", refresh="10s",
    )
    for spec in _TOTALS:
        builder = builder.with_panel(_total(*spec))
    builder = (
        builder
        .with_panel(_worker("Stage events per second", "events_per_s", "mean",
                            "Stage events emitted per second, per worker."))
        .with_panel(_worker("Consumer lag", "consumer_lag", "max",
                            "Messages behind the end of the input topics, summed over the "
                            "worker's partitions."))
        .with_panel(_worker("Dead letters", "dead_letters", "max",
                            "Messages sent to the dead-letter topic since the worker "
                            "started (a rise is a new bad message)."))
        .with_panel(_worker("Active subjects", "active_subjects", "last",
                            "Subjects with an open session on each worker."))
        .with_panel(_latency())
    )
    return finish(builder)
