"""Tests of the hypnogram readers and writers.

Real data: the 20 Sleep-EDF sleep-cassette hypnograms (shared data, counts from the data
README, section 2) and two of them copied to tests/data/sleep-edf/; the writers' round
trips. Bad input is made by corrupting copies. The NSRR XML and table readers are tested
in test_hypnogram_formats.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib
import pytest

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.hypnogram_io import (
    SLEEP_EDF_TZ,
    Scoring,
    read_edf_hypnogram,
    read_hypnogram,
    read_hypnogram_table,
    read_scoring,
    write_bids_tsv,
    write_csv,
    write_edf_annotations,
)
from ingestors.types import NOMINAL_START, Event, Hypnogram
from models.stages import Stage, parse_stages

AMS = ZoneInfo("Europe/Amsterdam")
EXCERPTS = ("SC4001EC", "SC4002EC")
CODES = ("Sleep stage W", "Sleep stage 1", "Sleep stage 2", "Sleep stage 3", "Sleep stage 4",
         "Sleep stage R", "Movement time", "Sleep stage ?")

# Data README, section 2: file, start (PSG clock, Europe/Amsterdam), W, 1, 2, 3, 4, R, MT, ?
SLEEP_EDF_TABLE = """
SC4001EC 1989-04-24T16:13 1997 58 250 101 119 125 0 230
SC4002EC 1989-04-25T14:50 1885 59 373 94 203 215 1 50
SC4011EH 1989-03-29T16:49 1856 109 562 96 9 170 0 78
SC4012EC 1989-03-30T17:00 1824 92 660 80 16 176 0 32
SC4021EH 1989-04-05T16:48 1907 94 545 73 22 163 0 76
SC4022EJ 1989-04-06T16:42 1871 184 402 81 38 179 1 124
SC4031EC 1989-04-10T16:50 2008 61 485 56 1 209 0 60
SC4032EP 1989-04-11T16:49 1957 45 400 54 77 199 0 148
SC4041EC 1989-04-24T16:50 1534 166 620 53 0 196 1 310
SC4042EC 1989-04-25T15:04 1773 137 514 88 6 270 4 88
SC4051EC 1989-04-26T16:25 2258 44 217 116 19 68 0 158
SC4052EC 1989-04-27T15:42 1780 114 616 106 8 180 2 74
SC4061EC 1989-05-08T16:35 2069 56 407 35 101 102 0 110
SC4062EC 1989-05-09T15:55 2007 90 417 96 33 187 0 50
SC4071EC 1989-05-17T17:05 1958 89 403 80 82 198 0 70
SC4072EH 1989-02-18T17:05 1904 84 392 59 163 168 0 110
SC4081EC 1989-05-24T16:37 1985 68 262 158 192 131 0 84
SC4082EP 1989-05-25T16:43 1724 39 329 84 198 260 0 246
SC4091EC 1989-06-05T16:24 1739 19 561 87 83 232 11 148
SC4092EC 1989-06-06T15:33 1079 81 512 103 4 265 12 824
"""
ROWS = [line.split() for line in SLEEP_EDF_TABLE.strip().splitlines()]
TOTALS = (37115, 1689, 8927, 1700, 1374, 3693, 32, 3070)


def _code_counts(hyp: Hypnogram) -> tuple[int, ...]:
    found = hyp.code_counts()
    return tuple(found.get(code, 0) for code in CODES)


@pytest.fixture()
def small() -> Hypnogram:
    """Ten epochs with every stage, a run of three and a real start time."""
    codes = ("W", "W", "N1", "N2", "N2", "N2", "N3", "REM", "MOVEMENT", "UNSCORED")
    start = datetime(2024, 3, 1, 22, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    return Hypnogram(parse_stages(codes, "text"), start, 30.0, codes, "sub-01")


# -- Sleep-EDF: the 20 real nights and the two excerpts ----------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_sleep_edf_counts_match_the_readme(shared_data: Path, row: list[str]) -> None:
    name, start, *counts = row
    hyp = read_edf_hypnogram(shared_data / "sleep-edf" / "hypnograms" / f"{name}-Hypnogram.edf")
    assert _code_counts(hyp) == tuple(int(c) for c in counts)
    assert len(hyp) == 2880  # 24.0 h of annotations
    assert hyp.start == datetime.fromisoformat(start).replace(tzinfo=AMS)
    assert hyp.subject == name
    assert not hyp.start_is_nominal
    assert hyp.epoch_s == 30.0


@pytest.mark.shared_data
def test_sleep_edf_totals(shared_data: Path) -> None:
    files = sorted((shared_data / "sleep-edf" / "hypnograms").glob("SC4*-Hypnogram.edf"))
    assert len(files) == 20
    totals = np.sum([_code_counts(read_hypnogram(f)) for f in files], axis=0)
    assert tuple(int(t) for t in totals) == TOTALS


@pytest.mark.shared_data
def test_excerpts_are_byte_identical_to_the_release(shared_data: Path, test_data: Path) -> None:
    listing = (shared_data / "sleep-edf" / "SHA256SUMS-sleep-cassette.txt").read_text()
    sums = {name: digest for digest, name in (line.split() for line in listing.splitlines()
                                              if line.strip())}
    for name in EXCERPTS:
        data = (test_data / "sleep-edf" / f"{name}-Hypnogram.edf").read_bytes()
        assert hashlib.sha256(data).hexdigest() == sums[f"{name}-Hypnogram.edf"]


@pytest.mark.parametrize("name", EXCERPTS)
def test_excerpts_read_with_stage_4_as_n3(test_data: Path, name: str) -> None:
    row = next(r for r in ROWS if r[0] == name)
    hyp = read_edf_hypnogram(test_data / "sleep-edf" / f"{name}-Hypnogram.edf")
    counts = [int(c) for c in row[2:]]
    assert _code_counts(hyp) == tuple(counts)
    by_stage = hyp.stage_counts()
    assert by_stage[Stage.N3] == counts[3] + counts[4]
    assert by_stage[Stage.MOVEMENT] == counts[6]
    assert by_stage[Stage.UNSCORED] == counts[7]
    assert hyp.source.endswith(f"{name}-Hypnogram.edf")
    scoring = read_scoring(test_data / "sleep-edf" / f"{name}-Hypnogram.edf")
    assert isinstance(scoring, Scoring)
    assert scoring.events == []  # every annotation of Sleep-EDF is a stage


def test_excerpt_start_in_another_zone(sleep_edf_excerpt: Path) -> None:
    hyp = read_edf_hypnogram(sleep_edf_excerpt, tz="UTC")
    assert hyp.start == datetime(1989, 4, 24, 16, 13, tzinfo=UTC)


def test_edf_hypnogram_epoch_length_must_divide_durations(sleep_edf_excerpt: Path) -> None:
    with pytest.raises(DataFormatError,
                       match=r"duration of annotation 0 .* 20-s epoch; got '30630 s'"):
        read_edf_hypnogram(sleep_edf_excerpt, epoch_s=20.0)


@pytest.mark.parametrize(
    ("cut", "match"),
    [(slice(0, 3000), "file is truncated"), (slice(0, 100), "shorter than the 256-byte")],
)
def test_truncated_sleep_edf_copy(sleep_edf_excerpt: Path, tmp_path: Path, cut: slice,
                                  match: str) -> None:
    bad = tmp_path / "SC4001EC-Hypnogram.edf"
    bad.write_bytes(sleep_edf_excerpt.read_bytes()[cut])
    with pytest.raises(DataFormatError, match=rf"SC4001EC-Hypnogram\.edf.*{match}"):
        read_edf_hypnogram(bad)


def test_flipped_header_bytes_of_sleep_edf_copy(sleep_edf_excerpt: Path, tmp_path: Path) -> None:
    data = bytearray(sleep_edf_excerpt.read_bytes())
    data[0] ^= 0xFF
    bad = tmp_path / "flipped-Hypnogram.edf"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"flipped-Hypnogram\.edf, field 'version'"):
        read_hypnogram(bad)


def _write_annotation_edf(path: Path, annotations: list[tuple[float, float, str]]) -> Path:
    writer = pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setStartdatetime(datetime(2020, 6, 1, 23, 0, 0))  # noqa: DTZ001 - EDF is naive
        for onset, duration, text in annotations:
            writer.writeAnnotation(onset, duration, text)
    finally:
        writer.close()
    return path


def test_edf_non_stage_annotations_become_events(tmp_path: Path) -> None:
    path = _write_annotation_edf(tmp_path / "n.edf", [
        (60, 60, "Sleep stage W"), (75, 0, "Lights off"), (120, 30, "Sleep stage 2"),
        (150, 30, "Movement time"), (160, 5, "Arousal"),
    ])
    scoring = read_scoring(path)
    hyp = scoring.hypnogram
    assert hyp.codes == ("Sleep stage W", "Sleep stage W", "Sleep stage 2", "Movement time")
    assert hyp.start == datetime(2020, 6, 1, 23, 1, tzinfo=AMS)  # first stage at 60 s
    assert scoring.events == [Event(15.0, 0.0, "Lights off"), Event(100.0, 5.0, "Arousal")]


def test_edf_gap_becomes_unscored_with_a_warning(tmp_path: Path) -> None:
    path = _write_annotation_edf(tmp_path / "gap.edf", [
        (0, 30, "Sleep stage W"), (90, 30, "Sleep stage 1"),
    ])
    with pytest.warns(DataQualityWarning, match=r"gap\.edf: 1 gap.*2 before annotation 1"):
        hyp = read_edf_hypnogram(path)
    assert list(hyp.stages) == [Stage.W, Stage.UNSCORED, Stage.UNSCORED, Stage.N1]
    assert hyp.codes == ("Sleep stage W", "", "", "Sleep stage 1")


def test_edf_overlap_is_an_error(tmp_path: Path) -> None:
    path = _write_annotation_edf(tmp_path / "overlap.edf", [
        (0, 60, "Sleep stage W"), (30, 30, "Sleep stage 1"),
    ])
    with pytest.raises(DataFormatError, match=r"overlap\.edf: annotation 1 .*at onset 30 s"):
        read_edf_hypnogram(path)


def test_edf_unknown_sleep_stage_text(tmp_path: Path) -> None:
    path = _write_annotation_edf(tmp_path / "u.edf", [(0, 30, "Sleep stage 5")])
    with pytest.raises(DataFormatError, match=r"u\.edf, field 'annotation': unknown stage"):
        read_edf_hypnogram(path)


def test_edf_without_stages(tmp_path: Path) -> None:
    path = _write_annotation_edf(tmp_path / "none.edf", [(0, 30, "Lights off")])
    with pytest.raises(DataFormatError, match=r"none\.edf: no sleep-stage entries"):
        read_edf_hypnogram(path)


# -- writers and round trips ---------------------------------------------------------------


def _assert_same(got: Hypnogram, want: Hypnogram) -> None:
    np.testing.assert_array_equal(got.stages, want.stages)
    assert got.start == want.start
    assert got.epoch_s == want.epoch_s
    assert got.start_is_nominal == want.start_is_nominal


def test_csv_round_trip(tmp_path: Path, small: Hypnogram) -> None:
    path = write_csv(small, tmp_path / "h.csv")
    text = path.read_text().splitlines()
    assert "# start: 2024-03-01T22:30:00+01:00" in text
    assert "# epoch_s: 30" in text
    assert text[text.index("epoch,onset_s,start_utc,stage") + 1] == \
        "0,0,2024-03-01T21:30:00+00:00,W"
    back = read_hypnogram_table(path)
    _assert_same(back, small)
    assert back.codes == small.codes  # the fixture uses the writer's names
    assert back.subject == "sub-01"


def test_bids_tsv_round_trip_with_sidecar(tmp_path: Path, small: Hypnogram) -> None:
    path = write_bids_tsv(small, tmp_path / "sub-01_task-sleep_events.tsv")
    rows = path.read_text().splitlines()
    assert rows[:4] == ["onset\tduration\tstage", "0\t60\tW", "60\t30\tN1", "90\t90\tN2"]
    assert len(rows) == 1 + 7  # ten epochs in seven runs
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["StartTime"] == "2024-03-01T22:30:00+01:00"
    assert sidecar["EpochLength"] == 30.0
    assert sidecar["Subject"] == "sub-01"
    assert set(sidecar["stage"]["Levels"]) == {"W", "N1", "N2", "N3", "REM", "MOVEMENT",
                                               "UNSCORED"}
    _assert_same(read_hypnogram(path), small)
    path.with_suffix(".json").unlink()
    assert read_hypnogram(path).start_is_nominal  # without the sidecar there is no clock


def test_edf_round_trip(tmp_path: Path, small: Hypnogram) -> None:
    path = write_edf_annotations(small, tmp_path / "h.edf", tz="Europe/Berlin")
    back = read_edf_hypnogram(path, tz="Europe/Berlin")
    _assert_same(back, small)
    assert back.codes[6:10] == ("Sleep stage 3", "Sleep stage R", "Movement time",
                                "Sleep stage ?")
    assert back.subject == "sub-01"
    annotations = pyedflib.EdfReader(str(path))
    try:
        assert annotations.signals_in_file == 0  # annotation channel only
        assert len(annotations.readAnnotations()[0]) == 7  # merged runs
    finally:
        annotations.close()


@pytest.mark.parametrize("name", EXCERPTS)
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".edf"])
def test_real_excerpts_round_trip_through_every_writer(
    test_data: Path, tmp_path: Path, name: str, suffix: str
) -> None:
    hyp = read_edf_hypnogram(test_data / "sleep-edf" / f"{name}-Hypnogram.edf")
    writer = {".csv": write_csv, ".tsv": write_bids_tsv, ".edf": write_edf_annotations}[suffix]
    back = read_hypnogram(writer(hyp, tmp_path / f"{name}{suffix}"))
    _assert_same(back, hyp)
    assert back.subject == name
    # Codes become the writer's: stage 4 is written as N3, so counts merge.
    assert back.stage_counts() == hyp.stage_counts()
    if suffix == ".edf":
        assert "Sleep stage 4" not in back.codes
    else:
        assert set(back.codes) <= {"W", "N1", "N2", "N3", "REM", "MOVEMENT", "UNSCORED"}


def test_edf_default_zones_keep_the_instant(tmp_path: Path) -> None:
    codes = ("W", "N2")
    hyp = Hypnogram(parse_stages(codes, "text"), datetime(2024, 7, 1, 20, 0, tzinfo=UTC),
                    codes=codes)
    back = read_hypnogram(write_edf_annotations(hyp, tmp_path / "u.edf"))
    assert back.start == hyp.start
    assert back.start.utcoffset() == timedelta(hours=2)  # read as Europe/Amsterdam (CEST)
    assert SLEEP_EDF_TZ == ZoneInfo("Europe/Amsterdam")


def test_edf_keeps_a_sub_second_start(tmp_path: Path) -> None:
    codes = ("W", "N1", "N1")
    start = datetime(2024, 1, 1, 22, 0, 5, 250000, tzinfo=UTC)
    hyp = Hypnogram(parse_stages(codes, "text"), start, 30.0, codes)
    back = read_hypnogram(write_edf_annotations(hyp, tmp_path / "s.edf", tz="UTC"), tz="UTC")
    _assert_same(back, hyp)


def test_nominal_start_round_trips_as_nominal(tmp_path: Path) -> None:
    codes = ("W", "N1", "N1")
    hyp = Hypnogram(parse_stages(codes, "text"), NOMINAL_START, 30.0, codes,
                    start_is_nominal=True)
    for path in (write_csv(hyp, tmp_path / "n.csv"), write_bids_tsv(hyp, tmp_path / "n.tsv")):
        back = read_hypnogram(path)
        _assert_same(back, hyp)
    assert ",," in (tmp_path / "n.csv").read_text()  # no start_utc for a nominal start


def test_other_epoch_length_round_trips(tmp_path: Path) -> None:
    codes = ("W", "W", "N2", "REM")
    hyp = Hypnogram(parse_stages(codes, "text"), datetime(2024, 1, 1, tzinfo=UTC), 20.0, codes)
    _assert_same(read_hypnogram(write_csv(hyp, tmp_path / "e.csv")), hyp)
    _assert_same(read_hypnogram(write_bids_tsv(hyp, tmp_path / "e.tsv")), hyp)
    edf = write_edf_annotations(hyp, tmp_path / "e.edf", tz="UTC")
    _assert_same(read_hypnogram(edf, tz="UTC", epoch_s=20.0), hyp)


@pytest.mark.parametrize("writer", [write_csv, write_bids_tsv, write_edf_annotations])
def test_writers_check_their_input(tmp_path: Path, writer) -> None:
    with pytest.raises(TypeError, match="Hypnogram"):
        writer([0, 1], tmp_path / "x")
    empty = Hypnogram(np.zeros(0, dtype=np.int8), NOMINAL_START)
    with pytest.raises(ValueError, match="no epochs"):
        writer(empty, tmp_path / "x")
    bad = Hypnogram(np.array([0, 7], dtype=np.int8), NOMINAL_START)
    with pytest.raises(ValueError, match=r"got \[7\]"):
        writer(bad, tmp_path / "x")
