"""The README's main command, ``sleepstream up``, from start to hypnograms (real broker and
worker), and the argument checks of the stream commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from stream.cli_stream import _speed
from stream.stack import free_port


def test_speed_parsing() -> None:
    assert _speed("afap") is None and _speed("realtime") == 1.0 and _speed("60x") == 60.0
    with pytest.raises(typer.BadParameter, match="afap"):
        _speed("fast-ish")
    with pytest.raises(typer.BadParameter):
        _speed("-3")


@pytest.mark.timeout(600)
def test_up_runs_the_whole_stream_on_the_bundled_night(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "sleepstream"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPSTREAM_")}
    proc = subprocess.run(
        [str(exe), "up", "--speed", "afap", "--out", str(tmp_path / "up"),
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and "noida-db" in out and not os.environ.get("CI"):
        pytest.skip("no embedded broker here")
    assert proc.returncode == 0, out[-3000:]
    assert "embedded broker kafka://127.0.0.1:" in out
    assert "live page: http://127.0.0.1:" in out and "/live/" in out
    # a line per causal stage as it arrives, then the summary and the hypnograms
    assert out.count(" epoch ") >= 964
    assert "8692923: TST" in out
    for kind in ("causal", "offline"):
        assert (tmp_path / "up" / f"8692923-{kind}.png").stat().st_size > 10_000
