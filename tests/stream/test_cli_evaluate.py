from __future__ import annotations

import csv
import json
import shutil
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from ingestors.errors import DataFormatError
from ingestors.hypnogram_io import read_hypnogram, write_bids_tsv, write_csv
from ingestors.hypnogram_sets import load_hypnograms, night_key
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from ingestors.sleep_accel import read_subject
from ingestors.types import Hypnogram
from models.features import compute_features
from models.stages import CLASS_NAMES, class_stages, reduce_stages
from stream.cli import app
from stream.engine import Session
from stream.staging import FamilyModels

runner = CliRunner()


def _predictions(test_data: Path, out: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write perturbed copies of the two Sleep-EDF excerpts as our CSV and BIDS TSV."""
    rng = np.random.default_rng(seed)
    out.mkdir()
    truth = {}
    for i, src in enumerate(sorted((test_data / "sleep-edf").glob("*-Hypnogram.edf"))):
        hyp = read_hypnogram(src)
        stages = hyp.stages.copy()
        flip = rng.random(len(stages)) < 0.2
        stages[flip] = rng.integers(0, 5, flip.sum())
        pred = replace(hyp, stages=stages, codes=())
        writer = write_csv if i == 0 else write_bids_tsv
        suffix = ".csv" if i == 0 else "_stages.tsv"
        writer(pred, out / f"{src.name[:7]}{suffix}")
        truth[night_key(src)] = (hyp.stages, stages)
    return truth


def test_night_keys_pair_formats() -> None:
    assert night_key(Path("SC4001EC-Hypnogram.edf")) == "SC4001E"
    assert night_key(Path("SC4001E.csv")) == "SC4001E"
    assert night_key(Path("46343_labeled_sleep.txt")) == "46343"
    assert night_key(Path("46343_cleaned_psg.out")) == "46343"
    assert night_key(Path("slp01a.an")) == "slp01a"


def test_evaluate_cli_matches_sklearn(test_data: Path, tmp_path: Path) -> None:
    truth = _predictions(test_data, tmp_path / "pred")
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["evaluate", str(test_data / "sleep-edf"), str(tmp_path / "pred"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 nights" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    ref = np.concatenate([t[0] for t in truth.values()])
    pred = np.concatenate([t[1] for t in truth.values()])
    for n in (5, 3):
        r, p = reduce_stages(ref, n), reduce_stages(pred, n)
        keep = (r >= 0) & (p >= 0)
        expected = cohen_kappa_score(r[keep], p[keep])
        pooled = metrics["stage_sets"][str(n)]["pooled"]
        assert pooled["kappa"] == pytest.approx(expected, rel=1e-9)
    for name in ("confusion_5class.png", "confusion_3class.png", "metrics.md", "night_stats.csv"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "hypnograms").glob("*.png"))) == 2


def test_evaluate_reports_unpaired_nights(test_data: Path, tmp_path: Path) -> None:
    _predictions(test_data, tmp_path / "pred")
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(test_data / "sleep-edf" / "SC4001EC-Hypnogram.edf", ref)
    result = runner.invoke(app, ["evaluate", str(ref), str(tmp_path / "pred"), "--stage-sets", "3"])
    assert result.exit_code == 0, result.output
    assert "SC4002E has no reference" in result.output


def test_evaluate_errors_are_clear(test_data: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no hypnogram files"):
        load_hypnograms(empty)
    result = runner.invoke(app, ["evaluate", str(empty), str(test_data / "sleep-edf")])
    assert result.exit_code == 2 and "no hypnogram files" in result.output
    result = runner.invoke(
        app, ["evaluate", str(test_data / "sleep-edf"), str(test_data / "sleep-edf"),
              "--stage-sets", "6"]
    )
    assert result.exit_code != 0 and "subset of 5,4,3,2" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "SC4001E.csv").write_text("onset;duration;stage\n0;30;W\n")
    result = runner.invoke(app, ["evaluate", str(test_data / "sleep-edf"), str(bad)])
    assert result.exit_code == 2
    assert "SC4001E.csv" in result.output and "line 1" in result.output


def test_stream_summary_equals_evaluate_night_stats(tmp_path: Path) -> None:
    """The stream's night summary and `evaluate`'s night_stats.csv agree on one night."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader lists its repairs in `problems`
        night = read_subject(sleep_accel_sample(), SAMPLE_NIGHT)
    psg = night.labels
    assert psg is not None and night.heart_rate is not None and night.counts is not None
    rows = compute_features(
        "wearable", psg.start, len(psg), heart_rate=(night.heart_rate.t_s,
                                                     night.heart_rate.values),
        activity_counts=(night.counts.t_s, night.counts.values),
        start_is_nominal=psg.start_is_nominal)
    start = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
    events, summary = FamilyModels("wearable").stage_night(
        Session("s1", "n1", start), rows, [True] * len(psg), start, start)
    assert summary is not None
    classes = [CLASS_NAMES[4].index(e.stage) for e in events]
    for folder, stages in (("ref", psg.stages), ("pred", class_stages(classes, 4))):
        (tmp_path / folder).mkdir()
        write_csv(Hypnogram(stages, start), tmp_path / folder / f"{SAMPLE_NIGHT}.csv")
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(tmp_path / "ref"), str(tmp_path / "pred"),
                                 "--stage-sets", "4,3,2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "night_stats.csv").open() as f:
        (row,) = [r for r in csv.DictReader(f) if r["scorer"] == "predicted"]

    def cell(value: float | None) -> str:
        return "" if value is None else str(value)

    expected = {k: cell(getattr(summary, k)) for k in (
        "tib_min", "tst_min", "se_pct", "sol_min", "waso_min", "rem_latency_min")}
    expected |= {f"minutes_{c}": cell(v) for c, v in summary.minutes.items()}
    expected |= {f"pct_tst_{c}": cell(v) for c, v in summary.percent_of_tst.items()}
    assert {k: row[k] for k in expected} == expected
    assert "minutes_light" in row and "minutes_N1" not in row  # honest about 4 classes
    assert summary.rem_latency_min is not None and summary.tst_min > 300
