"""The "Fleet overview" dashboard: every subject at a glance.

How many subjects are being staged right now, each subject's current stage (with a link
to its live hypnogram), and where data went missing: epochs the worker closed without
samples (``valid = false``) and epochs without any heart signal (``hr_samples = 0`` and
``beats = 0``: a wearable without heart rate, or a chest strap without beats; requiring both
keeps RR-only devices, which never send heart-rate samples, from counting as gaps).
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model

from dashboards._common import finish, legend, new_dashboard, query, stage_mappings
from dashboards.hypnogram import UID as HYPNOGRAM_UID

__all__ = ["ACTIVE_WINDOWS", "UID", "fleet_overview"]

UID: Final = "sleepstream-fleet"
#: Choices of ``$active_window``: how recent a subject's last causal epoch must be.
ACTIVE_WINDOWS: Final = ("5m", "10m", "30m", "1h")
_DEFAULT_WINDOW: Final = "10m"

_ACTIVE = """
SELECT count("last") AS "subjects" FROM (
SELECT last("stage_code") FROM "sleep_stage"
WHERE "kind" = 'causal' AND time > now() - $active_window GROUP BY "subject")
"""
_SEEN = """
SELECT count("last") AS "subjects" FROM (
SELECT last("stage_code") FROM "sleep_stage"
WHERE "kind" = 'causal' AND $timeFilter GROUP BY "subject")
"""
_NO_DATA = """
SELECT count("stage_code") AS "epochs" FROM "sleep_stage"
WHERE "kind" = 'causal' AND "valid" = false AND $timeFilter
"""
_NO_HR = """
SELECT count("hr_samples") AS "epochs" FROM "sleep_inputs"
WHERE "hr_samples" = 0 AND "beats" = 0 AND $timeFilter
"""
_CURRENT = """
SELECT last("stage_code") AS "stage", "confidence", "epoch_index", "valid"
FROM "sleep_stage" WHERE "kind" = 'causal' AND $timeFilter
GROUP BY "subject", "session"
"""
_GAPS_NO_DATA = """
SELECT count("stage_code") AS "epochs without data" FROM "sleep_stage"
WHERE "kind" = 'causal' AND "valid" = false AND $timeFilter
GROUP BY time($__interval), "subject" fill(none)
"""
_GAPS_NO_HR = """
SELECT count("hr_samples") AS "epochs without heart signal" FROM "sleep_inputs"
WHERE "hr_samples" = 0 AND "beats" = 0 AND $timeFilter
GROUP BY time($__interval), "subject" fill(none)
"""
_GAPS_NO_EEG = """
SELECT count("eeg_channels") AS "epochs without EEG" FROM "sleep_inputs"
WHERE "eeg_channels" = 0 AND $timeFilter
GROUP BY time($__interval), "subject" fill(none)
"""


def _active_window() -> dash.CustomVariable:
    options = [model.VariableOption(text=w, value=w, selected=w == _DEFAULT_WINDOW)
               for w in ACTIVE_WINDOWS]
    return (
        dash.CustomVariable("active_window").label("Active within")
        .values(",".join(ACTIVE_WINDOWS)).options(options)
        .current(model.VariableOption(text=_DEFAULT_WINDOW, value=_DEFAULT_WINDOW))
        .description("A subject is active when its last causal epoch started this recently.")
    )


def _count_stat(title: str, text: str, description: str, warn_at: float | None) -> stat.Panel:
    steps = [model.Threshold(value=None, color="green")]
    if warn_at is not None:
        steps.append(model.Threshold(value=warn_at, color="orange"))
    return (
        stat.Panel().title(title).span(6).height(5).description(description)
        .with_target(query(text)).unit("none").decimals(0).no_value("0")
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
        .color_mode(cm.BigValueColorMode.VALUE).graph_mode(cm.BigValueGraphMode.NONE)
    )


def _current_stage() -> table.Panel:
    link = {
        "title": "Live hypnogram of ${__value.raw}",
        "url": f"/d/{HYPNOGRAM_UID}?var-subject=${{__value.raw}}"
               "&var-session=${__data.fields.session}&${__url_time_range}",
    }
    return (
        table.Panel().title("Current stage per subject").span(24).height(10)
        .description("Each subject's latest causal epoch in the time range; the time is "
                     "that epoch's start, so an old time means the subject went quiet.")
        .with_target(query(_CURRENT).table())
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .sort_by([common.TableSortByFieldState().display_name("subject")])
        .align(cm.FieldTextAlignment.AUTO).filterable(True)
        .override_by_name("stage", [
            model.DynamicConfigValue("mappings", stage_mappings()),
            model.DynamicConfigValue("custom.cellOptions", {"type": "color-background"}),
        ])
        .override_by_name("confidence", [
            model.DynamicConfigValue("unit", "percentunit"),
            model.DynamicConfigValue("decimals", 0),
        ])
        .override_by_name("valid", [model.DynamicConfigValue("displayName", "has data")])
        .override_by_name("subject", [model.DynamicConfigValue("links", [link])])
        .override_by_name("Time", [model.DynamicConfigValue("displayName", "epoch start")])
    )


def _gaps() -> timeseries.Panel:
    return (
        timeseries.Panel().title("Data gaps per subject").span(24).height(8)
        .description("Epochs closed without any input (the stage is then a guess), "
                     "epochs without any heart signal (no heart-rate sample and no beat) "
                     "and PSG epochs without any EEG channel with data, counted per "
                     "interval.")
        .interval("30s")
        .with_target(query(_GAPS_NO_DATA, alias="$tag_subject: no data"))
        .with_target(query(_GAPS_NO_HR, alias="$tag_subject: no heart signal"))
        .with_target(query(_GAPS_NO_EEG, alias="$tag_subject: no EEG"))
        .draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).unit("none").decimals(0)
        .legend(legend())
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                 .hide_zeros(True))
    )


def fleet_overview() -> model.Dashboard:
    """The "Fleet overview" dashboard (uid ``sleepstream-fleet``)."""
    builder = (
        new_dashboard(UID, "Fleet overview",
                      "Every subject at a glance: who is being staged, their current stage "
                      "and where data went missing.", time_from="now-6h", refresh="30s")
        .with_variable(_active_window())
        .with_panel(_count_stat("Active subjects", _ACTIVE,
                                "Subjects with a causal epoch in the last $active_window.",
                                None))
        .with_panel(_count_stat("Subjects in range", _SEEN,
                                "Subjects with a causal epoch in the time range.", None))
        .with_panel(_count_stat("Epochs without data", _NO_DATA,
                                "Causal epochs closed without any sample, all subjects, in "
                                "the time range.", 1))
        .with_panel(_count_stat("Epochs without heart signal", _NO_HR,
                                "Epochs without a heart-rate sample and without a beat, all "
                                "subjects, in the time range.", 1))
        .with_panel(_current_stage())
        .with_panel(_gaps())
    )
    return finish(builder)
