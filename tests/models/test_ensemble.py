"""Ensembles of stagers: the fused causal graph equals the plain average, exports, checks."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.export import export_onnx
from models.nets import CardioCausal, CardioOffline, WearableCausal
from models.nets.ensemble import StagerEnsemble

N_FEATURES = 12


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_nets.py
    yield
    torch.set_num_threads(threads)


def _members(cls, n: int, **kw):
    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        net = cls(N_FEATURES, **kw)
        rng = np.random.default_rng(i)
        net.set_feature_stats(rng.normal(0, 3, N_FEATURES), rng.uniform(0.5, 4, N_FEATURES))
        out.append(net.eval())
    return out


def _inputs(batch: int, n_epochs: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_epochs, N_FEATURES, generator=g) * 3.0
    valid = (torch.rand(batch, n_epochs, generator=g) > 0.2).float()
    return x, valid


def test_fused_causal_ensemble_equals_the_average_of_its_members():
    members = _members(CardioCausal, 4, n_filters=8)
    ens = StagerEnsemble(members).eval()
    assert ens.fusable and ens.n_members == 4 and ens.kind == "causal" and ens.family == "cardio"
    x, valid = _inputs(9, 25)
    with torch.no_grad():
        fused = ens(x, valid)
        plain = torch.stack([m(x, valid) for m in members]).mean(0)
        seq = ens.forward_sequence(x, valid)[:, -1]
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(seq, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.sum(-1), torch.ones(9))


def test_causal_ensemble_exports_with_parity_and_records_its_size(tmp_path):
    ens = StagerEnsemble(_members(WearableCausal, 3, n_filters=8)).eval()
    names = tuple(f"f{i}" for i in range(N_FEATURES))
    result = export_onnx(ens, tmp_path, feature_names=names, feature_version="t")
    assert result.card.ensemble_members == 3 and result.card.context_epochs == 25
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    x, valid = _inputs(5, 25, seed=3)
    got = session.run(None, {"x": x.numpy(), "valid": valid.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, ens(x, valid).numpy(), rtol=1e-3, atol=1e-5)


def test_offline_ensemble_averages_whole_nights(tmp_path):
    members = _members(CardioOffline, 2, n_filters=8)
    ens = StagerEnsemble(members).eval()
    assert not ens.fusable and ens.context_epochs is None
    x, valid = _inputs(2, 70)
    with torch.no_grad():
        torch.testing.assert_close(
            ens(x, valid), torch.stack([m(x, valid) for m in members]).mean(0))
    with pytest.raises(TypeError, match="causal"):
        ens.forward_sequence(x, valid)
    names = tuple(f"f{i}" for i in range(N_FEATURES))
    assert export_onnx(ens, tmp_path, feature_names=names, feature_version="t").card.kind == (
        "offline")


def test_members_must_match():
    with pytest.raises(ValueError, match="at least one"):
        StagerEnsemble([])
    with pytest.raises(ValueError, match="one class"):
        StagerEnsemble([*_members(CardioCausal, 1), *_members(WearableCausal, 1)])
    with pytest.raises(ValueError, match="context_epochs"):
        StagerEnsemble([*_members(CardioCausal, 1),
                        *_members(CardioCausal, 1, context_epochs=13)])
    with pytest.raises(ValueError, match="no logits"):
        StagerEnsemble(_members(CardioCausal, 2)).forward(*_inputs(1, 25), return_logits=True)
