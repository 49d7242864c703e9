"""Cost per chunk of the ingestors' outbox: in memory versus the SQLite spool on disk.

The chunks are those of a real replay: the bundled Sleep-Accel night cut as
``sleepstream replay-eval`` and ``bench_stream.py replay`` cut it (one chunk per modality
and 30-s epoch), serialized as sent. Each store takes them as the replay hands them over
(one append per chunk, or per ``--batch`` chunks), and gives them back and removes them in
windows of ``send_window`` (500) rows as the sender does. No broker: this isolates the
store's own cost, which a replay would add to its send loop. Run from the repository root::

    python tests/benchmarks/bench_spool.py [--repeat 3] [--batch 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ingestors.base import MemoryOutbox, Outbox, Row, SpoolOutbox, Topics  # noqa: E402
from ingestors.replay import plan_night, sleep_accel_nights  # noqa: E402
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample  # noqa: E402
from stream.replay_eval import AFAP_SPANS  # noqa: E402

WINDOW = 500


def replay_rows() -> list[Row]:
    """The bundled night's chunks as a replay spools them."""
    (night,) = sleep_accel_nights(sleep_accel_sample(), [SAMPLE_NIGHT])
    plan = plan_night(night, anchor="original", spans=AFAP_SPANS)
    topic = Topics("sleep.sessions", "sleep.samples").samples
    key = night.subject_id.encode()
    return [Row(topic, key, c.model_dump_json().encode(), night.session_id, c.source_id, c.seq)
            for _, c in plan.chunks()]


def run(outbox: Outbox, rows: list[Row], batch: int) -> float:
    """Seconds to append every row and drain them in windows."""
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        outbox.append(rows[i:i + batch])
        if outbox.rows >= WINDOW:
            outbox.remove(outbox.after(0, WINDOW))
    while outbox.rows:
        outbox.remove(outbox.after(0, WINDOW))
    return time.perf_counter() - t0


class NoFsyncSpool(SpoolOutbox):
    """The spool with appends committed without fsync (``synchronous=NORMAL``), to show
    what the fsync costs; a power cut could lose the last appends."""

    def _store(self, rows: Sequence[Row], meta: Mapping[str, str], at: float) -> None:
        self._db.execute("PRAGMA synchronous=NORMAL")
        super()._store(rows, meta, at)


def spool(folder: Path, kind: type[SpoolOutbox]) -> Callable[[], Outbox]:
    def make() -> Outbox:
        path = folder / f"bench-{time.monotonic_ns()}.spool"
        return kind.open(path, max_bytes=10**12, subject_id="s", session_id="n")
    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="chunks per append")
    args = parser.parse_args()
    rows = replay_rows()
    mb = sum(len(r.value) for r in rows) / 1e6
    table = Table(title=f"outbox cost: {len(rows)} chunks ({mb:.1f} MB) of the bundled night, "
                        f"{args.batch} per append, windows of {WINDOW}; best of {args.repeat}")
    for col in ("store", "total s", "µs per chunk"):
        table.add_column(col)
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as tmp:
        stores: dict[str, Callable[[], Outbox]] = {
            "memory (replays)": MemoryOutbox,
            "SQLite spool (live sessions)": spool(Path(tmp), SpoolOutbox),
            "SQLite spool without fsync": spool(Path(tmp), NoFsyncSpool),
        }
        for name, make in stores.items():
            best = min(run(make(), rows, args.batch) for _ in range(args.repeat))
            table.add_row(name, f"{best:.3f}", f"{best / len(rows) * 1e6:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
