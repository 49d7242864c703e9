from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.slpdb import (
    BEAT_CODES,
    EVENT_CODES,
    STAGE_CODES,
    SlpdbRecord,
    list_records,
    read_annotations,
    read_header,
    read_record,
    read_rr,
    read_slpdb,
    subject_of,
)
from ingestors.types import EPOCH_S, NOMINAL_START
from models.stages import Stage

BOSTON = ZoneInfo("America/New_York")

# The table of the shared data README (section 1, slpdb), written out:
# record: (signals, 30-s epochs, W, 1, 2, 3, 4, R, MT/M, beats). "beats" is the number of
# lines of <rec>.rr, and each line ends at one beat, so it is also the number of beats.
README_TABLE: dict[str, tuple[int, ...]] = {
    "slp01a": (4, 240, 7, 1, 105, 47, 66, 13, 1, 7806),
    "slp01b": (4, 360, 180, 27, 128, 0, 0, 25, 0, 11467),
    "slp02a": (4, 360, 44, 18, 206, 5, 2, 77, 8, 16145),
    "slp02b": (4, 270, 107, 14, 119, 0, 0, 29, 1, 11315),
    "slp03": (4, 720, 151, 105, 312, 78, 0, 74, 0, 24917),
    "slp04": (4, 720, 162, 60, 442, 33, 0, 23, 0, 27029),
    "slp14": (4, 714, 321, 188, 126, 30, 12, 36, 1, 22920),
    "slp16": (4, 694, 316, 108, 181, 22, 2, 65, 0, 27604),
    "slp32": (7, 640, 394, 27, 159, 43, 17, 0, 0, 21718),
    "slp37": (7, 698, 75, 21, 591, 0, 0, 11, 0, 30611),
    "slp41": (7, 780, 229, 230, 218, 13, 0, 90, 0, 25884),
    "slp45": (7, 760, 119, 54, 399, 51, 52, 81, 4, 27686),
    "slp48": (7, 760, 213, 241, 272, 2, 0, 31, 1, 24711),
    "slp59": (7, 458, 140, 105, 98, 50, 30, 35, 0, 16901),
    "slp60": (7, 710, 286, 344, 49, 0, 0, 31, 0, 25017),
    "slp61": (6, 720, 124, 88, 326, 103, 0, 79, 0, 25482),
    "slp66": (7, 439, 175, 143, 116, 5, 0, 0, 0, 15775),
    "slp67x": (7, 154, 72, 41, 40, 1, 0, 0, 0, 5374),
}
README_TOTALS = {"epochs": 10197, "W": 3115, "1": 1815, "2": 3887, "3": 483, "4": 181,
                 "R": 700, "MT/M": 16}
# README "Checks done": records whose scoring starts late or ends early (epochs / header epochs)
README_PARTIAL = {"slp14": (714, 720), "slp16": (694, 720), "slp37": (698, 700),
                  "slp59": (458, 480), "slp61": (720, 740), "slp66": (439, 440)}
# From the header comments `# age sex weight ...` (slp67x: `x M x`).
HEADER_AGES = {"slp01a": 44, "slp01b": 44, "slp02a": 38, "slp02b": 38, "slp03": 51,
               "slp04": 40, "slp14": 37, "slp16": 35, "slp32": 54, "slp37": 39, "slp41": 45,
               "slp45": 42, "slp48": 56, "slp59": 41, "slp60": 49, "slp61": 32, "slp66": 33,
               "slp67x": None}
CODES = ("W", "1", "2", "3", "4", "R")


@pytest.fixture(scope="module")
def slpdb_dir(shared_data: Path) -> Path:
    return shared_data / "slpdb"


@pytest.fixture(scope="module")
def records(slpdb_dir: Path) -> dict[str, SlpdbRecord]:
    return {r.record: r for r in read_slpdb(slpdb_dir)}


@pytest.fixture()
def excerpt(test_data: Path) -> Path:
    return test_data / "slpdb"


# ---------------------------------------------------------------- real data (shared_data)


@pytest.mark.shared_data
def test_real_records_subjects_and_epochs(records: dict[str, SlpdbRecord]) -> None:
    assert list(records) == list(README_TABLE)
    assert len({r.subject for r in records.values()}) == 16
    assert records["slp01b"].subject == "slp01" and records["slp02a"].subject == "slp02"
    assert sum(len(r.hypnogram) for r in records.values() if r.hypnogram) == 10197


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(README_TABLE))
def test_real_record_matches_readme(
    records: dict[str, SlpdbRecord], slpdb_dir: Path, name: str
) -> None:
    n_sig, n_epochs, *counts, n_beats = README_TABLE[name]
    rec = records[name]
    assert rec.hypnogram is not None and rec.beats is not None
    assert rec.header.n_signals == len(rec.header.signals) == n_sig
    assert rec.header.fs_hz == 250.0
    assert len(rec.hypnogram) == n_epochs
    found = rec.hypnogram.code_counts()
    assert [found.get(c, 0) for c in CODES] == counts[:6]
    assert found.get("MT", 0) + found.get("M", 0) == counts[6]
    assert set(found) <= set(STAGE_CODES)
    # "beats" column == lines of the .rr file == beats read
    with (slpdb_dir / f"{name}.rr").open() as fh:
        assert sum(1 for _ in fh) == n_beats
    assert len(rec.beats) == n_beats
    assert abs(rec.beats.rr_s.sum() - rec.header.duration_s) < 1.0
    assert rec.header.age == HEADER_AGES[name]
    assert rec.header.sex == "M"


@pytest.mark.shared_data
def test_real_totals(records: dict[str, SlpdbRecord]) -> None:
    totals: dict[str, int] = {}
    for rec in records.values():
        assert rec.hypnogram is not None
        for code, n in rec.hypnogram.code_counts().items():
            key = "MT/M" if code in ("MT", "M") else code
            totals[key] = totals.get(key, 0) + n
    assert sum(totals.values()) == README_TOTALS["epochs"]
    assert totals == {k: v for k, v in README_TOTALS.items() if k != "epochs"}
    n3 = sum(r.hypnogram.stage_counts()[Stage.N3] for r in records.values() if r.hypnogram)
    assert n3 == 483 + 181
    assert {r.hypnogram.codes.count("M") for r in records.values() if r.hypnogram} == {0, 4}


@pytest.mark.shared_data
def test_real_partial_scoring_is_reported(records: dict[str, SlpdbRecord]) -> None:
    for name, rec in records.items():
        assert rec.hypnogram is not None
        header_epochs = int(rec.header.duration_s // EPOCH_S)
        offset = round((rec.hypnogram.start - rec.header.start).total_seconds() / EPOCH_S) \
            if rec.header.start else 0
        assert offset + len(rec.hypnogram) <= header_epochs
        partial = [p for p in rec.problems if "stages cover epochs" in p]
        if name in README_PARTIAL:
            assert (len(rec.hypnogram), header_epochs) == README_PARTIAL[name]
            assert len(partial) == 1
        else:
            assert len(rec.hypnogram) == header_epochs and not partial
    slp14 = records["slp14"]
    assert slp14.header.start is not None and slp14.hypnogram is not None
    assert slp14.hypnogram.start == slp14.header.start + timedelta(seconds=6 * EPOCH_S)


@pytest.mark.shared_data
def test_real_headers(records: dict[str, SlpdbRecord]) -> None:
    slp32 = records["slp32"].header
    assert slp32.n_signals == 7
    assert slp32.start == datetime(1989, 7, 20, 1, 5, 30, tzinfo=BOSTON)  # "20/7/89"
    assert slp32.start.utcoffset() == timedelta(hours=-4)
    assert records["slp01a"].header.start == datetime(1989, 1, 19, 23, 7, tzinfo=BOSTON)
    assert records["slp02a"].header.clock_time.isoformat() == "00:49:00"  # written "0:49:0"
    assert records["slp48"].header.weight is None
    assert records["slp37"].header.comments[1].startswith("BP gain and baseline are guesses")
    ages = [a for a in HEADER_AGES.values() if a is not None]
    assert (min(ages), max(ages)) == (32, 56)  # README: aged 32-56
    assert {r.header.duration_s for r in records.values()} >= {7200.0, 21600.0}


@pytest.mark.shared_data
def test_real_events_and_beat_oddities(records: dict[str, SlpdbRecord]) -> None:
    events = [e for r in records.values() for e in r.events]
    assert len(events) == 4061
    assert {e.label for e in events} <= set(EVENT_CODES)
    assert records["slp41"].events == () and records["slp45"].events == ()  # none scored
    assert all(e.duration_s == EPOCH_S and e.onset_s % EPOCH_S == 0 for e in events)
    types = np.concatenate([r.beats.beat_type for r in records.values() if r.beats])
    assert set(types) <= set(BEAT_CODES)
    assert any("514.464 s" in p for p in records["slp03"].problems)
    assert any("0.004 s" in p for p in records["slp02b"].problems)


@pytest.mark.shared_data
def test_real_read_is_fast(slpdb_dir: Path) -> None:
    t0 = time.perf_counter()
    assert len(list(read_slpdb(slpdb_dir))) == 18
    assert time.perf_counter() - t0 < 10.0


# ---------------------------------------------------------------- excerpt (tests/data/slpdb)


def test_excerpt_list_and_missing_parts(excerpt: Path) -> None:
    assert list_records(excerpt) == ["slp32", "slp37", "slp67x"]
    rec = read_record(excerpt, "slp32")
    assert rec.beats is None and rec.hypnogram is None and rec.events == ()
    assert rec.subject == "slp32"
    assert any("slp32.rr not found" in p for p in rec.problems)
    assert any("slp32.an not found" in p for p in rec.problems)


def test_excerpt_slp67x_record(excerpt: Path) -> None:
    rec = read_record(excerpt, "slp67x")
    h = rec.header
    assert (h.record, h.n_signals, h.fs_hz, h.n_samples) == ("slp67x", 7, 250.0, 1155000)
    assert h.duration_s == 4620.0
    assert h.start is None and h.clock_time.isoformat() == "01:06:00"  # no date in the header
    assert (h.age, h.sex, h.weight) == (None, "M", None)
    so2 = h.signals[-1]
    assert (so2.description, so2.gain, so2.baseline, so2.unit) == ("SO2", 17.5, -808, "%")
    ecg = h.signals[0]
    assert (ecg.gain, ecg.baseline, ecg.unit, ecg.format) == (500.0, 0, "mV", 212)
    assert [s.description for s in h.signals][3:5] == ["Resp (nasal)", "Resp (chest)"]
    assert any("no start date" in p for p in rec.problems)

    hyp = rec.hypnogram
    assert hyp is not None and len(hyp) == 154
    assert hyp.code_counts() == {"1": 41, "W": 72, "2": 40, "3": 1}
    assert hyp.start == NOMINAL_START and hyp.start_is_nominal
    assert hyp.codes[:3] == ("1", "1", "W")
    assert list(hyp.stages[:3]) == [Stage.N1, Stage.N1, Stage.W]
    assert hyp.subject == "slp67x"

    assert len(rec.events) == 79
    first = rec.events[0]
    assert (first.onset_s, first.duration_s, first.label) == (0.0, 30.0, "X")
    assert first.description == "obstructive apnea with arousal"
    assert rec.events[1].onset_s == 60.0


def test_excerpt_beats(excerpt: Path) -> None:
    beats = read_rr(excerpt / "slp67x.rr")
    assert len(beats) == 5374 and beats.record == "slp67x" and beats.start_is_nominal
    assert beats.t_s[0] == pytest.approx(0.316) and beats.rr_s[0] == pytest.approx(0.316)
    assert beats.prev_type[0] == "" and not beats.is_interval[0]
    assert beats.t_s[-1] == pytest.approx(4619.612)  # " 1:16:59.612"
    assert np.all(np.diff(beats.t_s) > 0)
    assert np.allclose(np.diff(beats.t_s), beats.rr_s[1:], atol=1e-6)
    assert set(beats.beat_type) == {"N", "S"} and int((~beats.normal).sum()) == 2
    nn = beats.rr_series()
    # 2 S beats in a row (N-S, S-S, S-N) remove 3 of the 5373 intervals
    assert nn.name == "rr" and nn.unit == "s" and len(nn) == 5373 - 3
    assert len(beats.rr_series(normal_only=False)) == 5373
    start = datetime(1990, 1, 1, 1, 6, tzinfo=BOSTON)
    assert read_rr(excerpt / "slp67x.rr", start=start).rr_series().start == start


def test_excerpt_headers(excerpt: Path) -> None:
    h32 = read_header(excerpt / "slp32.hea")
    assert h32.start == datetime(1989, 7, 20, 1, 5, 30, tzinfo=BOSTON)
    assert (h32.age, h32.weight, h32.n_signals) == (54, 92.0, 7)
    assert h32.signals[1].gain == pytest.approx(9.37288) and h32.signals[1].baseline == -1138
    h37 = read_header(excerpt / "slp37.hea")
    assert len(h37.comments) == 2 and "5.69(344)" in h37.comments[1]
    assert (h37.signals[1].gain, h37.signals[1].baseline) == (10.0, -400)


@pytest.mark.parametrize(
    ("record", "subject"),
    [("slp01a", "slp01"), ("slp01b", "slp01"), ("slp02b", "slp02"), ("slp03", "slp03"),
     ("slp67x", "slp67x")],
)
def test_subject_of(record: str, subject: str) -> None:
    assert subject_of(record) == subject


@pytest.mark.parametrize("bad", ["", "slp1", "SLP01a", "slp01a.hea", "rec01"])
def test_subject_of_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="SLPDB record name"):
        subject_of(bad)


def test_missing_header_and_folder(excerpt: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"slp01a\.hea.*slp32, slp37, slp67x"):
        read_record(excerpt, "slp01a")
    with pytest.raises(FileNotFoundError, match="not found or not a directory"):
        list_records(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no SLPDB header"):
        read_slpdb(tmp_path)


# ---------------------------------------------------------------- corrupted copies


def _copy(excerpt: Path, tmp_path: Path) -> Path:
    for f in excerpt.glob("slp67x.*"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _edit(path: Path, lineno: int, new: str | None) -> None:
    """Replace (or with None delete) 1-based line ``lineno`` of ``path``."""
    lines = path.read_text().split("\n")
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    path.write_text("\n".join(lines))


def _line(path: Path, lineno: int) -> str:
    return path.read_text().split("\n")[lineno - 1]


def _expect_error(path: Path, reader, match: str, line: int | None = None, field=None) -> None:
    with pytest.raises(DataFormatError, match=match) as info:
        reader(path)
    msg = str(info.value)
    assert path.name in msg
    if line is not None:
        assert f"line {line}" in msg and info.value.line == line
    if field is not None:
        assert f"field {field!r}" in msg and info.value.field == field
    assert "expected" in msg or "got" in msg


RR_CASES = {
    "truncated": (20, lambda s: s.rsplit("\t", 2)[0], "truncated line", None),
    "spaces": (20, lambda s: s.replace("\t", "  "), "wrong delimiter", None),
    "bad time": (20, lambda s: s.replace("0:", "0;", 1), "bad start_time", "start_time"),
    "nan rr": (20, lambda s: "\t".join(
        [*s.split("\t")[:2], "nan", *s.split("\t")[3:]]), "bad RR_seconds", "RR_seconds"),
    "beat Z": (20, lambda s: "\t".join(
        [*s.split("\t")[:3], "Z", s.split("\t")[4]]), "bad beat_type", "beat_type"),
    "[0] late": (20, lambda s: s.replace("\tN\t", "\t[0]\t", 1), "bad type_of_previous_beat",
                 "type_of_previous_beat"),
    "zero rr": (20, lambda s: "\t".join(
        [*s.split("\t")[:2], "0.000", *s.split("\t")[3:]]), "not positive", "RR_seconds"),
}


@pytest.mark.parametrize("case", list(RR_CASES))
def test_rr_corrupted(excerpt: Path, tmp_path: Path, case: str) -> None:
    lineno, change, match, field = RR_CASES[case]
    rr = _copy(excerpt, tmp_path) / "slp67x.rr"
    _edit(rr, lineno, change(_line(rr, lineno)))
    _expect_error(rr, read_rr, match, line=lineno, field=field)
    _expect_error(rr, lambda p: read_record(p.parent, "slp67x"), match, line=lineno)


def test_rr_non_monotonic(excerpt: Path, tmp_path: Path) -> None:
    rr = _copy(excerpt, tmp_path) / "slp67x.rr"
    a, b = _line(rr, 30), _line(rr, 31)
    _edit(rr, 30, b)
    _edit(rr, 31, a)
    _expect_error(rr, read_rr, "not strictly increasing", line=31, field="end_time")


def test_rr_empty_and_binary(tmp_path: Path) -> None:
    (tmp_path / "slp01a.rr").write_text("")
    _expect_error(tmp_path / "slp01a.rr", read_rr, "empty file")
    (tmp_path / "slp01a.rr").write_bytes(b"\x00\xff\xfe binary")
    _expect_error(tmp_path / "slp01a.rr", read_rr, "not an ASCII text file")


def test_rr_warnings(excerpt: Path, tmp_path: Path) -> None:
    rr = _copy(excerpt, tmp_path) / "slp67x.rr"
    fields = _line(rr, 50).split("\t")
    _edit(rr, 50, "\t".join([*fields[:2], f"{float(fields[2]) + 0.1:.3f}", *fields[3:]]))
    with pytest.warns(DataQualityWarning, match=r"start_time \+ RR_seconds != end_time.*line 50"):
        beats = read_rr(rr)
    assert len(beats) == 5374
    _copy(excerpt, tmp_path)
    _edit(rr, 50, None)
    with pytest.warns(DataQualityWarning, match="do not continue the previous line.*line 50"):
        assert len(read_rr(rr)) == 5373


AN_CASES = {
    "stage Q": (11, lambda s: s.split("\t")[0] + "\tQ", "unknown stage code", "Aux"),
    "event ZZ": (11, lambda s: s + " ZZ", "unknown event code", "Aux"),
    "truncated": (11, lambda s: s.split("\t")[0], "truncated line", None),
    "spaces": (11, lambda s: s.replace("\t", "  "), "wrong delimiter", None),
    "bad time": (11, lambda s: s.replace(":30.000", ":3O.000"), "bad time", "Elapsed time"),
    "bad sample": (11, lambda s: s.replace("67500", "6750O"), "bad sample", "Sample #"),
    "sample vs time": (11, lambda s: s.replace("67500", "67600"), "disagree", "Sample #"),
    "off grid": (11, lambda s: s.replace("4:30.000", "4:40.000").replace("67500", "70000"),
                 "off the 30-s epoch grid", "Sample #"),
    "same epoch": (11, lambda s: s.replace("4:30.000", "4:00.400").replace("67500", "60100"),
                   "two annotations in one epoch", "Sample #"),
    "extra field": (11, lambda s: s.replace('"', '" 7', 1), "wrong number of fields", None),
}


@pytest.mark.parametrize("case", list(AN_CASES))
def test_an_corrupted(excerpt: Path, tmp_path: Path, case: str) -> None:
    lineno, change, match, field = AN_CASES[case]
    an = _copy(excerpt, tmp_path) / "slp67x.an"
    assert "67500" in _line(an, lineno)
    _edit(an, lineno, change(_line(an, lineno)))
    _expect_error(an, read_annotations, match, line=lineno, field=field)
    _expect_error(an, lambda p: read_record(p.parent, "slp67x"), match, line=lineno)


def test_an_header_line_and_order(excerpt: Path, tmp_path: Path) -> None:
    an = _copy(excerpt, tmp_path) / "slp67x.an"
    a, b = _line(an, 10), _line(an, 11)
    _edit(an, 10, b)
    _edit(an, 11, a)
    _expect_error(an, read_annotations, "not strictly increasing", line=11, field="Sample #")
    _edit(an, 1, None)
    _expect_error(an, read_annotations, "missing rdann header line", line=1)
    _expect_error(an, lambda p: read_annotations(p, fs_hz=128.0), "missing rdann header")


def test_crlf_copy_reads_the_same(excerpt: Path, tmp_path: Path) -> None:
    for f in excerpt.glob("slp67x.*"):
        (tmp_path / f.name).write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    a, b = read_record(excerpt, "slp67x"), read_record(tmp_path, "slp67x")
    assert a.hypnogram is not None and b.hypnogram is not None
    assert a.hypnogram.codes == b.hypnogram.codes and a.events == b.events
    assert a.beats is not None and b.beats is not None
    assert np.array_equal(a.beats.t_s, b.beats.t_s)
    assert a.header.signals == b.header.signals


def test_an_wrong_rate(excerpt: Path) -> None:
    _expect_error(excerpt / "slp67x.an", lambda p: read_annotations(p, fs_hz=128.0),
                  "disagree", line=3, field="Sample #")
    with pytest.raises(ValueError, match="fs_hz"):
        read_annotations(excerpt / "slp67x.an", fs_hz=0.0)


def test_an_gap_is_filled_and_reported(excerpt: Path, tmp_path: Path) -> None:
    an = _copy(excerpt, tmp_path) / "slp67x.an"
    _edit(an, 12, None)  # epoch 10 (line 12 = 5:00.000) has no annotation now
    with pytest.warns(DataQualityWarning, match="1 epochs inside the scored span"):
        ann = read_annotations(an)
    assert ann.gaps == ((10, 1),) and ann.first_epoch == 0
    assert len(ann.hypnogram) == 154
    assert ann.hypnogram.stages[10] == Stage.UNSCORED and ann.hypnogram.codes[10] == ""
    with pytest.warns(DataQualityWarning):
        rec = read_record(tmp_path, "slp67x")
    assert any("epochs 10-10 have no stage" in p for p in rec.problems)


def test_an_late_start(excerpt: Path, tmp_path: Path) -> None:
    an = _copy(excerpt, tmp_path) / "slp67x.an"
    _edit(an, 2, None)
    _edit(an, 2, None)  # epochs 0 and 1 gone: scoring starts at epoch 2
    start = datetime(1990, 1, 1, 1, 6, tzinfo=BOSTON)
    ann = read_annotations(an, start=start)
    assert ann.first_epoch == 2 and len(ann.hypnogram) == 152 and ann.gaps == ()
    assert ann.hypnogram.start == start + timedelta(seconds=60)
    assert not ann.hypnogram.start_is_nominal
    assert ann.events[0].onset_s == 60.0  # events stay relative to the record start


HEA_CASES = {
    "record fields": (1, lambda s: s.rsplit(" ", 2)[0], "record line has the wrong fields",
                      None),
    "bad date": (1, lambda s: s + " 31/2/1990", "unparsable start time or date",
                 "start_time start_date"),
    "bad time": (1, lambda s: s.replace("1:06:00", "1:6O:00"), "unparsable start time",
                 "start_time start_date"),
    "name": (1, lambda s: s.replace("slp67x", "slp67y", 1), "does not match the file name",
             "name"),
    "n_signals": (1, lambda s: s.replace(" 7 ", " x ", 1), "not an integer", "n_signals"),
    "zero rate": (1, lambda s: s.replace(" 250/", " 0/", 1), "record line has the wrong",
                  None),
    "signal fields": (3, lambda s: s.rsplit(" ", 4)[0], "too few fields", None),
    "gain": (3, lambda s: s.replace("7.72857(-1147)/mmHg", "7.7x(-1147)/mmHg"),
             "unparsable gain", "gain"),
    "bits": (3, lambda s: s.replace(" 12 0 ", " 12.5 0 ", 1), "not an integer", "bits"),
}


@pytest.mark.parametrize("case", list(HEA_CASES))
def test_hea_corrupted(excerpt: Path, tmp_path: Path, case: str) -> None:
    lineno, change, match, field = HEA_CASES[case]
    hea = _copy(excerpt, tmp_path) / "slp67x.hea"
    _edit(hea, lineno, change(_line(hea, lineno)))
    _expect_error(hea, read_header, match, line=lineno, field=field)
    _expect_error(hea, lambda p: read_record(p.parent, "slp67x"), match, line=lineno)


def test_hea_signal_count_and_empty(excerpt: Path, tmp_path: Path) -> None:
    hea = _copy(excerpt, tmp_path) / "slp67x.hea"
    _edit(hea, 8, None)
    _expect_error(hea, read_header, "signal count does not match", field="n_signals")
    hea.write_text("# only a comment\n")
    _expect_error(hea, read_header, "empty header")
