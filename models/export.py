"""Export a stager network to ONNX with its model card, and prove the export right.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter,
default since torch 2.9; it needs onnxscript). The legacy TorchScript exporter
(``dynamo=False``) is deprecated and raises a ``DeprecationWarning`` plus tracer warnings
in torch 2.13, so it is not used. The dynamo path warns about one thing that is not ours:
a ``FutureWarning`` from torch's own pytree code (``isinstance(treespec, LeafSpec)`` is
deprecated); :func:`export_onnx` ignores exactly that message while exporting, and lowers
the log level of torch's ONNX op registry, which logs that torchvision (not a dependency)
is missing.

After writing, the file is loaded in ONNX Runtime and compared with the torch network on
random inputs (several batch sizes, several night lengths for offline nets, and 1, 2 and 6
channels for a channel-set net, whose channel axis stays dynamic); a mismatch beyond
``rtol=1e-3, atol=1e-5`` raises :class:`ExportVerificationError` and the files are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor

from models.card import (
    CHANNEL_AXIS,
    ChannelSet,
    DatasetRef,
    InputSet,
    ModelCard,
    TensorSpec,
    card_from_mapping,
    save_card,
    stage_groups,
)
from models.nets.stager_net import StagerNet
from models.stages import CLASS_NAMES

__all__ = ["DEFAULT_OPSET", "ExportVerificationError", "ExportedModel", "export_onnx", "git_commit"]

#: ONNX opset written by default (LayerNormalization needs >= 17).
DEFAULT_OPSET = 18

BATCH_AXIS = "batch"
EPOCH_AXIS = "n_epochs"
# Names of the graph's input tensors (not the card's input sets, models.card.INPUT_NAMES).
GRAPH_INPUTS = ("x", "valid")
OUTPUT_NAME = "probs"

# Night lengths used to check an offline export; 1 and odd lengths catch shape bugs.
_VERIFY_EPOCHS = (1, 37, 300)
_VERIFY_BATCHES = (1, 3)
# Channel counts used to check a channel-set export (one, the training two, a full montage).
_VERIFY_CHANNELS = (1, 2, 6)
# Channels of the example input the graph is traced with (not 1: a size-1 axis may be
# specialised by the exporter).
_EXAMPLE_CHANNELS = 3
#: Tolerances of the ONNX Runtime vs torch check (STYLE: Lightning's test_onnx.py).
_RTOL, _ATOL = 1e-3, 1e-5


class ExportVerificationError(RuntimeError):
    """The ONNX Runtime output of an export differs from the torch network."""


class ExportedModel(NamedTuple):
    """What :func:`export_onnx` wrote."""

    onnx_path: Path
    card_path: Path
    card: ModelCard


def git_commit(repo_dir: Path | None = None) -> str | None:
    """The checked-out commit of the sleepstream repository (``-dirty`` if modified).

    Changes under ``models/weights`` do not count: shipping writes there, model by model.

    Returns None when git or the repository is not available (e.g. an installed wheel).
    """
    cwd = repo_dir or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--",
             ":(top)", ":(top,exclude)models/weights"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if status else head


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the two known, harmless messages of torch's dynamo ONNX exporter."""
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                category=FutureWarning,
            )
            yield
    finally:
        registry_log.setLevel(level)


def _example_inputs(
    net: StagerNet, batch: int, n_epochs: int, seed: int, n_channels: int = _EXAMPLE_CHANNELS
) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    outer = (batch, n_epochs, n_channels) if net.channel_set else (batch, n_epochs)
    x = torch.randn(*outer, net.n_features, generator=generator) * 3.0
    valid = (torch.rand(*outer, generator=generator) > 0.2).to(torch.float32)
    return x, valid


def _shapes(net: StagerNet) -> tuple[list[TensorSpec], list[TensorSpec]]:
    time_axis: int | str = net.context_epochs if net.context_epochs is not None else EPOCH_AXIS
    outer: tuple[int | str, ...] = (BATCH_AXIS, time_axis)
    if net.channel_set:
        outer = (*outer, CHANNEL_AXIS)
    x = TensorSpec(name="x", shape=(*outer, net.n_features))
    valid = TensorSpec(name="valid", shape=outer)
    out: tuple[int | str, ...] = (BATCH_AXIS, net.n_outputs)
    if net.kind == "offline":
        out = (BATCH_AXIS, EPOCH_AXIS, net.n_outputs)
    return [x, valid], [TensorSpec(name=OUTPUT_NAME, shape=out)]


def _name_axes(proto: onnx.ModelProto, specs: Sequence[TensorSpec]) -> None:
    """Give the graph's dynamic input/output axes the card's names (``batch``, ``n_epochs``)."""
    by_name = {spec.name: spec for spec in specs}
    for value in [*proto.graph.input, *proto.graph.output]:
        spec = by_name[value.name]
        for dim, size in zip(value.type.tensor_type.shape.dim, spec.shape, strict=True):
            if isinstance(size, str):
                dim.Clear()
                dim.dim_param = size


def _to_onnx(net: StagerNet, opset: int, example: tuple[Tensor, Tensor]) -> onnx.ModelProto:
    axes: dict[int, Any] = {0: torch.export.Dim.DYNAMIC}
    if net.kind == "offline":
        axes[1] = torch.export.Dim.DYNAMIC
    if net.channel_set:
        axes[2] = torch.export.Dim.DYNAMIC
    with _quiet_exporter():
        program = torch.onnx.export(
            net,
            example,
            dynamo=True,
            input_names=list(GRAPH_INPUTS),
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": axes, "valid": dict(axes)},
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        msg = "torch.onnx.export returned no program"
        raise RuntimeError(msg)
    proto = program.model_proto
    inputs, outputs = _shapes(net)
    _name_axes(proto, [*inputs, *outputs])
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _verify(net: StagerNet, path: Path) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lengths = _VERIFY_EPOCHS if net.context_epochs is None else (net.context_epochs,)
    channels = _VERIFY_CHANNELS if net.channel_set else (0,)
    cases = [(b, t, c) for b in _VERIFY_BATCHES for t in lengths for c in channels]
    for i, (batch, n_epochs, n_channels) in enumerate(cases):
        x, valid = _example_inputs(net, batch, n_epochs, 1 + i, n_channels)
        with torch.no_grad():
            expected = net(x, valid).numpy()
        got = session.run([OUTPUT_NAME], {"x": x.numpy(), "valid": valid.numpy()})[0]
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=_RTOL, atol=_ATOL):
            worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else np.nan
            msg = (
                f"ONNX Runtime output of {path.name} differs from torch for input shape "
                f"{tuple(x.shape)}: shapes {got.shape} vs {expected.shape}, max abs diff "
                f"{worst:.3g} (rtol={_RTOL}, atol={_ATOL}). The export is not trustworthy; "
                "check for ops that trace differently (data-dependent control flow)."
            )
            raise ExportVerificationError(msg)


def export_onnx(
    net: StagerNet,
    out_dir: str | Path,
    *,
    feature_names: Sequence[str],
    feature_version: str,
    version: str = "0.1.0",
    training_data: str = "",
    attribution: str = "",
    datasets: Sequence[DatasetRef] = (),
    cv_metrics: Mapping[str, float] | None = None,
    commit: str | None = None,
    opset: int = DEFAULT_OPSET,
    channel_set: ChannelSet | None = None,
    input_sets: Sequence[InputSet] = (),
) -> ExportedModel:
    """Write ``<name>.onnx`` and its ``<name>.json`` card, then check ORT against torch.

    Parameters
    ----------
    net : StagerNet
        One of the nets in :mod:`models.nets`; exported in eval mode (its mode is
        restored afterwards).
    out_dir : str or Path
        Folder for the two files (created if missing).
    feature_names : sequence of str
        The registry's feature names in input order; their number must be ``n_features``.
    feature_version : str
        The registry's ``FEATURE_VERSION`` the net was trained with.
    version : str
        Model version (semantic versioning).
    training_data, attribution : str
        Free-text description of the training data and the attribution its licences ask.
    datasets : sequence of DatasetRef
        The datasets used, each with its licence.
    cv_metrics : mapping of str to float, optional
        Cross-validated metrics, e.g. ``{"kappa_3class": 0.52}``.
    commit : str, optional
        Git commit of the code; default: detected with :func:`git_commit`.
    opset : int
        ONNX opset, >= 17.
    channel_set : ChannelSet, optional
        What the channels of a channel-set net are (its card's ``channel_set``); required
        for such a net, refused for any other.
    input_sets : sequence of InputSet
        The subsets of the inputs the net was validated on, each with its cross-validated
        metrics (the card's ``input_sets``); empty: the stream checks no input set.

    Returns
    -------
    ExportedModel
        The paths written (``<family>-<kind>.onnx`` and ``.json``) and the card.

    Raises
    ------
    TypeError
        If ``net`` is not a sleepstream stager.
    ValueError
        If the feature names do not match ``net.n_features``, ``opset < 17``, or
        ``channel_set`` is missing for a channel-set net (or given for another).
    ModelCardError
        If a card field does not validate (checked before exporting).
    ExportVerificationError
        If ONNX Runtime disagrees with torch (the files are removed).
    """
    if not isinstance(net, StagerNet):
        msg = f"net must be one of the stagers in models.nets; got {type(net).__name__}"
        raise TypeError(msg)
    if len(feature_names) != net.n_features:
        msg = (
            f"{type(net).__name__} reads {net.n_features} features but {len(feature_names)} "
            "feature names were given; pass the registry's names for the net's family."
        )
        raise ValueError(msg)
    if opset < 17:
        msg = f"opset must be >= 17 (LayerNormalization); got {opset}"
        raise ValueError(msg)
    if net.channel_set != (channel_set is not None):
        msg = (f"{type(net).__name__} {'reads' if net.channel_set else 'does not read'} a "
               "channel set: pass channel_set (a models.card.ChannelSet) exactly for such a net")
        raise ValueError(msg)
    name = f"{net.family}-{net.kind}"
    inputs, outputs = _shapes(net)
    # Validate every card field before spending time on the export.
    card = card_from_mapping(
        {
            "name": name,
            "family": net.family,
            "kind": net.kind,
            "version": version,
            "inputs": inputs,
            "outputs": outputs,
            "feature_names": tuple(feature_names),
            "feature_version": feature_version,
            "epoch_s": net.epoch_s,
            "context_epochs": net.context_epochs,
            "stage_set": net.n_outputs,
            "class_names": CLASS_NAMES[net.n_outputs],
            "derived_stage_sets": {
                s: stage_groups(s, net.n_outputs) for s in CLASS_NAMES if s < net.n_outputs
            },
            "training_data": training_data,
            "attribution": attribution,
            "datasets": tuple(datasets),
            "cv_metrics": dict(cv_metrics or {}),
            "ensemble_members": int(getattr(net, "n_members", 1)),
            "channel_set": channel_set,
            "input_sets": tuple(input_sets),
            "git_commit": commit if commit is not None else git_commit(),
            "created_utc": datetime.now(UTC),
            "onnx_opset": opset,
            "onnx_sha256": "0" * 64,
        },
        source=f"for {name!r}",
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, card_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"

    was_training = net.training
    net.eval()
    try:
        n_epochs = net.context_epochs or 64
        proto = _to_onnx(net, opset, _example_inputs(net, 2, n_epochs, 0))
        onnx.save_model(proto, str(onnx_path))
        try:
            _verify(net, onnx_path)
        except ExportVerificationError:
            onnx_path.unlink(missing_ok=True)
            raise
    finally:
        net.train(was_training)

    sha256 = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    card = card.model_copy(update={"onnx_sha256": sha256})
    save_card(card, card_path)
    return ExportedModel(onnx_path, card_path, card)
