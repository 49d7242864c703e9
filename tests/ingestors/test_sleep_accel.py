"""Sleep-Accel readers: real excerpts, corrupted copies and (when present) the full data."""

from __future__ import annotations

import shutil
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.sleep_accel import (
    SleepAccelNight,
    detect_layout,
    hr_samples_in_night,
    list_subjects,
    read_cropped_counts,
    read_cropped_hr,
    read_cropped_motion,
    read_cropped_psg,
    read_heart_rate,
    read_labels,
    read_motion,
    read_sleep_accel,
    read_steps,
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


@pytest.fixture
def raw_dir(test_data: Path) -> Path:
    return test_data / "sleep-accel" / "raw"


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


# --- files written into tmp_path ----------------------------------------------------------


def test_motion_and_steps_synthetic(tmp_path):
    motion = tmp_path / "motion"
    motion.mkdir()
    (motion / "1_acceleration.txt").write_text(
        "-5.0 0.01 -0.5 -0.86\n0.0 0.02 -0.49 -0.87\n0.02 0.03 -0.48 -0.88\n"
    )
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "1_steps.txt").write_text("-600,12\n0,0\n0,0\n600,3\n")
    acc = read_motion(motion / "1_acceleration.txt")
    assert acc.unit == "g" and acc.values.shape == (3, 3) and acc.name == "acceleration"
    assert acc.values[2].tolist() == [0.03, -0.48, -0.88]
    with pytest.warns(DataQualityWarning, match="dropped 1 sample"):
        night = read_subject(tmp_path, "1")
    assert night.labels is None and night.heart_rate is None
    assert night.steps is not None and night.steps.values.tolist() == [12, 0, 3]
    assert night.steps.unit == "steps"
    with pytest.raises(ValueError, match="no labels"):
        _ = night.night_s
    with pytest.raises(ValueError, match="no heart rate"):
        hr_samples_in_night(night)
    with pytest.warns(DataQualityWarning, match="dropped 1 sample"):
        read_steps(steps / "1_steps.txt")
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    (cropped / "1_cleaned_motion.out").write_text("1.000000 0.1 0.2 0.3\n2.000000 0.1 0.2 0.4\n")
    assert read_cropped_motion(cropped / "1_cleaned_motion.out").values.shape == (2, 3)
    assert read_subject(cropped, 1).motion is not None


def test_first_unknown_code_in_file_order_is_reported(tmp_path):
    path = tmp_path / "5_labeled_sleep.txt"
    path.write_text("0 0\n30 9\n60 -5\n")
    with pytest.raises(DataFormatError, match=r"line 2, field 'stage'.*got 9"):
        read_labels(path)


def test_blank_lines_and_crlf_are_read(tmp_path):
    path = tmp_path / "5_labeled_sleep.txt"
    path.write_bytes(b"0 0\r\n30 2\r\n\r\n60 4\r\n\r\n")
    hyp = read_labels(path)
    assert hyp.codes == ("0", "2", "4")
    assert hyp.stages.tolist() == [Stage.W, Stage.N2, Stage.N3]


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    return dst


def _edit_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line_no", "text", "reader", "expected"),
    [
        (5, "-556410.3", "hr", "wrong number of columns"),
        (7, "-120.5,", "hr", "field 'bpm': missing value"),
        (3, "-100.0,nan", "hr", "field 'bpm': value is not finite"),
        (4, "-100.0,inf", "hr", "value is not finite"),
        (6, "-100.0,7x", "hr", "value is not a number"),
        (1, "time,bpm", "hr", "header"),
        (9, "-99.0;60", "hr", "wrong delimiter"),
        (2, "-99.0\t60", "hr", "wrong delimiter"),
        (10, "270,7", "labels", "wrong delimiter"),
        (10, "270 7", "labels", "field 'stage': unknown stage code"),
        (10, "270 2.5", "labels", "not a whole number"),
        (10, "240 2", "labels", "field 'time': time is not increasing"),
        (10, "300 2", "labels", "time does not step by 30 s"),
        (10, "270", "labels", "wrong number of columns"),
    ],
)
def test_corrupted_line_names_file_and_line(raw_dir, tmp_path, line_no, text, reader, expected):
    if reader == "hr":
        path = _copy(raw_dir / "heart_rate" / "46343_heartrate.txt", tmp_path)
    else:
        path = _copy(raw_dir / "labels" / "46343_labeled_sleep.txt", tmp_path)
    _edit_line(path, line_no, text)
    with pytest.raises(DataFormatError, match=expected) as err:
        read_heart_rate(path) if reader == "hr" else read_labels(path)
    message = str(err.value)
    assert path.name in message and f"line {line_no}" in message
    assert "expected" in message
    assert err.value.line == line_no and err.value.path == path


def test_whole_file_tab_separated(raw_dir, tmp_path):
    path = _copy(raw_dir / "heart_rate" / "46343_heartrate.txt", tmp_path)
    path.write_text(path.read_text().replace(",", "\t"))
    with pytest.raises(DataFormatError, match=r"line 1: wrong delimiter.*Replace '\\t'"):
        read_heart_rate(path)


def test_labels_with_commas_in_subject_folder(raw_dir, tmp_path):
    folder = tmp_path / "raw"
    shutil.copytree(raw_dir, folder)
    labels = folder / "labels" / "46343_labeled_sleep.txt"
    labels.write_text(labels.read_text().replace(" ", ","))
    with pytest.raises(DataFormatError, match="46343_labeled_sleep.txt, line 1: wrong delim"):
        read_subject(folder, "46343")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "file is empty"), (b"\n \n", "file is empty"), (b"0 0\n30 \xff\n", "UTF-8")],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "9_labeled_sleep.txt"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=expected) as err:
        read_labels(path)
    assert path.name in str(err.value)


def test_missing_folder_subject_and_file(raw_dir, tmp_path):
    with pytest.raises(DataFormatError, match="folder not found"):
        read_subject(tmp_path / "nope", "1")
    with pytest.raises(DataFormatError, match="subject '42' not found.*46343"):
        read_subject(raw_dir, 42)
    with pytest.raises(DataFormatError, match="not a Sleep-Accel folder"):
        detect_layout(tmp_path)
    with pytest.raises(DataFormatError, match="file not found"):
        read_heart_rate(tmp_path / "1_heartrate.txt")
    with pytest.raises(DataFormatError, match="folder not found"):
        list_feature_subjects(tmp_path / "nope")
    with pytest.raises(ValueError, match="max_gap_s"):
        read_subject(raw_dir, "46343", max_gap_s=0)


@pytest.fixture
def features_copy(test_data, tmp_path) -> Path:
    folder = tmp_path / "features"
    shutil.copytree(test_data / "sleep-accel" / "features", folder)
    return folder


def test_features_unequal_length(features_copy):
    path = features_copy / "759667_hr_feature.out"
    path.write_text("\n".join(path.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(DataFormatError, match="unequal length") as err:
        read_walch_features(features_copy, "759667")
    message = str(err.value)
    assert "759667_hr_feature.out" in message and "field 'hr_feature'" in message
    assert "452 lines" in message and "got 449" in message


@pytest.mark.parametrize(
    ("stem", "line_no", "text", "expected"),
    [
        ("psg_labels", 12, "7.000000", "unknown stage code"),
        ("count_feature", 3, "nan", "not finite"),
        ("hr_feature", 4, "0.1 0.2", "wrong number of columns"),
        ("time_feature", 5, "0.000000", "time is not increasing"),
    ],
)
def test_features_corrupted(features_copy, stem, line_no, text, expected):
    path = features_copy / f"759667_{stem}.out"
    _edit_line(path, line_no, text)
    with pytest.raises(DataFormatError, match=expected) as err:
        read_walch_features(features_copy, "759667")
    assert path.name in str(err.value) and f"line {line_no}" in str(err.value)


def test_features_missing_file(features_copy):
    (features_copy / "759667_cosine_feature.out").unlink()
    assert list_feature_subjects(features_copy) == ("759667",)
    with pytest.raises(DataFormatError, match="759667_cosine_feature.out"):
        read_walch_features(features_copy, "759667")


@pytest.mark.parametrize(
    "name", ["heart_rate/46343_heartrate.txt", "labels/46343_labeled_sleep.txt"]
)
def test_random_corruption_raises_only_data_format_error(raw_dir, tmp_path, name):
    """Mutated copies either read or raise DataFormatError naming the file, never anything else."""
    original = (raw_dir / name).read_text()
    rng = np.random.default_rng(7)
    alphabet = list("0123456789,; \t\n.-+eEaNnIi#x\x00")
    path = tmp_path / Path(name).name
    reader = read_heart_rate if "heart" in name else read_labels
    outcomes = Counter()
    for _ in range(150):
        chars = list(original)
        for pos in rng.integers(0, len(chars), size=rng.integers(1, 4)):
            chars[pos] = str(rng.choice(alphabet))
        path.write_text("".join(chars))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            try:
                reader(path)
                outcomes["read"] += 1
            except DataFormatError as err:
                assert path.name in str(err) and "line " in str(err)
                outcomes["error"] += 1
    assert outcomes["error"] > 0
