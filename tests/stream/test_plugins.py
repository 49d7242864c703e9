"""``sleepstream`` finds the ``train`` group through its entry point; the stream never imports
training."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stream import plugins
from stream.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_train_commands_come_through_the_entry_point() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "entry-points"]["sleepstream.commands"]
    assert declared == {"train": "training.cli:train_app"}
    installed = {ep.name: ep.value for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert installed == declared, (
        "the installed sleepstream metadata predates the sleepstream.commands entry points; "
        "install the package again (pip install -e .) so that `sleepstream train` is found"
    )
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("cv", "report", "baselines", "ship"):
        assert f" {command} " in result.output


def test_a_missing_entry_point_gets_a_stand_in_that_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    bare = typer.Typer()
    bare.command()(lambda: None)
    assert plugins.add_plugin_commands(bare) == []
    result = runner.invoke(bare, ["train", "cv", "--dataset", "slpdb"])
    assert result.exit_code == 2
    assert "`sleepstream train` is not available" in result.output
    assert "pip install 'sleepstream[train]' 'torch==2.13.0'" in result.output


def test_an_entry_point_that_does_not_import_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EntryPoint("train", "training.no_such_module:train_app", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken])
    bare = typer.Typer()
    bare.command()(lambda: None)
    assert plugins.add_plugin_commands(bare) == ["train"]
    result = runner.invoke(bare, ["train"])
    assert result.exit_code == 2
    assert "training.no_such_module:train_app does not import" in result.output


def test_an_entry_point_must_be_a_typer_app(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = EntryPoint("train", "stream.plugins:ENTRY_POINT_GROUP", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [wrong])
    with pytest.raises(TypeError, match="must be a typer.Typer; got str"):
        plugins.add_plugin_commands(typer.Typer())


def test_stream_source_never_imports_training() -> None:
    offenders = []
    for path in sorted((REPO / "stream").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                          if n == "training" or n.startswith("training.")]
    assert offenders == []


def test_the_worker_loads_neither_training_nor_torch_nor_plotting() -> None:
    code = (
        "import sys; import stream.app, stream.worker, stream.staging, stream.sinks; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'training', 'torch', 'lightning', 'matplotlib', 'mlflow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout
