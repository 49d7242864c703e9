"""The ``sleepstream train`` commands: cross-validate, report, baselines and ship.

The group reaches the ``sleepstream`` command line through the ``sleepstream.commands``
entry point group (``pyproject.toml``), which :mod:`stream.cli` discovers, so that the
stream never imports ``training``. Commands import their work lazily: ``sleepstream train
--help`` needs typer only, and a command run without the ``train`` extra stops with the
line that installs it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from training.tracking import TrackedRun

__all__ = ["TRAIN_EXTRA_MODULES", "train_app"]

#: Modules of the ``train`` extra that the commands need, by import name.
TRAIN_EXTRA_MODULES = ("torch", "lightning", "onnx", "sklearn")
_INSTALL = "pip install 'sleepstream[train]' 'torch==2.13.0'"

train_app = typer.Typer(
    help="Train, cross-validate and ship the wearable, cardio and psg models (needs the train "
    "extra: torch, Lightning).",
    no_args_is_help=True,
)


@train_app.callback()
def _needs_train_extra(ctx: typer.Context) -> None:
    """Train, cross-validate and ship the wearable, cardio and psg models (needs torch)."""
    if ctx.resilient_parsing:
        return
    missing = [m for m in TRAIN_EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        typer.secho(
            f"error: `sleepstream train` needs the train extra, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install it with: "
            f"{_INSTALL} (torch pinned in the same command, or pip resolves a multi-GB CUDA "
            "build).",
            fg=typer.colors.RED, err=True,
        )
        raise typer.Exit(code=2)


#: ``--track/--no-track`` of the commands that train (see :mod:`training.tracking`).
Track = Annotated[bool | None, typer.Option(
    "--track/--no-track", show_default="track when mlflow is installed",
    help="Log the run to MLflow (params, per-fold metrics, report, cards); needs the track "
         "extra.")]
#: ``--tracking-uri`` of the commands that train.
TrackingUri = Annotated[str | None, typer.Option(
    show_default="$MLFLOW_TRACKING_URI, else ./mlruns",
    help="MLflow tracking URI: a folder, file:, http(s)://server or databricks.")]


def _fail(err: Exception) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _variants(text: str) -> tuple[str, ...]:
    out = tuple(v.strip() for v in text.split(",") if v.strip())
    if not out or any(v not in ("causal", "offline") for v in out):
        msg = f"--variants must be a comma-separated subset of causal,offline; got {text!r}"
        raise typer.BadParameter(msg)
    return out


@train_app.command("cv")
def train_cv(
    dataset: Annotated[str, typer.Option(
        help="sleep-accel (wearable), slpdb (cardio), sleep-edf (psg) or "
             "sleep-accel+slpdb (wearable on both cohorts).")],
    data: Annotated[Path, typer.Option(
        help="Dataset folder (Sleep-Accel: the cropped one; Sleep-EDF: the one holding "
             "eeg-spectral-features/ and hypnograms/; sleep-accel+slpdb: the shared data "
             "folder holding both).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder for predictions and report.")
    ],
    variants: Annotated[str, typer.Option(help="causal, offline or both.")] = "causal,offline",
    folds: Annotated[str, typer.Option(
        help="loso, loco (leave one cohort out), or a fold count such as 5.")] = "loso",
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
    track: Track = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run a subject-wise cross-validation and write predictions and the report.

    Sleep-EDF nights are cropped to the sleep period +- 30 min; its nets also predict three
    test views of the same nights: uncropped, Fpz-Cz alone and Pz-Oz alone.
    """
    from training import tracking
    from training.cv import TrainerOptions
    from training.run import run_cv_command

    names = _variants(variants)
    opts = TrainerOptions(accelerator, int(devices) if devices.isdigit() else devices, threads,
                          strategy=strategy)
    trainer = {"accelerator": accelerator, "devices": devices, "strategy": strategy,
               "jobs": jobs, "threads": threads}
    try:
        with tracking.maybe_tracked(
            track, tracking_uri, dataset, "cv", f"{','.join(names)} {folds}",
            lambda: tracking.cv_params(dataset, data, names, folds, out, config_dir, trainer),
        ) as run:
            run_cv_command(dataset, data, names, folds, out, opts=opts, jobs=jobs,
                           config_dir=config_dir)
            if report:
                train_report(out, data=None)
            if run is not None:
                tracking.log_cv_results(run, out, names)
                _tracked(run)
    except (ValueError, FileNotFoundError, ModuleNotFoundError, tracking.TrackingError) as err:
        raise _fail(err) from None


def _tracked(run: TrackedRun) -> None:
    typer.echo(f"tracked as MLflow run {run.run_id} in experiment {run.experiment!r} "
               f"({run.uri})")


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
    dataset: Annotated[str, typer.Option(
        help="sleep-accel, slpdb, sleep-edf or sleep-accel+slpdb.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (as for `train cv`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (the CV's).")],
    walch: Annotated[
        Path | None, typer.Option(help="Sleep-Accel authors' feature folder (optional).")
    ] = None,
    folds: Annotated[str, typer.Option(
        help="loso, loco or a fold count.")] = "loso",
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
    dataset: Annotated[str, typer.Option(
        help="sleep-accel, slpdb, sleep-edf or sleep-accel+slpdb.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (as for `train cv`).")],
    cv: Annotated[Path, typer.Option(help="CV run folder whose metrics go into the cards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights folder.")] = Path(
        "models/weights"
    ),
    variants: Annotated[str, typer.Option(help="causal, offline or both.")] = "causal,offline",
    accelerator: Annotated[str, typer.Option(help="Lightning accelerator.")] = "cpu",
    devices: Annotated[str, typer.Option(help="Lightning devices.")] = "1",
    track: Track = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Train final models on all subjects and export them (ONNX + model card)."""
    from training import tracking
    from training.cv import TrainerOptions
    from training.ship import ship_models

    names = _variants(variants)
    opts = TrainerOptions(accelerator, int(devices) if devices.isdigit() else devices)
    trainer = {"accelerator": accelerator, "devices": devices}
    try:
        with tracking.maybe_tracked(
            track, tracking_uri, dataset, "ship", ",".join(names),
            lambda: tracking.ship_params(dataset, data, cv, out, names, trainer),
        ) as run:
            written = ship_models(dataset, data, cv, out, names, opts=opts)
            for path in written:
                typer.echo(f"wrote {path}")
            if run is not None:
                tracking.log_ship_results(run, written)
                _tracked(run)
    except (ValueError, FileNotFoundError, ModuleNotFoundError, tracking.TrackingError) as err:
        raise _fail(err) from None
