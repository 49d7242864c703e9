"""Offline evaluation through the stream: replay nights, collect the events, score them.

:func:`run_through_stream` replays nights onto the broker (as fast as possible by default)
and collects every stage event the worker emits; :func:`evaluate` then checks

* **parity**: each night's causal and offline events equal the batch predictions of the
  same shipped models on the same samples (:meth:`~stream.staging.FamilyModels.predict_night`),
  epoch by epoch, and
* **agreement** with the labels: pooled κ, macro-F1, accuracy and per-class F1 in 4, 3
  and 2 classes (and 5, W/N1/N2/N3/REM, when every night is staged by 5-class models: the
  psg family), and the median per-night κ, with the training code's metrics.

The batch side of a psg night (:func:`psg_batch_rows`) runs the raw-EEG front-end over each
whole channel (:func:`~stream.eeg_assembly.eeg_night_rows`), on the samples the replay
sends.

``sleepstream replay-eval`` wraps both (with an embedded broker and worker when no
broker is configured) and writes ``results.json``, ``results.md`` and confusion matrices.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ingestors.replay import ReplayNight, ReplayReport, replay
from models.evaluation.metrics import NightlyReport, score_nights
from models.evaluation.plots import plot_confusion_matrix
from models.features import compute_features
from models.features.psg import PsgRows
from models.features.registry import PER_CHANNEL_FAMILIES
from models.stages import class_stages
from stream.collect import OutputCollector
from stream.eeg_assembly import EegSignal, eeg_night_rows
from stream.schemas import StageEvent
from stream.settings import StreamSettings
from stream.staging import FamilyModels

__all__ = [
    "NightParity",
    "StreamEvaluation",
    "StreamRun",
    "batch_predictions",
    "batch_rows",
    "evaluate",
    "psg_batch_rows",
    "run_through_stream",
]

KINDS = ("causal", "offline")
#: Chunk spans of an as-fast-as-possible replay: one chunk per modality (EEG channel) and
#: epoch (the worker's grace period must be at least this long).
AFAP_SPANS = {"heart_rate": 30.0, "activity_counts": 30.0, "acceleration": 30.0, "rr": 30.0,
              "eeg": 30.0}


def batch_rows(night: ReplayNight) -> NDArray[np.float32]:
    """Feature rows of a whole wearable or cardio night in one batch from its samples."""
    s = night.streams

    def pair(m: str) -> tuple[Any, Any] | None:
        return (s[m].t_s, s[m].values) if m in s else None  # type: ignore[index]

    rr = s.get("rr")
    return compute_features(
        night.family, night.start, night.n_epochs,
        heart_rate=pair("heart_rate"), activity_counts=pair("activity_counts"),
        acceleration=pair("acceleration"),
        rr=(rr.t_s, rr.values, rr.beat_types) if rr is not None else None,
        start_is_nominal=night.start_is_nominal,
    )


def psg_batch_rows(night: ReplayNight) -> PsgRows:
    """Per-channel feature rows of a whole psg night in one batch from its EEG channels.

    Each channel's samples as the worker decodes them from its chunks (raw x scale +
    offset, uV) from ``sample0 / rate_hz`` s after the start, without those at or after the
    session end (the replay sends none of them).
    """
    end_s = night.duration_s
    signals = []
    for ch in night.eeg:
        rate = ch.spec.rate_hz
        n = min(ch.raw.size, max(0, math.ceil(end_s * rate) - ch.sample0))
        signals.append(EegSignal(ch.channel, rate, ch.sample0 / rate,
                                 ch.spec.physical(ch.raw[:n])))
    return eeg_night_rows(signals, night.n_epochs)


def batch_predictions(night: ReplayNight,
                      models: FamilyModels) -> dict[str, NDArray[np.float32]]:
    """The causal and offline models' probabilities of every epoch of a night, in batch."""
    if night.family in PER_CHANNEL_FAMILIES:
        rows = psg_batch_rows(night)
        probs = models.predict_night(rows.features, rows.present)
    else:
        probs = models.predict_night(batch_rows(night))
    return dict(zip(KINDS, probs, strict=True))


@dataclass
class StreamRun:
    """One replay through the broker and worker, and what came out."""

    replay: ReplayReport
    collector: OutputCollector
    wall_s: float
    complete: bool
    expected: dict[tuple[str, str], int]


async def run_through_stream(
    nights: Sequence[ReplayNight],
    settings: StreamSettings,
    *,
    speed: float | None = None,
    anchor: str = "original",
    timeout_s: float = 600.0,
    progress: bool = True,
    spans: Mapping[str, float] | None = None,
) -> StreamRun:
    """Replay ``nights`` and collect their stage events until every epoch is in.

    ``wall_s`` runs from the first message sent to the last event received.
    """
    collector = OutputCollector(settings)
    await collector.start()
    try:
        expected = {(n.subject_id, n.session_id): n.n_epochs for n in nights}
        t0 = time.monotonic()
        report = await replay(nights, settings, speed=speed, anchor=anchor,  # type: ignore[arg-type]
                              progress=progress, spans=spans)
        complete = await collector.wait_complete(expected, timeout_s)
        wall = time.monotonic() - t0
    finally:
        await collector.stop()
    return StreamRun(report, collector, wall, complete, expected)


@dataclass
class NightParity:
    """Stream versus batch for one night."""

    subject_id: str
    session_id: str
    n_epochs: int
    events: dict[str, int]
    max_abs_diff: dict[str, float]
    stage_mismatches: dict[str, int]

    def ok(self, atol: float) -> bool:
        """Every epoch present, the same stage, probabilities within ``atol``."""
        return all(
            self.events[k] == self.n_epochs and self.stage_mismatches[k] == 0
            and self.max_abs_diff[k] <= atol for k in KINDS
        )


@dataclass
class StreamEvaluation:
    """Parity and agreement of one replay through the stream."""

    dataset: str
    nights: int
    epochs: int
    wall_s: float
    x_real_time: float
    complete: bool
    duplicates: int
    conflicts: int
    atol: float
    parity: list[NightParity]
    reports: dict[str, dict[int, NightlyReport]] = field(repr=False)

    @property
    def parity_ok(self) -> bool:
        """All nights equal to the batch predictions."""
        return all(p.ok(self.atol) for p in self.parity)

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON."""
        return {
            "dataset": self.dataset, "nights": self.nights, "epochs": self.epochs,
            "wall_s": self.wall_s, "x_real_time": self.x_real_time,
            "complete": self.complete, "duplicates": self.duplicates,
            "conflicts": self.conflicts, "atol": self.atol, "parity_ok": self.parity_ok,
            "parity": [asdict(p) for p in self.parity],
            "scores": {k: {str(s): r.as_dict() for s, r in v.items()}
                       for k, v in self.reports.items()},
        }

    def markdown(self) -> str:
        """The results table."""
        lines = [
            f"# {self.dataset} through the stream",
            "",
            f"{self.nights} nights, {self.epochs} epochs, replayed as fast as possible: "
            f"{self.wall_s:.1f} s wall ({self.x_real_time:.0f}x real time). Parity with the "
            f"batch predictions (every epoch, |dp| <= {self.atol:g}): "
            f"{'yes' if self.parity_ok else 'NO'}; re-delivered events {self.duplicates}, "
            f"conflicting {self.conflicts}.",
            "",
            "| model | classes | pooled κ | median κ (IQR) | macro-F1 | accuracy |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for kind, by_set in self.reports.items():
            for stage_set, r in sorted(by_set.items(), reverse=True):
                k = r.summary["kappa"]
                lines.append(
                    f"| {kind} | {stage_set} | {r.pooled.kappa:.3f} | {k.median:.3f} "
                    f"({k.q25:.3f}–{k.q75:.3f}) | {r.pooled.macro_f1:.3f} | "
                    f"{r.pooled.accuracy:.3f} |"
                )
        bad = [p for p in self.parity if not p.ok(self.atol)]
        if bad:
            lines += ["", "Nights that differ from the batch predictions:", ""]
            lines += [f"- {p.subject_id}: events {p.events}, max |dp| {p.max_abs_diff}, "
                      f"stage mismatches {p.stage_mismatches}" for p in bad]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        """Write results.json, results.md and one confusion matrix per model (its classes)."""
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "results.json", out / "results.md"]
        paths[0].write_text(json.dumps(self.as_dict(), indent=2, default=_jsonable) + "\n")
        paths[1].write_text(self.markdown())
        for kind, by_set in self.reports.items():
            most = max(by_set)
            r = by_set[most]
            p = out / f"confusion-{kind}-{most}class.png"
            fig = plot_confusion_matrix(r.pooled.confusion, r.pooled.class_names,
                                        title=f"{self.dataset} {kind} (stream), κ "
                                        f"{r.pooled.kappa:.3f}", path=p)
            import matplotlib.pyplot as plt

            plt.close(fig)
            paths.append(p)
        return paths


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def _probs(events: Mapping[int, StageEvent], n: int,
           names: Sequence[str]) -> tuple[NDArray[np.float64], int]:
    p = np.full((n, len(names)), np.nan)
    for k, ev in events.items():
        if 0 <= k < n:
            p[k] = [ev.probabilities[c] for c in names]
    return p, sum(1 for k in events if 0 <= k < n)


def evaluate(
    dataset: str,
    nights: Sequence[ReplayNight],
    run: StreamRun,
    *,
    weights_dir: Path | None = None,
    atol: float = 1e-5,
) -> StreamEvaluation:
    """Parity with the batch predictions and agreement with the labels.

    Scored in the stage sets every night's models can tell: 4, 3 and 2 classes, and 5 when
    all nights are staged by 5-class models (psg).
    """
    loaded = {f: FamilyModels(f, weights_dir) for f in sorted({n.family for n in nights})}
    fewest = min((len(m.causal.card.class_names) for m in loaded.values()), default=4)
    stage_sets = tuple(s for s in (5, 4, 3, 2) if s <= fewest)
    parity: list[NightParity] = []
    pairs: dict[str, dict[int, dict[str, tuple[Any, Any]]]] = {
        k: {s: {} for s in stage_sets} for k in KINDS
    }
    for night in nights:
        family_models = loaded[night.family]
        names = family_models.causal.card.class_names
        batch = batch_predictions(night, family_models)
        counts, diffs, mismatches = {}, {}, {}
        for kind in KINDS:
            got = run.collector.events.get((night.subject_id, night.session_id, kind), {})
            p, counts[kind] = _probs(got, night.n_epochs, names)
            seen = ~np.isnan(p[:, 0])
            diffs[kind] = float(np.abs(p[seen] - batch[kind][seen]).max()) if seen.any() \
                else math.inf
            mismatches[kind] = int((p[seen].argmax(1) != batch[kind][seen].argmax(1)).sum())
            if night.labels is not None and seen.all():
                pred = class_stages(p.argmax(1), len(names))
                for s in stage_sets:
                    pairs[kind][s][night.subject_id] = (night.labels, pred)
        parity.append(NightParity(night.subject_id, night.session_id, night.n_epochs, counts,
                                  diffs, mismatches))
    reports = {
        kind: {s: score_nights(pairs[kind][s], s) for s in stage_sets}
        for kind in KINDS if pairs[kind][stage_sets[-1]]
    }
    c = run.collector
    return StreamEvaluation(
        dataset, len(nights), sum(n.n_epochs for n in nights), run.wall_s,
        run.replay.event_s / run.wall_s if run.wall_s else math.inf, run.complete,
        c.duplicates, c.conflicts, atol, parity, reports,
    )


def run_and_evaluate(
    dataset: str,
    nights: Sequence[ReplayNight],
    settings: StreamSettings,
    *,
    timeout_s: float = 600.0,
    progress: bool = True,
) -> StreamEvaluation:
    """:func:`run_through_stream` (as fast as possible, original clock) then :func:`evaluate`.

    The batch predictions come from the models the worker runs (``settings.weights_dir``).
    """
    run = asyncio.run(run_through_stream(nights, settings, timeout_s=timeout_s,
                                         progress=progress, spans=AFAP_SPANS))
    return evaluate(dataset, nights, run, weights_dir=settings.weights_dir)
