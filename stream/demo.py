"""The demo job: one bundled real night, end to end through the readers and outputs.

It reads the bundled Sleep-Accel night (heart rate, activity counts, PSG stages), reports
what it holds, computes the night statistics, draws the hypnogram and exports it as CSV,
BIDS TSV and EDF+, reading each export back to check the round trip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ingestors.hypnogram_io import read_hypnogram, write_bids_tsv, write_csv, write_edf_annotations
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from ingestors.sleep_accel import SleepAccelNight, read_subject
from ingestors.types import Hypnogram
from models.evaluation.metrics import score_classes
from models.evaluation.night_stats import NightStats, night_stats
from models.evaluation.plots import plot_hypnogram
from models.features import compute_features
from models.stages import class_stages, reduce_stages
from stream.staging import FamilyModels

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    night: SleepAccelNight
    stats: NightStats
    files: tuple[Path, ...]
    round_trips: dict[str, bool]
    kappa3: dict[str, float]




def _stage_night(night: SleepAccelNight, hyp: Hypnogram) -> dict[str, np.ndarray]:
    """Probabilities of the shipped wearable models for every epoch of the night."""
    hr, counts = night.heart_rate, night.counts
    rows = compute_features(
        "wearable", hyp.start, len(hyp),
        heart_rate=(hr.t_s, hr.values) if hr is not None else None,
        activity_counts=(counts.t_s, counts.values) if counts is not None else None,
        start_is_nominal=hyp.start_is_nominal,
    )
    causal, offline = FamilyModels("wearable").predict_night(rows)
    return {"causal": causal, "offline": offline}


def _score(hyp: Hypnogram, probs: np.ndarray) -> float:
    ref = reduce_stages(hyp.stages, 3)
    pred = reduce_stages(class_stages(probs.argmax(axis=1), 4), 3)
    keep = ref >= 0
    return float(score_classes(ref[keep], pred[keep], 3).kappa)


def _same_stages(a: Hypnogram, b: Hypnogram) -> bool:
    return len(a) == len(b) and bool(np.array_equal(a.stages, b.stages))


def _export(hyp: Hypnogram, outdir: Path) -> tuple[list[Path], dict[str, bool]]:
    files: list[Path] = []
    checks: dict[str, bool] = {}
    for label, writer, name in (
        ("CSV", write_csv, f"{SAMPLE_NIGHT}_hypnogram.csv"),
        ("BIDS TSV", write_bids_tsv, f"{SAMPLE_NIGHT}_stages.tsv"),
        ("EDF+", write_edf_annotations, f"{SAMPLE_NIGHT}_hypnogram.edf"),
    ):
        path = writer(hyp, outdir / name)
        files.append(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a nominal start is expected here
            checks[label] = _same_stages(hyp, read_hypnogram(path))
    return files, checks


def _stats_table(stats: NightStats) -> Table:
    table = Table(title=f"Night statistics, subject {SAMPLE_NIGHT} (PSG)", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in stats.as_row().items():
        text = "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
        table.add_row(key, text)
    return table


def run_demo(outdir: Path, console: Console | None = None) -> DemoResult:
    """Run the demo and write its files to ``outdir``.

    Parameters
    ----------
    outdir : Path
        Created if missing; receives the hypnogram PNG and the three exports.
    console : rich.console.Console, optional
        Where to print progress and tables.
    """
    out = console or Console()
    outdir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader lists its repairs in `problems`
        night = read_subject(sleep_accel_sample(), SAMPLE_NIGHT)
    if night.labels is None or night.heart_rate is None or night.counts is None:
        msg = f"bundled night {SAMPLE_NIGHT} is incomplete; reinstall sleepstream"
        raise RuntimeError(msg)
    hyp = night.labels
    out.print(
        f"[bold]Sleep-Accel night {SAMPLE_NIGHT}[/bold]: {len(hyp)} epochs "
        f"({hyp.duration_s / 3600:.1f} h), {len(night.heart_rate):,} heart-rate samples, "
        f"{len(night.counts):,} activity counts"
    )
    for problem in night.problems:
        out.print(f"  problem: {problem}", highlight=False)
    stats = night_stats(hyp)
    out.print(_stats_table(stats))
    png = outdir / f"{SAMPLE_NIGHT}_hypnogram.png"
    plot_hypnogram(hyp, title=f"Sleep-Accel {SAMPLE_NIGHT}: PSG hypnogram", path=png)
    files, checks = _export(hyp, outdir)
    for label, ok in checks.items():
        out.print(f"  {label:8s} export read back: {'identical' if ok else 'DIFFERENT'}")
    probs = _stage_night(night, hyp)
    kappas = {kind: _score(hyp, p) for kind, p in probs.items()}
    staged = outdir / f"{SAMPLE_NIGHT}_staged.png"
    offline_hyp = Hypnogram(class_stages(probs["offline"].argmax(axis=1), 4), hyp.start,
                            hyp.epoch_s, subject=hyp.subject, start_is_nominal=True)
    plot_hypnogram(offline_hyp, probabilities=probs["offline"], reference=hyp, stage_set=4,
                   title=f"{SAMPLE_NIGHT}: wearable-offline model vs PSG",
                   path=staged)
    out.print(
        "Shipped wearable models on this night (it was in their training data, so this is "
        "a smoke test, not a score): 3-class kappa "
        + ", ".join(f"{k} {v:.2f}" for k, v in kappas.items())
    )
    out.print(f"Wrote {png}, {staged} and {len(files)} exports to {outdir}")
    return DemoResult(night, stats, (png, staged, *files), checks, kappas)
