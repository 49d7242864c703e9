"""Latency of the exported models in ONNX Runtime, against the stream's targets.

Times the shipped models (``models/weights``, ensembles included, as the stream runs them);
with ``--fresh`` it instead builds single randomly initialised nets with the feature
registry's number of features per family (or ``--n-features``) and exports them to a
temporary folder with :func:`models.export.export_onnx`. Single ONNX Runtime calls:

* causal, batch 1 (one epoch of one subject): target <= 100 µs;
* causal, batch 1,000 (one epoch of 1,000 subjects in one call): target <= 20 ms;
* offline, one 1,000-epoch night (no target; it runs once per session);
* psg (EEG channel sets): causal for one subject with 2 channels and for 200 subjects with
  6 channels in one call, offline for a 1,000-epoch night of 2 channels (no targets of their
  own: the psg stream's budget is p99 <= 1 s from epoch close to stage event for 200 live
  recordings).

Prints median and p99 of the bare ``InferenceSession.run`` and of
:meth:`models.runtime.OnnxModel.predict` (input checks included), the cost per staged
epoch (batched vs unbatched), and whether each target is met by ``predict``'s median.
The exit code is 0 either way: this reports, it does not gate.

Run: ``python tests/benchmarks/bench_inference.py [--fresh [--n-features N]] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from models.card import ChannelSet
from models.export import export_onnx
from models.nets import build_net
from models.runtime import OnnxModel

#: (model, batch, epochs per input, channels (None: no channel axis), target in s or None)
CASES: tuple[tuple[str, int, int | None, int | None, float | None], ...] = (
    ("wearable-causal", 1, None, None, 100e-6),
    ("wearable-causal", 1000, None, None, 20e-3),
    ("cardio-causal", 1, None, None, 100e-6),
    ("cardio-causal", 1000, None, None, 20e-3),
    ("wearable-offline", 1, 1000, None, None),
    ("cardio-offline", 1, 1000, None, None),
    ("psg-causal", 1, None, 2, None),
    ("psg-causal", 200, None, 6, None),
    ("psg-offline", 1, 1000, 2, None),
)


class Timing(NamedTuple):
    """Latency statistics of one call, in seconds."""

    median_s: float
    p99_s: float


def time_call(call: Callable[[], object], n_calls: int, n_warmup: int = 20) -> Timing:
    """Median and 99th percentile of ``n_calls`` timed calls after ``n_warmup`` untimed ones."""
    for _ in range(n_warmup):
        call()
    laps = np.empty(n_calls)
    for i in range(n_calls):
        start = time.perf_counter()
        call()
        laps[i] = time.perf_counter() - start
    return Timing(float(np.median(laps)), float(np.percentile(laps, 99)))


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def _inputs(
    batch: int, n_epochs: int, n_features: int, n_channels: int | None = None
) -> tuple[NDArray[np.float32], ...]:
    rng = np.random.default_rng(0)
    outer = (batch, n_epochs) if n_channels is None else (batch, n_epochs, n_channels)
    x = rng.normal(size=(*outer, n_features)).astype(np.float32)
    return x, np.ones(outer, dtype=np.float32)


def _feature_names(family: str, n_features: int | None) -> tuple[list[str], str]:
    """The live registry's names for the family, or ``n_features`` made-up ones."""
    if n_features is None:
        try:
            from models.features.registry import feature_names, feature_version
        except ImportError:
            n_features = 40
        else:
            return list(feature_names(family)), feature_version(family)
    return [f"feature_{i}" for i in range(n_features)], "bench"


def _export(name: str, args: argparse.Namespace, folder: Path) -> tuple[OnnxModel, int]:
    kwargs = {"n_filters": args.n_filters} if args.n_filters else {}
    names, version = _feature_names(name.rpartition("-")[0], args.n_features)
    net = build_net(name, len(names), **kwargs)
    channels = ChannelSet(modality="eeg", trained_on=("bench",)) if net.channel_set else None
    exported = export_onnx(net, folder, feature_names=names, feature_version=version,
                           channel_set=channels)
    n_params = sum(p.numel() for p in net.parameters())
    return OnnxModel(exported.onnx_path, intra_op_num_threads=args.threads), n_params


def _shipped(name: str, args: argparse.Namespace) -> tuple[OnnxModel, int]:
    import onnx

    from models.runtime import default_weights_dir

    path = Path(args.weights or default_weights_dir()) / f"{name}.onnx"
    n_params = sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)
    return OnnxModel(path, intra_op_num_threads=args.threads), n_params


def _row(
    name: str, model: OnnxModel, batch: int, n_epochs: int, n_channels: int | None,
    target: float | None, calls: int,
) -> list[str]:
    x, valid = _inputs(batch, n_epochs, model.card.n_features, n_channels)
    n_calls = max(30, calls // batch) if model.card.kind == "causal" else 50
    session, feeds = model._session, {"x": x, "valid": valid}  # noqa: SLF001 - bare ORT call
    bare = time_call(lambda: session.run(None, feeds), n_calls)
    full = time_call(lambda: model.predict(x, valid), n_calls)
    staged = batch if model.card.kind == "causal" else batch * n_epochs
    met = "-"
    if target is not None:
        met = "yes" if full.median_s <= target else "NO"
        met += "" if full.p99_s <= target else " (p99 over)"
    return [
        name,
        " x ".join(str(n) for n in x.shape),
        _fmt(bare.median_s),
        _fmt(bare.p99_s),
        _fmt(full.median_s),
        _fmt(full.p99_s),
        _fmt(bare.median_s / staged),
        "-" if target is None else f"<= {_fmt(target)}",
        met,
    ]


def main() -> None:
    """Export, time and print the table."""
    parser = argparse.ArgumentParser(description="ONNX Runtime latency of the models")
    parser.add_argument(
        "--n-features",
        type=int,
        default=None,
        help="features per epoch; default: the registry's count for each family (else 40)",
    )
    parser.add_argument("--n-filters", type=int, default=None, help="override the nets' width")
    parser.add_argument("--fresh", action="store_true",
                        help="time freshly exported single nets instead of the shipped models")
    parser.add_argument("--weights", default=None, help="folder of the shipped models")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls at batch 1")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the export only; a spinning pool slows a shared 2-core host
    console = Console(width=160)
    table = Table(
        title=f"ONNX Runtime latency: {args.threads} ORT thread(s), {os.cpu_count()} CPUs"
    )
    for column in (
        "model",
        "input B x T [x C] x F",
        "run median",
        "run p99",
        "predict median",
        "predict p99",
        "per staged epoch",
        "target",
        "met",
    ):
        table.add_column(column, justify="left" if column.startswith(("model", "in")) else "right")
    params: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        loaded: dict[str, OnnxModel] = {}
        for name, batch, n_epochs, n_channels, target in CASES:
            if name not in loaded:
                if args.fresh:
                    console.print(f"exporting {name} ...")
                    loaded[name], params[name] = _export(name, args, Path(tmp))
                else:
                    loaded[name], params[name] = _shipped(name, args)
            model = loaded[name]
            epochs = n_epochs or model.card.context_epochs or 1
            label = name
            if model.card.ensemble_members > 1:
                label += f" ({model.card.ensemble_members} nets)"
            table.add_row(*_row(label, model, batch, epochs, n_channels, target, args.calls))
    console.print(table)
    console.print("parameters: " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    console.print(
        "run = bare InferenceSession.run; predict = OnnxModel.predict (checks, default mask); "
        "per staged epoch = run median / epochs staged by the call; met = predict median."
    )


if __name__ == "__main__":
    main()
