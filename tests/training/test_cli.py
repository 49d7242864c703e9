"""The ``sleepstream train`` group on its own: help, and the message without the train extra."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from training import cli

runner = CliRunner()


def test_help_lists_the_commands_without_importing_torch() -> None:
    result = runner.invoke(cli.train_app, ["--help"])
    assert result.exit_code == 0
    assert all(f" {c} " in result.output for c in ("cv", "report", "baselines", "ship"))


def test_without_the_train_extra_a_command_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "lightning") else real(name))
    result = runner.invoke(cli.train_app, ["cv", "--dataset", "slpdb", "--data", ".",
                                           "--out", "run"])
    assert result.exit_code == 2
    assert "needs the train extra, and torch, lightning are not installed" in result.output
    assert "pip install 'sleepstream[train]' 'torch==2.13.0'" in result.output


def test_bad_variants_are_refused_before_training() -> None:
    result = runner.invoke(cli.train_app, ["ship", "--dataset", "slpdb", "--data", ".",
                                           "--cv", ".", "--variants", "both"])
    assert result.exit_code == 2 and "comma-separated subset of" in result.output
