"""The psg nets: a channel set of any size and order in front of the two temporal stacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.nets import CausalStager, OfflineStager, StagerEnsemble, build_net
from models.nets._channel_set import ChannelSetEmbedding

N_FEATURES = 11


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_nets.py: a spinning pool on a shared runner
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(99)


def _net(kind: str, **kwargs) -> CausalStager | OfflineStager:
    net = build_net(f"psg-{kind}", N_FEATURES, n_outputs=5, n_filters=16, **kwargs)
    net.set_feature_stats(np.linspace(-2, 3, N_FEATURES), np.linspace(0.5, 2, N_FEATURES))
    return net.eval()


def _inputs(batch: int, n_epochs: int, n_channels: int, seed: int = 0, p_valid: float = 0.9):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_epochs, n_channels, N_FEATURES, generator=g) * 2.0
    valid = (torch.rand(batch, n_epochs, n_channels, generator=g) < p_valid).float()
    return x, valid


def _run(net, x, valid):
    with torch.no_grad():
        return net.forward_sequence(x, valid) if net.kind == "causal" else net(x, valid)


@pytest.mark.parametrize("kind", ["causal", "offline"])
@pytest.mark.parametrize("n_channels", [1, 2, 6])
def test_any_number_of_channels_gives_five_class_probabilities(kind: str, n_channels: int):
    net = _net(kind)
    assert net.channel_set and net.family == "psg"
    x, valid = _inputs(3, 40, n_channels)
    probs = _run(net, x, valid)
    assert probs.shape == (3, 40, 5)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 40))
    if kind == "causal":
        assert net(x[:, -25:], valid[:, -25:]).shape == (3, 5)


@pytest.mark.parametrize("kind", ["causal", "offline"])
def test_a_masked_channel_is_a_missing_one_and_order_does_not_matter(kind: str):
    net = _net(kind)
    x, valid = _inputs(2, 60, 3, p_valid=1.0)
    masked = valid.clone()
    masked[:, :, 1] = 0.0
    garbage = x.clone()
    garbage[:, :, 1] = 1e4
    without = _run(net, x[:, :, [0, 2]], valid[:, :, [0, 2]])
    torch.testing.assert_close(_run(net, garbage, masked), without, rtol=1e-5, atol=1e-6)
    order = [2, 0, 1]
    torch.testing.assert_close(_run(net, x[:, :, order], valid[:, :, order]),
                               _run(net, x, valid), rtol=1e-5, atol=1e-6)


def test_causal_psg_output_of_a_prefix_equals_that_of_the_whole():
    net = _net("causal")
    x, valid = _inputs(2, 100, 2)
    whole = _run(net, x, valid)
    for t in (1, 24, 25, 61):
        torch.testing.assert_close(_run(net, x[:, :t], valid[:, :t]), whole[:, :t],
                                   rtol=1e-5, atol=1e-6)
    pad = net.context_epochs - 1
    xp = F.pad(x, (0, 0, 0, 0, pad, 0))
    vp = F.pad(valid, (0, 0, pad, 0))
    with torch.no_grad():
        sliding = torch.stack([net(xp[:, t: t + pad + 1], vp[:, t: t + pad + 1])
                               for t in range(100)], dim=1)
    torch.testing.assert_close(sliding, whole, rtol=1e-5, atol=1e-6)


def test_offline_night_statistics_are_each_channels_own():
    net = _net("offline")
    emb = net.embedding
    assert isinstance(emb, ChannelSetEmbedding)
    with torch.no_grad():
        emb.encoder.weight[:, :N_FEATURES] = 0.0  # silence the absolute input
    x, valid = _inputs(1, 80, 2, p_valid=1.0)
    shifted = x.clone()
    shifted[:, :, 1] += 4.0  # a different montage or gain shifts one channel's log powers
    torch.testing.assert_close(_run(net, shifted, valid), _run(net, x, valid),
                               rtol=1e-4, atol=1e-5)


def test_channel_dropout_hides_channels_in_training_only():
    emb = ChannelSetEmbedding(N_FEATURES, 8, channel_dropout=0.6)
    valid = torch.ones(500, 4, 2)
    valid[:, 2] = torch.tensor([1.0, 0.0])  # an epoch with one channel keeps it
    dropped = emb._drop_channels(valid)
    assert torch.all(dropped.sum(-1) >= 1)
    assert torch.all(dropped <= valid) and 0.2 < float((dropped == 0).float().mean()) < 0.5
    assert torch.all(dropped[:, 2, 0] == 1.0)
    x = torch.randn(2, 30, 2, N_FEATURES)
    net = _net("offline", channel_dropout=0.5)
    torch.testing.assert_close(_run(net, x, torch.ones(2, 30, 2)),
                               _run(net, x, torch.ones(2, 30, 2)))  # eval: no dropout
    with pytest.raises(ValueError, match="channel_dropout"):
        ChannelSetEmbedding(4, 8, channel_dropout=1.0)
    with pytest.raises(ValueError, match="channel-set input"):
        build_net("cardio-offline", 4, channel_dropout=0.2)


@pytest.mark.parametrize("kind", ["causal", "offline"])
def test_gradient_reaches_every_parameter(kind: str):
    net = _net(kind, channel_dropout=0.3).train()
    x, valid = _inputs(4, 40, 2)
    labels = torch.randint(0, 5, (4, 40))
    fwd = net.forward_sequence if kind == "causal" else net
    F.cross_entropy(fwd(x, valid, return_logits=True).reshape(-1, 5),
                    labels.reshape(-1)).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_shape_errors_name_the_channel_axis():
    net = _net("causal")
    with pytest.raises(ValueError, match=r"\(batch, n_epochs, n_channels, 11\)"):
        net(torch.zeros(1, 25, N_FEATURES))
    with pytest.raises(ValueError, match="valid of shape"):
        net(torch.zeros(1, 25, 2, N_FEATURES), torch.ones(1, 25))
    with pytest.raises(ValueError, match="at least one channel"):
        net(torch.zeros(1, 25, 0, N_FEATURES))


def test_an_ensemble_of_psg_nets_keeps_the_channel_set():
    members = [_net("offline") for _ in range(3)]
    ens = StagerEnsemble(members).eval()
    assert ens.channel_set
    x, valid = _inputs(1, 50, 2)
    expected = torch.stack([_run(m, x, valid) for m in members]).mean(0)
    torch.testing.assert_close(_run(ens, x, valid), expected)
    with pytest.raises(ValueError, match="channel_set"):
        StagerEnsemble([members[0], OfflineStager(N_FEATURES, "psg", n_outputs=5)])
