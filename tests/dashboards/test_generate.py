"""The committed dashboards and provisioning files are exactly what the code generates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard
from typer.testing import CliRunner

from dashboards.cli import PACKAGE_DIR, build, changed, dashboards_app
from dashboards.generate import (
    DASHBOARDS,
    DATASOURCE_FILE,
    GRAFANA_DASHBOARDS_PATH,
    PROVIDER_FILE,
    dashboard_json,
)
from dashboards.influxql import DATABASE, DATASOURCE_UID, InfluxQLQuery, register

GENERATED = [Path("json") / f"{uid}.json" for uid in DASHBOARDS] + [DATASOURCE_FILE,
                                                                     PROVIDER_FILE]


def test_build_writes_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    written = build(tmp_path)
    assert [p.relative_to(tmp_path) for p in written] == GENERATED
    for rel in GENERATED:
        assert (tmp_path / rel).read_bytes() == (PACKAGE_DIR / rel).read_bytes(), rel
    assert sorted(p.name for p in (PACKAGE_DIR / "json").iterdir()) == sorted(
        f"{uid}.json" for uid in DASHBOARDS)
    assert changed() == []  # the package's own copy is current


def test_build_is_deterministic_and_ends_with_a_newline(tmp_path: Path) -> None:
    first = {p: p.read_bytes() for p in build(tmp_path / "a")}
    second = {p: p.read_bytes() for p in build(tmp_path / "b")}
    assert list(first.values()) == list(second.values())
    for text in first.values():
        assert text.endswith(b"\n") and not text.endswith(b"\n\n")


def test_check_reports_a_stale_missing_or_extra_file(tmp_path: Path) -> None:
    runner, check = CliRunner(), ["build", "--check", "--out", str(tmp_path)]
    build(tmp_path)
    assert runner.invoke(dashboards_app, check).exit_code == 0
    stale = tmp_path / "json" / "sleepstream-fleet.json"
    stale.write_text(stale.read_text().replace("Fleet overview", "Fleet"))
    (tmp_path / DATASOURCE_FILE).unlink()
    extra = tmp_path / "json" / "old-dashboard.json"
    extra.write_text("{}\n")
    result = runner.invoke(dashboards_app, check)
    assert result.exit_code == 1 and "would change" in result.output
    assert changed(tmp_path) == [stale, tmp_path / DATASOURCE_FILE, extra]
    assert runner.invoke(dashboards_app, ["build", "--out", str(tmp_path)]).exit_code == 0
    assert not extra.exists() and changed(tmp_path) == []


@pytest.mark.parametrize("uid", list(DASHBOARDS))
def test_dashboard_json_round_trips_through_the_sdk(uid: str) -> None:
    register()
    text = (PACKAGE_DIR / "json" / f"{uid}.json").read_text(encoding="utf-8")
    decoded = Dashboard.from_json(json.loads(text))
    targets = [t for p in decoded.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets and all(isinstance(t, InfluxQLQuery) for t in targets)
    assert dashboard_json(decoded) == text


def _walk(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [q for p in panels for q in [p, *_walk(p.get("panels", []))]]


@pytest.mark.parametrize("uid", list(DASHBOARDS))
def test_panels_have_fixed_ids_and_query_the_sleepstream_datasource(uid: str) -> None:
    d = json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text())
    panels = _walk(d["panels"])
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    assert "id" not in d and d["uid"] == uid
    ref = {"type": "influxdb", "uid": DATASOURCE_UID}
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["datasource"] == ref and p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
        for t in p["targets"]:
            assert t["datasource"] == ref and t["rawQuery"] is True
            assert t["query"].startswith(("SELECT ", "SHOW ")), t["query"]
            grouped_by_time = "GROUP BY time(" in t["query"]
            assert "$timeFilter" in t["query"] or not grouped_by_time, t["query"]
        x = p["gridPos"]
        assert 0 <= x["x"] and x["x"] + x["w"] <= 24
    for v in d["templating"].get("list", []):
        if v["type"] == "query":
            assert v["datasource"] == ref


def test_datasource_provisioning_points_at_influxdb_through_the_environment() -> None:
    text = (PACKAGE_DIR / DATASOURCE_FILE).read_text()
    (ds,) = yaml.safe_load(text)["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == "influxdb"
    assert ds["jsonData"]["version"] == "InfluxQL"
    assert ds["url"] == "${SLEEPSTREAM_INFLUX_URL}"
    assert ds["jsonData"]["dbName"] == "${SLEEPSTREAM_INFLUX_DATABASE}"
    assert ds["user"] == "${SLEEPSTREAM_INFLUX_USERNAME}"
    assert ds["secureJsonData"] == {"password": "${SLEEPSTREAM_INFLUX_PASSWORD}"}
    assert DATABASE in text  # the comment names the sink's default database


def test_dashboard_provider_loads_the_committed_json_folder() -> None:
    (provider,) = yaml.safe_load((PACKAGE_DIR / PROVIDER_FILE).read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS_PATH
    assert provider["allowUiUpdates"] is False
    assert (PACKAGE_DIR / "json").is_dir()
