"""MLflow tracking of `train cv` and `train ship`, read back from a real file store."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.training._synth import synth_set
from training import tracking
from training.cli import train_app

mlflow = pytest.importorskip("mlflow", reason="the track extra (mlflow-skinny) is not installed")
from mlflow.tracking import MlflowClient  # noqa: E402

TINY = ("net: {n_filters: 8, dropout: 0.0}\nmax_steps: 6\nval_every_steps: 3\n"
        "batch_size: 2\ncrop_epochs: 40\nn_val_subjects: 1\nlr: 0.004\n")
EXPERIMENT = "sleepstream-sleep-accel-wearable"


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """Four synthetic subjects behind `--dataset sleep-accel`, and a tiny causal config."""
    import training.run

    monkeypatch.setattr(training.run, "load_dataset", lambda *a, **k: synth_set(4))
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "sleep-accel-wearable-causal.yaml").write_text(TINY)
    return cfg


def _cv(tmp_path: Path, cfg: Path, *extra: str):
    return CliRunner().invoke(train_app, [
        "cv", "--dataset", "sleep-accel", "--data", str(tmp_path), "--out",
        str(tmp_path / "run"), "--variants", "causal", "--config-dir", str(cfg), *extra])


def _runs(uri: str, command: str, monkeypatch):
    # MLflow 3 opens a file store only when allowed; sleepstream allows it during its runs
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"tags.`sleepstream.command` = '{command}'")
    return client, runs


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_cv_and_ship_runs_are_logged(tmp_path, synthetic, monkeypatch):
    uri = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the default: track when installed
    result = _cv(tmp_path, synthetic)
    assert result.exit_code == 0, result.output
    assert f"experiment '{EXPERIMENT}' ({uri})" in result.output
    client, runs = _runs(uri, "cv", monkeypatch)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    params = run.data.params
    assert params["dataset"] == "sleep-accel" and params["family"] == "wearable"
    assert params["variants"] == "causal" and params["folds"] == "loso"
    assert params["data"] == str(tmp_path) and params["feature_version"]
    assert params["causal.lr"] == "0.004" and params["causal.net.n_filters"] == "8"
    assert params["causal.monitor"] == "val_kappa4" and params["jobs"] == "1"
    assert len(params["git_commit"]) >= 7
    assert run.data.tags["mlflow.runName"] == "cv causal loso"
    assert run.data.tags["mlflow.source.git.commit"] == params["git_commit"]

    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    record = json.loads((out / "cv.json").read_text())["variants"]["causal"]
    best = client.get_metric_history(run.info.run_id, "causal.fold.best_val_kappa4")
    assert sorted(m.step for m in best) == [0, 1, 2, 3]
    assert {m.step: m.value for m in best} == pytest.approx(
        {f["index"]: f["best_value"] for f in record["folds"]})
    # LOSO: a fold's test nights are one subject's, so its κ is the report's subject κ
    kappa = client.get_metric_history(run.info.run_id, "causal.fold.test_kappa_4class")
    subject_kappa = results["causal"]["4"]["subject_kappa"]
    assert {m.step: m.value for m in kappa} == pytest.approx(
        {f["index"]: subject_kappa[f["test"][0]] for f in record["folds"]})
    assert run.data.metrics["causal.kappa_4class"] == pytest.approx(
        results["causal"]["4"]["pooled"]["kappa"])
    assert "causal.median_subject_kappa_2class" in run.data.metrics
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.md", "results.json", "cv.json", "figures"} <= top
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/confusion-causal-4class.png" in figures

    weights = tmp_path / "weights"
    result = CliRunner().invoke(train_app, [
        "ship", "--dataset", "sleep-accel", "--data", str(tmp_path), "--cv", str(out),
        "--out", str(weights), "--variants", "causal", "--track", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    client, ships = _runs(uri, "ship", monkeypatch)
    assert len(ships) == 1 and ships[0].info.status == "FINISHED"
    ship = ships[0]
    assert ship.data.params["causal.lr"] == "0.004" and ship.data.params["cv"] == str(out)
    assert ship.data.metrics["wearable-causal.cv.kappa_4class"] == pytest.approx(
        results["causal"]["4"]["pooled"]["kappa"])
    cards = [a.path for a in client.list_artifacts(ship.info.run_id, "cards")]
    assert cards == ["cards/wearable-causal.json"]
    local = Path(client.download_artifacts(ship.info.run_id, cards[0], str(tmp_path / "dl")))
    assert local.read_bytes() == (weights / "wearable-causal.json").read_bytes()
    onnx = [a.path for a in client.list_artifacts(ship.info.run_id, "onnx")]
    assert onnx == ["onnx/wearable-causal.onnx"]


def test_no_track_logs_nothing(tmp_path, synthetic, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "store").as_uri())
    result = _cv(tmp_path, synthetic, "--no-track", "--no-report")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "predictions-causal.npz").is_file()
    assert not (tmp_path / "store").exists() and not (tmp_path / "mlruns").exists()
    assert "MLflow" not in result.output


def test_a_failing_cv_ends_its_run_failed(tmp_path, synthetic, monkeypatch):
    import training.run

    def broken(*args, **kwargs):
        raise ValueError("the night s2 has no scored epochs")

    monkeypatch.setattr(training.run, "run_cv_command", broken)
    uri = (tmp_path / "store").as_uri()
    result = _cv(tmp_path, synthetic, "--tracking-uri", uri)
    assert result.exit_code == 2 and "no scored epochs" in result.output
    _, runs = _runs(uri, "cv", monkeypatch)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.params["causal.lr"] == "0.004"


def test_explicit_track_without_mlflow_names_the_extra(tmp_path, synthetic, monkeypatch):
    import training.run

    def must_not_train(*args, **kwargs):
        raise AssertionError("training started although tracking cannot work")

    monkeypatch.setattr(training.run, "run_cv_command", must_not_train)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails
    result = _cv(tmp_path, synthetic, "--track")
    assert result.exit_code == 2, result.output
    assert "--track needs MLflow, which is not installed" in result.output
    assert "pip install 'sleepstream[track]'" in result.output
    assert tracking.wants_tracking(None) is False  # not asked: train without tracking
    assert tracking.wants_tracking(False) is False


def test_an_unusable_tracking_uri_stops_before_training(tmp_path, synthetic, monkeypatch):
    import training.run

    monkeypatch.setattr(training.run, "run_cv_command",
                        lambda *a, **k: pytest.fail("training started"))
    result = _cv(tmp_path, synthetic, "--tracking-uri", "bogus://nowhere")
    assert result.exit_code == 2
    assert "MLflow could not start a run in experiment" in result.output
    assert "bogus://nowhere" in result.output and "--no-track" in result.output


def test_tracking_uri_defaults_to_mlruns_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.resolve_tracking_uri() == (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert tracking.resolve_tracking_uri("runs/store") == (tmp_path / "runs/store").as_uri()
    assert tracking.resolve_tracking_uri("file:///srv/mlruns") == "file:///srv/mlruns"


def test_the_file_store_is_allowed_only_while_a_run_is_open(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "store").as_uri()
    with tracking.tracked_run(uri, "e", "r", {"a": "1"}) as run:
        assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
        assert run.client.get_run(run.run_id).data.params == {"a": "1"}
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # the user's setting stands
    other = (tmp_path / "other").as_uri()  # MLflow caches the store it opened per URI
    with pytest.raises(tracking.TrackingError, match="maintenance mode.*--no-track"):
        with tracking.tracked_run(other, "e", "r", {}):
            pytest.fail("the run opened although the user refused the file store")


def test_metric_names_of_input_sets_are_made_acceptable_to_mlflow(tmp_path: Path) -> None:
    from training.tracking import mlflow_key, tracked_run

    assert mlflow_key("causal-sleep-accel-activity+heart_rate.kappa_4class") == \
        "causal-sleep-accel-activity_and_heart_rate.kappa_4class"
    assert mlflow_key("a*b") == "a_b"
    with tracked_run(f"file:{tmp_path / 'mlruns'}", "x", "cv test", {"p+q": "1"}) as run:
        run.log_metrics([("offline-slpdb-heart_rate+activity.kappa_3class", 0.5, 0)])
