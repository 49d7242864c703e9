"""What the dashboards share: the stage vocabulary on screen, query pieces, finishing touches.

The stage codes are those of ``stage_code`` in the ``sleep_stage`` measurement
(:data:`stream.sinks.points.STAGE_CODES`: one code per class name, 0 = W, 1 = light,
2 = deep, 3 = REM of the 4-class wearable and cardio models, 4 = N1, 5 = N2, 6 = N3 of the
5-class psg models), shown with their AASM names and one fixed colour each, so that the
hypnogram, the probabilities and the stage shares read alike whatever model staged the
night (N2 has the colour of light sleep, N3 that of deep sleep).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple, Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import common
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as model

from dashboards.influxql import DATASOURCE, InfluxQL, InfluxQLQuery

__all__ = [
    "ALL_STAGES",
    "STAGES",
    "STAGES_5",
    "SUBJECT_FILTER",
    "StageStyle",
    "finish",
    "legend",
    "new_dashboard",
    "query",
    "stage_mappings",
    "stage_overrides",
    "subject_variables",
]


class StageStyle(NamedTuple):
    """How one model class is shown.

    Attributes
    ----------
    code : int
        ``stage_code`` value (:data:`stream.sinks.points.STAGE_CODES`).
    name : str
        Class name as the models write it (``stage`` field, ``p_<name>`` field suffix).
    text : str
        Display text: the AASM stage(s) the class stands for.
    color : str
        Fixed colour (hex) wherever the class appears.
    """

    code: int
    name: str
    text: str
    color: str


#: The 4 classes of the wearable and cardio models, in ``stage_code`` order.
STAGES: Final = (
    StageStyle(0, "W", "W (wake)", "#F2CC0C"),
    StageStyle(1, "light", "N1/N2 (light)", "#8AB8FF"),
    StageStyle(2, "deep", "N3 (deep)", "#1F60C4"),
    StageStyle(3, "REM", "R (REM)", "#E02F44"),
)
#: The 5 classes of the psg models (W and REM as above), in their class order.
STAGES_5: Final = (
    STAGES[0],
    StageStyle(4, "N1", "N1", "#C0D8FF"),
    StageStyle(5, "N2", "N2", "#8AB8FF"),
    StageStyle(6, "N3", "N3 (deep)", "#1F60C4"),
    STAGES[3],
)
#: Every class a model writes, once each.
ALL_STAGES: Final = (*STAGES, *STAGES_5[1:4])

#: WHERE clause of one subject's night(s); ``$session`` is a regex (All = ``.*``).
SUBJECT_FILTER: Final = "\"subject\" = '$subject' AND \"session\" =~ /^$session$/"


def query(text: str, alias: str | None = None) -> InfluxQL:
    """A raw InfluxQL target; ``alias`` names its series (``$tag_kind``, ``$col``)."""
    target = InfluxQL(" ".join(text.split()))  # one line, single spaces: stable JSON
    return target.alias(alias) if alias is not None else target


def legend() -> common.VizLegendOptions:
    """A visible list legend under the plot."""
    return (common.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM))


def stage_mappings() -> list[model.ValueMapping]:
    """Value mappings ``stage_code`` -> AASM display text and the stage's colour."""
    options = {
        str(s.code): model.ValueMappingResult(text=s.text, color=s.color, index=s.code)
        for s in ALL_STAGES
    }
    return [model.ValueMap(options=options)]


class _Overridable(Protocol):
    def override_by_name(
        self, name: str, properties: list[model.DynamicConfigValue]
    ) -> Self: ...


P = TypeVar("P", bound=_Overridable)


def stage_overrides(panel: P, stages: Sequence[StageStyle] = ALL_STAGES) -> P:
    """Fixed colour and AASM display name for the fields named after a class (``W``...).

    Parameters
    ----------
    panel : panel builder
        Any SDK panel builder (time series, bar gauge...).
    stages : sequence of StageStyle
        The classes whose fields the panel's queries return (aliased to the class name).
    """
    for s in stages:
        panel = panel.override_by_name(s.name, [
            model.DynamicConfigValue(id_val="displayName", value=s.text),
            model.DynamicConfigValue(id_val="color",
                                     value={"fixedColor": s.color, "mode": "fixed"}),
        ])
    return panel


def subject_variables() -> list[dash.QueryVariable]:
    """``$subject`` (one, from the ``sleep_stage`` tags) and ``$session`` (All or one)."""
    subject = (
        dash.QueryVariable("subject").label("Subject").datasource(DATASOURCE)
        .query('SHOW TAG VALUES FROM "sleep_stage" WITH KEY = "subject"')
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .description("Subject id (the `subject` tag of sleep_stage).")
    )
    session = (
        dash.QueryVariable("session").label("Session").datasource(DATASOURCE)
        .query("SHOW TAG VALUES FROM \"sleep_stage\" WITH KEY = \"session\" "
               "WHERE \"subject\" = '$subject'")
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .include_all(True).all_value(".*")
        .current(model.VariableOption(text="All", value="$__all"))
        .description("Night of the subject; All shows every session of the subject.")
    )
    return [subject, session]


def _panels(d: model.Dashboard) -> Iterator[model.Panel | model.RowPanel]:
    for p in d.panels or []:
        yield p
        if isinstance(p, model.RowPanel):
            yield from p.panels


def finish(builder: dash.Dashboard) -> model.Dashboard:
    """Build a dashboard with fixed panel ids (1, 2, ... in layout order) and target letters.

    Panels without a data source get the sleepstream InfluxDB, so the JSON
    never depends on Grafana's default data source.
    """
    d = builder.build()
    for i, panel in enumerate(_panels(d), start=1):
        panel.id_val = i
        if isinstance(panel, model.RowPanel):
            continue
        panel.datasource = panel.datasource or DATASOURCE
        for j, target in enumerate(panel.targets or []):
            if isinstance(target, InfluxQLQuery) and not target.ref_id:
                target.ref_id = chr(ord("A") + j)
    return d


def new_dashboard(uid: str, title: str, description: str, time_from: str,
                  refresh: str) -> dash.Dashboard:
    """A sleepstream dashboard: tagged, linked to its siblings, shared crosshair."""
    return (
        dash.Dashboard(title).uid(uid).description(description).tags(["sleepstream"])
        .time(time_from, "now").refresh(refresh).timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(dash.DashboardLink("sleepstream").type(model.DashboardLinkType.DASHBOARDS)
              .tags(["sleepstream"]).as_dropdown(True).keep_time(True).include_vars(False))
    )
