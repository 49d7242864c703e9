from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingestors.errors import DataFormatError
from ingestors.inspect import detect_kind, inspect_path
from stream.cli import app

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.shared_data
def test_sleep_accel_raw_counts_match_the_data_readme(shared_data: Path) -> None:
    inv = inspect_path(shared_data / "sleep-accel-raw")
    assert inv.kind == "sleep-accel"
    assert len(inv.subjects) == 31
    assert inv.n_epochs == 27_211
    assert inv.label_totals() == {
        "-1": 438, "0": 2429, "1": 1821, "2": 12954, "3": 3329, "4": 356, "5": 5884,
    }
    by_subject = {s.subject: s for s in inv.subjects}
    assert by_subject["7749105"].samples["heart_rate_in_night"] == 836
    assert sum(s.samples["heart_rate"] for s in inv.subjects) == 220_899
    assert sum(s.samples["heart_rate_in_night"] for s in inv.subjects) == 151_698


@pytest.mark.shared_data
def test_slpdb_counts_match_the_data_readme(shared_data: Path) -> None:
    inv = inspect_path(shared_data / "slpdb")
    assert len(inv.subjects) == 18
    assert inv.n_groups == 16
    assert inv.n_epochs == 10_197
    assert inv.label_totals() == {
        "W": 3115, "1": 1815, "2": 3887, "3": 483, "4": 181, "R": 700, "M": 4, "MT": 12,
    }


@pytest.mark.shared_data
def test_sleep_edf_counts_match_the_data_readme(shared_data: Path) -> None:
    inv = inspect_path(shared_data / "sleep-edf" / "hypnograms")
    assert len(inv.subjects) == 20
    assert inv.n_groups == 10
    assert inv.label_totals() == {
        "W": 37115, "1": 1689, "2": 8927, "3": 1700, "4": 1374, "R": 3693, "MT": 32, "?": 3070,
    }


@pytest.mark.shared_data
def test_cli_inspect_prints_the_summary_line(shared_data: Path) -> None:
    code, out = _cli("inspect", str(shared_data / "sleep-accel-raw"))
    assert code == 0, out
    assert "sleep-accel: 31 subjects, 27,211 labelled epochs" in out
    code, out = _cli("inspect", str(shared_data / "slpdb"))
    assert "18 records from 16 subjects, 10,197 labelled epochs" in out
    code, out = _cli("inspect", str(shared_data / "sleep-edf" / "hypnograms"))
    assert "20 hypnograms from 10 subjects" in out


def test_excerpts_inspect_everywhere(test_data: Path) -> None:
    inv = inspect_path(test_data / "slpdb")
    assert {s.subject for s in inv.subjects} == {"slp32", "slp37", "slp67x"}
    slp67x = next(s for s in inv.subjects if s.subject == "slp67x")
    assert slp67x.n_epochs == 154
    assert slp67x.samples["beats"] == 5374
    code, out = _cli("inspect", str(test_data / "sleep-edf"), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["kind"] == "edf"
    assert doc["n_subjects"] >= 1
    assert all(s["n_epochs"] == 2880 for s in doc["subjects"])


def test_sleep_accel_excerpt_reports_repairs(test_data: Path) -> None:
    inv = inspect_path(test_data / "sleep-accel" / "raw")
    problems = {s.subject: s.problems for s in inv.subjects}
    assert any("restarts" in p for p in problems["781756"])


def test_unreadable_subject_is_a_problem_not_a_crash(test_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slpdb"
    shutil.copytree(test_data / "slpdb", folder)
    an = folder / "slp67x.an"
    lines = an.read_text().splitlines()
    lines[5] = lines[5].replace("\t", "\tQ ", 1)  # Q is not a stage code
    an.write_text("\n".join(lines) + "\n")
    inv = inspect_path(folder)
    bad = next(s for s in inv.subjects if s.subject == "slp67x")
    assert bad.problems and "unreadable" in bad.problems[0]
    assert "slp67x.an" in bad.problems[0] and "line 6" in bad.problems[0]


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    code, out = _cli("inspect", str(tmp_path / "nope"))
    assert code == 2
    assert "no such file or folder" in out
    odd = tmp_path / "notes.docx"
    odd.write_text("x")
    with pytest.raises(DataFormatError, match="unknown file type"):
        detect_kind(odd)
    code, out = _cli("inspect", str(odd))
    assert code == 2 and "notes.docx" in out and "Traceback" not in out
