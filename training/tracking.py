"""Experiment tracking of ``sleepstream train cv`` and ``train ship`` with MLflow.

Every tracked invocation is one MLflow run in the experiment
``sleepstream-<dataset>-<family>``. A ``train cv`` run records the parameters (dataset,
family, variants, fold scheme, each variant's :class:`~training.config.TrainConfig`
flattened to ``<variant>.<field>``, feature version, git commit, data path as given,
trainer options), per-fold metrics (step = fold number: the validation monitor's best value
and step, steps, seconds, and the test subjects' pooled κ in every stage set), the report's
pooled metrics per model (``<model>.kappa_4class`` ...) and the run folder's ``results.md``,
``results.json``, ``cv.json`` and ``figures/``. A ``train ship`` run records the shipped
configurations, each card's CV metrics and the cards themselves (ONNX files up to
:data:`MAX_ONNX_ARTIFACT_BYTES` too).

MLflow is optional (the ``track`` extra, ``mlflow-skinny``) and imported here only, lazily:
``stream`` never imports it. The store is ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``,
else the file store ``./mlruns``. MLflow 3 keeps its file store in maintenance mode and
refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is true; the database store needs the full
``mlflow`` package (SQLAlchemy, Alembic), so for a file store this module allows it for the
duration of the run, unless the user set that variable.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "DEFAULT_TRACKING_URI",
    "MAX_ONNX_ARTIFACT_BYTES",
    "TRACK_INSTALL",
    "TrackedRun",
    "TrackingError",
    "cv_params",
    "experiment_name",
    "log_cv_results",
    "log_ship_results",
    "maybe_tracked",
    "resolve_tracking_uri",
    "ship_params",
    "tracked_run",
    "wants_tracking",
]

#: The command that installs MLflow for ``--track``.
TRACK_INSTALL = "pip install 'sleepstream[track]'"
#: Where runs go when neither ``--tracking-uri`` nor ``MLFLOW_TRACKING_URI`` says.
DEFAULT_TRACKING_URI = "./mlruns"
#: Shipped ONNX files up to this size are logged with their cards.
MAX_ONNX_ARTIFACT_BYTES = 32 * 2**20

_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


class TrackingError(RuntimeError):
    """The MLflow store refused or failed a request (URI, server or permissions)."""


def wants_tracking(track: bool | None) -> bool:
    """Whether to track: as asked, or, when not asked (None), whether mlflow imports.

    Raises
    ------
    ModuleNotFoundError
        If ``track`` is True and mlflow is not installed; the message says how to install it.
    """
    if track is False:
        return False
    try:
        import mlflow  # noqa: F401
    except ImportError as err:
        if track:
            msg = (f"--track needs MLflow, which is not installed ({err}). Install the track "
                   f"extra with: {TRACK_INSTALL}, or run with --no-track.")
            raise ModuleNotFoundError(msg, name="mlflow") from None
        return False
    return True


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else ``./mlruns``; a local folder as ``file:`` URI."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if len(urlparse(uri).scheme) > 1:  # one letter: a Windows drive, i.e. a path
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def experiment_name(dataset: str) -> str:
    """``sleepstream-<dataset>-<family>``, e.g. ``sleepstream-slpdb-cardio``."""
    from training.config import DATASET_FAMILY

    if dataset not in DATASET_FAMILY:
        msg = f"--dataset must be one of {sorted(DATASET_FAMILY)}; got {dataset!r}"
        raise ValueError(msg)
    return f"sleepstream-{dataset}-{DATASET_FAMILY[dataset]}"


def mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts.

    ``+`` (of input sets, e.g. ``activity+heart_rate``) becomes ``_and_``, any other
    character MLflow refuses ``_``.
    """
    name = name.replace("+", "_and_")
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name)


@dataclass(frozen=True)
class TrackedRun:
    """An open MLflow run: its store's client, the run id, and where it lives."""

    client: Any
    run_id: str
    uri: str
    experiment: str

    def _call(self, what: str, method: str, *args: Any) -> None:
        from mlflow.exceptions import MlflowException

        try:
            getattr(self.client, method)(self.run_id, *args)
        except (MlflowException, OSError) as err:
            msg = (f"MLflow could not {what} of run {self.run_id} at tracking URI {self.uri}: "
                   f"{err}. The run folder on disk is complete; run with --no-track to skip "
                   "tracking.")
            raise TrackingError(msg) from err

    def log_params(self, params: Mapping[str, str]) -> None:
        """Log parameters (the client splits them into batches the store accepts)."""
        from mlflow.entities import Param

        self._call("log the parameters", "log_batch", [],
                   [Param(mlflow_key(k), v) for k, v in params.items()])

    def log_metrics(self, metrics: Sequence[tuple[str, float, int]]) -> None:
        """Log ``(key, value, step)`` metrics, all with the current time."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._call("log the metrics", "log_batch",
                   [Metric(mlflow_key(k), float(v), now, s) for k, v, s in metrics])

    def log_artifacts(self, paths: Sequence[Path], artifact_path: str | None = None) -> None:
        """Log files, and folders under their own name, below ``artifact_path``; skip absent."""
        for path in paths:
            if path.is_dir():
                sub = path.name if artifact_path is None else f"{artifact_path}/{path.name}"
                self._call(f"store {path}", "log_artifacts", str(path), sub)
            elif path.is_file():
                self._call(f"store {path}", "log_artifact", str(path), artifact_path)

    def end(self, status: str) -> None:
        """Mark the run FINISHED, FAILED or KILLED."""
        self._call(f"mark the end ({status})", "set_terminated", status)


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """Let MLflow 3 open a file store for the duration, unless the user set the variable."""
    if urlparse(uri).scheme != "file" or _ALLOW_FILE_STORE in os.environ:
        yield
        return
    os.environ[_ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(_ALLOW_FILE_STORE, None)


def _open_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, str]) -> TrackedRun:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(exp_id, run_name=run_name, tags=dict(tags))
    except (MlflowException, OSError) as err:
        msg = (f"MLflow could not start a run in experiment {experiment!r} at tracking URI "
               f"{uri}: {err}. Check --tracking-uri / MLFLOW_TRACKING_URI (a folder, "
               "file:, http(s): or databricks), or run with --no-track.")
        raise TrackingError(msg) from err
    return TrackedRun(client, run.info.run_id, uri, experiment)


@contextmanager
def tracked_run(
    uri: str, experiment: str, run_name: str, params: Mapping[str, str],
    tags: Mapping[str, str] | None = None,
) -> Iterator[TrackedRun]:
    """Open an MLflow run with ``params``; it ends FINISHED, FAILED or KILLED (Ctrl-C).

    Raises
    ------
    TrackingError
        If the store at ``uri`` cannot be opened or refuses the run.
    """
    with _file_store_allowed(uri):
        run = _open_run(uri, experiment, run_name, tags or {})
        status = "FINISHED"
        try:
            run.log_params(params)
            yield run
        except BaseException as err:
            status = "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
            raise
        finally:
            run.end(status)


def maybe_tracked(
    track: bool | None, uri: str | None, dataset: str, command: str, detail: str,
    params: Callable[[], Mapping[str, str]],
) -> AbstractContextManager[TrackedRun | None]:
    """:func:`tracked_run` when :func:`wants_tracking`, else a context that yields None.

    The run is named ``"<command> <detail>"`` (e.g. ``cv causal,offline loso``) and tagged
    ``sleepstream.command``; ``params`` is called only when tracking, before the run opens.
    """
    if not wants_tracking(track):
        return nullcontext(None)
    from models.export import git_commit

    name = experiment_name(dataset)
    commit = git_commit()
    tags = {"sleepstream.command": command}
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tracked_run(resolve_tracking_uri(uri), name, f"{command} {detail}",
                       {**params(), **({"git_commit": commit} if commit else {})}, tags)


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: str(value)}


def _common_params(dataset: str, data: str | Path, variants: Sequence[str]) -> dict[str, str]:
    from models.features.registry import feature_version
    from training.config import DATASET_FAMILY

    family = DATASET_FAMILY[dataset]
    return {"dataset": dataset, "family": family, "variants": ",".join(variants),
            "data": str(data), "feature_version": feature_version(family)}


def cv_params(
    dataset: str, data: str | Path, variants: Sequence[str], folds: str, out: str | Path,
    config_dir: str | Path | None, trainer: Mapping[str, Any],
) -> dict[str, str]:
    """Parameters of a ``train cv`` run; ``trainer``: options such as accelerator, jobs."""
    from training.config import config_path, load_config

    params = {**_common_params(dataset, data, variants), "folds": folds, "out": str(out),
              **{k: str(v) for k, v in trainer.items()}}
    for variant in variants:
        cfg = load_config(config_path(dataset, variant, config_dir))
        params.update(_flatten(variant, cfg.model_dump()))
    return params


def ship_params(
    dataset: str, data: str | Path, cv_dir: str | Path, out: str | Path,
    variants: Sequence[str], trainer: Mapping[str, Any],
) -> dict[str, str]:
    """Parameters of a ``train ship`` run: the configurations :func:`ship_models` trains."""
    from training.ship import ship_config

    params = {**_common_params(dataset, data, variants), "cv": str(cv_dir), "out": str(out),
              **{k: str(v) for k, v in trainer.items()}}
    for variant in variants:
        params.update(_flatten(variant, ship_config(dataset, variant, cv_dir).model_dump()))
    return params


def _fold_test_kappa(predictions: Path, folds: Sequence[Mapping[str, Any]]
                     ) -> dict[int, dict[int, float]]:
    """Pooled κ of each fold's test nights, per stage set the predictions allow."""
    from training.report import STAGE_SETS, ModelPredictions, load_predictions, score_model

    pred = load_predictions(predictions)
    out: dict[int, dict[int, float]] = {}
    for fold in folds:
        nights = [n for n, s in pred.subject.items() if s in fold["test"]]
        if not nights:
            continue
        sub = ModelPredictions(pred.name, {n: pred.probs[n] for n in nights},
                               {n: pred.stages[n] for n in nights},
                               {n: pred.subject[n] for n in nights})
        out[fold["index"]] = {k: score_model(sub, k).pooled.kappa
                              for k in STAGE_SETS if k <= pred.n_classes}
    return out


def _fold_metrics(run_dir: Path, variant: str, record: Mapping[str, Any]
                  ) -> list[tuple[str, float, int]]:
    monitor = record["config"]["monitor"]
    kappa = _fold_test_kappa(run_dir / f"predictions-{variant}.npz", record["folds"])
    metrics: list[tuple[str, float, int]] = [(f"{variant}.wall_s", record["wall_s"], 0)]
    for fold in record["folds"]:
        i = fold["index"]
        metrics += [(f"{variant}.fold.best_{monitor}", fold["best_value"], i),
                    (f"{variant}.fold.best_step", fold["best_step"], i),
                    (f"{variant}.fold.steps", fold["steps"], i),
                    (f"{variant}.fold.seconds", fold["seconds"], i)]
        metrics += [(f"{variant}.fold.test_kappa_{k}class", v, i)
                    for k, v in kappa.get(i, {}).items()]
    return metrics


def log_cv_results(run: TrackedRun, run_dir: str | Path, variants: Sequence[str]) -> None:
    """Log a finished CV: per-fold metrics of ``variants``, the report's, and its files.

    The report's metrics (``results.json``, absent with ``--no-report``) cover every model of
    the run folder, baselines and earlier variants included, as the report does.
    """
    from training.report import summary_metrics

    run_dir = Path(run_dir)
    record = json.loads((run_dir / "cv.json").read_text())
    metrics = [m for v in variants for m in _fold_metrics(run_dir, v, record["variants"][v])]
    results = run_dir / "results.json"
    if results.is_file():
        for model, per_set in json.loads(results.read_text()).items():
            metrics += [(f"{model}.{k}", v, 0) for k, v in summary_metrics(per_set).items()]
    run.log_metrics(metrics)
    run.log_artifacts([run_dir / name for name in
                       ("results.md", "results.json", "cv.json", "figures")])


def log_ship_results(run: TrackedRun, written: Sequence[Path]) -> None:
    """Log the written cards (under ``cards/``), their CV metrics, and small ONNX files."""
    metrics: list[tuple[str, float, int]] = []
    for path in written:
        if path.suffix == ".json":
            card = json.loads(path.read_text())
            metrics += [(f"{card['name']}.cv.{k}", v, 0) for k, v in card["cv_metrics"].items()]
            run.log_artifacts([path], "cards")
        elif path.suffix == ".onnx" and path.stat().st_size <= MAX_ONNX_ARTIFACT_BYTES:
            run.log_artifacts([path], "onnx")
    run.log_metrics(metrics)
