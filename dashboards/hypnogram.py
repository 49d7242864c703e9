"""The "Live hypnogram" dashboard: one subject's night as it is staged, and its revision.

Top to bottom: the hypnogram (a state timeline with one row for the causal stages the
worker emits epoch by epoch and one for the offline revision of the whole night), the
causal stage probabilities stacked, the inputs (heart rate and activity, or for a PSG the
EEG channels with data and their amplitude), and the night summary of the latest offline
revision. A night is shown in its models' classes: W, light, deep, REM (wearable, cardio)
or W, N1, N2, N3, REM (psg); queries that read one stage set's fields select its points by
a field only that set writes (``p_light``, ``minutes_light``; ``p_N1``, ``minutes_N1``), so a
subject's night answers one of them.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import bargauge, common, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model

from dashboards._common import (
    STAGES,
    STAGES_5,
    SUBJECT_FILTER,
    StageStyle,
    finish,
    legend,
    new_dashboard,
    query,
    stage_mappings,
    stage_overrides,
    subject_variables,
)

__all__ = ["UID", "live_hypnogram"]

UID: Final = "sleepstream-hypnogram"

_HYPNOGRAM = f"""
SELECT last("stage_code") AS "stage_code" FROM "sleep_stage"
WHERE {SUBJECT_FILTER} AND $timeFilter
GROUP BY time(30s), "kind" fill(null)
"""


def _probabilities_query(stages: tuple[StageStyle, ...]) -> str:
    """The causal probabilities of the points of one stage set (``p_<its 2nd class>``)."""
    fields = ", ".join(f'mean("p_{s.name}") AS "{s.name}"' for s in stages)
    return f"""
SELECT {fields} FROM "sleep_stage"
WHERE {SUBJECT_FILTER} AND "kind" = 'causal' AND "p_{stages[1].name}" >= 0 AND $timeFilter
GROUP BY time($__interval) fill(null)
"""


_INPUTS = f"""
SELECT mean("hr_mean_bpm") AS "heart rate", mean("activity_counts") AS "activity"
FROM "sleep_inputs" WHERE {SUBJECT_FILTER} AND $timeFilter
GROUP BY time($__interval) fill(null)
"""
_EEG_INPUTS = f"""
SELECT mean("eeg_rms_uv") AS "EEG amplitude", mean("eeg_channels") AS "EEG channels"
FROM "sleep_inputs" WHERE {SUBJECT_FILTER} AND $timeFilter
GROUP BY time($__interval) fill(null)
"""
#: (field, title, unit, decimals, description) of the night summary stats.
_SUMMARY: Final = (
    ("tst_min", "Total sleep time", "m", 0, "Minutes scored as sleep (any stage but W)."),
    ("se_pct", "Sleep efficiency", "percent", 1, "Total sleep time / time in bed."),
    ("sol_min", "Sleep onset latency", "m", 0, "Minutes from session start to the first "
     "sleep epoch."),
    ("waso_min", "WASO", "m", 0, "Wake after sleep onset: W minutes between the first and "
     "the last sleep epoch."),
    ("rem_latency_min", "REM latency", "m", 0, "Minutes from sleep onset to the first REM "
     "epoch; empty when the night had no REM."),
)
_SUMMARY_WHERE = f"""FROM "sleep_summary" WHERE {SUBJECT_FILTER} AND "kind" = 'offline'"""
_SUMMARY_NOTE = (
    " Latest offline revision of the selected session (of the subject's latest night "
    "when Session is All); not bound by the time picker, since a summary is stamped at "
    "its session start."
)


def _hypnogram() -> statetimeline.Panel:
    return (
        statetimeline.Panel().title("Hypnogram").span(24).height(8)
        .description("Stage of every 30-s epoch: the causal model live (top) and the "
                     "offline model's revision of the whole night (bottom). Classes are "
                     "the models': W, light (AASM N1/N2), deep (N3) and REM (R) of the "
                     "wearable and cardio models; W, N1, N2, N3 and REM of the psg (EEG) "
                     "models.")
        .with_target(query(_HYPNOGRAM, alias="$tag_kind"))
        .mappings(stage_mappings())
        .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.FIXED)
                      .fixed_color("#808080"))  # a code without mapping: grey
        .show_value(cm.VisibilityMode.NEVER).merge_values(True).row_height(0.9)
        .fill_opacity(90).line_width(0)
        .legend(legend())
        .override_by_name("causal", [model.DynamicConfigValue("displayName", "Live (causal)")])
        .override_by_name("offline",
                          [model.DynamicConfigValue("displayName", "Revised (offline)")])
    )


def _probabilities() -> timeseries.Panel:
    panel = (
        timeseries.Panel().title("Stage probabilities (causal)").span(24).height(7)
        .description("The causal model's class probabilities per epoch, stacked to 1; "
                     "averaged over the interval when zoomed out. Query A answers for the "
                     "4-class models, B for the 5-class psg models.")
        .interval("30s")
        .with_target(query(_probabilities_query(STAGES), alias="$col"))
        .with_target(query(_probabilities_query(STAGES_5), alias="$col"))
        .unit("percentunit").min(0).max(1)
        .stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
        .fill_opacity(70).line_width(1).show_points(cm.VisibilityMode.NEVER).legend(legend())
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                 .sort(cm.SortOrder.NONE))
    )
    return stage_overrides(panel)


def _inputs() -> timeseries.Panel:
    return (
        timeseries.Panel().title("Inputs: heart rate and activity, or EEG").span(24).height(7)
        .description("What the worker received per 30-s epoch (sleep_inputs): mean heart "
                     "rate (bpm) and activity counts of a wearable or cardio night (query "
                     "A); of a PSG (query B) the EEG channels with data and their RMS "
                     "amplitude (uV). Gaps are epochs without samples.")
        .interval("30s")
        .with_target(query(_INPUTS, alias="$col"))
        .with_target(query(_EEG_INPUTS, alias="$col"))
        .unit("suffix: bpm").fill_opacity(0).line_width(1)
        .show_points(cm.VisibilityMode.NEVER).legend(legend())
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI))
        .override_by_name("heart rate", [
            model.DynamicConfigValue("color", {"fixedColor": "#E02F44", "mode": "fixed"}),
        ])
        .override_by_name("activity", [
            model.DynamicConfigValue("unit", "short"),
            model.DynamicConfigValue("custom.drawStyle", "bars"),
            model.DynamicConfigValue("custom.fillOpacity", 60),
            model.DynamicConfigValue("custom.axisPlacement", "right"),
            model.DynamicConfigValue("color", {"fixedColor": "#73BF69", "mode": "fixed"}),
        ])
        .override_by_name("EEG amplitude", [
            model.DynamicConfigValue("unit", "suffix: µV"),
            model.DynamicConfigValue("color", {"fixedColor": "#8F3BB8", "mode": "fixed"}),
        ])
        .override_by_name("EEG channels", [
            model.DynamicConfigValue("unit", "short"),
            model.DynamicConfigValue("decimals", 0),
            model.DynamicConfigValue("custom.drawStyle", "bars"),
            model.DynamicConfigValue("custom.fillOpacity", 40),
            model.DynamicConfigValue("custom.axisPlacement", "right"),
            model.DynamicConfigValue("color", {"fixedColor": "#8D99A6", "mode": "fixed"}),
        ])
    )


def _summary_stat(field: str, title: str, unit: str, decimals: int,
                  description: str) -> stat.Panel:
    return (
        stat.Panel().title(title).span(3).height(5).description(description + _SUMMARY_NOTE)
        .with_target(query(f'SELECT last("{field}") AS "{field}" {_SUMMARY_WHERE}'))
        .unit(unit).decimals(decimals).no_value("–")
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.NONE).graph_mode(cm.BigValueGraphMode.NONE)
    )


def _shares_query(stages: tuple[StageStyle, ...]) -> str:
    """The latest offline summary's stage shares of one stage set (``minutes_<2nd class>``)."""
    fields = ", ".join(f'last("pct_{s.name}") AS "{s.name}"' for s in stages[1:])
    return f'SELECT {fields} {_SUMMARY_WHERE} AND "minutes_{stages[1].name}" >= 0'


def _stage_shares() -> bargauge.Panel:
    sleep = (*STAGES[1:], *STAGES_5[1:4])
    panel = (
        bargauge.Panel().title("Stages, % of total sleep time").span(9).height(5)
        .description("Share of each sleep stage in the total sleep time: light, deep and "
                     "REM (query A, 4-class models) or N1, N2, N3 and REM (query B, psg)."
                     + _SUMMARY_NOTE)
        .with_target(query(_shares_query(STAGES), alias="$col"))
        .with_target(query(_shares_query(STAGES_5), alias="$col"))
        .unit("percent").min(0).max(100).decimals(1)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.BASIC).show_unfilled(True)
    )
    return stage_overrides(panel, sleep)


def live_hypnogram() -> model.Dashboard:
    """The "Live hypnogram" dashboard (uid ``sleepstream-hypnogram``)."""
    builder = (
        new_dashboard(UID, "Live hypnogram",
                      "One subject's night as the stream stages it: causal stages live, the "
                      "offline revision, probabilities, inputs and the night summary.",
                      time_from="now-12h", refresh="30s")
        .variables(list(subject_variables()))
        .with_panel(_hypnogram())
        .with_panel(_probabilities())
        .with_panel(_inputs())
        .with_row(dash.Row("Night summary (latest offline revision)"))
    )
    for spec in _SUMMARY:
        builder = builder.with_panel(_summary_stat(*spec))
    return finish(builder.with_panel(_stage_shares()))
