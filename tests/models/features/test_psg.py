"""psg features from EEG measures: known values, gain invariance, batch = stream, gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.features import registry as reg
from models.features.psg import N_MEASURES, PsgFeatures, psg_features, spectral_features

NAMES = reg.FEATURE_GROUPS["eeg_spectrum"]
WIDTHS = np.array([3.5, 4.0, 5.0, 17.0, 20.0])  # delta .. gamma, Hz


def _night(n_epochs: int = 300, n_channels: int = 2, seed: int = 0) -> np.ndarray:
    """Plausible measures (uV^2/Hz, uV^2) with slow drifts, per channel and epoch."""
    rng = np.random.default_rng(seed)
    level = np.array([30.0, 4.0, 2.0, 0.6, 0.4])
    drift = np.sin(np.linspace(0, 6, n_epochs))[:, None, None]
    p = level * np.exp(0.6 * drift + 0.3 * rng.normal(size=(n_epochs, n_channels, 5)))
    var = 250.0 * np.exp(0.2 * rng.normal(size=(n_epochs, n_channels)))
    var_diff = var * rng.uniform(0.05, 0.4, size=(n_epochs, n_channels))
    return np.concatenate([p, var[..., None], var_diff[..., None]], axis=-1)


def test_spectral_features_of_a_flat_spectrum_are_known():
    d, var, var_diff = 10.0, 100.0, 25.0
    got = dict(zip(NAMES, spectral_features([d] * 5 + [var, var_diff]), strict=True))
    dens = d + reg.PSG_POWER_FLOOR_UV2_HZ
    share = WIDTHS / WIDTHS.sum()
    assert got["eeg_log_alpha"] == pytest.approx(np.log(dens))
    assert got["eeg_rel_beta"] == pytest.approx(np.log(share[3]))
    assert got["eeg_log_var"] == pytest.approx(np.log(var + reg.PSG_VAR_FLOOR_UV2))
    assert got["eeg_mobility"] == pytest.approx(np.sqrt(var_diff / (var + reg.PSG_VAR_FLOOR_UV2)))
    assert got["eeg_theta_alpha"] == pytest.approx(np.log(4.0 / 5.0))
    assert got["eeg_delta_beta"] == pytest.approx(np.log(3.5 / 17.0))
    assert got["eeg_slow_fast"] == pytest.approx(np.log(7.5 / 22.0))
    assert got["eeg_band_entropy"] == pytest.approx(-(share * np.log(share)).sum() / np.log(5))


def test_a_delta_dominated_epoch_reads_as_slow():
    deep = spectral_features([400.0, 20.0, 4.0, 0.5, 0.2, 2000.0, 50.0])
    awake = spectral_features([20.0, 6.0, 30.0, 3.0, 1.0, 300.0, 120.0])
    i = {n: k for k, n in enumerate(NAMES)}
    assert deep[i["eeg_delta_beta"]] > awake[i["eeg_delta_beta"]]
    assert deep[i["eeg_theta_alpha"]] > awake[i["eeg_theta_alpha"]]
    assert deep[i["eeg_mobility"]] < awake[i["eeg_mobility"]]
    assert deep[i["eeg_band_entropy"]] < awake[i["eeg_band_entropy"]]


def test_shares_ratios_and_night_relative_values_ignore_the_amplifier_gain():
    m = _night(200, 1) * 100.0  # well above the floors added before the logarithms
    louder = m * 4.0  # gain 2: every power and variance x 4
    a, b = psg_features(m).features[:, 0], psg_features(louder).features[:, 0]
    i = {n: k for k, n in enumerate(reg.feature_names("psg"))}
    scale_free = [n for n in i if n.startswith(("eeg_rel_", "eeg_theta", "eeg_delta", "eeg_slow",
                                                 "eeg_band", "eeg_mobility", "night_"))]
    cols = [i[n] for n in scale_free]
    # the floors are tiny next to these powers, so the invariance holds to ~1e-5 of them
    np.testing.assert_allclose(a[:, cols], b[:, cols], rtol=1e-4, atol=1e-4)
    assert np.allclose(b[:, i["eeg_log_delta"]] - a[:, i["eeg_log_delta"]], np.log(4.0),
                       atol=1e-4)


def test_night_relative_values_are_the_running_z_scores():
    m = _night(120, 1, seed=3)
    rows = psg_features(m).features[:, 0]
    spec = spectral_features(m[:, 0])
    n_spec = len(NAMES)
    for t in (1, 2, 10, 119):
        seen = spec[: t + 1]
        z = (spec[t] - seen.mean(0)) / np.sqrt(seen.var(0) + reg.PSG_NIGHT_VAR_FLOOR)
        expected = np.clip(z, -reg.PSG_NIGHT_CLIP, reg.PSG_NIGHT_CLIP) if t >= 1 else 0 * z
        np.testing.assert_allclose(rows[t, n_spec:], expected, rtol=1e-5, atol=1e-5)
    assert np.all(rows[0, n_spec:] == 0.0)  # fewer than PSG_NIGHT_MIN_EPOCHS epochs


def test_batch_equals_the_stream_bit_for_bit_through_a_state_round_trip():
    m = _night(400, 3, seed=5)
    m[50:53, 1] = np.nan  # a gap on one channel
    m[200, :] = np.nan  # an epoch without any channel
    batch = psg_features(m, ["C3-M2", "C4-M1", "Fpz-Cz"])
    live = PsgFeatures(["C3-M2", "C4-M1", "Fpz-Cz"])
    rows, present = [], []
    for e in range(400):
        if e in (1, 137, 399):  # checkpoint and restore as the stream does
            live = PsgFeatures.from_state(json.loads(json.dumps(live.to_state())))
        r = live.step(m[e])
        rows.append(r.features)
        present.append(r.present)
    assert np.array_equal(batch.features, np.array(rows))
    assert np.array_equal(batch.present, np.array(present))
    assert live.n_closed == 400 and batch.features.dtype == np.float32


def test_missing_measures_are_masked_and_left_out_of_the_night():
    m = _night(150, 2, seed=7)
    gappy = m.copy()
    gappy[40:60, 0] = np.nan
    gappy[70, 0, 3] = -1.0  # a negative power is no measure either
    out = psg_features(gappy)
    missing = list(range(40, 60)) + [70]
    assert not out.present[missing, 0].any() and out.present[:, 1].all()
    assert np.all(out.features[missing, 0] == 0.0)
    # channel 1 is untouched, and channel 0 equals the night without those epochs
    np.testing.assert_array_equal(out.features[:, 1], psg_features(m).features[:, 1])
    kept = np.setdiff1d(np.arange(150), missing)
    alone = psg_features(m[kept][:, :1]).features[:, 0]
    np.testing.assert_array_equal(out.features[kept, 0], alone)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unique labels"):
        PsgFeatures(["Cz", "Cz"])
    with pytest.raises(ValueError, match="one or more"):
        PsgFeatures([])
    with pytest.raises(ValueError, match=r"shape \(2, 7\).*'a', 'b'"):
        PsgFeatures(["a", "b"]).step(np.zeros((3, N_MEASURES)))
    with pytest.raises(ValueError, match=r"\(n_epochs, n_channels, 7\)"):
        psg_features(np.zeros((10, 7)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        spectral_features(np.zeros(6))
    state = PsgFeatures(["a"]).to_state()
    with pytest.raises(ValueError, match="feature_version"):
        PsgFeatures.from_state({**state, "feature_version": "0"})
    with pytest.raises(ValueError, match="corrupt"):
        PsgFeatures.from_state({**state, "night": state["night"] * 2})
