"""Ensembles (cardio-offline ships five nets, psg-causal three): the average, export, checks."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.export import export_onnx
from models.nets import CausalStager, OfflineStager, StagerEnsemble

N_FEATURES = 12


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_nets.py
    yield
    torch.set_num_threads(threads)


def _members(n: int, family: str = "cardio", **kw):
    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        net = OfflineStager(N_FEATURES, family, n_filters=8, **kw)
        rng = np.random.default_rng(i)
        net.set_feature_stats(rng.normal(0, 3, N_FEATURES), rng.uniform(0.5, 4, N_FEATURES))
        out.append(net.eval())
    return out


def _inputs(batch: int, n_epochs: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_epochs, N_FEATURES, generator=g) * 3.0
    valid = (torch.rand(batch, n_epochs, generator=g) > 0.2).float()
    return x, valid


def test_offline_ensemble_averages_whole_nights_and_exports(tmp_path):
    members = _members(2)
    ens = StagerEnsemble(members).eval()
    assert (ens.family, ens.kind, ens.n_members, ens.context_epochs) == ("cardio", "offline", 2,
                                                                         None)
    x, valid = _inputs(2, 70)
    with torch.no_grad():
        expected = torch.stack([m(x, valid) for m in members]).mean(0)
        torch.testing.assert_close(ens(x, valid), expected)
    names = tuple(f"f{i}" for i in range(N_FEATURES))
    result = export_onnx(ens, tmp_path, feature_names=names, feature_version="t")
    assert (result.card.name, result.card.ensemble_members) == ("cardio-offline", 2)
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy(), "valid": valid.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-3, atol=1e-5)


def test_feature_stats_reach_every_member():
    ens = StagerEnsemble(_members(3))
    ens.set_feature_stats(np.full(N_FEATURES, 2.0), np.full(N_FEATURES, 5.0))
    for m in ens.nets:
        assert torch.all(m.embedding.feature_mean == 2.0)
        assert torch.all(m.embedding.feature_std == 5.0)


def test_members_must_match():
    with pytest.raises(ValueError, match="at least one"):
        StagerEnsemble([])
    with pytest.raises(TypeError, match="member 0 is OfflineStager, member 1 CausalStager"):
        StagerEnsemble([*_members(1), CausalStager(N_FEATURES, "cardio")])  # type: ignore[list-item]
    causal = [CausalStager(N_FEATURES, "cardio"), CausalStager(N_FEATURES, "cardio",
                                                                 context_epochs=13)]
    with pytest.raises(ValueError, match="context_epochs=13"):
        StagerEnsemble(causal)
    with pytest.raises(ValueError, match="member 1 has family='wearable'"):
        StagerEnsemble([*_members(1), *_members(1, family="wearable")])
    with pytest.raises(ValueError, match="n_outputs"):
        StagerEnsemble([*_members(1), *_members(1, n_outputs=5)])
    with pytest.raises(ValueError, match="no logits"):
        StagerEnsemble(_members(2)).forward(*_inputs(1, 25), return_logits=True)


def test_causal_ensemble_averages_windows_and_sequences_and_exports(tmp_path):
    members = []
    for i in range(3):
        torch.manual_seed(200 + i)
        members.append(CausalStager(N_FEATURES, "cardio", n_filters=8).eval())
    ens = StagerEnsemble(members).eval()
    assert (ens.kind, ens.context_epochs, ens.n_members) == ("causal", 25, 3)
    x, valid = _inputs(4, 60)
    with torch.no_grad():
        seq = torch.stack([m.forward_sequence(x, valid) for m in members]).mean(0)
        torch.testing.assert_close(ens.forward_sequence(x, valid), seq)
        window = torch.stack([m(x[:, -25:], valid[:, -25:]) for m in members]).mean(0)
        torch.testing.assert_close(ens(x[:, -25:], valid[:, -25:]), window)
        torch.testing.assert_close(window, seq[:, -1], rtol=1e-5, atol=1e-6)
    result = export_onnx(ens, tmp_path, feature_names=[f"f{i}" for i in range(N_FEATURES)],
                         feature_version="t")
    assert (result.card.name, result.card.context_epochs) == ("cardio-causal", 25)
    assert result.card.ensemble_members == 3
    with pytest.raises(TypeError, match="forward_sequence belongs to causal"):
        StagerEnsemble(_members(2)).forward_sequence(x, valid)
