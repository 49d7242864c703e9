"""A virtual strap staged live by the real worker: BLE -> ingestor -> broker -> Faust -> stages.

The strap sends one notification per beat pair in real time (the ingestor stamps beats with
receive times, so a BLE session cannot be replayed faster than it happens): about 70 s,
two 30-s epochs and a part. With the default 30-s grace for late samples, epoch 0 closes
once event time passes 60 s, so its causal event must arrive while the strap is still
sending; after the user stops, the remaining epochs close, the offline model re-scores the
night and the summary comes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ingestors.ble import BleakLink, ingest_ble
from stream.collect import OutputCollector
from stream.stack import LocalStack
from tests.ingestors._bumble_backend import BumbleBleakClient, Measurement, VirtualStrap

pytestmark = pytest.mark.timeout(300)

SUBJECT, SESSION = "ble-subject", "ble-night"
RR_S = (0.92, 1.04, 0.98, 1.06, 0.95, 1.01)  # a little variability, about 60 bpm


def test_a_live_ble_rr_session_is_staged_by_the_worker(tmp_path: Path) -> None:
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
                                               sensor_contact_detected=True, rr_intervals=pair))
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

        report, live, collector = asyncio.run(scenario())

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
