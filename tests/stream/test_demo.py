from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stream.cli import app
from stream.demo import run_demo


def test_demo_runs_on_the_bundled_night(tmp_path: Path) -> None:
    with (tmp_path / "log.txt").open("w") as log:
        result = run_demo(tmp_path, Console(file=log))
    assert result.round_trips == {"CSV": True, "BIDS TSV": True, "EDF+": True}
    assert all(f.stat().st_size > 0 for f in result.files)
    assert len(result.night.labels or ()) == 964
    assert result.stats.tst_min == pytest.approx(412.5)
    # the shipped models saw this night in training: a smoke test that they stage it sensibly
    assert set(result.kappa3) == {"causal", "offline"}
    assert all(k > 0.4 for k in result.kappa3.values())


def test_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "identical" in res.output and "DIFFERENT" not in res.output
    assert (out / "8692923_hypnogram.png").is_file()
    assert (out / "8692923_staged.png").is_file()
