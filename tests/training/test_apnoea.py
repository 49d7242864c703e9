"""Sleep apnoea simulated on a healthy sleeper's heart rate: the swings, the nights that
carry the simulated rows, how training draws and validates on them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.stages import Stage
from tests.training._synth import synth_night
from training.cv import validation_nights
from training.datamodules import CropDataset
from training.datasets.apnoea import (
    APNOEA_CYCLE_S,
    APNOEA_SWING_BPM,
    apnoea_heart_rate,
    apnoea_seed,
)

EPOCHS = 240  # two hours of 30-s epochs


def night_stages() -> np.ndarray:
    """An hour of wake, an hour of N2, then unscored for the last 20 epochs."""
    stages = np.full(EPOCHS, Stage.N2, dtype=np.int8)
    stages[:120] = Stage.W
    stages[-20:] = Stage.UNSCORED
    return stages


def heart_rate() -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, EPOCHS * 30.0, 5.0)
    return t, np.full(t.size, 60.0)


def test_swings_only_in_sleep_within_the_ranges() -> None:
    t, bpm = heart_rate()
    out = apnoea_heart_rate(t, bpm, night_stages(), np.random.default_rng(0), share=1.0)
    offset = out - bpm
    wake, sleep, unscored = t < 3600, (t >= 3600) & (t < 220 * 30), t >= 220 * 30
    assert np.all(offset[wake] == 0) and np.all(offset[unscored] == 0)
    assert np.count_nonzero(offset[sleep]) > 0.95 * sleep.sum()
    assert np.abs(offset).max() <= APNOEA_SWING_BPM[1] / 2 + 1e-9
    # slow fall, fast rise: about three quarters of the steps go down
    steps = np.diff(offset[sleep])
    assert 0.6 < np.mean(steps < 0) < 0.9
    # the swing repeats within the cycle lengths: the strongest autocorrelation lag
    x = offset[sleep][:360] - offset[sleep][:360].mean()
    ac = np.correlate(x, x, "full")[x.size:]
    lag_s = (np.argmax(ac[2:]) + 3) * 5.0
    assert APNOEA_CYCLE_S[0] - 5 <= lag_s <= 2 * APNOEA_CYCLE_S[1]
    assert np.array_equal(bpm, np.full(t.size, 60.0))  # input untouched


def test_share_and_seed() -> None:
    t, bpm = heart_rate()
    none = apnoea_heart_rate(t, bpm, night_stages(), np.random.default_rng(0), share=0.0)
    assert np.array_equal(none, bpm)
    a = apnoea_heart_rate(t, bpm, night_stages(), np.random.default_rng(apnoea_seed("x")))
    b = apnoea_heart_rate(t, bpm, night_stages(), np.random.default_rng(apnoea_seed("x")))
    assert np.array_equal(a, b) and apnoea_seed("x") != apnoea_seed("y")
    with pytest.raises(ValueError, match="must have one shape"):
        apnoea_heart_rate(t, bpm[:-1], night_stages(), np.random.default_rng(0))


def with_apnoea(seed: int = 0):
    night = synth_night("n", "s", seed=seed)
    return replace(night, inputs=("heart_rate",),
                   simulated_apnoea=night.features + np.float32(1.0))


def test_night_carries_apnoea_rows_for_training_only() -> None:
    night = with_apnoea()
    other = night.as_simulated_apnoea()
    assert other.night == "n~apnoea" and other.simulated_apnoea is None
    assert np.array_equal(other.features, night.simulated_apnoea)
    assert np.array_equal(other.stages, night.stages)
    with pytest.raises(ValueError, match="has no simulated-apnoea rows"):
        other.as_simulated_apnoea()
    with pytest.raises(ValueError, match="simulated apnoea have shape"):
        replace(night, simulated_apnoea=night.features[:5])
    two = replace(night, inputs=("activity", "heart_rate"),
                  subsets={("heart_rate",): night.features})
    assert two.with_inputs(("heart_rate",)).simulated_apnoea is None  # views never see it


def test_crops_draw_apnoea_rows_at_their_share_and_validation_adds_them() -> None:
    night = with_apnoea()
    always = CropDataset([night], None, 20, seed=2, apnoea_share=1.0)
    assert all(np.array_equal(always[i][0], night.simulated_apnoea) for i in range(20))
    half = CropDataset([night], None, 400, seed=2, apnoea_share=0.5)
    drawn = np.mean([np.array_equal(half[i][0], night.simulated_apnoea) for i in range(400)])
    assert 0.4 < drawn < 0.6
    never = CropDataset([night], None, 20, seed=2)
    assert all(np.array_equal(never[i][0], night.features) for i in range(20))
    plain = synth_night("p", "p", seed=1)
    assert [n.night for n in validation_nights([night, plain], 0.5)] == ["n", "p", "n~apnoea"]
    assert [n.night for n in validation_nights([night, plain], 0.0)] == ["n", "p"]


def test_sleep_accel_nights_get_apnoea_rows_from_their_heart_rate(test_data) -> None:
    from models.features import feature_names
    from training.datasets import load_sleep_accel

    folder = test_data / "sleep-accel" / "cropped"
    plain = load_sleep_accel(folder, progress=False).nights[0]
    assert plain.simulated_apnoea is None
    night = load_sleep_accel(folder, progress=False, simulate_apnoea=True).nights[0]
    again = load_sleep_accel(folder, progress=False, simulate_apnoea=True).nights[0]
    assert np.array_equal(night.simulated_apnoea, again.simulated_apnoea)
    names = feature_names("wearable")
    hr_only, sim = night.subsets[("heart_rate",)], night.simulated_apnoea
    hr = [i for i, n in enumerate(names) if n.startswith("hr_")]
    other = [i for i, n in enumerate(names) if not n.startswith("hr_")]
    assert np.array_equal(sim[:, other], hr_only[:, other])  # no activity, same clock
    asleep = night.labels(2) == 1
    std = names.index("hr_std_300s")
    assert np.median(sim[asleep, std]) > np.median(hr_only[asleep, std])
    assert not np.array_equal(sim[:, hr], hr_only[:, hr])
