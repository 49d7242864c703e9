"""The two stager architectures: shapes, probabilities, causality, masking, gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.nets import (
    NETS,
    CausalStager,
    OfflineStager,
    StagerNet,
    build_net,
    to_stage_set,
)
from models.nets._layers import causal_dilations


def causal(n_features: int, **kwargs) -> CausalStager:
    return CausalStager(n_features, "wearable", **kwargs)


def offline(n_features: int, **kwargs) -> OfflineStager:
    return OfflineStager(n_features, "wearable", **kwargs)


CAUSAL = [causal]
OFFLINE = [offline]


def _inputs(batch: int, n_epochs: int, n_features: int, seed: int = 0, p_valid: float = 0.8):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_epochs, n_features, generator=generator) * 2.0
    valid = (torch.rand(batch, n_epochs, generator=generator) < p_valid).float()
    return x, valid


def _sliding(net: CausalStager, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Stage every epoch by sliding the context window, as the stream does."""
    pad = net.context_epochs - 1
    xp, vp = F.pad(x, (0, 0, pad, 0)), F.pad(valid, (pad, 0))
    windows = [net(xp[:, t : t + pad + 1], vp[:, t : t + pad + 1]) for t in range(x.shape[1])]
    return torch.stack(windows, dim=1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second intra-op thread only spins, and on a shared 2-core runner a
    # spinning pool makes each call ~50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_family_is_data_and_the_model_name_picks_the_architecture() -> None:
    for name in ("wearable-causal", "cardio-causal", "wearable-offline", "cardio-offline",
                 "psg-eeg-offline"):
        net = build_net(name, 7, n_filters=8)
        family, _, kind = name.rpartition("-")
        assert (net.family, net.kind) == (family, kind)
        assert type(net) is NETS[kind] and isinstance(net, StagerNet)
    assert build_net("cardio-causal", 7, dropout=0.2).head.dropout.p == 0.2
    with pytest.raises(ValueError, match="'<family>-causal' or '<family>-offline'"):
        build_net("wearable", 7)
    with pytest.raises(ValueError, match="do not fit OfflineStager.*context_epochs"):
        build_net("wearable-offline", 7, context_epochs=25)
    with pytest.raises(ValueError, match="lower-case feature family"):
        CausalStager(7, "Wearable")


@pytest.mark.parametrize("cls", CAUSAL)
@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("n_features", [1, 7, 40])
def test_causal_shapes_and_probabilities(
    cls: Callable[..., CausalStager], batch: int, n_features: int
) -> None:
    net = cls(n_features).eval()
    x, valid = _inputs(batch, 25, n_features)
    probs = net(x, valid)
    assert probs.shape == (batch, 4)
    assert probs.dtype == torch.float32
    assert torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(batch))
    seq = net.forward_sequence(x, valid)
    assert seq.shape == (batch, 25, 4)


@pytest.mark.parametrize("cls", OFFLINE)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("n_features", [1, 7, 40])
@pytest.mark.parametrize("n_epochs", [1, 2, 25, 333])
def test_offline_shapes_and_probabilities(
    cls: Callable[..., OfflineStager], batch: int, n_features: int, n_epochs: int
) -> None:
    net = cls(n_features).eval()
    x, valid = _inputs(batch, n_epochs, n_features)
    probs = net(x, valid)
    assert probs.shape == (batch, n_epochs, 4)
    assert torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(batch, n_epochs))


@pytest.mark.parametrize("cls", [*CAUSAL, *OFFLINE])
def test_logits_give_the_probabilities(cls: Callable[..., StagerNet]) -> None:
    net = cls(5).eval()
    x, valid = _inputs(2, 25, 5)
    torch.testing.assert_close(torch.softmax(net(x, valid, return_logits=True), -1), net(x, valid))
    assert net(x).shape == net(x, valid).shape  # valid defaults to all ones
    torch.testing.assert_close(net(x), net(x, torch.ones(2, 25)))


@pytest.mark.parametrize("cls", CAUSAL)
@pytest.mark.parametrize("n_epochs", [1, 24, 25, 26, 90])
def test_forward_sequence_equals_sliding_window(
    cls: Callable[..., CausalStager], n_epochs: int
) -> None:
    net = cls(6).eval()
    x, valid = _inputs(3, n_epochs, 6, seed=n_epochs)
    with torch.no_grad():
        torch.testing.assert_close(
            net.forward_sequence(x, valid), _sliding(net, x, valid), rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(
            net.forward_sequence(x, valid, return_logits=True)[:, -1],
            net(x[:, -25:], valid[:, -25:], return_logits=True)
            if n_epochs >= 25
            else net(
                F.pad(x, (0, 0, 25 - n_epochs, 0)),
                F.pad(valid, (25 - n_epochs, 0)),
                return_logits=True,
            ),
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize("cls", CAUSAL)
def test_causal_output_does_not_change_when_epochs_are_appended(
    cls: Callable[..., CausalStager],
) -> None:
    net = cls(8).eval()
    x, valid = _inputs(2, 120, 8)
    with torch.no_grad():
        whole = net.forward_sequence(x, valid)
        for t in (1, 13, 25, 60, 119):
            prefix = net.forward_sequence(x[:, :t], valid[:, :t])
            torch.testing.assert_close(prefix, whole[:, :t], rtol=1e-5, atol=1e-6)
        # Changing the future leaves the past alone; it does change the present.
        future = x.clone()
        future[:, 70:] += 5.0
        changed = net.forward_sequence(future, valid)
    torch.testing.assert_close(changed[:, :70], whole[:, :70], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(changed[:, 70:], whole[:, 70:])


@pytest.mark.parametrize("cls", CAUSAL)
def test_causal_context_is_exactly_the_window(cls: Callable[..., CausalStager]) -> None:
    net = cls(4).eval()
    x, valid = _inputs(1, 80, 4)
    older = x.clone()
    older[:, :40] = torch.randn(1, 40, 4) * 10  # 40 epochs before t=65 leave its window
    with torch.no_grad():
        base, moved = net.forward_sequence(x, valid), net.forward_sequence(older, valid)
    torch.testing.assert_close(moved[:, 64:], base[:, 64:], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(moved[:, 40:64], base[:, 40:64])


@pytest.mark.parametrize("cls", OFFLINE)
def test_offline_looks_both_ways(cls: Callable[..., OfflineStager]) -> None:
    net = cls(4).eval()
    x, valid = _inputs(1, 200, 4, p_valid=1.0)
    later = x.clone()
    later[:, 150:] += 3.0
    with torch.no_grad():
        assert not torch.allclose(net(later, valid)[:, :100], net(x, valid)[:, :100])


@pytest.mark.parametrize("cls", [*CAUSAL, *OFFLINE])
def test_invalid_epochs_are_ignored(cls: Callable[..., StagerNet]) -> None:
    net = cls(5).eval()
    x, valid = _inputs(2, 25, 5)
    valid[:, :6] = 0.0
    valid[:, 11] = 0.0
    garbage = x.clone()
    garbage[:, :6] = 1e6
    garbage[:, 11] = -3e5
    with torch.no_grad():
        torch.testing.assert_close(net(garbage, valid), net(x, valid))


@pytest.mark.parametrize("cls", [*CAUSAL, *OFFLINE])
@pytest.mark.parametrize("case", ["zeros", "all-invalid", "young-night"])
def test_empty_and_masked_input_gives_probabilities(
    cls: Callable[..., StagerNet], case: str
) -> None:
    net = cls(12).eval()
    x = torch.zeros(3, 25, 12)
    valid = torch.ones(3, 25)
    if case == "all-invalid":
        x, valid = torch.randn(3, 25, 12), torch.zeros(3, 25)
    elif case == "young-night":  # one real epoch, the rest is left padding
        x[:, -1], valid[:, :-1] = torch.randn(3, 12), 0.0
    probs = net(x, valid)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))


@pytest.mark.parametrize("cls", [*CAUSAL, *OFFLINE])
def test_gradient_reaches_every_parameter(cls: Callable[..., StagerNet]) -> None:
    net = cls(9).train()
    x, valid = _inputs(4, 40, 9)
    labels = torch.randint(0, 4, (4, 40))
    if isinstance(net, CausalStager):
        logits = net.forward_sequence(x, valid, return_logits=True)
    else:
        logits = net(x, valid, return_logits=True)
    F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1)).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", [causal, offline])
def test_feature_stats_standardise_the_input(cls: Callable[..., StagerNet]) -> None:
    net = cls(3).eval()
    x, valid = _inputs(2, 25, 3, p_valid=1.0)
    mean, std = np.array([60.0, -2.0, 0.5]), np.array([10.0, 4.0, 1e-9])
    raw = x * torch.tensor([10.0, 4.0, 1.0]) + torch.tensor([60.0, -2.0, 0.5])
    with torch.no_grad():
        expected = net(x, valid)
        net.set_feature_stats(mean, std)  # the constant third feature is centred, not scaled
        torch.testing.assert_close(net(raw, valid), expected, rtol=1e-4, atol=1e-5)
    assert "embedding.feature_mean" in net.state_dict()
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        net.set_feature_stats(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        net.set_feature_stats([0.0, np.nan, 0.0], np.ones(3))


def test_default_dilations_cover_the_context_exactly() -> None:
    assert causal_dilations(25, 3) == (5, 4, 2, 1)
    for context in (2, 5, 13, 25, 49):
        for kernel in (2, 3):
            if (context - 1) % (kernel - 1):
                continue
            dilations = causal_dilations(context, kernel)
            assert 1 + (kernel - 1) * sum(dilations) == context
    with pytest.raises(ValueError, match="multiple of kernel_size - 1"):
        causal_dilations(24, 3)


def test_context_and_constructor_checks() -> None:
    net = causal(4, context_epochs=9, kernel_size=2)
    assert net(torch.zeros(2, 9, 4)).shape == (2, 4)
    assert causal(4, context_epochs=1)(torch.zeros(2, 1, 4)).shape == (2, 4)
    with pytest.raises(ValueError, match="receptive field"):
        causal(4, dilations=(1, 2))
    with pytest.raises(ValueError, match="n_outputs"):
        causal(4, n_outputs=6)
    with pytest.raises(ValueError, match="n_features"):
        offline(0)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        offline(4, n_filters=30, n_heads=4)
    with pytest.raises(ValueError, match="odd kernel_size"):
        offline(4, kernel_size=2)
    with pytest.raises(ValueError, match="dropout"):
        causal(4, dropout=1.0)


def test_input_shape_errors_name_the_expectation() -> None:
    net = causal(4)
    with pytest.raises(ValueError, match="window of 25 epochs"):
        net(torch.zeros(1, 24, 4))
    with pytest.raises(ValueError, match=r"\(batch, n_epochs, 4\)"):
        net(torch.zeros(1, 25, 5))
    with pytest.raises(ValueError, match="valid of shape"):
        net(torch.zeros(2, 25, 4), torch.ones(2, 24))
    with pytest.raises(ValueError, match=r"\(batch, n_epochs, 4\)"):
        offline(4)(torch.zeros(25, 4))


def test_four_class_nets_give_five_class_option() -> None:
    net = offline(3, n_outputs=5).eval()
    probs = net(torch.zeros(1, 10, 3))
    assert probs.shape == (1, 10, 5)
    assert to_stage_set(probs, 3).shape == (1, 10, 3)


def test_parameter_counts_stay_small() -> None:
    for cls in NETS.values():
        n_params = sum(p.numel() for p in cls(40, "wearable").parameters())
        assert 10_000 <= n_params <= 100_000, (cls.__name__, n_params)


def test_to_stage_set_sums_classes_for_torch_and_numpy() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])
    three = to_stage_set(probs, 3)
    torch.testing.assert_close(three, torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]]))
    torch.testing.assert_close(to_stage_set(probs, 2), torch.tensor([[0.1, 0.9], [0.7, 0.3]]))
    torch.testing.assert_close(to_stage_set(probs, 4), probs)
    as_numpy = to_stage_set(probs.numpy(), 3)
    assert isinstance(as_numpy, np.ndarray)
    assert as_numpy.dtype == np.float32
    np.testing.assert_allclose(as_numpy, three.numpy(), rtol=1e-6)
    np.testing.assert_allclose(to_stage_set(probs.numpy().astype(np.float64), 2).sum(-1), 1.0)
    with pytest.raises(ValueError, match="coarsening"):
        to_stage_set(to_stage_set(probs, 3), 4)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_attention_blocks": 1}, {"instance_norm": False}, {"dilations": (1, 2, 4, 8)}],
)
def test_offline_options_keep_the_contract(kwargs: dict) -> None:
    net = offline(6, **kwargs).eval()
    x, valid = _inputs(2, 90, 6)
    garbage = x.clone()
    garbage[valid == 0] = 1e5
    with torch.no_grad():
        probs = net(x, valid)
        torch.testing.assert_close(net(garbage, valid), probs)
    assert probs.shape == (2, 90, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 90))


def test_offline_night_normalisation_uses_the_nights_own_statistics() -> None:
    # Per-night normalisation: the relative channel of a feature is the same for a night
    # and for that night shifted by a constant; the absolute channel alone tells them apart.
    net = offline(3).eval()
    x, valid = _inputs(1, 60, 3, p_valid=1.0)
    emb = net.embedding
    with torch.no_grad():
        emb.weight[:, :3] = 0.0  # silence the absolute channel
        a = net(x, valid)
        b = net(x + 7.0, valid)
        c = net(x * 3.0, valid)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a, c)  # spread matters (up to the variance floor)
