"""A virtual strap staged live by the real worker: BLE -> ingestor -> broker -> Faust -> stages.

The strap sends one notification per beat pair in real time (the ingestor stamps beats with
receive times, so a BLE session cannot be replayed faster than it happens): about 70 s,
two 30-s epochs and a part. With the default 30-s grace for late samples, epoch 0 closes
once event time passes 60 s, so its causal event must arrive while the strap is still
sending; after the user stops, the remaining epochs close, the offline model re-scores the
night and the summary comes.

A strap that sends RR intervals opens a ``cardio`` session; one that sends heart rate only
(the Heart Rate Service carries no accelerometer) a ``wearable`` session without activity,
which must be staged by a model whose card lists heart rate alone among the input sets it
was validated on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ingestors.ble import BleakLink, ingest_ble
from models.card import load_card
from models.runtime import default_weights_dir
from stream.collect import OutputCollector
from stream.stack import LocalStack
from tests.ingestors._bumble_backend import BumbleBleakClient, Measurement, VirtualStrap

pytestmark = pytest.mark.timeout(300)

SUBJECT, SESSION = "ble-subject", "ble-night"
RR_S = (0.92, 1.04, 0.98, 1.06, 0.95, 1.01)  # a little variability, about 60 bpm


def strap_session(tmp_path: Path, with_rr: bool):
    """About 70 s of a virtual strap, live through ingestor, broker and worker."""
    with LocalStack(tmp_path, partitions=2) as stack:
        settings = stack.settings()

        async def scenario():
            collector = OutputCollector(settings)
            await collector.start()
            strap = await VirtualStrap().start()
            stop = asyncio.Event()
            link = BleakLink(strap.address, backend=BumbleBleakClient, options={"strap": strap},
                             timeout_s=10.0)
            task = asyncio.create_task(ingest_ble(link, SUBJECT, SESSION, settings, stop=stop,
                                                  span_s=1.0, progress=False))
            await asyncio.wait_for(strap.subscribed.wait(), 30)
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < 70.0:
                pair = [RR_S[i % len(RR_S)], RR_S[(i + 1) % len(RR_S)]]
                i += 2
                await strap.notify(Measurement(int(round(120 / sum(pair))),
                                               sensor_contact_detected=True,
                                               rr_intervals=pair if with_rr else None))
                await asyncio.sleep(sum(pair))
                await collector.poll(timeout_s=0.05)
            live = dict(collector.events.get((SUBJECT, SESSION, "causal"), {}))
            stop.set()
            report = await asyncio.wait_for(task, 30)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (SUBJECT, SESSION, "offline") not in (
                    collector.summaries):
                await collector.poll()
            await collector.stop()
            return report, live, collector

        return asyncio.run(scenario())


def test_a_live_ble_rr_session_is_staged_by_the_worker(tmp_path: Path) -> None:
    report, live, collector = strap_session(tmp_path, with_rr=True)
    assert report.family == "cardio" and report.status.malformed == 0
    # staged live: causal events for the first closed epochs came while the strap was sending
    assert len(live) >= 1 and min(live) == 0
    causal = collector.events[(SUBJECT, SESSION, "causal")]
    offline = collector.events[(SUBJECT, SESSION, "offline")]
    summary = collector.summaries[(SUBJECT, SESSION, "offline")]
    assert sorted(causal) == list(range(len(causal))) and len(causal) >= 2
    assert sorted(offline) == sorted(causal) and summary.n_epochs == len(causal)
    for ev in causal.values():
        assert ev.model_name == "cardio-causal" and ev.kind == "causal"
        assert abs(sum(ev.probabilities.values()) - 1.0) < 1e-4
        assert ev.inputs is not None
    assert all(ev.model_name == "cardio-offline" for ev in offline.values())
    assert collector.conflicts == 0 and collector.undecodable == 0


def test_a_heart_rate_only_ble_session_is_staged_by_a_heart_rate_only_model(
        tmp_path: Path) -> None:
    report, live, collector = strap_session(tmp_path, with_rr=False)
    assert report.family == "wearable" and report.status.malformed == 0
    assert len(live) >= 1 and min(live) == 0
    causal = collector.events[(SUBJECT, SESSION, "causal")]
    offline = collector.events[(SUBJECT, SESSION, "offline")]
    assert sorted(offline) == sorted(causal) and len(causal) >= 2
    for events in (causal, offline):
        (name,) = {ev.model_name for ev in events.values()}
        card = load_card(default_weights_dir() / f"{name}.json")
        validated = {s.inputs: s for s in card.input_sets}
        assert ("heart_rate",) in validated, (name, list(validated))
        assert validated[("heart_rate",)].cv_metrics  # with its cross-validated kappa
    assert collector.conflicts == 0 and collector.undecodable == 0
