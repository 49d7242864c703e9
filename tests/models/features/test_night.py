"""Night-relative features: running statistics against a direct computation, state, edges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.features import registry as reg
from models.features.night import NightRelative


def _direct(x: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the covered epochs up to and including each one."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        if cov[t] < reg.NIGHT_REL_MIN_COVERAGE:
            continue
        past = x[: t + 1][cov[: t + 1] >= reg.NIGHT_REL_MIN_COVERAGE]
        if past.shape[0] < reg.NIGHT_REL_MIN_EPOCHS:
            continue
        z = (x[t] - past.mean(0)) / np.sqrt(past.var(0) + reg.NIGHT_REL_VAR_FLOOR)
        out[t] = np.clip(z, -reg.NIGHT_REL_CLIP, reg.NIGHT_REL_CLIP)
    return out


def test_running_values_equal_the_direct_computation():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, (300, 4)) * np.array([1.0, 10.0, 0.1, 3.0])
    x[:, 3] += np.linspace(0, 20, 300)  # a slow drift: the mean follows it
    cov = rng.uniform(0, 1, 300)
    cov[:5] = 0.0  # no data at first
    nr = NightRelative(4, "cardio")
    got = np.array([nr.step(x[t], float(cov[t])) for t in range(300)])
    np.testing.assert_allclose(got, _direct(x, cov), rtol=1e-9, atol=1e-9)
    assert np.all(got[cov < reg.NIGHT_REL_MIN_COVERAGE] == 0.0)


def test_outlier_is_clipped_and_constant_column_stays_finite():
    nr = NightRelative(2, "cardio")
    for _ in range(50):
        out = nr.step(np.array([1.0, 7.0]), 1.0)
    assert np.all(out == 0.0)
    out = nr.step(np.array([1.0e4, 7.0]), 1.0)
    assert out[0] == reg.NIGHT_REL_CLIP and out[1] == 0.0
    # non-finite input counts as 0 and never poisons the statistics
    out = nr.step(np.array([np.nan, np.inf]), 1.0)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(nr.mean))
    assert np.all(nr.step(np.array([1.0, 7.0]), float("nan")) == 0.0)


def test_state_round_trip_is_exact():
    rng = np.random.default_rng(5)
    a = NightRelative(3, "cardio")
    for _ in range(40):
        a.step(rng.normal(size=3), 1.0)
    b = NightRelative.from_state(json.loads(json.dumps(a.to_state())), "cardio")
    x = rng.normal(size=(20, 3))
    for row in x:
        assert np.array_equal(a.step(row, 1.0), b.step(row, 1.0))


def test_bad_shapes_and_states_are_named():
    with pytest.raises(ValueError, match="at least one column"):
        NightRelative(0, "cardio")
    with pytest.raises(ValueError, match="expects 3 values"):
        NightRelative(3, "cardio").step(np.zeros(2), 1.0)
    state = NightRelative(3, "cardio").to_state()
    state["m2"] = NightRelative(2, "cardio").to_state()["m2"]
    with pytest.raises(ValueError, match="corrupt"):
        NightRelative.from_state(state, "cardio")


def test_registry_names_every_rr_feature_but_coverage():
    rel = reg.FEATURE_GROUPS["hrv_night"]
    assert rel == tuple(f"rel_{n}" for n in reg.NIGHT_REL_BASE)
    assert not any("_cov_" in n for n in reg.NIGHT_REL_BASE)
    assert len(rel) == 29 and set(rel) <= set(reg.feature_names("cardio"))
