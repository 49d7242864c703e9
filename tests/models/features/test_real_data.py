"""Features on the real recordings in ../shared/data: finite, batch == stream, and sensible."""

from __future__ import annotations

import numpy as np
import pytest

from ingestors.types import NOMINAL_START
from models.features import FeatureExtractor, compute_features, feature_names

pytestmark = pytest.mark.shared_data

def _sleep_accel(root, subject):
    base = root / "sleep-accel-walch-cropped" / "cropped" / subject
    hr = np.loadtxt(f"{base}_cleaned_hr.out")
    counts = np.loadtxt(f"{base}_cleaned_counts.out", delimiter=",")
    psg = np.loadtxt(f"{base}_cleaned_psg.out")
    return (hr[:, 0], hr[:, 1]), (counts[:, 0], counts[:, 1]), psg[:, 1].astype(int)


def _seconds(stamp: str) -> float:
    total = 0.0
    for part in stamp.strip().split(":"):
        total = total * 60 + float(part)
    return total


def _slpdb_rr(root, record):
    rows = [line.split("\t") for line in (root / "slpdb" / f"{record}.rr").read_text().splitlines()]
    t = np.array([_seconds(r[4]) for r in rows])
    return t, np.array([float(r[2]) for r in rows]), np.array([r[3].strip() for r in rows])


def test_sleep_accel_features_follow_sleep_physiology(shared_data):
    """Over all subjects: wake moves most; heart rate is steadiest in N3 (mean per subject)."""
    names = feature_names("wearable")
    act, hr_std = names.index("act_log_mean_150s"), names.index("hr_std_300s")
    stage_sets = {"W": (0,), "N2": (2,), "N3": (3, 4), "REM": (5,)}
    means = {}
    files = sorted((shared_data / "sleep-accel-walch-cropped" / "cropped").glob("*_hr.out"))
    assert len(files) == 31
    for path in files:
        heart, counts, stages = _sleep_accel(shared_data, path.name.split("_")[0])
        rows = compute_features("wearable", NOMINAL_START, stages.size, heart_rate=heart,
                                activity_counts=counts, start_is_nominal=True)
        assert np.all(np.isfinite(rows))
        for label, codes in stage_sets.items():
            sel = np.isin(stages, codes)
            if sel.any():
                means.setdefault(("act", label), []).append(float(rows[sel, act].mean()))
                means.setdefault(("std", label), []).append(float(rows[sel, hr_std].mean()))
    m = {key: np.mean(v) for key, v in means.items()}
    assert m["act", "W"] > 3 * max(m["act", "N2"], m["act", "N3"], m["act", "REM"])
    assert m["std", "N3"] < m["std", "N2"] < m["std", "W"]
    assert m["std", "N3"] < m["std", "REM"]


def test_sleep_accel_stream_equals_batch(shared_data):
    heart, counts, stages = _sleep_accel(shared_data, "7749105")  # counts stop after ~67 min
    batch = compute_features("wearable", NOMINAL_START, stages.size, heart_rate=heart,
                             activity_counts=counts, start_is_nominal=True)
    ex = FeatureExtractor("wearable", NOMINAL_START, start_is_nominal=True)
    rows = []
    for e in range(stages.size):
        lo, hi = e * 30.0, (e + 1) * 30.0
        for m, (t, v) in (("heart_rate", heart), ("activity_counts", counts)):
            sel = (t >= lo) & (t < hi)
            ex.add_samples(m, t[sel], v[sel])
        rows.append(ex.close_epoch())
    assert np.array_equal(batch, np.array(rows))
    cov = batch[:, feature_names("wearable").index("act_cov_600s")]
    assert cov[100] == 1.0 and cov[-1] == 0.0


def test_slpdb_beats(shared_data):
    t, rr, types = _slpdb_rr(shared_data, "slp03")
    assert np.any(types != "N")
    n_epochs = int(t[-1] // 30)
    rows = compute_features("cardio", NOMINAL_START, n_epochs, rr=(t, rr, types),
                            start_is_nominal=True)
    assert np.all(np.isfinite(rows))
    names = feature_names("cardio")
    cov = rows[10:, names.index("rr_cov_300s")]
    assert np.median(cov) > 0.9
    sdnn_ms = np.expm1(rows[10:, names.index("rr_sdnn_300s")].astype(float))
    assert 10 < np.median(sdnn_ms) < 200
