"""Tests of the NSRR XML and CSV/TSV hypnogram readers and of reading by content.

NSRR XML and CSV/TSV files are written into tmp_path, bad ones by hand; the Sleep-EDF
excerpt of tests/data/sleep-edf/ stands for EDF+ in the dispatch tests. The Sleep-EDF
reader and the writers are tested in test_hypnogram_io.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingestors.errors import DataFormatError, DataQualityWarning
from ingestors.hypnogram_io import (
    read_edf_hypnogram,
    read_hypnogram,
    read_hypnogram_table,
    read_nsrr_xml,
    read_scoring,
)
from ingestors.types import NOMINAL_START, Event
from models.stages import Stage

# -- NSRR XML ------------------------------------------------------------------------------

_XML_STAGE = """    <ScoredEvent>
      <EventType>Stages|Stages</EventType>
      <EventConcept>{concept}</EventConcept>
      <Start>{start}</Start>
      <Duration>{duration}</Duration>
    </ScoredEvent>"""
_XML_OTHER = """    <ScoredEvent>
      <EventType>{etype}</EventType>
      <EventConcept>{concept}</EventConcept>
      <Start>{start}</Start>
      <Duration>{duration}</Duration>
      <SignalLocation>SaO2</SignalLocation>
    </ScoredEvent>"""
NSRR_STAGES = [
    ("Wake|0", 0.0, 60.0), ("Stage 1 sleep|1", 60.0, 30.0), ("Stage 2 sleep|2", 90.0, 90.0),
    ("Stage 3 sleep|3", 180.0, 30.0), ("Stage 4 sleep|4", 210.0, 30.0),
    ("REM sleep|5", 240.0, 30.0), ("Unscored|9", 270.0, 30.0),
]


def _nsrr_xml(path: Path, stages: list[tuple[str, float, float]] = NSRR_STAGES,
              epoch: str = "30", extra: str = "") -> Path:
    events = [
        _XML_OTHER.format(etype="", concept="Recording Start Time", start=0, duration=300.0),
        _XML_OTHER.format(etype="Respiratory|Respiratory",
                          concept="Obstructive apnea|Obstructive Apnea", start=100.5,
                          duration=12.0),
        *[_XML_STAGE.format(concept=c, start=s, duration=d) for c, s, d in stages],
        _XML_OTHER.format(etype="Arousals|Arousals", concept="Arousal|Arousal ()",
                          start=200.0, duration=5.0),
    ]
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f"{extra}<PSGAnnotation>\n  <SoftwareVersion>Compumedics</SoftwareVersion>\n"
        f"  <EpochLength>{epoch}</EpochLength>\n  <ScoredEvents>\n"
        + "\n".join(events) + "\n  </ScoredEvents>\n</PSGAnnotation>\n",
        encoding="utf-8",
    )
    return path


def test_nsrr_stages_codes_and_nominal_start(tmp_path: Path) -> None:
    hyp = read_nsrr_xml(_nsrr_xml(tmp_path / "shhs1-200001-nsrr.xml"))
    assert list(hyp.stages) == [Stage.W, Stage.W, Stage.N1, Stage.N2, Stage.N2, Stage.N2,
                                Stage.N3, Stage.N3, Stage.REM, Stage.UNSCORED]
    assert hyp.codes[6:8] == ("Stage 3 sleep|3", "Stage 4 sleep|4")
    assert hyp.start == NOMINAL_START
    assert hyp.start_is_nominal
    assert hyp.subject == "shhs1-200001-nsrr"
    assert hyp.epoch_s == 30.0


def test_nsrr_start_argument_and_events(tmp_path: Path) -> None:
    start = datetime(2001, 5, 3, 22, 15, tzinfo=ZoneInfo("America/New_York"))
    scoring = read_scoring(_nsrr_xml(tmp_path / "a.xml"), start=start)
    assert scoring.hypnogram.start == start
    assert not scoring.hypnogram.start_is_nominal
    assert scoring.events == [
        Event(100.5, 12.0, "Obstructive apnea|Obstructive Apnea", "Respiratory"),
        Event(200.0, 5.0, "Arousal|Arousal ()", "Arousals"),
    ]


def test_nsrr_naive_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        naive = datetime(2001, 5, 3, 22)  # noqa: DTZ001 - the mistake under test
        read_nsrr_xml(_nsrr_xml(tmp_path / "a.xml"), start=naive)


def test_nsrr_other_epoch_length(tmp_path: Path) -> None:
    path = _nsrr_xml(tmp_path / "a.xml", [("Wake|0", 0.0, 40.0), ("REM sleep|5", 40, 20)],
                     epoch="20")
    assert list(read_nsrr_xml(path).stages) == [Stage.W, Stage.W, Stage.REM]


def test_nsrr_gap_warns_and_overlap_fails(tmp_path: Path) -> None:
    gap = _nsrr_xml(tmp_path / "gap.xml", [("Wake|0", 0.0, 30.0), ("REM sleep|5", 60.0, 30.0)])
    with pytest.warns(DataQualityWarning, match="ScoredEvent 3"):
        assert list(read_nsrr_xml(gap).stages) == [Stage.W, Stage.UNSCORED, Stage.REM]
    over = _nsrr_xml(tmp_path / "over.xml", [("Wake|0", 0.0, 60.0), ("REM sleep|5", 30, 30)])
    with pytest.raises(DataFormatError, match=r"over\.xml, line 26: ScoredEvent 3"):
        read_nsrr_xml(over)


def test_nsrr_bad_tag_gives_the_parser_line(tmp_path: Path) -> None:
    path = _nsrr_xml(tmp_path / "bad.xml")
    lines = path.read_text().splitlines()
    assert lines[15] == "      <Start>100.5</Start>"
    lines[15] = lines[15].replace("</Start>", "</Strat>")
    path.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"bad\.xml, line 16: malformed XML: mismatched"):
        read_nsrr_xml(path)


@pytest.mark.parametrize(
    "extra",
    [
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n',
        '<!DOCTYPE PSGAnnotation SYSTEM "http://example.invalid/evil.dtd">\n',
    ],
)
def test_nsrr_doctype_and_entities_are_refused(tmp_path: Path, extra: str) -> None:
    path = _nsrr_xml(tmp_path / "evil.xml", extra=extra)
    with pytest.raises(DataFormatError, match=r"evil\.xml, line 2: XML DOCTYPE declarations"):
        read_nsrr_xml(path)


def test_nsrr_wrong_root(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<CMPStudyConfig><EpochLength>30</EpochLength></CMPStudyConfig>")
    with pytest.raises(DataFormatError, match=r"other\.xml, field 'root element'"):
        read_nsrr_xml(path)


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([("Wake|0", "soon", 30.0)], r"line \d+, field 'Start': <Start> is not a finite"),
        ([("Wake|0", 0.0, "nan")], r"line \d+, field 'Duration': <Duration> is not a finite"),
        ([("Stage 7 sleep|7", 0.0, 30.0)], r"line \d+, field 'EventConcept': unknown stage"),
        ([("Wake|0", 0.0, 45.0)], r"line \d+: duration of ScoredEvent 2 .* 30-s epoch"),
    ],
)
def test_nsrr_bad_fields_name_line_and_field(tmp_path: Path, stages: list, match: str) -> None:
    with pytest.raises(DataFormatError, match=rf"bad\.xml, {match}"):
        read_nsrr_xml(_nsrr_xml(tmp_path / "bad.xml", stages))


# -- CSV / TSV tables ----------------------------------------------------------------------


def _table(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_table_bids_events(tmp_path: Path) -> None:
    path = _table(tmp_path / "sub-01_events.tsv",
                  "onset\tduration\tstage\tscorer\n0\t60\tW\tA\n60\t30\tN1\tA\n90\t90\tREM\tB\n")
    hyp = read_hypnogram_table(path)
    assert list(hyp.stages) == [Stage.W, Stage.W, Stage.N1, Stage.REM, Stage.REM, Stage.REM]
    assert hyp.codes[:3] == ("W", "W", "N1")
    assert hyp.start == NOMINAL_START
    assert hyp.start_is_nominal
    assert hyp.subject == "sub-01_events"


def test_table_one_stage_per_epoch_with_metadata(tmp_path: Path) -> None:
    path = _table(tmp_path / "night.csv",
                  "# start: 2024-03-01T23:00:00+01:00\n# epoch_s: 20\n# subject: p7\n"
                  "epoch,stage\n0,wake\n1,Sleep stage 2\n# start: not metadata below the header\n"
                  "2,n/a\n")
    hyp = read_hypnogram_table(path)
    assert list(hyp.stages) == [Stage.W, Stage.N2, Stage.UNSCORED]
    assert hyp.codes == ("wake", "Sleep stage 2", "n/a")
    assert hyp.start == datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
    assert (hyp.epoch_s, hyp.subject, hyp.start_is_nominal) == (20.0, "p7", False)


def test_table_single_stage_column_and_start_argument(tmp_path: Path) -> None:
    path = _table(tmp_path / "stages.txt", "stage\nW\nN1\nN2\n")
    start = datetime(2024, 1, 1, 23, tzinfo=UTC)
    hyp = read_hypnogram(path, start=start)
    assert list(hyp.stages) == [Stage.W, Stage.N1, Stage.N2]
    assert hyp.start == start


def test_table_epoch_gap_warns(tmp_path: Path) -> None:
    path = _table(tmp_path / "g.csv", "epoch,stage\n0,W\n3,N1\n")
    with pytest.warns(DataQualityWarning, match=r"g\.csv: 1 gap"):
        hyp = read_hypnogram_table(path)
    assert list(hyp.stages) == [Stage.W, Stage.UNSCORED, Stage.UNSCORED, Stage.N1]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("semi.tsv", "onset;duration;stage\n0;30;W\n",
         r"line 1: header is neither comma- nor tab-separated \(found ';'\)"),
        ("cols.csv", "time,label\n0,W\n",
         r"cols\.csv, field 'stage': missing column; expected 'onset'"),
        ("cols2.tsv", "duration\tstage\n30\tW\n", r"field 'onset': missing column"),
        ("text.tsv", "onset\tduration\tstage\n0\t30\tW\nsoon\t30\tN1\n",
         r"line 3, field 'onset': not a number; got 'soon'"),
        ("nan.tsv", "onset\tduration\tstage\n0\t30\tW\nNaN\t30\tN1\n",
         r"line 3, field 'onset': NaN or infinite value"),
        ("dur.csv", "onset,duration,stage\n0,45,W\n",
         r"line 2: duration of the row with onset 0 s is not a positive multiple"),
        ("stage.csv", "# start: 2024-01-01T00:00:00+00:00\nonset,duration,stage\n0,30,W\n"
         "30,30,N5\n", r"line 4, field 'stage': unknown stage; got 'N5'"),
        ("order.tsv", "onset\tduration\tstage\n0\t30\tW\n60\t30\tN1\n30\t30\tN2\n",
         r"line 4, field 'onset': onsets do not increase; got '30 s after 60 s on line 3'"),
        ("overlap.tsv", "onset\tduration\tstage\n0\t60\tW\n30\t30\tN1\n",
         r"line 3: the row with onset 30 s starts before the previous stage entry ends"),
        ("fields.csv", "onset,duration,stage\n0,30,W,extra\n",
         r"line 2: wrong number of fields; expected 3"),
        ("start.csv", "# start: 2024-01-01T00:00:00\nstage\nW\n",
         r"line 1, field 'start': start time is not ISO 8601 with a UTC offset"),
        ("epoch.csv", "# epoch_s: -30\nstage\nW\n", r"line 1, field 'epoch_s'"),
        ("empty.csv", "# only comments\n", r"empty\.csv: no header line"),
        ("norows.csv", "stage\n", r"norows\.csv: no sleep-stage entries"),
    ],
)
def test_table_errors_name_file_line_and_column(tmp_path: Path, name: str, text: str,
                                                match: str) -> None:
    with pytest.raises(DataFormatError, match=match) as info:
        read_hypnogram_table(_table(tmp_path / name, text))
    assert str(info.value).startswith(str(tmp_path / name))


def test_table_sidecar_errors_name_the_sidecar(tmp_path: Path) -> None:
    path = _table(tmp_path / "x.tsv", "onset\tduration\tstage\n0\t30\tW\n")
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(DataFormatError, match=r"x\.json: sidecar is not valid JSON"):
        read_hypnogram_table(path)
    path.with_suffix(".json").write_text('{"StartTime": "yesterday"}')
    with pytest.raises(DataFormatError, match=r"x\.json, field 'StartTime'"):
        read_hypnogram_table(path)


def test_dispatch_by_content_when_the_suffix_is_unknown(
    tmp_path: Path, sleep_edf_excerpt: Path
) -> None:
    edf = tmp_path / "hypnogram.rec"
    edf.write_bytes(sleep_edf_excerpt.read_bytes())
    assert len(read_hypnogram(edf)) == 2880
    xml = _nsrr_xml(tmp_path / "annotations.dat")
    assert len(read_hypnogram(xml)) == 10
    table = _table(tmp_path / "stages.dat", "stage\nW\n")
    assert len(read_hypnogram(table)) == 1


def test_dispatch_refuses_options_of_another_reader(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"'tz': not an option for a\.xml, read as NSRR XML"):
        read_hypnogram(_nsrr_xml(tmp_path / "a.xml"), tz="UTC")


@pytest.mark.parametrize("epoch_s", [0.0, -30.0, float("nan")])
def test_epoch_length_argument_is_checked(sleep_edf_excerpt: Path, tmp_path: Path,
                                          epoch_s: float) -> None:
    with pytest.raises(ValueError, match="`epoch_s` must be a finite number of seconds > 0"):
        read_edf_hypnogram(sleep_edf_excerpt, epoch_s=epoch_s)
    with pytest.raises(ValueError, match="`epoch_s`"):
        read_hypnogram_table(_table(tmp_path / "t.csv", "stage\nW\n"), epoch_s=epoch_s)
