"""The ``sleepstream`` command line: one Typer app, subcommands import their work lazily.

Lazy imports keep ``sleepstream --help`` fast and keep torch out of commands that do not
train.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sleepstream",
    help="Streaming, real-time sleep staging for wearables and polysomnography.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Streaming, real-time sleep staging for wearables and polysomnography."""


def main() -> None:
    """Entry point of the ``sleepstream`` console script."""
    app()
