"""Sleep-Accel readers: real excerpts and (when present) the full data (corrupted copies:
test_sleep_accel_errors.py)."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ingestors.errors import DataQualityWarning
from ingestors.sleep_accel import (
    SleepAccelNight,
    detect_layout,
    hr_samples_in_night,
    list_subjects,
    read_cropped_counts,
    read_cropped_hr,
    read_cropped_psg,
    read_heart_rate,
    read_labels,
    read_sleep_accel,
    read_subject,
)
from ingestors.sleep_accel_features import (
    FEATURE_NAMES,
    list_feature_subjects,
    read_walch_features,
)
from ingestors.types import NOMINAL_START
from models.stages import Stage

# --- the README tables (shared/data/README.md sections 4 and 5) ---------------------------

# subject: HR lines, unique HR times, HR samples in labelled night, label epochs,
#          then epochs per code -1, 0, 1, 2, 3, 4, 5
RAW_TABLE = """
46343 4878 4878 3302 567 13 85 29 170 156 0 114
759667 4372 4371 2849 475 0 18 19 138 139 0 161
781756 18015 6009 5657 981 0 83 179 461 23 0 235
844359 7156 7156 5473 949 52 93 75 416 114 0 199
1066528 16617 5539 4964 952 0 185 97 299 62 0 309
1360686 6967 6967 5579 968 20 117 33 427 163 0 208
1449548 12878 12878 5555 965 12 105 35 517 72 0 224
1455390 6930 6930 5722 990 35 84 57 634 0 0 180
1818471 7189 7189 5706 988 30 10 51 535 142 0 220
2598705 6916 6916 5340 983 29 20 49 482 152 0 251
2638030 7012 7012 5543 969 21 123 42 491 126 0 166
3509524 3829 3828 2501 417 0 53 23 248 45 0 48
3997827 8139 8139 5680 977 19 25 35 518 87 0 293
4018081 5178 5178 3060 510 0 91 14 193 177 0 35
4314139 10936 10936 5581 970 9 104 74 524 96 0 163
4426783 16327 16327 5642 980 0 70 61 491 55 0 303
5132496 4289 4289 2790 465 0 33 59 221 152 0 0
5383425 5774 5774 5616 978 2 40 52 391 34 190 269
5498603 8026 8026 4388 759 15 107 43 339 157 0 98
5797046 12329 12329 5588 962 23 79 52 531 129 0 148
6220552 7113 7113 5696 982 27 53 49 531 181 0 141
7749105 2379 2379 836 960 15 205 25 364 133 0 218
8000685 7037 7037 5586 965 8 33 70 531 66 0 257
8173033 6022 6022 5657 985 30 29 86 441 193 0 206
8258170 6380 6380 5630 972 0 95 48 400 49 83 297
8530312 7129 7129 5532 966 19 78 72 431 103 0 263
8686948 6669 6669 5623 971 16 49 68 508 171 0 159
8692923 7569 7569 5542 965 29 110 38 439 142 0 207
9106476 8031 8031 5624 975 14 87 61 566 159 0 88
9618981 6346 6346 5426 945 0 94 165 348 25 83 230
9961348 15993 5553 4010 720 0 71 60 369 26 0 194
"""
CODES = ("-1", "0", "1", "2", "3", "4", "5")

# subject: cleaned_hr samples, cleaned_counts rows, cleaned_psg epochs, scored (not -1)
CROPPED_TABLE = """
46343 3301 1132 566 553
759667 2843 948 474 474
781756 5652 1960 980 980
844359 5467 1895 948 897
1066528 4964 1892 951 951
1360686 5574 1850 967 948
1449548 5549 1927 964 952
1455390 5717 1978 989 955
1818471 5701 1973 987 958
2598705 5334 1963 982 954
2638030 5537 1936 968 948
3509524 2496 832 416 416
3997827 5673 1951 976 958
4018081 3054 996 509 509
4314139 5575 1938 969 961
4426783 5637 1958 979 979
5132496 2784 927 464 464
5383425 5609 1953 977 975
5498603 4382 1516 758 744
5797046 5583 1922 961 938
6220552 5690 1961 981 954
7749105 836 268 959 945
8000685 5581 1928 964 957
8173033 5651 1967 984 955
8258170 5625 1941 971 971
8530312 5526 1930 965 947
8686948 5618 1939 970 955
8692923 5536 1927 964 935
9106476 5618 1948 974 960
9618981 5421 1887 944 944
9961348 4007 1438 719 719
"""


def _table(text: str) -> dict[str, list[int]]:
    rows = (line.split() for line in text.strip().splitlines())
    return {row[0]: [int(x) for x in row[1:]] for row in rows}


RAW = _table(RAW_TABLE)
CROPPED = _table(CROPPED_TABLE)
REPEATED_EXPORT = {"781756", "1066528", "9961348"}


def _read_all(folder: Path) -> tuple[list[SleepAccelNight], dict[str, str]]:
    """Read every subject, collecting the warning text per subject."""
    nights, warned = [], {}
    for subject in list_subjects(folder):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nights.append(read_subject(folder, subject))
        assert all(issubclass(w.category, DataQualityWarning) for w in caught)
        if caught:
            assert len(caught) == 1, subject
            warned[subject] = str(caught[0].message)
    return nights, warned


# --- full data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_nights(shared_data: Path) -> tuple[list[SleepAccelNight], dict[str, str]]:
    return _read_all(shared_data / "sleep-accel-raw")


@pytest.mark.shared_data
def test_raw_release_matches_readme(shared_data, raw_nights):
    nights, _ = raw_nights
    assert [n.subject for n in nights] == sorted(RAW, key=int)
    assert len(nights) == 31
    for night in nights:
        hr_lines, unique, in_night, n_epochs, *per_code = RAW[night.subject]
        assert night.layout == "physionet" and night.start == NOMINAL_START
        assert night.start_is_nominal
        assert night.labels is not None and night.heart_rate is not None
        assert len(night.labels) == n_epochs, night.subject
        counts = night.labels.code_counts()
        assert [counts.get(code, 0) for code in CODES] == per_code, night.subject
        assert len(night.heart_rate) == unique, night.subject
        assert len(hr_samples_in_night(night)) == in_night, night.subject
        assert np.all(np.diff(night.heart_rate.t_s) > 0)
        hr_file = shared_data / "sleep-accel-raw/heart_rate" / f"{night.subject}_heartrate.txt"
        assert len(hr_file.read_text().splitlines()) == hr_lines
        assert night.motion is None and night.steps is None and night.counts is None
    assert sum(len(n.labels) for n in nights if n.labels) == 27_211
    assert sum(len(n.heart_rate) for n in nights if n.heart_rate) == 220_899
    assert sum(len(hr_samples_in_night(n)) for n in nights) == 151_698
    n4 = {n.subject for n in nights if n.labels and "4" in n.labels.codes}
    assert n4 == {"5383425", "8258170", "9618981"}


@pytest.mark.shared_data
def test_raw_release_warnings(raw_nights):
    nights, warned = raw_nights
    # the three repeated exports, the two splices with conflicting values, the sparse watch
    assert set(warned) == REPEATED_EXPORT | {"759667", "3509524", "7749105"}
    for subject in REPEATED_EXPORT:
        assert "time restarts 2 time(s)" in warned[subject]
        assert "3 blocks" in warned[subject]
    for subject in ("759667", "3509524"):
        assert "different values" in warned[subject]
    by_id = {n.subject: n for n in nights}
    assert "gap(s) longer than 300 s" in warned["1066528"]
    assert any("no sample for 859 s" in p for p in by_id["1066528"].problems)
    gaps = [p for p in by_id["7749105"].problems if p.startswith("heart_rate: no sample for")]
    assert len(gaps) == 40
    assert all(not n.problems for s, n in by_id.items() if s not in warned)


@pytest.mark.shared_data
def test_raw_release_reads_fast(shared_data):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        nights = list(read_sleep_accel(shared_data / "sleep-accel-raw"))
    assert len(nights) == 31
    assert time.perf_counter() - start < 10.0


@pytest.mark.shared_data
def test_cropped_matches_readme_and_raw(shared_data, raw_nights):
    folder = shared_data / "sleep-accel-walch-cropped" / "cropped"
    assert detect_layout(folder) == "cropped"
    nights, warned = _read_all(folder)
    assert [n.subject for n in nights] == sorted(CROPPED, key=int)
    # gaps only: the authors already sorted and de-duplicated
    assert set(warned) == {"1066528", "1360686", "4018081", "7749105"}
    raw = {n.subject: n for n in raw_nights[0]}
    for night in nights:
        hr, counts, epochs, scored = CROPPED[night.subject]
        assert night.heart_rate is not None and night.counts is not None
        assert night.labels is not None
        assert (len(night.heart_rate), len(night.counts)) == (hr, counts), night.subject
        assert night.counts.unit == "count" and night.heart_rate.unit == "bpm"
        assert len(night.labels) == epochs
        assert int(np.sum(night.labels.stages != Stage.UNSCORED)) == scored
        # README checks 2 and 3: cropped HR samples are raw samples; PSG = labels minus one
        raw_labels, raw_hr = raw[night.subject].labels, raw[night.subject].heart_rate
        assert raw_labels is not None and raw_hr is not None
        assert night.labels.codes == raw_labels.codes[:-1]
        idx = np.searchsorted(raw_hr.t_s, night.heart_rate.t_s - 1e-4)
        np.testing.assert_allclose(raw_hr.t_s[idx], night.heart_rate.t_s, atol=1e-4)
        np.testing.assert_array_equal(raw_hr.values[idx], night.heart_rate.values)
    assert sum(len(n.heart_rate) for n in nights if n.heart_rate) == 151_541
    assert sum(len(n.counts) for n in nights if n.counts) == 52_581


@pytest.mark.shared_data
def test_walch_features_totals(shared_data):
    folder = shared_data / "sleep-accel-walch-features" / "features"
    subjects = list_feature_subjects(folder)
    assert subjects == tuple(sorted(RAW, key=int))
    feats = [read_walch_features(folder, s) for s in subjects]
    assert sum(len(f) for f in feats) == 25_424
    labels = Counter(code for f in feats for code in f.codes)
    assert labels == {"0": 2107, "1": 1761, "2": 12483, "3": 3189, "4": 356, "5": 5528}
    long_steps = {f.subject: int(np.sum(np.diff(f.epoch_start_s) > 30)) for f in feats}
    assert sum(long_steps.values()) == 95
    assert sum(1 for n in long_steps.values() if n) == 13
    assert min(len(f) for f in feats) == len(feats[subjects.index("7749105")]) == 118
    variant = folder.parent / "variant_1449548_trantonnq"
    assert len(read_walch_features(variant, 1449548)) == 885


# --- excerpts under tests/data ------------------------------------------------------------


def test_excerpt_layout_and_subjects(raw_dir, test_data):
    assert detect_layout(raw_dir) == "physionet"
    assert detect_layout(test_data / "sleep-accel" / "cropped") == "cropped"
    assert list_subjects(raw_dir) == ("46343", "759667", "781756", "7749105")


def test_clean_subject_reads_without_warning(raw_dir):
    night = read_subject(raw_dir, 46343)  # warnings are errors: none may be raised
    assert night.problems == ()
    assert night.labels is not None and night.heart_rate is not None
    assert len(night.labels) == 60 and night.labels.subject == "46343"
    assert night.labels.code_counts() == {"-1": 13, "0": 34, "1": 4, "2": 9}
    assert night.labels.start == NOMINAL_START and night.labels.start_is_nominal
    assert len(night.heart_rate) == 373 and night.heart_rate.t_s[0] < 0
    assert night.heart_rate.unit == "bpm" and night.heart_rate.values.shape == (373,)
    assert night.night_s == (0.0, 1800.0)
    assert len(hr_samples_in_night(night)) == 350


def test_repeated_export_is_repaired(raw_dir):
    with pytest.warns(DataQualityWarning, match=r"time restarts 2 time\(s\)"):
        night = read_subject(raw_dir, "781756")
    assert night.heart_rate is not None
    assert len(night.heart_rate) == 502
    assert np.all(np.diff(night.heart_rate.t_s) > 0)
    assert len(hr_samples_in_night(night)) == 346
    assert any("dropped 924 sample(s)" in p for p in night.problems)
    assert any("at line 483, 965" in p for p in night.problems)  # real splice, block 3


def test_conflicting_duplicate_keeps_first(raw_dir):
    with pytest.warns(DataQualityWarning, match="different values"):
        hr = read_heart_rate(raw_dir / "heart_rate" / "759667_heartrate.txt")
    i = int(np.flatnonzero(np.isclose(hr.t_s, -46777.7151599))[0])
    assert hr.values[i] == pytest.approx(95.4037246704)
    assert len(hr) == 380


def test_sparse_watch_gaps_are_reported(raw_dir):
    with pytest.warns(DataQualityWarning, match="gap"):
        night = read_subject(raw_dir, "7749105")
    gaps = [p for p in night.problems if "no sample for" in p]
    assert gaps and all("heart_rate" in p for p in gaps)
    assert len(hr_samples_in_night(night)) == 759
    assert read_subject(raw_dir, "7749105", max_gap_s=1000.0).problems == ()


def test_read_sleep_accel_iterates_in_numeric_order(raw_dir):
    with pytest.warns(DataQualityWarning):
        nights = list(read_sleep_accel(raw_dir))
    assert [n.subject for n in nights] == ["46343", "759667", "781756", "7749105"]


def test_cropped_excerpt_agrees_with_raw(test_data, raw_dir):
    folder = test_data / "sleep-accel" / "cropped"
    night = read_subject(folder, "759667")
    assert night.layout == "cropped" and night.problems == ()
    assert night.counts is not None and len(night.counts) == 120
    assert night.heart_rate is not None and len(night.heart_rate) == 360
    psg = read_cropped_psg(folder / "759667_cleaned_psg.out")
    labels = read_labels(raw_dir / "labels" / "759667_labeled_sleep.txt")
    assert psg.codes == labels.codes
    np.testing.assert_array_equal(psg.stages, labels.stages)
    hr = read_cropped_hr(folder / "759667_cleaned_hr.out")
    counts = read_cropped_counts(folder / "759667_cleaned_counts.out")
    assert counts.name == "activity_counts" and np.all(np.diff(counts.t_s) > 0)
    with pytest.warns(DataQualityWarning):
        raw_hr = read_heart_rate(raw_dir / "heart_rate" / "759667_heartrate.txt")
    in_night = raw_hr.between(0, 1800)
    np.testing.assert_allclose(in_night.t_s, hr.t_s, atol=1e-4)
    np.testing.assert_array_equal(in_night.values, hr.values)


def test_walch_features_excerpt(test_data):
    folder = test_data / "sleep-accel" / "features"
    assert list_feature_subjects(folder) == ("759667",)
    feats = read_walch_features(folder, 759667)
    assert len(feats) == 452 and feats.subject == "759667"
    assert Counter(feats.codes) == {"5": 158, "3": 139, "2": 125, "0": 17, "1": 13}
    assert int(np.sum(feats.stages == Stage.REM)) == 158
    assert np.all(feats.epoch_start_s % 30 == 0) and feats.epoch_start_s[0] == 0
    steps = np.diff(feats.epoch_start_s)
    assert np.flatnonzero(steps > 30).tolist() == [378] and steps[378] == 22 * 30
    matrix = feats.matrix()
    assert matrix.names == FEATURE_NAMES == ("count", "hr", "time", "circadian", "cosine")
    assert matrix.values.shape == (452, 5)
    np.testing.assert_array_equal(matrix.values[:, 1], feats.hr)
    sub = feats.matrix(["cosine", "hr"])
    assert sub.values.shape == (452, 2) and sub.names == ("cosine", "hr")
    with pytest.raises(ValueError, match="FEATURE_NAMES"):
        feats.matrix(["bpm"])
