"""The live page on the worker's web server, in real headless Chromium, during a replay.

One embedded stack (noida-db and ``faust -A stream.app worker`` with its web server) for the
module. The bundled night is replayed at about 30 s for the whole night while Chromium shows
``/live/?subject=...``: the hypnogram fills in, and at the end the page's epoch and stage
counts equal the stage events on the topics and its summary equals the NightSummary.
Screenshots (mid-replay and final) go to ``$SLEEPSTREAM_TEST_ARTIFACTS`` (default
``test-artifacts/`` at the repository root).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from ingestors.replay import ReplayNight, replay, sleep_accel_nights
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from models.stages import CLASS_NAMES
from stream.collect import OutputCollector
from stream.schemas import StageEvent
from stream.settings import StreamSettings
from stream.stack import LocalStack, StackError, free_port
from tests.chromium import HeadlessChromium
from tests.stream._psg import generated_night, send_nights

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
#: Replay speed: the bundled 8-h night in about 30 s.
SPEED = 960.0


def artifacts_dir() -> Path:
    """Where screenshots go: ``$SLEEPSTREAM_TEST_ARTIFACTS`` or ``test-artifacts/``."""
    path = Path(os.environ.get("SLEEPSTREAM_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Live:
    """The module's stack and where its web server answers."""

    def __init__(self, stack: LocalStack, port: int) -> None:
        self.stack, self.port = stack, port
        self.settings: StreamSettings = stack.settings()
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body of ``GET path`` (HTTP errors are answers)."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers.get("Content-Type", ""), err.read()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, body = self.get(path)
        return status, json.loads(body)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, psg_weights: Path) -> Iterator[Live]:
    port = free_port()
    stack = LocalStack(tmp_path_factory.mktemp("live-stack"), env={
        "SLEEPSTREAM_WEB_PORT": str(port), "SLEEPSTREAM_END_WAIT_S": "2",
        "SLEEPSTREAM_WEIGHTS_DIR": str(psg_weights)})
    try:
        stack.start()
    except StackError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no embedded stack: {err}")
    try:
        yield Live(stack, port)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def night() -> ReplayNight:
    return sleep_accel_nights(sleep_accel_sample(), (SAMPLE_NIGHT,))[0]


_HOOKS = """(() => {
  const c = document.getElementById("hyp-causal"), o = document.getElementById("hyp-offline");
  const s = document.getElementById("summary");
  return {ready: document.body.dataset.ready, updates: +document.body.dataset.updates,
          subject: document.getElementById("night").dataset.subject,
          causal: +c.dataset.epochs, causal_counts: JSON.parse(c.dataset.stageCounts),
          offline: +o.dataset.epochs, offline_counts: JSON.parse(o.dataset.stageCounts),
          summary: Object.assign({}, s.dataset),
          rem_bars: c.querySelectorAll(".rem-bar").length,
          subjects: [...document.querySelectorAll("#subject-list li")]
                      .map(li => li.dataset.subject)};
})()"""


async def _watch_replay(live: Live, night: ReplayNight, chrome: HeadlessChromium,
                        shots: Path) -> dict[str, Any]:
    n = night.n_epochs
    collector = OutputCollector(live.settings)
    await collector.start()
    try:
        await chrome.goto(f"{live.base}/live/?subject={night.subject_id}")
        await chrome.wait_for("document.body.dataset.updates > 0", "a first refresh", 30)
        task = asyncio.create_task(replay([night], live.settings, speed=SPEED, progress=False))
        try:
            # (a) mid-replay: the causal hypnogram holds part of the night
            await chrome.wait_for(f"+document.getElementById('hyp-causal').dataset.epochs"
                                  f" >= {int(n * 0.4)}", f"{int(n * 0.4)} causal epochs", 90)
            mid = await chrome.evaluate(_HOOKS)
            mid_done = task.done()
            mid_path = await chrome.screenshot(shots / "live-page-mid-replay.png")
            print(f"\nlive page screenshot (mid-replay): {mid_path}")
            await asyncio.wait_for(task, 120)
        finally:
            task.cancel()
        assert await collector.wait_complete({(night.subject_id, night.session_id): n}, 120), \
            "the stream did not produce every causal and offline event and the summary"
        # (b) after the offline revision the page shows exactly what the topics hold
        await chrome.wait_for(
            f"+document.getElementById('hyp-offline').dataset.epochs === {n} && "
            f"+document.getElementById('hyp-causal').dataset.epochs === {n} && "
            "document.getElementById('summary').dataset.available === '1'",
            "the whole night, the revision and the summary", 60)
        final = await chrome.evaluate(_HOOKS)
        final_path = await chrome.screenshot(shots / "live-page-final.png")
        print(f"live page screenshot (final): {final_path}")
        return {"mid": mid, "mid_done": mid_done, "final": final, "collector": collector,
                "paths": (mid_path, final_path)}
    finally:
        await collector.stop()


def test_live_page_fills_in_during_a_replay(live: Live, night: ReplayNight,
                                           tmp_path: Path) -> None:
    shots = artifacts_dir()

    async def run() -> dict[str, Any]:
        async with HeadlessChromium(tmp_path / "chromium.log") as chrome:
            out = await _watch_replay(live, night, chrome, shots)
            out["exceptions"] = list(chrome.exceptions)
            return out

    out = asyncio.run(run())
    n, key = night.n_epochs, (night.subject_id, night.session_id)
    mid, final, collector = out["mid"], out["final"], out["collector"]
    assert 0 < mid["causal"] < n, f"mid-replay the page showed {mid['causal']} of {n} epochs"
    assert not out["mid_done"], "the replay had already ended at the mid-replay check"
    assert mid["offline"] == 0 and mid["summary"]["available"] == "0"
    assert mid["subject"] == night.subject_id and night.subject_id in mid["subjects"]

    names = CLASS_NAMES[4]
    for kind in ("causal", "offline"):
        events: dict[int, StageEvent] = collector.events[(*key, kind)]
        assert len(events) == n
        want = Counter(ev.stage for ev in events.values())
        assert final[kind] == n, f"{kind}: the page shows {final[kind]} epochs, not {n}"
        assert final[f"{kind}_counts"] == {s: want.get(s, 0) for s in names}, kind
    assert final["rem_bars"] > 0 and final["ready"] == "1"

    summary = collector.summaries[(*key, "offline")]
    shown = final["summary"]
    assert shown["available"] == "1" and shown["kind"] == "offline"
    assert int(shown["nEpochs"]) == summary.n_epochs == n
    for attr, value in [("tstMin", summary.tst_min), ("sePct", summary.se_pct),
                        ("wasoMin", summary.waso_min), ("solMin", summary.sol_min),
                        ("remLatencyMin", summary.rem_latency_min),
                        ("lightPct", summary.percent_of_tst["light"]),
                        ("deepPct", summary.percent_of_tst["deep"]),
                        ("remPct", summary.percent_of_tst["REM"])]:
        assert value is not None
        assert float(shown[attr]) == pytest.approx(value, abs=0.006), attr
    assert out["exceptions"] == [], out["exceptions"]
    for path in out["paths"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def _event(subject: str, k: int, stage: str, start: datetime) -> bytes:
    at = start + timedelta(seconds=30 * k + 30)
    return StageEvent(
        subject_id=subject, session_id=f"{subject}-night", epoch_index=k,
        epoch_start_utc=start + timedelta(seconds=30 * k), model_name="wearable-causal",
        model_version="test", kind="causal", stage=stage,
        probabilities={s: 0.85 if s == stage else 0.05 for s in CLASS_NAMES[4]},
        confidence=0.85, closed_at_utc=at, emitted_at_utc=at, latency_s=0.0,
    ).model_dump_json().encode()


async def _publish(settings: StreamSettings, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
    await producer.start()
    try:
        for topic, value in messages:
            await producer.send_and_wait(settings.topic(topic), value, key=b"probe")
    finally:
        await producer.stop()


def _wait_json(live: Live, path: str, ok: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = live.get_json(path)
        if status == 200 and ok(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"GET {path} did not become ready in {timeout_s} s: {body}")
        time.sleep(0.3)


def test_json_endpoints_and_errors(live: Live) -> None:
    status, ctype, page = live.get("/live/")
    assert status == 200 and ctype.startswith("text/html") and b"/live/live.js" in page
    assert b"http://" not in page.replace(b"http://www.w3.org", b"")  # nothing external
    for asset, kind in [("live.js", "text/javascript"), ("live.css", "text/css")]:
        status, ctype, body = live.get(f"/live/{asset}")
        assert status == 200 and ctype.startswith(kind) and len(body) > 1000

    # a subject published straight onto the stages topic, with garbage between its events
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    undecodable = live.get_json("/live/api/subjects")[1]["undecodable"].get("stages", 0)
    stages = ["W", "light", "light", "deep", "REM"]
    messages = [("stages", _event("probe", k, s, start)) for k, s in enumerate(stages)]
    messages.insert(2, ("stages", b"{not json"))
    messages.append(("stages", _event("probe", 1, "light", start)))  # a re-delivery
    asyncio.run(_publish(live.settings, messages))
    listing = _wait_json(live, "/live/api/subjects", lambda b: any(
        r["subject"] == "probe" and r["n_causal"] == 5 for r in b["subjects"]))
    row = next(r for r in listing["subjects"] if r["subject"] == "probe")
    assert row["session"] == "probe-night" and row["current_stage"] == "REM"
    assert not row["ended"] and not row["has_summary"] and row["n_offline"] == 0
    assert row["started_at"] == start.isoformat()
    assert listing["undecodable"]["stages"] == undecodable + 1

    status, night = live.get_json("/live/api/night?subject=probe")
    assert status == 200 and night["session"] == "probe-night" and night["n_epochs"] == 5
    assert [night["stages"][c] for c in night["causal"]["stage"]] == stages
    assert night["causal"]["counts"] == {"W": 1, "light": 2, "deep": 1, "REM": 1}
    status, same = live.get_json(f"/live/api/night?subject=probe&known={night['version']}")
    assert status == 200 and same == {"version": night["version"], "unchanged": True}
    assert live.get_json("/live/api/night?subject=probe&session=probe-night")[0] == 200

    status, err = live.get_json("/live/api/night?subject=nobody")
    assert status == 404 and "unknown subject 'nobody'" in err["error"]
    status, err = live.get_json("/live/api/night?subject=probe&session=other")
    assert status == 404 and "unknown session 'other' of subject 'probe'" in err["error"]
    assert "probe-night" in err["error"]
    status, err = live.get_json("/live/api/night")
    assert status == 400 and "subject" in err["error"]


_PSG_HOOKS = """(() => {
  const c = document.getElementById("hyp-causal"), o = document.getElementById("hyp-offline");
  const s = document.getElementById("summary");
  return {stage_set: document.getElementById("night").dataset.stageSet,
          causal: +c.dataset.epochs, causal_counts: JSON.parse(c.dataset.stageCounts),
          offline: +o.dataset.epochs, offline_counts: JSON.parse(o.dataset.stageCounts),
          summary: Object.assign({}, s.dataset),
          rows: [...c.querySelectorAll("text.ylab")].map(t => t.textContent),
          legend: [...document.querySelectorAll("#legend .key")].map(k => k.textContent),
          inputs: [document.getElementById("cap-a-title").textContent,
                   document.getElementById("cap-b-title").textContent],
          bars: document.querySelectorAll("#s-stages div").length};
})()"""


def test_live_page_shows_a_psg_night_in_5_stages(live: Live, tmp_path: Path) -> None:
    night = generated_night("psg-live", ["W"] * 6 + ["N2"] * 6 + ["N3"] * 10 + ["N2"] * 6
                            + ["W"] * 2, 256.0, 2, seed=5)

    async def run() -> tuple[dict[str, Any], OutputCollector, list[str]]:
        collector = OutputCollector(live.settings)
        await collector.start()
        try:
            async with HeadlessChromium(tmp_path / "chromium.log") as chrome:
                await chrome.goto(f"{live.base}/live/?subject={night.subject_id}")
                await send_nights(live.settings, [night])
                key = (night.subject_id, night.session_id)
                assert await collector.wait_complete({key: night.n_epochs}, 120)
                await chrome.wait_for(
                    f"+document.getElementById('hyp-offline').dataset.epochs === "
                    f"{night.n_epochs} && document.getElementById('summary').dataset"
                    ".available === '1'", "the psg night, its revision and summary", 60)
                shown = await chrome.evaluate(_PSG_HOOKS)
                path = await chrome.screenshot(artifacts_dir() / "live-page-psg.png")
                print(f"\nlive page screenshot (psg night): {path}")
                return shown, collector, list(chrome.exceptions)
        finally:
            await collector.stop()

    shown, collector, exceptions = asyncio.run(run())
    assert exceptions == [], exceptions
    names = CLASS_NAMES[5]
    assert shown["stage_set"] == "5" and shown["rows"] == ["Wake", "REM", "N1", "N2", "N3"]
    assert shown["legend"][:5] == ["Wake", "REM", "N1", "N2", "N3 (deep)"]
    assert shown["inputs"] == ["EEG amplitude", "EEG channels with data"]
    key = (night.subject_id, night.session_id)
    for kind in ("causal", "offline"):
        events = collector.events[(*key, kind)]
        want = Counter(ev.stage for ev in events.values())
        assert shown[kind] == night.n_epochs
        assert shown[f"{kind}_counts"] == {s: want.get(s, 0) for s in names}, kind
    summary = collector.summaries[(*key, "offline")]
    for attr, name in (("n1Pct", "N1"), ("n2Pct", "N2"), ("n3Pct", "N3"), ("remPct", "REM")):
        value = summary.percent_of_tst[name]
        if value is None:
            assert attr not in shown["summary"]
        else:
            assert float(shown["summary"][attr]) == pytest.approx(value, abs=0.006), attr
    assert shown["bars"] == 4  # N1, N2, N3, REM


def test_worker_stops_cleanly_with_the_live_follower(live: Live) -> None:
    worker = live.stack.worker
    assert worker.alive
    worker.stop()
    proc = worker.proc
    assert proc is not None and proc.returncode == 0, "the worker did not exit with code 0"
    log = worker.log_path.read_text(errors="replace")
    assert "sleepstream live: following" in log
    assert "sleepstream live: follower error" not in log
    assert "Traceback" not in log, log[-3000:]
