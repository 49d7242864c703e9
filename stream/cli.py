"""The ``sleepstream`` command line: one Typer app, subcommands import their work lazily.

Lazy imports keep ``sleepstream --help`` fast and keep torch out of commands that do not
train. The ``train`` group lives in :mod:`training.cli` and joins through the
``sleepstream.commands`` entry point group (:mod:`stream.plugins`), so the stream never
imports ``training``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dashboards.cli import dashboards_app  # typer only; the SDK loads lazily
from stream.cli_stream import register as register_stream_commands
from stream.plugins import add_plugin_commands

app = typer.Typer(
    name="sleepstream",
    help="Streaming, real-time sleep staging for wearables and polysomnography.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Streaming, real-time sleep staging for wearables and polysomnography."""


def _fail(err: Exception) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(help="A recording, hypnogram or dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show what a recording or dataset folder holds.

    Subjects, duration, channels and rates, label counts and the problems found.
    """
    from ingestors.errors import DataFormatError
    from ingestors.inspect import inspect_path
    from ingestors.inspect_report import render_inventory

    try:
        inventory = inspect_path(path)
    except (DataFormatError, FileNotFoundError) as err:
        raise _fail(err) from None
    if as_json:
        typer.echo(json.dumps(inventory.as_dict(), indent=2, default=str))
    else:
        render_inventory(inventory)


def _stage_sets(text: str) -> tuple[int, ...]:
    try:
        sets = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sets = ()
    if not sets or any(s not in (5, 4, 3, 2) for s in sets):
        msg = f"--stage-sets must be a comma-separated subset of 5,4,3,2; got {text!r}"
        raise typer.BadParameter(msg)
    return sets


@app.command()
def evaluate(
    reference: Annotated[Path, typer.Argument(help="Reference hypnogram file or folder.")],
    predicted: Annotated[Path, typer.Argument(help="Predicted hypnogram file or folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write metrics, PNGs and CSV here.")
    ] = None,
    stage_sets: Annotated[
        str, typer.Option(help="Stage sets to score, e.g. 5,4,3,2 or 3.")
    ] = "5,4,3,2",
) -> None:
    """Score predicted hypnograms against reference hypnograms.

    Prints a metrics table per stage set; with --out also writes metrics JSON/markdown,
    confusion-matrix PNGs, per-night hypnogram plots and night statistics.
    """
    from rich.console import Console

    from ingestors.errors import DataFormatError
    from ingestors.hypnogram_sets import load_hypnograms
    from models.evaluation.report import evaluate_hypnograms, scores_table_rich

    sets = _stage_sets(stage_sets)
    try:
        ref = load_hypnograms(reference)
        pred = load_hypnograms(predicted)
        result = evaluate_hypnograms(ref, pred, stage_sets=sets, outdir=out)
    except (DataFormatError, FileNotFoundError, ValueError) as err:
        raise _fail(err) from None
    console = Console(width=None if Console().is_terminal else 160)
    rows = {f"{n}-class pooled": r.pooled for n, r in result.reports.items()}
    console.print(scores_table_rich(rows, title=f"{len(result.nights)} nights"))
    for n, report in result.reports.items():
        k = report.summary["kappa"]
        console.print(
            f"{n}-class per-night kappa: median {k.median:.3f} "
            f"(IQR {k.q25:.3f}-{k.q75:.3f}, {k.n} nights)"
        )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    for name in result.missing_in_predicted:
        console.print(f"note: {name} has no prediction; not scored", highlight=False)
    for name in result.missing_in_reference:
        console.print(f"note: {name} has no reference; not scored", highlight=False)
    if out is not None:
        console.print(f"wrote {len(result.files)} files to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs.")] = Path(
        "sleepstream-demo"
    ),
) -> None:
    """Run the demo job on the bundled real night.

    Reads it, prints what it holds and its night statistics, draws the hypnogram and
    exports it as CSV, BIDS TSV and EDF+ (each read back to check the round trip).
    """
    from stream.demo import run_demo

    result = run_demo(out)
    if not all(result.round_trips.values()):
        raise typer.Exit(code=1)


app.add_typer(dashboards_app, name="dashboards")
register_stream_commands(app)
add_plugin_commands(app)


def main() -> None:
    """Entry point of the ``sleepstream`` console script."""
    app()
