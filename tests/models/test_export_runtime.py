"""Export to ONNX, the model card, and the numpy-only runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from models.card import (
    DatasetRef,
    ModelCard,
    ModelCardError,
    load_card,
    save_card,
    stage_groups,
)
from models.export import ExportedModel, ExportVerificationError, export_onnx
from models.nets import CausalStager, StagerNet, build_net
from models.runtime import (
    CardMismatchError,
    OnnxModel,
    default_weights_dir,
    load_model,
    to_stage_set,
    validate_card,
)

MODEL_NAMES = ("wearable-causal", "wearable-offline", "cardio-causal", "cardio-offline")
N_FEATURES = 9
FEATURES = tuple(f"feature_{i}" for i in range(N_FEATURES))
RTOL, ATOL = 1e-3, 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_nets.py: a spinning pool on a shared runner
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[StagerNet, ExportedModel]]:
    """Every net, randomly initialised with non-trivial feature statistics, exported once."""
    folder = tmp_path_factory.mktemp("weights")
    out = {}
    for i, name in enumerate(MODEL_NAMES):
        torch.manual_seed(i)
        net = build_net(name, N_FEATURES)
        net.set_feature_stats(np.linspace(-5, 60, N_FEATURES), np.linspace(0.5, 12, N_FEATURES))
        result = export_onnx(
            net,
            folder,
            feature_names=FEATURES,
            feature_version="test-1",
            version="1.2.3",
            training_data="random initialisation (test)",
            attribution="none",
            datasets=[DatasetRef(name="Sleep-Accel", licence="ODC-By-1.0", n_subjects=31)],
            cv_metrics={"kappa_3class": 0.5},
            commit="0123456789abcdef0123456789abcdef01234567",
        )
        out[name] = (net.eval(), result)
    return out


def _inputs(batch: int, n_epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(batch, n_epochs, N_FEATURES)) * 20 + 30).astype(np.float32)
    valid = (rng.random((batch, n_epochs)) > 0.15).astype(np.float32)
    return x, valid


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_runtime_equals_torch(exported, name: str) -> None:
    net, result = exported[name]
    model = OnnxModel(result.onnx_path)
    lengths = [net.context_epochs] if net.context_epochs else [1, 2, 64, 1000]
    batches = [1, 2, 7, 256] if net.context_epochs else [1, 3]
    for seed, (batch, n_epochs) in enumerate((b, t) for b in batches for t in lengths):
        x, valid = _inputs(batch, n_epochs, seed)
        with torch.no_grad():
            expected = net(torch.from_numpy(x), torch.from_numpy(valid)).numpy()
        got = model.predict(x, valid)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        assert got.dtype == np.float32


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_graph_axes_are_named_and_dynamic(exported, name: str) -> None:
    import onnx

    net, result = exported[name]
    model = onnx.load(str(result.onnx_path))
    shapes = {
        v.name: tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in [*model.graph.input, *model.graph.output]
    }
    time_axis = net.context_epochs or "n_epochs"
    assert shapes["x"] == ("batch", time_axis, N_FEATURES)
    assert shapes["valid"] == ("batch", time_axis)
    assert shapes["probs"][0] == "batch"
    assert model.opset_import[0].version >= 17
    assert [s.shape for s in result.card.inputs] == [shapes["x"], shapes["valid"]]


def test_card_records_the_export(exported) -> None:
    net, result = exported["wearable-causal"]
    card = result.card
    assert result.onnx_path.name == "wearable-causal.onnx"
    assert result.card_path.name == "wearable-causal.json"
    assert (card.family, card.kind, card.context_epochs, card.epoch_s) == (
        "wearable",
        "causal",
        25,
        30.0,
    )
    assert card.feature_names == FEATURES
    assert card.class_names == ("W", "light", "deep", "REM")
    assert card.derived_stage_sets == {3: ((0,), (1, 2), (3,)), 2: ((0,), (1, 2, 3))}
    assert card.created_utc.tzinfo is not None
    assert exported["cardio-offline"][1].card.context_epochs is None
    assert load_card(result.card_path) == card


def test_card_round_trip(exported, tmp_path: Path) -> None:
    card = exported["cardio-causal"][1].card
    path = save_card(card, tmp_path / "copy.json")
    again = load_card(path)
    assert again == card
    assert isinstance(again.derived_stage_sets[3], tuple)
    assert json.loads(path.read_text())["datasets"][0]["licence"] == "ODC-By-1.0"
    shifted = card.model_copy(
        update={"created_utc": datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))}
    )
    reread = load_card(
        save_card(ModelCard.model_validate(shifted.model_dump()), tmp_path / "tz.json")
    )
    assert reread.created_utc == datetime(2024, 1, 1, tzinfo=UTC)
    assert reread.created_utc.utcoffset() == timedelta(0)


def _card_dict(exported) -> dict:
    return json.loads(exported["wearable-causal"][1].card_path.read_text())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("feature_version"), "feature_version"),
        (lambda d: d.update(kind="sometimes"), "kind"),
        (lambda d: d.update(context_epochs=None), "context_epochs"),
        (lambda d: d.update(class_names=["W", "N", "R", "x"]), "class_names"),
        (lambda d: d.update(derived_stage_sets={"3": [[0], [1], [2, 3]]}), "derived_stage_sets"),
        (lambda d: d.update(onnx_sha256="abc"), "onnx_sha256"),
        (lambda d: d.update(created_utc="2024-01-01T00:00:00"), "created_utc"),
        (lambda d: d.update(feature_names=d["feature_names"][:-1]), "feature_names"),
        (lambda d: d.update(feature_names=["a"] * N_FEATURES), "feature_names"),
        (lambda d: d.update(onnx_opset=13), "onnx_opset"),
        (lambda d: d.update(unexpected=1), "unexpected"),
        (lambda d: d["datasets"][0].pop("licence"), "datasets.0.licence"),
    ],
)
def test_bad_card_errors_name_file_and_field(exported, tmp_path: Path, change, field: str) -> None:
    data = _card_dict(exported)
    change(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match="broken.json") as info:
        load_card(path)
    assert field in str(info.value)


def test_unreadable_cards(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match=r"cannot read model card .*missing\.json"):
        load_card(tmp_path / "missing.json")
    (tmp_path / "trunc.json").write_text('{"name": "x",')
    with pytest.raises(ModelCardError, match=r"trunc\.json is not valid JSON.*line 1"):
        load_card(tmp_path / "trunc.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ModelCardError, match="must hold a JSON object"):
        load_card(tmp_path / "list.json")


def test_validate_card_accepts_the_matching_stream(exported) -> None:
    validate_card(exported["wearable-causal"][1].card, list(FEATURES), "test-1", 30.0, 25)
    validate_card(exported["cardio-offline"][1].card, FEATURES, "test-1", 30, None)


@pytest.mark.parametrize(
    ("args", "field", "detail"),
    [
        ((FEATURES, "test-2", 30.0, 25), "feature_version", "'test-1' in the card but 'test-2'"),
        (
            (FEATURES[:3] + ("hr_mad",) + FEATURES[4:], "test-1", 30.0, 25),
            "feature_names",
            "position 3 is 'feature_3' in the card but 'hr_mad'",
        ),
        (
            (FEATURES + ("extra",), "test-1", 30.0, 25),
            "feature_names",
            "the card has 9 names, the stream 10",
        ),
        ((FEATURES, "test-1", 20.0, 25), "epoch_s", "30.0 s in the card but 20.0 s"),
        ((FEATURES, "test-1", 30.0, 20), "context_epochs", "25 in the card but 20"),
    ],
)
def test_validate_card_names_the_mismatch(exported, args, field: str, detail: str) -> None:
    with pytest.raises(CardMismatchError, match=f"field '{field}'") as info:
        validate_card(exported["wearable-causal"][1].card, *args)
    assert detail in str(info.value)


def test_predict_checks_and_defaults(exported) -> None:
    model = OnnxModel(exported["wearable-causal"][1].onnx_path)
    x, _ = _inputs(4, 25, 0)
    probs = model.predict(x)
    np.testing.assert_allclose(probs, model.predict(x, np.ones((4, 25))), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert model.predict(x.astype(np.float64).tolist()).shape == (4, 4)  # lists and float64
    three = model.predict(x, stage_set=3)
    np.testing.assert_allclose(three, to_stage_set(probs, 3), rtol=1e-6)
    np.testing.assert_allclose(three[:, 1], probs[:, 1] + probs[:, 2], rtol=1e-6)
    with pytest.raises(ValueError, match=r"expects x of shape \(batch, 25, 9\)"):
        model.predict(x[:, :24])
    with pytest.raises(ValueError, match="valid must have shape"):
        model.predict(x, np.ones((4, 24)))
    assert "wearable-causal" in repr(model)


def test_predict_zeroes_non_finite_values_with_a_warning(exported) -> None:
    model = OnnxModel(exported["cardio-causal"][1].onnx_path)
    x, valid = _inputs(2, 25, 3)
    bad = x.copy()
    bad[0, 3, 1], bad[1, 24, 0] = np.nan, np.inf
    clean = np.where(np.isfinite(bad), bad, 0).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="2 non-finite feature values"):
        probs = model.predict(bad, valid)
    np.testing.assert_array_equal(probs, model.predict(clean, valid))
    assert np.isnan(bad[0, 3, 1])  # the caller's array is left alone


def test_masked_and_empty_inputs_give_probabilities(exported) -> None:
    for name in MODEL_NAMES:
        model = OnnxModel(exported[name][1].onnx_path)
        n_epochs = model.card.context_epochs or 40
        for valid in (np.zeros((2, n_epochs)), np.ones((2, n_epochs))):
            probs = model.predict(np.zeros((2, n_epochs, N_FEATURES), np.float32), valid)
            assert np.isfinite(probs).all()
            np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_model_refuses_a_changed_model_file(exported, tmp_path: Path) -> None:
    result = exported["wearable-offline"][1]
    onnx_copy = tmp_path / "wearable-offline.onnx"
    onnx_copy.write_bytes(exported["cardio-offline"][1].onnx_path.read_bytes())
    save_card(result.card, tmp_path / "wearable-offline.json")
    with pytest.raises(CardMismatchError, match="onnx_sha256"):
        OnnxModel(onnx_copy)


def test_load_model_by_name(exported) -> None:
    folder = exported["wearable-causal"][1].onnx_path.parent
    model = load_model("cardio-offline", folder)
    assert model.card.name == "cardio-offline"
    with pytest.raises(FileNotFoundError, match=r"available: \['cardio-causal'"):
        load_model("psg-eeg", folder)
    assert (default_weights_dir() / "README.md").is_file()


def test_export_argument_errors(tmp_path: Path) -> None:
    net = CausalStager(3, "wearable")
    with pytest.raises(ValueError, match="reads 3 features but 2 feature names"):
        export_onnx(net, tmp_path, feature_names=["a", "b"], feature_version="1")
    with pytest.raises(TypeError, match="one of the stagers"):
        export_onnx(torch.nn.Linear(3, 4), tmp_path, feature_names=["a"], feature_version="1")  # type: ignore[arg-type]
    with pytest.raises(ModelCardError, match="field 'version'"):
        export_onnx(net, tmp_path, feature_names=["a", "b", "c"], feature_version="1", version="v1")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(net, tmp_path, feature_names=["a", "b", "c"], feature_version="1", opset=13)
    assert list(tmp_path.iterdir()) == []


class _TracesDifferently(CausalStager):
    """Eager output differs from the exported graph: the verification must catch it."""

    def forward(self, x, valid=None, *, return_logits=False):
        probs = super().forward(x, valid, return_logits=return_logits)
        return probs if torch.compiler.is_exporting() else probs.flip(-1)


def test_export_verification_catches_a_mismatch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    with pytest.raises(ExportVerificationError, match="differs from torch"):
        export_onnx(
            _TracesDifferently(3, "wearable"), tmp_path, feature_names=["a", "b", "c"],
            feature_version="1",
        )
    assert not (tmp_path / "wearable-causal.onnx").exists()
    assert not (tmp_path / "wearable-causal.json").exists()


def test_stage_groups_follow_the_stage_vocabulary() -> None:
    assert stage_groups(3) == ((0,), (1, 2), (3,))
    assert stage_groups(2, from_set=5) == ((0,), (1, 2, 3, 4))
    with pytest.raises(ValueError, match="not a coarsening"):
        stage_groups(4, from_set=3)


def test_runtime_does_not_import_torch() -> None:
    code = (
        "import sys; import models.runtime, models.card; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_git_commit_ignores_the_weights_folder(tmp_path: Path) -> None:
    import subprocess

    from models.export import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "models" / "weights").mkdir(parents=True)
    (tmp_path / "models" / "weights" / "m.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    head = git_commit(tmp_path)
    assert head is not None and len(head) == 40
    (tmp_path / "models" / "weights" / "m.json").write_text('{"new": 1}')
    assert git_commit(tmp_path) == head  # shipping writes there: not a code change
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


_SHIPPED_CONFIGS = {
    "wearable-causal": "sleep-accel+slpdb-wearable-causal", "wearable-offline":
    "sleep-accel+slpdb-wearable-offline", "cardio-causal": "slpdb-cardio-causal",
    "cardio-offline": "slpdb-cardio-offline",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_nets_still_export_the_shipped_graphs(name: str, tmp_path: Path) -> None:
    """The shipped ONNX files were exported from these classes with their configs."""
    import onnx
    import yaml

    from models.nets import StagerEnsemble

    shipped_path = default_weights_dir() / f"{name}.onnx"
    card = load_card(shipped_path.with_suffix(".json"))
    config = Path(__file__).resolve().parents[2] / "training" / "configs"
    cfg = yaml.safe_load((config / f"{_SHIPPED_CONFIGS[name]}.yaml").read_text())
    nets = [build_net(name, card.n_features, **cfg["net"]) for _ in range(cfg.get("ensemble", 1))]
    # members trained on one split share their input normalisation (feature statistics of
    # the same training nights), which the exporter merges into one; per_member members
    # each have their own
    own = cfg.get("ensemble_validation") == "per_member"
    for i, member in enumerate(nets):
        k = i if own else 0
        member.set_feature_stats(np.full(card.n_features, 0.1 * k),
                                 np.full(card.n_features, 1.0 + 0.1 * k))
    net = StagerEnsemble(nets) if len(nets) > 1 else nets[0]  # type: ignore[arg-type]
    fresh = export_onnx(net.eval(), tmp_path, feature_names=card.feature_names,
                        feature_version=card.feature_version, commit="0000000").onnx_path
    ours, shipped = onnx.load(str(fresh)).graph, onnx.load(str(shipped_path)).graph
    assert [n.op_type for n in ours.node] == [n.op_type for n in shipped.node]
    # fresh nets' all-zero biases are one shared constant in the export; the rest match
    shapes = {t.name: tuple(t.dims) for t in shipped.initializer}
    assert {t.name: tuple(t.dims) for t in ours.initializer}.items() <= shapes.items()
