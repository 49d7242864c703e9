"""Training the psg nets: channel sets, gaps, 5 classes, test views, baseline and shipping."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models.runtime import load_model
from tests.training._synth import N_PSG_FEATURES, synth_psg_set
from training.baselines import _save, logreg_baseline
from training.cli import train_app
from training.config import TrainConfig
from training.cv import fit_model, predict_nights
from training.datamodules import CropDataset, collate_nights, night_item
from training.lit_module import feature_stats
from training.report import build_report

TINY = ("net: {n_filters: 8, dropout: 0.0, channel_dropout: 0.3}\nmax_steps: 30\n"
        "val_every_steps: 10\nbatch_size: 4\ncrop_epochs: 60\nn_val_subjects: 1\n"
        "monitor: val_kappa5\nlr: 1.0e-2\n")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _one_channel(nights, channel: int):
    return replace(nights, nights=tuple(
        replace(n, features=n.features[:, [channel]], valid=n.valid[:, [channel]])
        for n in nights))


def test_batches_keep_the_channel_axis_and_the_gaps():
    a, b = synth_psg_set(2).nights
    x, valid, y = collate_nights([night_item(a, 5), night_item(b.__class__(
        **{**b.__dict__, "features": b.features[:100], "stages": b.stages[:100],
           "valid": b.valid[:100]}), 5)])
    assert x.shape == (2, 150, 2, N_PSG_FEATURES) and valid.shape == (2, 150, 2)
    assert valid[0, 20:24].sum() == 0 and valid[0, 40:50, 0].sum() == 0
    assert (y[0, 20:24] == -1).all() and (y[1, 100:] == -1).all() and int(y.max()) == 4
    crop = CropDataset([a], 50, 3, seed=1, stage_set=5)[0]
    assert crop[0].shape == (50, 2, N_PSG_FEATURES) and crop[1].shape == (50, 2)
    mean, _ = feature_stats([a.features], [a.valid])
    present = a.features[a.valid > 0]
    np.testing.assert_allclose(mean, present.mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.parametrize("variant", ["causal", "offline"])
def test_a_psg_net_learns_five_classes_and_stages_from_either_channel(variant):
    nights = synth_psg_set(4)
    cfg = TrainConfig.model_validate({
        "net": {"n_filters": 16, "dropout": 0.0, "channel_dropout": 0.4}, "max_steps": 120,
        "val_every_steps": 20, "patience": 10, "batch_size": 4, "crop_epochs": 60, "lr": 1e-2,
        "n_val_subjects": 1, "monitor": "val_kappa5"})
    fit = fit_model(f"psg-{variant}", nights.nights[:3], nights.nights[3:], cfg, stage_set=5)
    assert fit.net.n_outputs == 5 and fit.net.channel_set
    for channel in (None, 0, 1):
        test = nights.nights[3:] if channel is None else _one_channel(nights, channel).nights[3:]
        probs = predict_nights(fit.net, test)[test[0].night]
        labels = test[0].labels(5)
        scored = labels >= 0
        assert probs.shape == (len(labels), 5)
        assert (probs.argmax(1)[scored] == labels[scored]).mean() > 0.8


def test_monitoring_five_classes_needs_five_class_labels():
    from tests.training._synth import synth_set

    nights = synth_set(4)
    with pytest.raises(ValueError, match="val_kappa5 needs 5-class labels"):
        fit_model("wearable-causal", nights.nights[:3], nights.nights[3:],
                  TrainConfig(monitor="val_kappa5"))
    with pytest.raises(ValueError, match="n_outputs is 4 but the corpus has 5"):
        fit_model("psg-causal", nights.nights[:3], nights.nights[3:],
                  TrainConfig(net={"n_outputs": 4}), stage_set=5)


def test_logreg_baseline_reads_channel_sets_and_skips_gaps(tmp_path: Path):
    nights = synth_psg_set(4)
    probs, stages, meta = logreg_baseline(nights)["logreg"]
    p0 = probs["p0"]
    assert p0.shape == (150, 5) and len(meta) == 4
    assert np.all(stages["p0"][20:24] < 0)
    _save(tmp_path, "logreg", probs, stages, meta)
    report = build_report(tmp_path, plots=False)
    assert set(report.scores["baseline-logreg"]) == {5, 4, 3, 2}
    assert report.scores["baseline-logreg"][5].pooled.kappa > 0.8


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_cv_writes_every_test_view_and_ship_exports_the_channel_set(tmp_path, monkeypatch):
    import training.run
    import training.ship

    nights = synth_psg_set(4)
    views = {"uncropped": nights, "fpz-cz": _one_channel(nights, 0)}
    monkeypatch.setattr(training.run, "load_dataset", lambda *a, **k: nights)
    monkeypatch.setattr(training.run, "load_views", lambda *a, **k: views)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for variant in ("causal", "offline"):
        (cfg / f"sleep-edf-psg-{variant}.yaml").write_text(TINY)
    out = tmp_path / "run"
    result = CliRunner().invoke(train_app, [
        "cv", "--dataset", "sleep-edf", "--data", str(tmp_path), "--out", str(out),
        "--config-dir", str(cfg)])
    assert result.exit_code == 0, result.output
    text = (out / "results.md").read_text()
    for row in ("| causal | 5 |", "| offline | 5 |", "| offline-fpz-cz | 5 |",
                "| causal-uncropped | 2 |"):
        assert row in text
    assert (out / "figures" / "hypnogram-offline-p0.png").is_file()
    assert (out / "figures" / "confusion-causal-5class.png").is_file()

    weights = tmp_path / "weights"
    written = training.ship.ship_models("sleep-edf", tmp_path, out, weights)
    assert sorted(p.name for p in written) == [
        "psg-causal.json", "psg-causal.onnx", "psg-offline.json", "psg-offline.onnx"]
    model = load_model("psg-offline", weights)
    card = model.card
    assert card.channel_set is not None and card.channel_set.trained_on[0] == "EEG Fpz-Cz"
    assert card.stage_set == 5 and card.feature_version == "1"
    assert "kappa_5class_fpz-cz" in card.cv_metrics and "ODC-By" in card.attribution
    x = nights.nights[0].features[None]
    assert model.predict(x, nights.nights[0].valid[None]).shape == (1, 150, 5)
    assert model.predict(x[:, :, :1]).shape == (1, 150, 5)  # one channel
