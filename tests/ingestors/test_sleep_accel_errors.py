"""Sleep-Accel readers on files written into tmp_path: synthetic, corrupted and unreadable
copies (the real excerpts and full data: test_sleep_accel.py)."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.sleep_accel import (
    detect_layout,
    hr_samples_in_night,
    read_cropped_motion,
    read_heart_rate,
    read_labels,
    read_motion,
    read_steps,
    read_subject,
)
from ingestors.sleep_accel_features import (
    list_feature_subjects,
    read_walch_features,
)
from models.stages import Stage

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
