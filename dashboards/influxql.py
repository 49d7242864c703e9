"""InfluxQL targets for Grafana's InfluxDB data source, as foundation-SDK types.

The Grafana foundation SDK ships no InfluxDB query type, so :class:`InfluxQLQuery` is one:
a :class:`~grafana_foundation_sdk.cog.variants.Dataquery` whose JSON is what Grafana's
``influxdb`` data source stores for a raw InfluxQL query (``"rawQuery": true``). Its
builder, :class:`InfluxQL`, plugs into every panel builder's ``with_target``, and
:func:`register` teaches the SDK's decoder to read such targets back (round trips).

Every query here is InfluxQL, which InfluxDB 1.x answers natively and InfluxDB 2.x
through its v1 compatibility API (``/query``, with a DBRP mapping of the bucket to the
database name).
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import DataSourceRef

__all__ = [
    "DATASOURCE",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "DATABASE",
    "InfluxQL",
    "InfluxQLQuery",
    "ResultFormat",
    "register",
]

#: Grafana plugin id of the InfluxDB data source.
DATASOURCE_TYPE: Final = "influxdb"
#: The uid the provisioning file gives the sleepstream data source; every panel uses it.
DATASOURCE_UID: Final = "sleepstream-influxdb"
#: Default database (InfluxDB 1.x) or DBRP-mapped database name (2.x) of the sink.
DATABASE: Final = "sleepstream"
#: Reference to the data source, as panels, targets and variables carry it.
DATASOURCE: Final = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel.

    Parameters
    ----------
    ref_id : str
        Target letter within the panel (``"A"``, ``"B"``...).
    query : str
        The InfluxQL statement, with Grafana's macros (``$timeFilter``, ``$__interval``)
        and dashboard variables (``$subject``).
    result_format : {"time_series", "table"}
        How Grafana turns the answer into data frames.
    alias : str or None
        Series name pattern (``$tag_kind``, ``$col``); None keeps Grafana's default
        ``measurement.column {tags}``.
    hide : bool or None
        Whether the target is disabled.
    """

    def __init__(
        self,
        ref_id: str = "",
        query: str = "",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format: ResultFormat = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it in a dashboard."""
        payload: dict[str, object] = {
            "datasource": DATASOURCE,
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read a target written by :meth:`to_json` (raw InfluxQL only)."""
        if data.get("rawQuery") is not True or not isinstance(data.get("query"), str):
            msg = (
                "an InfluxQL target must be a raw query (`rawQuery: true` and a `query` "
                f"string); got keys {sorted(data)}. Build targets with dashboards.influxql."
            )
            raise ValueError(msg)
        fmt = data.get("resultFormat", "time_series")
        if fmt not in ("time_series", "table"):
            msg = f"`resultFormat` must be 'time_series' or 'table'; got {fmt!r}"
            raise ValueError(msg)
        return cls(ref_id=str(data.get("refId", "")), query=data["query"], result_format=fmt,
                   alias=data.get("alias"), hide=data.get("hide"))


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of an :class:`InfluxQLQuery`, in the SDK's fluent style.

    Parameters
    ----------
    query : str
        The InfluxQL statement.
    """

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        """The built target."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """Set the target letter."""
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        """Set the series name pattern (``$tag_<key>``, ``$col``, ``$m``)."""
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        """Return the answer as a table (one row per point, tags as columns)."""
        self._internal.result_format = "table"
        return self


def register() -> None:
    """Decode ``influxdb`` targets as :class:`InfluxQLQuery` (idempotent).

    Also registers the SDK's own panel types, so that ``Dashboard.from_json`` decodes
    panel options and field configs into typed objects.
    """
    register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE,
                                   from_json_hook=InfluxQLQuery.from_json)
    )
