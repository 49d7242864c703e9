"""The Sleep-EDF reader: physical measures, the epoch grid with its gaps, and the crop."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from ingestors.hypnogram_io import read_edf_hypnogram
from models.features.psg import psg_features
from models.stages import Stage
from training.datasets.sleep_edf import (
    CROP_WAKE_EPOCHS,
    SLEEP_EDF_CHANNELS,
    load_sleep_edf,
    night_from_sleep_edf,
    read_spectral_measures,
)

# shared/data/README.md section 6: rows per night in the sleep period +- 30 min. SC4092E0's
# table entry is 1,105: one epoch more than +- 60 epochs around its sleep holds.
CROPPED_ROWS = {
    "SC4001E0": 841, "SC4002E0": 1127, "SC4011E0": 293, "SC4012E0": 1186, "SC4021E0": 1025,
    "SC4022E0": 1009, "SC4031E0": 952, "SC4032E0": 911, "SC4041E0": 1235, "SC4042E0": 1200,
    "SC4051E0": 672, "SC4052E0": 1246, "SC4061E0": 843, "SC4062E0": 1016, "SC4071E0": 976,
    "SC4072E0": 1273, "SC4081E0": 1134, "SC4082E0": 1054, "SC4091E0": 1132, "SC4092E0": 1104,
}


@pytest.fixture(scope="module")
def excerpt(test_data: Path) -> Path:
    """SC4001E0: the first 1,802 rows (columns 0-17) beside its hypnogram."""
    return test_data / "sleep-edf"


def test_measures_are_the_physical_values_of_the_stored_logarithms(excerpt: Path):
    path = excerpt / "eeg-spectral-features" / "SC4001E0.npz"
    measures, y = read_spectral_measures(path)
    with np.load(path) as z:
        x = z["X"]
    assert measures.shape == (1802, 2, 7) and y.shape == (1802,)
    assert np.all(measures > 0)
    for c in range(2):
        volts2 = measures[:, c] * 1e-12  # uV^2 -> V^2
        np.testing.assert_allclose(np.log(volts2[:, :5] + 1e-10), x[:, 9 * c: 9 * c + 5],
                                   rtol=0, atol=1e-9)
        mobility = np.sqrt(volts2[:, 6] / (volts2[:, 5] + 1e-10))
        np.testing.assert_allclose(mobility, x[:, 9 * c + 8], rtol=1e-9)
    # typical EEG: delta power tens of uV^2/Hz, a variance of hundreds of uV^2
    assert 5 < np.median(measures[:, :, 0]) < 200 and 50 < np.median(measures[:, :, 5]) < 2000


def test_a_cropped_night_starts_30_min_before_sleep(excerpt: Path):
    night = load_sleep_edf(excerpt, progress=False).nights[0]
    hyp = read_edf_hypnogram(excerpt / "SC4001EC-Hypnogram.edf")
    asleep = np.flatnonzero(hyp.stages > 0)
    assert len(night) == CROPPED_ROWS["SC4001E0"]
    assert night.start == hyp.start + timedelta(seconds=30 * int(asleep[0] - CROP_WAKE_EPOCHS))
    assert night.features.shape == (841, 2, 32) and night.valid.shape == (841, 2)
    counts = np.bincount(night.labels(5)[night.labels(5) >= 0], minlength=5)
    assert counts.tolist() == [188, 58, 250, 220, 125]  # every sleep epoch of the night
    assert night.stages[:CROP_WAKE_EPOCHS].tolist() == [Stage.W] * CROP_WAKE_EPOCHS
    assert night.subject == "SC400" and night.night == "SC4001E0"


def test_the_session_starts_at_the_crop_and_one_channel_is_that_channel(excerpt: Path):
    npz = excerpt / "eeg-spectral-features" / "SC4001E0.npz"
    hyp = read_edf_hypnogram(excerpt / "SC4001EC-Hypnogram.edf")
    whole = night_from_sleep_edf(npz, hyp, crop=False)
    cropped = night_from_sleep_edf(npz, hyp)
    pz = night_from_sleep_edf(npz, hyp, channels=["EEG Pz-Oz"])
    offset = round((cropped.start - whole.start).total_seconds() / 30)
    assert len(whole) == 1802 and offset == 961
    # the same measures, but night-relative features restart with the session
    np.testing.assert_array_equal(whole.features[offset:, :, :16], cropped.features[:, :, :16])
    assert not np.array_equal(whole.features[offset:, :, 16:], cropped.features[:, :, 16:])
    np.testing.assert_array_equal(pz.features[:, 0], cropped.features[:, 1])
    measures, _ = read_spectral_measures(npz)
    np.testing.assert_array_equal(
        cropped.features, psg_features(measures[offset: offset + 841], SLEEP_EDF_CHANNELS)[0])


def test_rows_that_do_not_follow_the_hypnogram_are_refused(excerpt: Path, tmp_path: Path):
    folder = tmp_path / "sleep-edf"
    (folder / "eeg-spectral-features").mkdir(parents=True)
    shutil.copy(excerpt / "SC4001EC-Hypnogram.edf", folder)
    with np.load(excerpt / "eeg-spectral-features" / "SC4001E0.npz") as z:
        x, y = z["X"], z["y"].copy()
    y[1000] = (y[1000] + 1) % 5
    np.savez(folder / "eeg-spectral-features" / "SC4001E0.npz", X=x, y=y)
    with pytest.raises(ValueError, match="row 1000 is labelled"):
        load_sleep_edf(folder, progress=False)
    np.savez(folder / "eeg-spectral-features" / "SC4001E0.npz", X=x[:, :10], y=y)
    with pytest.raises(ValueError, match=r"X of shape \(n_rows, >= 18\)"):
        load_sleep_edf(folder, progress=False)
    with pytest.raises(FileNotFoundError, match="eeg-spectral-features"):
        load_sleep_edf(tmp_path, progress=False)
    with pytest.raises(ValueError, match="channels must be some of"):
        night_from_sleep_edf(excerpt / "eeg-spectral-features" / "SC4001E0.npz",
                             read_edf_hypnogram(excerpt / "SC4001EC-Hypnogram.edf"),
                             channels=["EEG C3-M2"])


@pytest.mark.shared_data
def test_all_twenty_nights_follow_their_hypnograms(shared_data: Path):
    folder = shared_data / "sleep-edf"
    nights = load_sleep_edf(folder, progress=False)
    assert len(nights) == 20 and len(nights.subjects) == 10 and nights.stage_set == 5
    rows = {n.night: int(n.valid[:, 0].sum()) for n in nights}
    assert rows == CROPPED_ROWS
    for n in nights:  # a gap (no measures) is never scored, and both channels come together
        assert np.array_equal(n.valid[:, 0], n.valid[:, 1])
        assert np.all(n.stages[n.valid[:, 0] == 0] < 0)
    whole = load_sleep_edf(folder, crop=False, progress=False)
    assert sum(int(n.valid[:, 0].sum()) for n in whole) == 52647  # every row of the data
    truncated = next(n for n in whole if n.night == "SC4011E0")
    assert len(truncated) == 951  # its rows stop 7.9 h into the recording
