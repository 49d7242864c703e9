"""Any subset of inputs, several cohorts: subsets of nights, input dropout, cohort folds,
a watch's heart rate from SLPDB beats, the logistic regression per input set.

Synthetic nights (tests/training/_synth.py) carry a known answer; the SLPDB and Sleep-Accel
readers are exercised on the real excerpts of tests/data where the loaders need them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from ingestors.wfdb_text import Beats
from tests.training._synth import N_FEATURES, synth_night
from training.baselines import logreg_baseline
from training.cv import make_folds
from training.datamodules import CropDataset, draw_weights
from training.datasets.base import Night, NightSet
from training.datasets.slpdb import watch_heart_rate

T0 = datetime(2024, 1, 1, 22, tzinfo=UTC)


def two_input_night(night: str, subject: str, cohort: str, seed: int) -> Night:
    """A night with heart rate and activity; its subsets carry half of the answer each."""
    base = synth_night(night, subject, seed=seed)
    hr_only, act_only = base.features.copy(), base.features.copy()
    hr_only[:, 1:3] = 0.0  # the "activity" columns are missing without activity
    act_only[:, 0] = 0.0
    return replace(base, cohort=cohort, inputs=("activity", "heart_rate"),
                   subsets={("heart_rate",): hr_only, ("activity",): act_only})


def cohorts_set() -> NightSet:
    accel = [two_input_night(f"a{i}", f"a{i}", "sleep-accel", i) for i in range(5)]
    slpdb = [replace(synth_night(f"r{i}", f"r{i}", seed=10 + i), cohort="slpdb",
                     inputs=("heart_rate",)) for i in range(3)]
    names = tuple(f"f{i}" for i in range(N_FEATURES))
    return NightSet("two-cohorts", "wearable", names, (*accel, *slpdb))


def test_input_views_name_each_cohort_and_input_set() -> None:
    nights = cohorts_set()
    views = nights.input_views()
    assert sorted(views) == ["sleep-accel-activity", "sleep-accel-activity+heart_rate",
                             "sleep-accel-heart_rate", "slpdb-heart_rate"]
    hr = views["sleep-accel-heart_rate"]
    assert [n.night for n in hr] == [f"a{i}" for i in range(5)]
    assert all(n.inputs == ("heart_rate",) and not n.subsets for n in hr)
    assert np.array_equal(hr.nights[0].features, nights.nights[0].subsets[("heart_rate",)])
    assert views["slpdb-heart_rate"].nights[0] is nights.nights[5]


def test_a_subset_must_have_the_nights_shape() -> None:
    base = synth_night("x", "x")
    with pytest.raises(ValueError, match="features from heart_rate have shape"):
        replace(base, inputs=("activity", "heart_rate"),
                subsets={("heart_rate",): base.features[:10]})
    with pytest.raises(KeyError):
        base.with_inputs(("rr",))


def test_cohort_folds_draw_validation_from_every_cohort_and_loco() -> None:
    nights = cohorts_set()
    folds = make_folds(nights.subjects, "loso", n_val_subjects=3, cohorts=nights.cohorts)
    assert len(folds) == 8
    for f in folds:
        cohorts = {nights.cohorts[s] for s in f.val}
        assert cohorts == {"sleep-accel", "slpdb"}, f
        assert not set(f.val) & set(f.test) and not set(f.train) & set(f.val)
    loco = make_folds(nights.subjects, "loco", n_val_subjects=2, cohorts=nights.cohorts)
    assert [set(f.test) for f in loco] == [{f"a{i}" for i in range(5)},
                                          {f"r{i}" for i in range(3)}]
    assert {nights.cohorts[s] for s in (*loco[0].train, *loco[0].val)} == {"slpdb"}
    with pytest.raises(ValueError, match="at least 2 cohorts"):
        make_folds(["a", "b", "c"], "loco", cohorts={"a": "x", "b": "x", "c": "x"})
    # one cohort: the same folds as without cohorts
    single = [f"s{i}" for i in range(6)]
    assert make_folds(single, "loso", cohorts=dict.fromkeys(single, "one")) == \
        make_folds(single, "loso")


def test_input_dropout_draws_the_subsets_and_cohorts_get_equal_shares() -> None:
    nights = cohorts_set().nights
    always = CropDataset(nights[:1], None, 40, seed=1, input_dropout=1.0)
    subsets = [a.tobytes() for a in nights[0].subsets.values()]
    drawn = [always[i][0].tobytes() for i in range(40)]
    assert set(drawn) == set(subsets)  # both subsets, never the full rows
    never = CropDataset(nights[:1], None, 5, seed=1)
    assert all(np.array_equal(never[i][0], nights[0].features) for i in range(5))
    p = draw_weights(nights, cohort_balance=True)
    assert p[:5].sum() == pytest.approx(0.5) and p[5:].sum() == pytest.approx(0.5)
    assert draw_weights(nights, cohort_balance=False).sum() == pytest.approx(1.0)


def test_watch_heart_rate_from_beats() -> None:
    t = np.arange(1.0, 61.0)  # a beat every second: 60 bpm
    types = np.array(["N"] * t.size)
    types[20] = "V"  # an ectopic beat: its interval and the next are not normal-to-normal
    t = np.concatenate([t, np.arange(90.0, 100.0, 0.5)])  # a 30-s gap, then 120 bpm
    types = np.concatenate([types, np.array(["N"] * 20)])
    rr = np.diff(np.concatenate([[0.0], t]))
    prev = np.concatenate([[""], types[:-1]])
    beats = Beats("x", t, rr, types, prev, T0)
    ts, bpm = watch_heart_rate(beats, window_s=5.0)
    assert np.all(np.diff(ts) >= 5.0) and np.all(ts % 5.0 == 0)
    assert np.allclose(bpm[ts <= 60.0], 60.0)
    assert not np.any((ts > 65.0) & (ts < 90.0))  # no sample while no beat was normal
    assert np.allclose(bpm[ts >= 95.0], 120.0)
    smooth_t, smooth = watch_heart_rate(beats)  # 15 s: the ramp from 60 to 120 bpm is slower
    assert np.allclose(smooth[smooth_t <= 60.0], 60.0)
    assert smooth[smooth_t == 95.0] == pytest.approx(120.0)
    assert not np.any((smooth_t > 75.0) & (smooth_t < 90.0))


def test_logistic_regression_per_input_set() -> None:
    nights = cohorts_set()
    views = {k: v for k, v in nights.input_views().items()
             if k != "sleep-accel-activity+heart_rate"}
    out = logreg_baseline(nights, views=views)
    assert sorted(out) == ["logreg", "logreg-sleep-accel-activity",
                           "logreg-sleep-accel-heart_rate", "logreg-slpdb-heart_rate"]
    probs, stages, meta = out["logreg-sleep-accel-heart_rate"]
    assert sorted(probs) == [f"a{i}" for i in range(5)] and len(meta) == 5
    assert probs["a0"].shape == (len(nights.nights[0]), 4)
    # heart rate alone still tells wake (column 0), activity alone not
    for name in ("logreg-sleep-accel-heart_rate", "logreg-sleep-accel-activity"):
        p, s, _ = out[name]
        wake = np.concatenate([s[k] == 0 for k in p])
        called = np.concatenate([p[k].argmax(1) == 0 for k in p])
        share = called[wake].mean()
        assert (share > 0.8) if name.endswith("heart_rate") else (share < 0.8), (name, share)


def test_shipped_cards_list_the_input_sets_the_cv_scored(tmp_path) -> None:
    import json

    from training.ship import input_sets

    def scores(kappa: float) -> dict[str, dict[str, dict[str, float]]]:
        return {str(k): {"pooled": {"kappa": kappa - k / 100}} for k in (4, 3, 2)}

    results = {"offline": scores(0.6), "offline-sleep-accel-activity+heart_rate": scores(0.55),
               "offline-sleep-accel-heart_rate": scores(0.5),
               "offline-slpdb-heart_rate": scores(0.4)}
    (tmp_path / "results.json").write_text(json.dumps(results))
    sets = input_sets(cohorts_set(), tmp_path, "offline")
    assert [s.inputs for s in sets] == [("activity", "heart_rate"), ("heart_rate",)]
    both, hr = sets
    assert both.cohorts == ("sleep-accel",)
    assert hr.cohorts == ("sleep-accel", "slpdb")
    assert hr.cv_metrics == pytest.approx({
        "kappa_4class_sleep-accel": 0.46, "kappa_3class_sleep-accel": 0.47,
        "kappa_2class_sleep-accel": 0.48, "kappa_4class_slpdb": 0.36,
        "kappa_3class_slpdb": 0.37, "kappa_2class_slpdb": 0.38})
    # activity alone was not scored: not listed. One cohort: its main results stand for
    # the nights' full inputs.
    single = NightSet("one", "wearable", cohorts_set().feature_names, cohorts_set().nights[:5])
    (tmp_path / "results.json").write_text(json.dumps({"causal": scores(0.5)}))
    (only,) = input_sets(single, tmp_path, "causal")
    assert only.inputs == ("activity", "heart_rate")
    assert only.cv_metrics["kappa_3class_sleep-accel"] == pytest.approx(0.47)
