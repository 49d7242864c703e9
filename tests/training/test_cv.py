from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.training._synth import synth_set
from training.cli import train_app
from training.config import CONFIG_DIR, load_config
from training.cv import make_folds

SLPDB_LIKE = ["slp01", "slp02", "slp03", "slp04", "slp14", "slp16", "slp32", "slp37"]


@pytest.mark.parametrize("scheme", ["loso", "3"])
def test_folds_are_subject_wise(scheme):
    folds = make_folds(SLPDB_LIKE, scheme, n_val_subjects=2, seed=1)
    tested = [s for f in folds for s in f.test]
    assert sorted(tested) == sorted(SLPDB_LIKE)  # every subject tested exactly once
    for f in folds:
        assert not set(f.test) & set(f.train)
        assert not set(f.test) & set(f.val)  # validation comes from training subjects
        assert not set(f.val) & set(f.train)
        assert set(f.train) | set(f.val) | set(f.test) == set(SLPDB_LIKE)
        assert len(f.val) == 2


def test_nights_of_one_subject_stay_together():
    from dataclasses import replace

    base = synth_set(4)
    nights = list(base.nights)
    nights.append(replace(nights[0], night="s0b"))  # a second night of subject s0
    ns = replace(base, nights=tuple(nights))
    for f in make_folds(ns.subjects, "loso", n_val_subjects=1):
        test_nights = {n.night for n in ns.select(f.test)}
        train_nights = {n.night for n in ns.select(f.train + f.val)}
        assert not test_nights & train_nights
        if "s0" in f.test:
            assert test_nights == {"s0", "s0b"}


def test_bad_fold_scheme_is_explained():
    with pytest.raises(ValueError, match="loso"):
        make_folds(SLPDB_LIKE, "k1")


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("lr: -1\nbatchsize: 4\n")
    with pytest.raises(ValueError, match=r"lr.*\n.*batchsize"):
        load_config(bad)


def test_a_key_given_twice_is_an_error_naming_it_and_its_lines(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("lr: 1.0e-3\nseed: 1\nlr: 3.0e-3\n")
    with pytest.raises(ValueError, match=r"twice\.yaml: key 'lr' is given twice \(lines 1 and 3\)"):
        load_config(twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [1\n")
    with pytest.raises(ValueError, match=r"broken\.yaml is not valid YAML"):
        load_config(broken)


def test_shipped_configs_validate():
    paths = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(paths) == 8
    for path in paths:
        load_config(path)
    from training.config import DATASET_FAMILY, config_path

    for dataset in DATASET_FAMILY:  # every corpus has both variants' configs
        for variant in ("causal", "offline"):
            assert config_path(dataset, variant) in paths
    # the configs for training without an apnoea cohort: the main ones plus simulated apnoea
    other = CONFIG_DIR / "no-apnoea-cohort"
    assert sorted(p.name for p in other.glob("*.yaml")) == [
        "sleep-accel+slpdb-wearable-causal.yaml", "sleep-accel+slpdb-wearable-offline.yaml"]
    for variant in ("causal", "offline"):
        cfg = load_config(config_path("sleep-accel+slpdb", variant, other))
        main = load_config(config_path("sleep-accel+slpdb", variant))
        assert cfg.apnoea_share == 0.5 and main.apnoea_share == 0.0
        assert cfg.model_copy(update={"apnoea_share": 0.0}) == main


def _tiny_configs(folder: Path) -> None:
    folder.mkdir()
    text = ("net: {n_filters: 8, dropout: 0.0}\nmax_steps: 6\nval_every_steps: 3\n"
            "batch_size: 2\ncrop_epochs: 40\nn_val_subjects: 1\n")
    for variant in ("causal", "offline"):
        (folder / f"sleep-accel-wearable-{variant}.yaml").write_text(text)


def test_loso_cli_end_to_end(tmp_path, monkeypatch):
    import training.run

    monkeypatch.setattr(training.run, "load_dataset", lambda *a, **k: synth_set(4))
    _tiny_configs(tmp_path / "cfg")
    out = tmp_path / "run"
    result = CliRunner().invoke(train_app, [
        "cv", "--dataset", "sleep-accel", "--data", str(tmp_path), "--out", str(out),
        "--variants", "causal,offline", "--folds", "loso", "--config-dir", str(tmp_path / "cfg"),
    ])
    assert result.exit_code == 0, result.output
    text = (out / "results.md").read_text()
    assert "| causal | 4 |" in text and "| offline | 3 |" in text
    assert (out / "predictions-causal.npz").is_file()
    assert (out / "figures" / "confusion-offline-4class.png").is_file()
    assert "pooled κ" in result.output


def test_an_ensemble_config_trains_members_from_successive_seeds():
    from models.nets import StagerEnsemble
    from training.config import TrainConfig
    from training.cv import fit_model, predict_nights

    nights = synth_set(4)
    cfg = TrainConfig(net={"n_filters": 8, "dropout": 0.0}, max_steps=4, val_every_steps=2,
                      batch_size=2, crop_epochs=None, n_val_subjects=1, seed=3, ensemble=2)
    fit = fit_model("wearable-offline", nights.nights[:3], nights.nights[3:], cfg)
    assert isinstance(fit.net, StagerEnsemble) and fit.net.n_members == 2
    assert len(fit.member_best_steps) == 2
    a, b = fit.net.members
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    single = fit_model("wearable-offline", nights.nights[:3], nights.nights[3:],
                       cfg.model_copy(update={"ensemble": 1}))
    # the first member is the single net of the same seed
    assert all(torch.equal(p, q)
               for p, q in zip(a.parameters(), single.net.parameters(), strict=True))
    probs = predict_nights(fit.net, nights.nights[3:])
    p = next(iter(probs.values()))
    assert p.shape == (len(nights.nights[3]), 4) and np.allclose(p.sum(1), 1.0, atol=1e-5)


def test_per_member_validation_draws_other_subjects_for_later_members():
    from training.config import TrainConfig
    from training.cv import fit_model, predict_nights, redraw_validation

    nights = synth_set(5).nights
    train, val = nights[:3], nights[3:4]
    picks = {frozenset(n.subject for n in redraw_validation(train, val, s)[1])
             for s in range(8)}
    assert all(len(p) == 1 for p in picks) and len(picks) > 1
    again = redraw_validation(train, val, 3)
    assert again == redraw_validation(train, val, 3)  # seeded
    assert sorted(n.night for n in again[0] + again[1]) == sorted(n.night for n in nights[:4])
    cfg = TrainConfig(net={"n_filters": 8, "dropout": 0.0}, max_steps=4, val_every_steps=2,
                      batch_size=2, crop_epochs=None, ensemble=3,
                      ensemble_validation="per_member")
    fit = fit_model("wearable-causal", train, val, cfg)
    assert fit.net.kind == "causal" and fit.net.n_members == 3
    p = predict_nights(fit.net, nights[4:])["s4"]
    assert p.shape == (len(nights[4]), 4) and np.allclose(p.sum(1), 1.0, atol=1e-5)
