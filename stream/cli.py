"""The ``sleepstream`` command line: one Typer app, subcommands import their work lazily.

Lazy imports keep ``sleepstream --help`` fast and keep torch out of commands that do not
train.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stream.cli_stream import register as register_stream_commands

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


train_app = typer.Typer(
    help="Train, cross-validate and ship the wearable and cardio stagers (needs torch).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

from dashboards.cli import dashboards_app  # noqa: E402  (typer only; the SDK loads lazily)

app.add_typer(dashboards_app, name="dashboards")


def _variants(text: str) -> tuple[str, ...]:
    out = tuple(v.strip() for v in text.split(",") if v.strip())
    if not out or any(v not in ("causal", "offline") for v in out):
        msg = f"--variants must be a comma-separated subset of causal,offline; got {text!r}"
        raise typer.BadParameter(msg)
    return out


@train_app.command("cv")
def train_cv(
    dataset: Annotated[str, typer.Option(help="sleep-accel (wearable) or slpdb (cardio).")],
    data: Annotated[Path, typer.Option(help="Dataset folder (Sleep-Accel: the cropped one).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder for predictions and report.")
    ],
    variants: Annotated[str, typer.Option(help="causal, offline or both.")] = "causal,offline",
    folds: Annotated[str, typer.Option(help="loso, or a fold count such as 5.")] = "loso",
    accelerator: Annotated[
        str, typer.Option(help="Lightning accelerator: cpu, gpu, auto.")
    ] = "cpu",
    devices: Annotated[str, typer.Option(help="Lightning devices, e.g. 1 or 4.")] = "1",
    strategy: Annotated[
        str, typer.Option(help="Lightning strategy; ddp_spawn for several devices.")
    ] = "auto",
    jobs: Annotated[int, typer.Option(help="Folds run in parallel processes (CPU).")] = 1,
    threads: Annotated[int, typer.Option(help="torch threads per process on CPU.")] = 1,
    config_dir: Annotated[
        Path | None, typer.Option(help="Folder of <dataset>-<family>-<variant>.yaml configs.")
    ] = None,
    report: Annotated[bool, typer.Option(help="Write results.md/json and figures.")] = True,
) -> None:
    """Run a subject-wise cross-validation and write predictions and the report."""
    from training.cv import TrainerOptions
    from training.run import run_cv_command

    opts = TrainerOptions(accelerator, int(devices) if devices.isdigit() else devices, threads,
                          strategy=strategy)
    try:
        run_cv_command(dataset, data, _variants(variants), folds, out, opts=opts, jobs=jobs,
                       config_dir=config_dir)
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    if report:
        train_report(out, data=None)


@train_app.command("report")
def train_report(
    run: Annotated[Path, typer.Argument(help="Run folder written by `train cv`.")],
    data: Annotated[
        Path | None, typer.Option(help="Walch feature folder, to add the authors' classifiers.")
    ] = None,
    plots: Annotated[bool, typer.Option(help="Write confusion matrices and hypnograms.")] = True,
) -> None:
    """(Re)build results.md / results.json and the figures from saved CV predictions."""
    from rich.console import Console

    from training.report import build_report

    try:
        result = build_report(run, plots=plots)
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    Console(width=200).print(result.markdown, markup=False, highlight=False)


@train_app.command("baselines")
def train_baselines(
    dataset: Annotated[str, typer.Option(help="sleep-accel or slpdb.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (as for `train cv`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (the CV's).")],
    walch: Annotated[
        Path | None, typer.Option(help="Sleep-Accel authors' feature folder (optional).")
    ] = None,
    folds: Annotated[str, typer.Option(help="loso, or a fold count.")] = "loso",
) -> None:
    """Logistic regression on our features (and the authors' classifiers) on the CV folds."""
    from training.baselines import run_baselines

    try:
        run_baselines(dataset, data, out, walch=walch, folds=folds)
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    train_report(out, data=None)


@train_app.command("ship")
def train_ship(
    dataset: Annotated[str, typer.Option(help="sleep-accel or slpdb.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (as for `train cv`).")],
    cv: Annotated[Path, typer.Option(help="CV run folder whose metrics go into the cards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights folder.")] = Path(
        "models/weights"
    ),
    variants: Annotated[str, typer.Option(help="causal, offline or both.")] = "causal,offline",
    accelerator: Annotated[str, typer.Option(help="Lightning accelerator.")] = "cpu",
    devices: Annotated[str, typer.Option(help="Lightning devices.")] = "1",
) -> None:
    """Train final models on all subjects and export them (ONNX + model card)."""
    from training.cv import TrainerOptions
    from training.ship import ship_models

    opts = TrainerOptions(accelerator, int(devices) if devices.isdigit() else devices)
    try:
        written = ship_models(dataset, data, cv, out, _variants(variants), opts=opts)
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    for path in written:
        typer.echo(f"wrote {path}")


register_stream_commands(app)


def main() -> None:
    """Entry point of the ``sleepstream`` console script."""
    app()
