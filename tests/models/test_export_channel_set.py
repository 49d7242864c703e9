"""Export and run the psg nets: a dynamic channel axis, the card's channel set, the runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.card import ChannelSet, ModelCardError, load_card
from models.export import ExportedModel, export_onnx
from models.nets import StagerEnsemble, StagerNet, build_net
from models.runtime import OnnxModel

N_FEATURES = 6
FEATURES = tuple(f"eeg_{i}" for i in range(N_FEATURES))
EEG = ChannelSet(modality="eeg", trained_on=("EEG Fpz-Cz", "EEG Pz-Oz"),
                 note="EOG and EMG are not inputs")
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
    folder = tmp_path_factory.mktemp("psg-weights")
    out = {}
    for i, kind in enumerate(("causal", "offline")):
        torch.manual_seed(i)
        nets = [build_net(f"psg-{kind}", N_FEATURES, n_outputs=5, n_filters=16)
                for _ in range(1 if kind == "causal" else 2)]
        net = nets[0] if len(nets) == 1 else StagerEnsemble(nets)  # type: ignore[arg-type]
        net.set_feature_stats(np.linspace(-3, 5, N_FEATURES), np.linspace(0.5, 2, N_FEATURES))
        result = export_onnx(net.eval(), folder, feature_names=FEATURES, feature_version="t",
                             commit="0000000", channel_set=EEG)
        out[kind] = (net, result)
    return out


def _inputs(batch: int, n_epochs: int, n_channels: int, seed: int):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(batch, n_epochs, n_channels, N_FEATURES)) * 2).astype(np.float32)
    valid = (rng.random((batch, n_epochs, n_channels)) > 0.1).astype(np.float32)
    return x, valid


@pytest.mark.parametrize("kind", ["causal", "offline"])
@pytest.mark.parametrize("n_channels", [1, 2, 6])
def test_onnx_runtime_equals_torch_for_any_channel_count(exported, kind: str, n_channels: int):
    net, result = exported[kind]
    model = OnnxModel(result.onnx_path)
    n_epochs = net.context_epochs or 300
    for seed, batch in enumerate((1, 5)):
        x, valid = _inputs(batch, n_epochs, n_channels, seed)
        with torch.no_grad():
            expected = net(torch.from_numpy(x), torch.from_numpy(valid)).numpy()
        got = model.predict(x, valid)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        assert got.shape[-1] == 5


@pytest.mark.parametrize("kind", ["causal", "offline"])
def test_the_graph_and_card_carry_the_channel_axis(exported, kind: str):
    net, result = exported[kind]
    graph = onnx.load(str(result.onnx_path)).graph
    shapes = {v.name: tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in graph.input}
    time_axis = net.context_epochs or "n_epochs"
    assert shapes == {"x": ("batch", time_axis, "n_channels", N_FEATURES),
                      "valid": ("batch", time_axis, "n_channels")}
    card = load_card(result.card_path)
    assert card.channel_set == EEG and card.feature_names == FEATURES
    assert card.class_names == ("W", "N1", "N2", "N3", "REM")
    assert card.derived_stage_sets[4] == ((0,), (1, 2), (3,), (4,))
    assert card.ensemble_members == (1 if kind == "causal" else 2)


def test_runtime_checks_the_channel_layout(exported):
    model = OnnxModel(exported["causal"][1].onnx_path)
    x, valid = _inputs(2, 25, 2, 0)
    np.testing.assert_allclose(model.predict(x), model.predict(x, np.ones((2, 25, 2))),
                               rtol=1e-6)
    masked = valid.copy()
    masked[:, :, 1] = 0  # a masked channel is a missing one
    alone = model.predict(x[:, :, :1], valid[:, :, :1])
    np.testing.assert_allclose(model.predict(x, masked), alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(batch, 25, n_channels, 6\)"):
        model.predict(x[:, :, 0])
    with pytest.raises(ValueError, match=r"valid must have shape \(2, 25, 2\)"):
        model.predict(x, valid[:, :, 0])
    limited = model.card.model_copy(
        update={"channel_set": EEG.model_copy(update={"max_channels": 2})})
    capped = OnnxModel(exported["causal"][1].onnx_path, limited)
    with pytest.raises(ValueError, match=r"takes 1\.\.2 eeg channels; got 3"):
        capped.predict(_inputs(1, 25, 3, 1)[0])


def test_export_and_card_refuse_a_missing_or_stray_channel_set(exported, tmp_path: Path):
    net = build_net("psg-causal", N_FEATURES, n_outputs=5, n_filters=8)
    with pytest.raises(ValueError, match="pass channel_set"):
        export_onnx(net, tmp_path, feature_names=FEATURES, feature_version="t")
    plain = build_net("cardio-causal", N_FEATURES, n_filters=8)
    with pytest.raises(ValueError, match="pass channel_set"):
        export_onnx(plain, tmp_path, feature_names=FEATURES, feature_version="t",
                    channel_set=EEG)
    data = json.loads(exported["offline"][1].card_path.read_text())
    for change, field in ((lambda d: d.update(channel_set=None), "no channel_set"),
                          (lambda d: d["channel_set"].update(min_channels=3, max_channels=2),
                           "max_channels")):
        broken = json.loads(json.dumps(data))
        change(broken)
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(ModelCardError, match=field):
            load_card(path)
