"""Batch == stream bit for bit, state round trips, causality, finiteness, input checks."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from ingestors.types import NOMINAL_START
from models.features import FeatureExtractor, compute_features, feature_names

from . import _synth as synth

N_EP = 240  # 2 h
DUR = N_EP * 30.0
GAPS = ((1800.0, 4000.0),)  # 36 min with no samples at all


def _night(seed: int, family: str, activity: str = "activity_counts") -> dict:
    rng = np.random.default_rng(seed)
    if family == "cardio":
        return {"rr": synth.rr(rng, DUR - 600, gaps=GAPS)}  # the stream stops 10 min early
    data = {"heart_rate": synth.heart_rate(rng, DUR - 600, gaps=GAPS)}
    if activity == "acceleration":
        data["acceleration"] = synth.acceleration(rng, 2400.0, gaps=((900.0, 1000.0),))
    else:
        data["activity_counts"] = synth.counts(rng, DUR, gaps=GAPS)
    return data


def _stream(family, data, seed, *, round_trip=False, start=synth.START, nominal=False):
    """Feed the samples in random chunks, some arriving early, closing epochs in order."""
    rng = np.random.default_rng(1000 + seed)
    ex = FeatureExtractor(family, start, start_is_nominal=nominal)
    ptr = dict.fromkeys(data, 0)
    rows = []
    for e in range(N_EP):
        end = (e + 1) * 30.0
        for m, arrays in data.items():
            t = arrays[0]
            target = int(np.searchsorted(t, end + rng.uniform(0, 120)))  # up to 2 min early
            while ptr[m] < target:
                b = min(target, ptr[m] + int(rng.integers(1, 40)))
                chunk = [a[ptr[m]:b] for a in arrays]
                if m == "rr":
                    ex.add_samples("rr", chunk[0], chunk[1], beat_types=chunk[2])
                else:
                    ex.add_samples(m, chunk[0], chunk[1])
                ptr[m] = b
        if round_trip and rng.random() < 0.2:
            ex = FeatureExtractor.from_state(json.loads(json.dumps(ex.to_state())))
        rows.append(ex.close_epoch())
    return np.array(rows)


@pytest.mark.parametrize(("family", "activity", "seed"), [
    ("wearable", "activity_counts", 0), ("wearable", "activity_counts", 1),
    ("wearable", "acceleration", 2), ("cardio", None, 3), ("cardio", None, 4),
])
def test_batch_equals_stream_bitwise(family, activity, seed):
    data = _night(seed, family, activity)
    batch = compute_features(family, synth.START, N_EP, **data)
    assert batch.dtype == np.float32 and batch.shape == (N_EP, len(feature_names(family)))
    assert np.all(np.isfinite(batch))
    stream = _stream(family, data, seed)
    assert np.array_equal(batch, stream)
    restored = _stream(family, data, seed, round_trip=True)
    assert np.array_equal(batch, restored)


@pytest.mark.parametrize(("family", "activity"), [
    ("wearable", "activity_counts"), ("wearable", "acceleration"), ("cardio", None),
])
def test_future_samples_never_change_past_rows(family, activity):
    data = _night(5, family, activity)
    full = compute_features(family, synth.START, N_EP, **data)
    for cut in (1234.5, 2400.0, 5000.01):
        part = {m: tuple(a[a_t < cut] for a in arrs) for m, arrs in data.items()
                for a_t in [arrs[0]]}
        rows = compute_features(family, synth.START, N_EP, **part)
        done = int(cut // 30)  # epochs that ended before the cut
        assert np.array_equal(rows[:done], full[:done])
        assert not np.array_equal(rows, full)


def test_state_round_trip_mid_night_continues_identically():
    data = _night(6, "wearable", "acceleration")
    ex = FeatureExtractor("wearable", synth.START)
    for m, (t, v) in data.items():
        ex.add_samples(m, t[t < 1500.0], v[t < 1500.0])  # the open epoch holds pending data
    first = [ex.close_epoch() for _ in range(45)]
    text = json.dumps(ex.to_state())
    twin = FeatureExtractor.from_state(json.loads(text))
    assert twin.n_closed == ex.n_closed == 45
    for m, (t, v) in data.items():
        for e in (ex, twin):
            e.add_samples(m, t[t >= 1500.0], v[t >= 1500.0])
    a = np.array([ex.close_epoch() for _ in range(N_EP - 45)])
    b = np.array([twin.close_epoch() for _ in range(N_EP - 45)])
    assert np.array_equal(a, b)
    assert np.array_equal(np.vstack([first, a]), compute_features("wearable", synth.START, N_EP,
                                                                  **data))
    assert json.loads(text)["feature_version"] == "4"


def test_state_is_compact():
    rng = np.random.default_rng(8)
    ex = FeatureExtractor("cardio", synth.START)
    t, rr, bt = synth.rr(rng, 3000.0)
    ex.add_samples("rr", t, rr, beat_types=bt)
    for _ in range(100):
        ex.close_epoch()
    for _ in range(200):
        ex.close_epoch()
    # ~5 min of beats and one hour of per-epoch heart-rate sums; never the night
    assert len(json.dumps(ex.to_state())) < 22_000
    ex = FeatureExtractor("wearable", synth.START)
    ex.add_samples("heart_rate", *synth.heart_rate(rng, 3000.0))
    ex.add_samples("acceleration", *synth.acceleration(rng, 3015.0))
    for _ in range(100):
        ex.close_epoch()
    assert len(json.dumps(ex.to_state())) < 25_000  # 60 min of HR; filter state, not raw data


@pytest.mark.parametrize("family", ["wearable", "cardio"])
def test_edge_cases_stay_finite_and_equal(family):
    cases = [{}]  # no data at all
    if family == "wearable":
        cases += [
            {"heart_rate": (np.array([45.0]), np.array([70.0]))},  # one sample only
            {"heart_rate": (np.array([-20.0, 10.0, 10.0, 5000.0]), np.array([70.0, 300.0, 71, 69])),
             "activity_counts": (np.array([0.0, 15.0]), np.array([np.nan, 1e30]))},
            {"acceleration": (np.array([1.0, 2.0]), np.ones((2, 3)))},
        ]
    else:
        cases += [
            {"rr": (np.array([1.0]), np.array([1.0]), None)},
            {"rr": (np.array([1.0, 2.0, 2.5]), np.array([1.0, 1.0, 0.5]), np.array([1, 0, 0]))},
        ]
    for data in cases:
        batch = compute_features(family, synth.START, 300, **data)
        assert np.all(np.isfinite(batch))
        ex = FeatureExtractor(family, synth.START)
        for m, arrays in data.items():
            ex.add_samples(m, *arrays)
        assert np.array_equal(batch, np.array([ex.close_epoch() for _ in range(300)]))


def test_missing_input_gives_neutral_values_and_zero_coverage():
    names = feature_names("wearable")
    rows = compute_features("wearable", synth.START, 10)
    for name, value in zip(names, rows[5], strict=True):
        if not name.startswith("clock_"):
            assert value == 0.0, name


def test_nominal_start_masks_time_of_day():
    rows = compute_features("cardio", NOMINAL_START, 3, start_is_nominal=True)
    names = feature_names("cardio")
    col = {n: rows[:, names.index(n)] for n in names if n.startswith("clock_")}
    np.testing.assert_array_equal(col["clock_known"], 0.0)
    np.testing.assert_array_equal(col["clock_tod_sin"], 0.0)
    np.testing.assert_allclose(col["clock_hours"], [0.0, 30 / 3600, 60 / 3600], rtol=1e-6)


def test_late_and_malformed_samples_are_rejected():
    ex = FeatureExtractor("wearable", synth.START)
    ex.add_samples("heart_rate", [10.0, 20.0], [60.0, 61.0])
    ex.close_epoch()
    ex.add_samples("heart_rate", [31.0], [60.0])
    with pytest.raises(ValueError, match=r"heart_rate samples from t=29\.000 s"):
        ex.add_samples("heart_rate", [29.0, 35.0], [60.0, 60.0])
    ex.add_samples("heart_rate", [30.5], [60.0])  # late but inside the open epoch: merged
    with pytest.raises(ValueError, match="non-decreasing"):
        ex.add_samples("heart_rate", [40.0, 39.0], [60.0, 60.0])
    with pytest.raises(ValueError, match="finite"):
        ex.add_samples("heart_rate", [np.nan], [60.0])
    with pytest.raises(ValueError, match="shape"):
        ex.add_samples("heart_rate", [40.0, 41.0], [60.0])
    with pytest.raises(ValueError, match="modality 'rr'"):
        ex.add_samples("rr", [40.0], [1.0])
    with pytest.raises(ValueError, match="beat_types"):
        ex.add_samples("heart_rate", [40.0], [60.0], beat_types=["N"])
    ex.add_samples("acceleration", [40.0, 40.1], np.ones((2, 3)))
    with pytest.raises(ValueError, match="one activity source"):
        ex.add_samples("activity_counts", [45.0], [3.0])
    with pytest.raises(ValueError, match="time order"):
        ex.add_samples("acceleration", [40.05], np.ones((1, 3)))
    cardio = FeatureExtractor("cardio", synth.START)
    with pytest.raises(ValueError, match="beat_types must have shape"):
        cardio.add_samples("rr", [1.0, 2.0], [1.0, 1.0], beat_types=["N"])


def test_constructor_and_state_checks():
    with pytest.raises(ValueError, match="family"):
        FeatureExtractor("psg", synth.START)
    with pytest.raises(ValueError, match="timezone-aware"):
        FeatureExtractor("wearable", datetime(2024, 1, 1, 23))  # noqa: DTZ001
    with pytest.raises(ValueError, match="multiple"):
        FeatureExtractor("wearable", synth.START, epoch_s=20.0)
    with pytest.raises(ValueError, match="epoch_s"):
        FeatureExtractor("cardio", synth.START, epoch_s=0.0)
    with pytest.raises(ValueError, match="n_epochs"):
        compute_features("cardio", synth.START, -1)
    with pytest.raises(ValueError, match="not both"):
        compute_features("wearable", synth.START, 2, activity_counts=([0.0], [1.0]),
                         acceleration=([0.0], [[0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="modality 'rr'"):
        compute_features("wearable", synth.START, 2, rr=([1.0], [1.0], None))
    state = FeatureExtractor("cardio", synth.START).to_state()
    state["feature_version"] = "0"
    with pytest.raises(ValueError, match="feature_version"):
        FeatureExtractor.from_state(state)
    assert FeatureExtractor("cardio", synth.START, epoch_s=20.0).close_epoch().size == 65
    ex = FeatureExtractor("cardio", synth.START)
    ex.close_epoch()
    state = json.loads(json.dumps(ex.to_state()))
    state["rr"]["ep"] = state["rr"]["ep"][:-3]  # one epoch's heart-rate sums lost
    with pytest.raises(ValueError, match="epoch sums"):
        FeatureExtractor.from_state(state)


def test_out_of_order_chunks_inside_the_open_epoch_are_merged():
    rng = np.random.default_rng(9)
    t, bpm = synth.heart_rate(rng, 3000.0)
    batch = compute_features("wearable", synth.START, 100, heart_rate=(t, bpm))
    ex = FeatureExtractor("wearable", synth.START)
    rows = []
    for e in range(100):
        sel = np.flatnonzero((t >= e * 30.0) & (t < (e + 1) * 30.0))
        parts = np.array_split(sel, 3)
        for i in rng.permutation(3):  # the epoch's chunks in shuffled order
            ex.add_samples("heart_rate", t[parts[i]], bpm[parts[i]])
        rows.append(ex.close_epoch())
    assert np.array_equal(batch, np.array(rows))


def test_the_package_imports_only_numpy_numba_and_the_standard_library():
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import models.features

    allowed = {"__future__", "base64", "collections", "datetime", "hashlib", "json", "math",
               "types", "typing", "zoneinfo", "numpy", "numba", "models", "ingestors"}
    for path in Path(models.features.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, (path.name, roots)
    # numba itself may import scipy where it is installed; torch must never come in
    code = "import sys, models.features; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
