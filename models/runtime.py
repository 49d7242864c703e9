"""Run exported models with ONNX Runtime: numpy in, probabilities out. No torch.

The streaming worker imports this module and never torch (see DESIGN.md); a test
checks that importing it leaves torch out of ``sys.modules``.

Session options, chosen for one small model called once per epoch close:

* ``intra_op_num_threads=1`` by default. At batch 1 the cost is per-node overhead
  (tens of nodes, microseconds each), which a thread pool only adds synchronisation to;
  at batch 1,000 a second thread can help, but on a 2-core host the Faust worker needs a
  core too, and spinning pool threads steal it. Pass 2 (or 0 = all cores) on a dedicated
  host; spinning is then left on, as it saves the wake-up latency of each parallel op.
* ``inter_op_num_threads=1`` and sequential execution: the graphs are chains.
* ``ORT_ENABLE_ALL`` graph optimisation: constant folding (the weight normalisation and
  the folded feature standardisation become plain initializers), Gemm+activation fusion
  and the CPU layout transforms. The optimised graph is not saved: it is specific to the
  CPU it was built on.
* log severity "error": ORT's warnings about symbolic output shapes are noise here.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import ArrayLike, NDArray

from models.card import ModelCard, load_card, stage_groups

__all__ = [
    "CardMismatchError",
    "OnnxModel",
    "default_weights_dir",
    "load_model",
    "session_options",
    "to_stage_set",
    "validate_card",
]


_MAX_CACHED_MASKS = 16


class CardMismatchError(ValueError):
    """A model card that does not fit what the stream computes; the message names the field."""


def default_weights_dir() -> Path:
    """The ``models/weights`` folder shipped inside the package."""
    return Path(str(resources.files("models") / "weights"))


def session_options(intra_op_num_threads: int = 1) -> ort.SessionOptions:
    """ONNX Runtime session options tuned for low-latency CPU inference (module docstring)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def to_stage_set(probs: NDArray[np.floating], stage_set: int) -> NDArray[np.floating]:
    """Sum class probabilities into a coarser stage set (numpy only).

    Parameters
    ----------
    probs : ndarray, shape (..., n_classes)
        Probabilities over a stage set (4: W, light, deep, REM).
    stage_set : {4, 3, 2}
        3 gives W, NREM (= light + deep), REM; 2 gives W, sleep.

    Returns
    -------
    ndarray, shape (..., stage_set)
    """
    groups = stage_groups(stage_set, from_set=int(probs.shape[-1]))
    return np.stack([probs[..., list(g)].sum(axis=-1) for g in groups], axis=-1)


def validate_card(
    card: ModelCard,
    expected_feature_names: Sequence[str],
    expected_feature_version: str,
    epoch_s: float,
    context_epochs: int | None,
) -> None:
    """Check that a model card matches what the stream computes.

    Parameters
    ----------
    card : ModelCard
        The card of the model about to be used.
    expected_feature_names : sequence of str
        The live registry's feature names for the card's family, in order.
    expected_feature_version : str
        The live registry's ``FEATURE_VERSION``.
    epoch_s : float
        The stream's epoch length in seconds.
    context_epochs : int or None
        The stream's causal context in epochs (None for an offline model).

    Raises
    ------
    CardMismatchError
        Naming the first field that differs, both values, and what to do.
    """
    expected = tuple(expected_feature_names)
    fix = "Re-export the model with the current feature registry or run a matching stream."
    if card.feature_version != expected_feature_version:
        msg = (
            f"model {card.name!r}: field 'feature_version' is {card.feature_version!r} in the "
            f"card but {expected_feature_version!r} in the stream. {fix}"
        )
        raise CardMismatchError(msg)
    if card.feature_names != expected:
        where = _first_difference(card.feature_names, expected)
        msg = f"model {card.name!r}: field 'feature_names' differs: {where}. {fix}"
        raise CardMismatchError(msg)
    if not np.isclose(card.epoch_s, epoch_s):
        msg = (
            f"model {card.name!r}: field 'epoch_s' is {card.epoch_s} s in the card but "
            f"{epoch_s} s in the stream. {fix}"
        )
        raise CardMismatchError(msg)
    if card.context_epochs != context_epochs:
        msg = (
            f"model {card.name!r}: field 'context_epochs' is {card.context_epochs} in the card "
            f"but {context_epochs} in the stream. {fix}"
        )
        raise CardMismatchError(msg)


def _first_difference(card: Sequence[str], stream: Sequence[str]) -> str:
    for i, (a, b) in enumerate(zip(card, stream, strict=False)):
        if a != b:
            return f"position {i} is {a!r} in the card but {b!r} in the stream"
    return f"the card has {len(card)} names, the stream {len(stream)}"


class OnnxModel:
    """One exported model (an ONNX file and its card) in an ONNX Runtime session.

    Parameters
    ----------
    onnx_path : str or Path
        The ``<name>.onnx`` file.
    card : ModelCard or str or Path, optional
        Its card, or the card's path; default ``<name>.json`` beside the ONNX file.
    intra_op_num_threads : int
        Threads per call (see the module docstring); 1 suits a shared 2-core host.

    Raises
    ------
    CardMismatchError
        If the ONNX file's SHA-256 differs from the card's ``onnx_sha256``, or its inputs
        from the card's.

    Examples
    --------
    >>> model = load_model("wearable-causal")  # doctest: +SKIP
    >>> x = np.zeros((1, 25, model.card.n_features), np.float32)  # doctest: +SKIP
    >>> model.predict(x).shape  # doctest: +SKIP
    (1, 4)
    """

    def __init__(
        self,
        onnx_path: str | Path,
        card: ModelCard | str | Path | None = None,
        *,
        intra_op_num_threads: int = 1,
    ) -> None:
        self.path = Path(onnx_path)
        if not self.path.is_file():
            msg = f"ONNX model {self.path} not found"
            raise FileNotFoundError(msg)
        if not isinstance(card, ModelCard):
            card = load_card(card if card is not None else self.path.with_suffix(".json"))
        self.card = card
        model = self.path.read_bytes()
        if hashlib.sha256(model).hexdigest() != card.onnx_sha256:
            msg = (
                f"{self.path.name} does not match its card {card.name!r} (onnx_sha256 differs); "
                "the file was replaced or corrupted. Re-export the model with its card."
            )
            raise CardMismatchError(msg)
        self._session = ort.InferenceSession(
            model, session_options(intra_op_num_threads), providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in self._session.get_inputs()]
        if names != [spec.name for spec in card.inputs]:
            listed = [spec.name for spec in card.inputs]
            msg = f"{self.path.name} has inputs {names}; its card lists {listed}"
            raise CardMismatchError(msg)
        self._output = [card.outputs[0].name]
        self._n_features = card.n_features
        self._n_epochs = card.context_epochs
        self._channel_set = card.channel_set
        self._ones: dict[tuple[int, ...], NDArray[np.float32]] = {}

    def __repr__(self) -> str:
        return f"OnnxModel({self.card.name!r}, version={self.card.version!r})"

    def _zero_nonfinite(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        finite = np.isfinite(x)
        n_bad = int(finite.size - np.count_nonzero(finite))
        if n_bad:
            warnings.warn(
                f"{n_bad} non-finite feature values given to {self.card.name!r} were set to "
                "0; zero-fill missing features and flag them in the mask columns instead.",
                RuntimeWarning,
                stacklevel=3,
            )
            x = np.where(finite, x, np.float32(0))
        return x

    def _ones_for(self, shape: tuple[int, ...]) -> NDArray[np.float32]:
        # The default validity mask, cached per shape: at batch 1 every numpy call before
        # the ORT call shows in the latency (~10 us measured here, more than its own cost,
        # as caches go cold). Read-only so that no caller can change the cached array.
        if len(self._ones) >= _MAX_CACHED_MASKS:
            self._ones.clear()
        mask = np.ones(shape, dtype=np.float32)
        mask.flags.writeable = False
        self._ones[shape] = mask
        return mask

    def predict(
        self, x: ArrayLike, valid: ArrayLike | None = None, *, stage_set: int | None = None
    ) -> NDArray[np.float32]:
        """Stage a batch.

        Parameters
        ----------
        x : array-like, shape (batch, n_epochs, n_features), float32
            Causal: the last ``context_epochs`` epochs, oldest first, left-padded with
            zeros. Offline: whole nights. Non-finite values are replaced by 0 with a
            warning (missing data should be zero-filled and flagged by mask columns). A
            channel-set model (``card.channel_set``) takes (batch, n_epochs, n_channels,
            n_features): any number of channels within the card's range, in any order.
        valid : array-like, shape x.shape[:-1], optional
            1 for a real epoch (channel), 0 for padding or no data; all ones if None.
        stage_set : {4, 3, 2}, optional
            Fold the probabilities into a coarser stage set.

        Returns
        -------
        ndarray of float32, shape (batch, n_classes) or (batch, n_epochs, n_classes)
            Class probabilities; each row sums to 1.
        """
        x = _as_float32(x)
        self._check_shape(x)
        # One reduction instead of an isfinite pass: NaN and inf survive a sum (an overflow
        # to inf only sends a finite input down the exact check below).
        if not math.isfinite(np.add.reduce(x, axis=None)):
            x = self._zero_nonfinite(x)
        if valid is None:
            mask = self._ones.get(x.shape[:-1])
            if mask is None:
                mask = self._ones_for(x.shape[:-1])
        else:
            mask = _as_float32(valid)
            if mask.shape != x.shape[:-1]:
                axes = "(batch, n_epochs, n_channels)" if x.ndim == 4 else "(batch, n_epochs)"
                msg = f"valid must have shape {x.shape[:-1]} {axes}; got {mask.shape}"
                raise ValueError(msg)
        probs: NDArray[np.float32] = self._session.run(self._output, {"x": x, "valid": mask})[0]
        return probs if stage_set is None else to_stage_set(probs, stage_set)


    def _check_shape(self, x: NDArray[np.float32]) -> None:
        channels = self._channel_set
        epochs = self._n_epochs if self._n_epochs is not None else "n_epochs"
        layout = f"(batch, {epochs}, n_channels, " if channels else f"(batch, {epochs}, "
        if (
            x.ndim != (4 if channels else 3)
            or x.shape[-1] != self._n_features
            or (self._n_epochs is not None and x.shape[1] != self._n_epochs)
        ):
            msg = (f"model {self.card.name!r} expects x of shape {layout}{self._n_features}); "
                   f"got {x.shape}")
            raise ValueError(msg)
        if channels is not None:
            most = channels.max_channels
            if x.shape[2] < channels.min_channels or (most is not None and x.shape[2] > most):
                span = f"{channels.min_channels}..{most if most is not None else 'any'}"
                msg = (f"model {self.card.name!r} takes {span} {channels.modality} channels; got "
                       f"{x.shape[2]}")
                raise ValueError(msg)


def _as_float32(a: ArrayLike) -> NDArray[np.float32]:
    if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.float32)


def load_model(
    name: str, weights_dir: str | Path | None = None, *, intra_op_num_threads: int = 1
) -> OnnxModel:
    """Load ``<name>.onnx`` with its ``<name>.json`` card from the weights folder.

    Parameters
    ----------
    name : str
        Model name, e.g. ``"wearable-causal"``.
    weights_dir : str or Path, optional
        Folder holding the files; default the package's ``models/weights``.
    intra_op_num_threads : int
        Passed to :class:`OnnxModel`.

    Raises
    ------
    FileNotFoundError
        Listing the models that the folder does hold.
    """
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    path = folder / f"{name}.onnx"
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.onnx")) if folder.is_dir() else []
        msg = (
            f"no model {name!r} in {folder} (available: {available or 'none'}). Train and "
            "export one with models.export.export_onnx, or pass weights_dir."
        )
        raise FileNotFoundError(msg)
    return OnnxModel(path, intra_op_num_threads=intra_op_num_threads)
