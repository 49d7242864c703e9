"""The causal R-peak detector on generated ECG with known beat times."""

from __future__ import annotations

import numpy as np
import pytest

from ingestors.live_edf.rpeaks import RPeakDetector
from tests.ingestors._live_edf_data import synth_ecg

MATCH_S = 0.075  # a detection within 75 ms of a beat counts as that beat


def score(found_s: np.ndarray, beats_s: np.ndarray) -> tuple[float, float, float]:
    """Sensitivity, positive predictivity and largest timing error (s) of matched beats."""
    errors = []
    used = set()
    for b in beats_s:
        k = int(np.argmin(np.abs(found_s - b))) if found_s.size else -1
        if k >= 0 and k not in used and abs(found_s[k] - b) <= MATCH_S:
            used.add(k)
            errors.append(abs(found_s[k] - b))
    tp = len(errors)
    return tp / beats_s.size, tp / max(found_s.size, 1), max(errors, default=np.inf)


@pytest.mark.parametrize(("fs", "seed", "noise_mv", "wander_mv"),
                         [(256, 1, 0.03, 0.3), (500, 2, 0.03, 0.3), (256, 3, 0.08, 0.8),
                          (500, 4, 0.08, 0.8)])
def test_beats_are_found_on_time(fs: int, seed: int, noise_mv: float, wander_mv: float) -> None:
    x, beats = synth_ecg(fs, 600, seed=seed, noise_mv=noise_mv, wander_mv=wander_mv)
    found = RPeakDetector(fs).process(x) / fs
    assert np.all(np.diff(found) > 0.25)  # refractory period
    se, ppv, worst = score(found, beats)
    assert se >= 0.99 and ppv >= 0.99, (se, ppv)
    assert worst <= 0.010


def test_the_result_does_not_depend_on_the_chunks() -> None:
    x, _ = synth_ecg(256, 300, seed=5)
    whole = RPeakDetector(256).process(x)
    rng = np.random.default_rng(0)
    for _ in range(3):
        detector, parts, i = RPeakDetector(256), [], 0
        while i < x.size:
            n = int(rng.integers(1, 2000))
            parts.append(detector.process(x[i:i + n]))
            i += n
        assert np.array_equal(np.concatenate(parts), whole)
        assert detector.n_samples == x.size


def test_the_kernel_equals_its_python_reference() -> None:
    x, _ = synth_ecg(256, 60, seed=6, noise_mv=0.05)
    compiled = RPeakDetector(256).process(x)
    reference = RPeakDetector(256, compiled=False)
    assert np.array_equal(np.concatenate([reference.process(x[:7000]),
                                          reference.process(x[7000:])]), compiled)


def test_the_scale_of_the_ecg_does_not_matter() -> None:
    x, _ = synth_ecg(256, 120, seed=7)
    assert np.array_equal(RPeakDetector(256).process(x * 1000.0),
                          RPeakDetector(256).process(x))


def test_a_slow_or_bad_signal_is_refused() -> None:
    with pytest.raises(ValueError, match=r">= 100 Hz; got fs=50"):
        RPeakDetector(50)
    with pytest.raises(ValueError, match="finite"):
        RPeakDetector(256).process(np.array([0.0, np.nan]))
