"""Every query of every committed dashboard, against a real InfluxDB 1.x holding a real night.

The night (tests/dashboards/night.py) is the bundled Sleep-Accel recording staged by the
shipped models, and a PSG night staged by psg models (5 classes), written through the real
:class:`~stream.sinks.InfluxV1Sink`. Each panel target and each variable query is
interpolated the way Grafana does it (``$timeFilter`` -> an absolute range in ms,
``$__interval`` -> 30s, ``$session`` All -> ``.*``) and sent to ``influxd``; the answer
must hold the columns the query names (for the recorded or the PSG subject: a query of one
stage set's fields answers for that set's nights), and the series names Grafana would
derive from it must match the panel's field overrides.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.cli import PACKAGE_DIR
from models.stages import CLASS_NAMES
from stream.sinks.points import STAGE_CODES
from tests.dashboards.night import (
    EEG_OFF,
    HR_OFF,
    PSG_EPOCHS,
    WATCH_OFF,
    WORKERS,
    Night,
    write_night,
)
from tests.servers import InfluxDB1

JSON_FILES = sorted((PACKAGE_DIR / "json").glob("*.json"))
NAMES = CLASS_NAMES[4]


def _panels() -> Iterator[Any]:
    for path in JSON_FILES:
        d = json.loads(path.read_text())
        for panel in d["panels"]:
            if panel.get("targets"):
                yield pytest.param(panel, id=f"{d['uid']}|{panel['title']}")


@pytest.fixture(scope="module")
def night(influxdb_v1: InfluxDB1, psg_weights: Path) -> Night:
    return write_night(influxdb_v1.url, f"sleepstream_{uuid.uuid4().hex[:8]}", psg_weights)


@pytest.fixture(scope="module")
def recorded(night: Night) -> str:
    return next(s for s in night.subjects if not s.endswith(("-dropout", "-psg")))


@pytest.fixture(scope="module")
def psg(night: Night) -> str:
    return next(s for s in night.subjects if s.endswith("-psg"))


def interpolate(text: str, night: Night, **variables: str) -> str:
    """Replace Grafana's macros and the dashboard variables like Grafana does."""
    ms = [int(t.timestamp() * 1000) for t in (night.start, night.end)]
    values = {"timeFilter": f"time >= {ms[0] - 60_000}ms and time <= {ms[1] + 60_000}ms",
              "__interval": "30s", "active_window": "10m", "session": ".*", **variables}

    def sub(m: re.Match[str]) -> str:
        assert m.group(1) in values, f"no value for ${m.group(1)} in {text}"
        return values[m.group(1)]

    return re.sub(r"\$\{?(\w+)\}?", sub, text)


def run(influx: InfluxDB1, night: Night, text: str, **variables: str) -> list[dict[str, Any]]:
    return influx.query(interpolate(text, night, **variables), night.database, epoch="ms")


def selected_columns(query: str) -> list[str]:
    """Names of the outer SELECT's columns (``AS`` alias, else the field)."""
    select = query[len("SELECT "): query.index(" FROM ")]
    return [item.split(" AS ")[-1].strip().strip('"') for item in select.split(", ")]


def grafana_names(target: dict[str, Any], series: list[dict[str, Any]]) -> set[str]:
    """Field names Grafana gives the answer (alias patterns, or table columns)."""
    if target["resultFormat"] == "table":
        return {"Time"} | {k for s in series for k in s.get("tags", {})} | {
            c for s in series for c in s["columns"][1:]}
    names = set()
    for s in series:
        for col in s["columns"][1:]:
            alias = target.get("alias")
            if alias is None:
                names.add(f"{s['name']}.{col}")
                continue
            name = alias.replace("$col", col).replace("$m", s["name"])
            for k, v in s.get("tags", {}).items():
                name = name.replace(f"$tag_{k}", v)
            names.add(name)
    return names


@pytest.mark.parametrize("panel", list(_panels()))
def test_every_panel_query_answers_with_its_fields(
    influxdb_v1: InfluxDB1, night: Night, recorded: str, psg: str, panel: dict[str, Any]
) -> None:
    names: set[str] = set()
    for target in panel["targets"]:
        answered = False
        for subject in (recorded, psg):
            series = run(influxdb_v1, night, target["query"], subject=subject)
            answered |= bool(series)
            for s in series:
                assert s["columns"][1:] == selected_columns(target["query"]), s["columns"]
                for i, col in enumerate(s["columns"][1:], start=1):
                    assert any(v[i] is not None for v in s["values"]), f"{col} is always null"
            names |= grafana_names(target, series)
        assert answered, f"{target['refId']}: no series for {target['query']}"
    assert not any("$" in n for n in names), names
    for override in panel["fieldConfig"]["overrides"]:  # each must style some field
        matcher = override["matcher"]
        if matcher["id"] == "byName":
            assert matcher["options"] in names, (matcher, names)
        else:
            assert matcher["id"] == "byRegexp", matcher
            assert any(re.fullmatch(matcher["options"], n) for n in names), (matcher, names)


def test_variable_queries_list_the_subjects_and_sessions(
    influxdb_v1: InfluxDB1, night: Night, recorded: str
) -> None:
    d = json.loads((PACKAGE_DIR / "json" / "sleepstream-hypnogram.json").read_text())
    variables = {v["name"]: v for v in d["templating"]["list"]}
    (subjects,) = run(influxdb_v1, night, variables["subject"]["query"])
    assert {v[1] for v in subjects["values"]} == set(night.subjects)
    (sessions,) = run(influxdb_v1, night, variables["session"]["query"], subject=recorded)
    assert [v[1] for v in sessions["values"]] == [night.subjects[recorded].session.session_id]


def _panel(uid: str, title: str) -> dict[str, Any]:
    d = json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text())
    return next(p for p in d["panels"] if p["title"] == title)


def _query(uid: str, title: str, ref_id: str = "A") -> str:
    return str(next(t["query"] for t in _panel(uid, title)["targets"] if t["refId"] == ref_id))


@pytest.mark.parametrize("session", ["all", "one"])
@pytest.mark.parametrize("who", ["recorded", "psg"])
def test_hypnogram_has_one_row_per_kind_with_every_epoch(
    influxdb_v1: InfluxDB1, night: Night, recorded: str, psg: str, session: str, who: str
) -> None:
    name = {"recorded": recorded, "psg": psg}[who]
    subject = night.subjects[name]
    # Grafana regex-escapes a chosen value of a variable that offers All
    chosen = {"all": ".*", "one": re.escape(subject.session.session_id)}[session]
    series = run(influxdb_v1, night, _query("sleepstream-hypnogram", "Hypnogram"),
                 subject=name, session=chosen)
    assert [s["tags"]["kind"] for s in series] == ["causal", "offline"]
    for s, events in zip(series, (subject.causal, subject.offline), strict=True):
        points = [(t, v) for t, v in s["values"] if v is not None]
        assert len(points) == len(events) == (night.n_epochs if who == "recorded"
                                              else PSG_EPOCHS)
        assert [v for _, v in points] == [STAGE_CODES[e.stage] for e in events]
        assert points[0][0] // 30_000 == int(events[0].epoch_start_utc.timestamp()) // 30
    mapped = _panel("sleepstream-hypnogram", "Hypnogram")["fieldConfig"]["defaults"]["mappings"]
    assert set(mapped[0]["options"]) == {str(c) for c in range(7)}  # 4 + 5 classes, W, REM once
    if who == "recorded":
        assert {e.stage for e in subject.offline} == set(NAMES)  # the night shows every class
    else:
        assert subject.causal[0].stage_set == 5


def test_probabilities_stack_to_one(influxdb_v1: InfluxDB1, night: Night, recorded: str,
                                    psg: str) -> None:
    title = "Stage probabilities (causal)"
    for subject, ref_id, n_classes, n in ((recorded, "A", 4, night.n_epochs),
                                          (psg, "B", 5, PSG_EPOCHS)):
        query = _query("sleepstream-hypnogram", title, ref_id)
        (s,) = run(influxdb_v1, night, query, subject=subject)
        rows = [v[1:] for v in s["values"] if v[1] is not None]
        assert len(rows) == n and all(len(r) == n_classes for r in rows)
        assert all(abs(sum(r) - 1) < 1e-5 for r in rows)
        other = _query("sleepstream-hypnogram", title, "B" if ref_id == "A" else "A")
        assert run(influxdb_v1, night, other, subject=subject) == []  # the other stage set


def test_summary_stats_show_the_offline_revision(
    influxdb_v1: InfluxDB1, night: Night, recorded: str
) -> None:
    summary = night.subjects[recorded].summary
    for title, field in [("Total sleep time", "tst_min"), ("Sleep efficiency", "se_pct"),
                         ("WASO", "waso_min"), ("Sleep onset latency", "sol_min"),
                         ("REM latency", "rem_latency_min")]:
        (s,) = run(influxdb_v1, night, _query("sleepstream-hypnogram", title), subject=recorded)
        assert s["values"][0][1] == pytest.approx(getattr(summary, field)), title
    (s,) = run(influxdb_v1, night, _query("sleepstream-hypnogram",
                                          "Stages, % of total sleep time"), subject=recorded)
    assert dict(zip(s["columns"][1:], s["values"][0][1:], strict=True)) == pytest.approx(
        summary.percent_of_tst)


def test_the_psg_summary_shows_n1_n2_n3(influxdb_v1: InfluxDB1, night: Night, psg: str) -> None:
    summary = night.subjects[psg].summary
    title = "Stages, % of total sleep time"
    assert run(influxdb_v1, night, _query("sleepstream-hypnogram", title), subject=psg) == []
    (s,) = run(influxdb_v1, night, _query("sleepstream-hypnogram", title, "B"), subject=psg)
    assert s["columns"][1:] == ["N1", "N2", "N3", "REM"]
    shown = dict(zip(s["columns"][1:], s["values"][0][1:], strict=True))
    assert shown == pytest.approx({k: v for k, v in summary.percent_of_tst.items()})
    (tst,) = run(influxdb_v1, night, _query("sleepstream-hypnogram", "Total sleep time"),
                 subject=psg)
    assert tst["values"][0][1] == pytest.approx(summary.tst_min)


def test_the_inputs_panel_shows_eeg_of_a_psg_night(influxdb_v1: InfluxDB1, night: Night,
                                                    psg: str) -> None:
    title = "Inputs: heart rate and activity, or EEG"
    assert run(influxdb_v1, night, _query("sleepstream-hypnogram", title), subject=psg) == []
    (s,) = run(influxdb_v1, night, _query("sleepstream-hypnogram", title, "B"), subject=psg)
    channels = [v[2] for v in s["values"] if v[2] is not None]
    causal = night.subjects[psg].causal
    assert channels == [e.inputs.eeg_channels for e in causal if e.inputs]
    assert channels.count(0) == len(EEG_OFF) and channels.count(1) >= 10


def test_fleet_counts_subjects_current_stages_and_gaps(
    influxdb_v1: InfluxDB1, night: Night
) -> None:
    uid = "sleepstream-fleet"

    def value(title: str) -> Any:
        (s,) = run(influxdb_v1, night, _query(uid, title))
        return s["values"][0][1]

    assert value("Active subjects") == value("Subjects in range") == 3
    assert value("Epochs without data") == len(WATCH_OFF) + len(EEG_OFF)
    assert value("Epochs without heart signal") == len(WATCH_OFF) + len(HR_OFF)
    current = run(influxdb_v1, night, _query(uid, "Current stage per subject"))
    got = {s["tags"]["subject"]: s["values"] for s in current}
    assert got.keys() == night.subjects.keys()
    for subject, rows in got.items():
        last = night.subjects[subject].causal[-1]
        assert rows == [[int(last.epoch_start_utc.timestamp() * 1000), STAGE_CODES[last.stage],
                         pytest.approx(last.confidence), last.epoch_index, last.valid]]
    recorded = next(iter(night.subjects))
    for ref_id, n, who in (("A", len(WATCH_OFF), "-dropout"),
                           ("B", len(WATCH_OFF) + len(HR_OFF), "-dropout"),
                           ("C", len(EEG_OFF), "-psg")):
        gaps = run(influxdb_v1, night, _query(uid, "Data gaps per subject", ref_id))
        gaps = [g for g in gaps if g["tags"]["subject"] == f"{recorded}{who}"]
        assert len(gaps) == 1 and sum(v[1] for v in gaps[0]["values"]) == n
    no_data = run(influxdb_v1, night, _query(uid, "Data gaps per subject", "A"))
    assert {g["tags"]["subject"] for g in no_data} == {f"{recorded}-dropout",
                                                       f"{recorded}-psg"}


def test_pipeline_panels_have_one_line_per_worker(influxdb_v1: InfluxDB1, night: Night) -> None:
    uid = "sleepstream-pipeline"
    d = json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text())
    latest = {r.worker: r for r in night.reports}  # reports are in time order per worker
    for panel in d["panels"]:
        if panel["type"] == "timeseries":
            for t in panel["targets"]:
                series = run(influxdb_v1, night, t["query"])
                assert [s["tags"]["worker"] for s in series] == list(WORKERS), panel["title"]
    totals = {p["title"]: p["targets"][0]["query"] for p in d["panels"] if p["type"] == "stat"}

    def total(title: str) -> Any:
        (s,) = run(influxdb_v1, night, totals[title])
        return s["values"][0][1]

    assert total("Workers reporting") == len(WORKERS)
    assert total("Stage events / s") == pytest.approx(sum(r.events_per_s for r in latest.values()))
    assert total("Consumer lag") == sum(r.consumer_lag for r in latest.values())
    assert total("Dead letters") == sum(r.dead_letters for r in latest.values())
    assert total("Close latency p99") == pytest.approx(
        max(r.epoch_close_latency_p99_s or 0 for r in latest.values()))


def test_every_dashboard_is_queried() -> None:
    assert {p.stem for p in JSON_FILES} == {
        "sleepstream-hypnogram", "sleepstream-fleet", "sleepstream-pipeline"}
    assert len(list(_panels())) >= 20
