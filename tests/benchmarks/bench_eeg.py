"""Cost of the EEG front-end (:mod:`models.features.eeg`) per channel and 30-s epoch.

Feeds generated EEG (1/f noise plus a 10-Hz rhythm, in uV) to one
:class:`~models.features.eeg.EegChannel` per case, in chunks of ``chunk_s`` seconds, and prints
the wall time per channel-epoch (median of ``--repeats`` runs, numba compiled beforehand), with
what it means for the issue's two targets on one core:

* live: 200 subjects x 6 channels at 256 Hz, chunks of 1 s -> share of one core;
* replay: 20 nights x 2 channels at 100 Hz, 30-s chunks -> x real time of one core
  (a night being ~2,800 epochs of Sleep-EDF) -- the front-end's part only.

It also prints the checkpoint size (:meth:`~models.features.eeg.EegChannel.to_state` as JSON)
and its cost. The exit code is 0 either way: this reports, it does not gate.

Run: ``python tests/benchmarks/bench_eeg.py [--epochs 200] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from models.features.eeg import EegChannel

#: (input rate in Hz, chunk length in s)
CASES: tuple[tuple[float, float], ...] = (
    (100.0, 30.0), (100.0, 1.0), (256.0, 1.0), (256.0, 30.0), (128.0, 1.0), (250.0, 1.0),
    (500.0, 1.0), (512.0, 1.0),
)


def generated_eeg(fs_hz: float, n_epochs: int, seed: int = 0) -> NDArray[np.float64]:
    """1/f noise with a 10-Hz rhythm, ``n_epochs`` x 30 s at ``fs_hz``, in uV."""
    rng = np.random.default_rng(seed)
    n = round(fs_hz * 30 * n_epochs)
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / fs_hz)
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    x *= 20.0 / x.std()
    return x + 10.0 * np.sin(2 * np.pi * 10.0 * np.arange(n) / fs_hz)


def time_case(fs_hz: float, chunk_s: float, x: NDArray[np.float64]) -> float:
    """Seconds to feed ``x`` to a fresh channel in chunks of ``chunk_s`` and flush it."""
    step = max(1, round(chunk_s * fs_hz))
    ch = EegChannel("bench", fs_hz)
    t = time.perf_counter()
    for i in range(0, x.size, step):
        ch.feed(i / fs_hz, x[i:i + step])
    ch.flush()
    return time.perf_counter() - t


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=200, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"EEG front-end, {args.epochs} epochs per run")
    for col in ("input", "chunk", "us / channel-epoch", "x real time (1 channel)"):
        table.add_column(col, justify="right")
    per_epoch: dict[tuple[float, float], float] = {}
    for fs, chunk in CASES:
        x = generated_eeg(fs, args.epochs)
        time_case(fs, chunk, x[: round(fs * 90)])  # compile / load the numba cache
        runs = [time_case(fs, chunk, x) for _ in range(args.repeats)]
        us = float(np.median(runs)) / args.epochs * 1e6
        per_epoch[fs, chunk] = us
        table.add_row(f"{fs:g} Hz", f"{chunk:g} s", f"{us:.0f}", f"{30e6 / us:,.0f}")
    console.print(table)
    live = per_epoch[256.0, 1.0] * 200 * 6 / 30e6
    replay = 30e6 / (per_epoch[100.0, 30.0] * 2 * 20)
    console.print(f"live, 200 subjects x 6 channels x 256 Hz: {100 * live:.1f} % of one core")
    console.print(f"replay, 20 nights x 2 channels x 100 Hz fed together: {replay:,.0f} x real "
                  f"time on one core (front-end only)")
    ch = EegChannel("bench", 256.0)
    ch.feed(0.0, generated_eeg(256.0, 1)[:5000])
    t = time.perf_counter()
    for _ in range(1000):
        blob = json.dumps(ch.to_state())
    dump_us = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    for _ in range(1000):
        EegChannel.from_state(json.loads(blob))
    load_us = (time.perf_counter() - t) * 1e3
    console.print(f"state of a 256-Hz channel: {len(blob):,} bytes of JSON, to_state + dumps "
                  f"{dump_us:.0f} us, loads + from_state {load_us:.0f} us")


if __name__ == "__main__":
    main()
