"""The model card: what an exported network expects and where it came from.

Every ``<name>.onnx`` ships with a ``<name>.json`` card (sleepecg's ``save_classifier``
keeps the feature settings beside the classifier in the same spirit). The card records
the inputs, the feature names in order and their registry version, the epoch length and
context, the stage set of the output and how it folds into coarser sets, the training data
with its licences, cross-validated metrics, the commit and the hash of the ONNX file. A model
that reads a set of channels per epoch (the psg family) also describes that set
(:class:`ChannelSet`); its feature names are those of each channel.
A model trained to work on any subset of its inputs lists the subsets it was validated on,
each with its cross-validated metrics (:class:`InputSet`); the stream refuses a session that
sends none of them (:func:`session_inputs` names what a session sends).
The runtime refuses a card that does not match what the stream computes.

This module needs pydantic only (no torch, no onnxruntime) so that both the exporter and
the streaming worker can use it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.stages import CLASS_NAMES, Stage, n_classes, reduce_stages

__all__ = [
    "CARD_SCHEMA_VERSION",
    "CHANNEL_AXIS",
    "ChannelSet",
    "DatasetRef",
    "INPUT_NAMES",
    "InputSet",
    "ModelCard",
    "ModelCardError",
    "TensorSpec",
    "card_from_mapping",
    "load_card",
    "save_card",
    "session_inputs",
    "stage_groups",
]

#: Version of the card layout; bump it when a field changes meaning.
CARD_SCHEMA_VERSION: Literal[1] = 1

#: Name of the dynamic channel axis (axis 2 of ``x``) of a channel-set model.
CHANNEL_AXIS = "n_channels"

#: What a model can be given, whatever the device: the names of :attr:`InputSet.inputs`.
INPUT_NAMES: tuple[str, ...] = ("heart_rate", "activity", "rr", "eeg")

# The input each session modality (stream.schemas.session.MODALITIES) feeds: activity counts
# and raw acceleration both become the activity features. Kept here, not imported from
# stream/, so that models/ stays importable without the stream.
_MODALITY_INPUTS: dict[str, str] = {
    "heart_rate": "heart_rate",
    "activity_counts": "activity",
    "acceleration": "activity",
    "rr": "rr",
    "eeg": "eeg",
}


def session_inputs(modalities: Iterable[str]) -> tuple[str, ...]:
    """The model inputs a session feeds with the modalities it sends.

    Parameters
    ----------
    modalities : iterable of str
        Session modalities (``SessionEvent.modalities``): ``heart_rate``,
        ``activity_counts``, ``acceleration``, ``rr`` or ``eeg``.

    Returns
    -------
    tuple of str
        Names of :data:`INPUT_NAMES`, sorted and unique; ``("activity_counts",
        "heart_rate")`` gives ``("activity", "heart_rate")``.

    Raises
    ------
    ValueError
        If a modality is not one a session can send.
    """
    modalities = tuple(modalities)
    unknown = sorted(set(modalities) - _MODALITY_INPUTS.keys())
    if unknown:
        msg = (f"unknown session modalities {unknown}; a session sends some of "
               f"{list(_MODALITY_INPUTS)}")
        raise ValueError(msg)
    return tuple(sorted({_MODALITY_INPUTS[m] for m in modalities}))


class ModelCardError(ValueError):
    """A model card that cannot be read or does not validate; the message names the file."""


def stage_groups(stage_set: int, from_set: int = 4) -> tuple[tuple[int, ...], ...]:
    """Which classes of ``from_set`` add up to each class of the coarser ``stage_set``.

    Derived from :func:`models.stages.reduce_stages`, so the folding of probabilities
    always agrees with the folding of labels.

    Parameters
    ----------
    stage_set : {5, 4, 3, 2}
        The target (coarser or equal) stage set.
    from_set : {5, 4, 3, 2}
        The stage set of the network output.

    Returns
    -------
    tuple of tuple of int
        ``groups[j]`` lists the ``from_set`` class indices whose probabilities sum to
        class ``j`` of ``stage_set``; for ``(3, 4)``: ``((0,), (1, 2), (3,))``.

    Raises
    ------
    ValueError
        If ``stage_set`` is not coarser than or equal to ``from_set``.
    """
    canonical = [int(s) for s in (Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.REM)]
    source = reduce_stages(canonical, n_classes(from_set))
    target = reduce_stages(canonical, n_classes(stage_set))
    mapping: dict[int, int] = {}
    for src, dst in zip(source.tolist(), target.tolist(), strict=True):
        if mapping.setdefault(src, dst) != dst:
            msg = (
                f"stage set {stage_set} is not a coarsening of stage set {from_set}: "
                f"{CLASS_NAMES[from_set][src]!r} would split. Use a coarser stage_set."
            )
            raise ValueError(msg)
    return tuple(
        tuple(src for src in range(from_set) if mapping[src] == dst) for dst in range(stage_set)
    )


class TensorSpec(BaseModel):
    """One input or output of the ONNX graph.

    ``shape`` holds ints for fixed sizes and names for dynamic axes (``"batch"``,
    ``"n_epochs"``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    shape: tuple[int | str, ...]
    dtype: Literal["float32"] = "float32"


class DatasetRef(BaseModel):
    """A dataset used to train or validate the model, with its licence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    licence: str = Field(min_length=1, description="SPDX id or licence name, e.g. ODC-By-1.0")
    url: str | None = None
    n_subjects: int | None = Field(default=None, ge=1)
    citation: str | None = None


class ChannelSet(BaseModel):
    """The channels a channel-set model reads per epoch: axis 2 of its input ``x``.

    The net encodes every channel with the same weights and pools over the channels
    present, so the order of the channels does not matter and a masked channel counts as
    absent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    modality: Literal["eeg"] = Field(description="what every channel must be")
    min_channels: int = Field(default=1, ge=1)
    max_channels: int | None = Field(default=None, ge=1, description="null: any number")
    montage: str = Field(default="any", min_length=1,
                         description="the derivations taken, e.g. 'any' or 'C4-M1'")
    trained_on: tuple[str, ...] = Field(
        min_length=1, description="channel labels of the training recordings")
    note: str = ""

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.max_channels is not None and self.max_channels < self.min_channels:
            msg = (f"max_channels ({self.max_channels}) must be >= min_channels "
                   f"({self.min_channels})")
            raise ValueError(msg)
        return self


class InputSet(BaseModel):
    """One subset of a model's inputs that the model was validated on, with its metrics.

    ``inputs`` is stored sorted (the order it is given in does not matter), so two sets
    with the same inputs compare equal and equal :func:`session_inputs` of a session that
    sends them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[str, ...] = Field(
        min_length=1, description=f"names from {list(INPUT_NAMES)}, sorted and unique")
    cohorts: tuple[str, ...] = Field(
        default=(), description="cohorts whose subjects were tested on this set, e.g. slpdb")
    cv_metrics: dict[str, float] = Field(
        default_factory=dict, description="cross-validated metrics, e.g. kappa_3class")

    @field_validator("inputs")
    @classmethod
    def _known_inputs(cls, inputs: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in inputs if name not in INPUT_NAMES]
        if unknown:
            msg = (f"unknown input names {unknown}; an input set lists names of "
                   f"{list(INPUT_NAMES)}")
            raise ValueError(msg)
        repeated = sorted(name for name, count in Counter(inputs).items() if count > 1)
        if repeated:
            msg = f"input names must be unique within an input set; repeated: {repeated}"
            raise ValueError(msg)
        return tuple(sorted(inputs))

    @property
    def label(self) -> str:
        """The inputs joined by ``+`` (``activity+heart_rate``), as messages show them."""
        return "+".join(self.inputs)


class ModelCard(BaseModel):
    """Everything the runtime needs to check before it trusts an exported network.

    Examples
    --------
    >>> card = load_card("models/weights/wearable-causal.json")  # doctest: +SKIP
    >>> card.context_epochs, card.class_names  # doctest: +SKIP
    (25, ('W', 'light', 'deep', 'REM'))
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = CARD_SCHEMA_VERSION
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$", description="file stem, e.g. wearable-causal"
    )
    family: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="wearable, cardio, ...")
    kind: Literal["causal", "offline"]
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([.+-][0-9A-Za-z.+-]+)?$")
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    feature_names: tuple[str, ...] = Field(min_length=1)
    feature_version: str = Field(min_length=1)
    epoch_s: float = Field(gt=0)
    context_epochs: int | None = Field(default=None, ge=1)
    stage_set: int
    class_names: tuple[str, ...]
    derived_stage_sets: dict[int, tuple[tuple[int, ...], ...]]
    training_data: str = ""
    attribution: str = ""
    datasets: tuple[DatasetRef, ...] = ()
    cv_metrics: dict[str, float] = Field(default_factory=dict)
    ensemble_members: int = Field(
        default=1, ge=1, description="nets whose probabilities the graph averages")
    channel_set: ChannelSet | None = Field(
        default=None, description="the channel axis of a channel-set model; null otherwise")
    input_sets: tuple[InputSet, ...] = Field(
        default=(), description="the input subsets the model was validated on; empty: the "
        "card predates input sets and the stream checks none")
    git_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}(-dirty)?$")
    created_utc: AwareDatetime
    onnx_opset: int = Field(ge=17)
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("feature_names")
    @classmethod
    def _unique_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            msg = f"feature names must be unique; repeated: {repeated}"
            raise ValueError(msg)
        return names

    @field_validator("input_sets")
    @classmethod
    def _unique_sets(cls, sets: tuple[InputSet, ...]) -> tuple[InputSet, ...]:
        repeated = sorted(label for label, count in Counter(s.label for s in sets).items()
                          if count > 1)
        if repeated:
            msg = f"each input set may be listed once; repeated: {repeated}"
            raise ValueError(msg)
        return sets

    @field_validator("created_utc")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("stage_set")
    @classmethod
    def _known_stage_set(cls, stage_set: int) -> int:
        return n_classes(stage_set)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.kind == "causal") != (self.context_epochs is not None):
            msg = (
                f"context_epochs must be an int for a causal model and null for an offline "
                f"one; got kind={self.kind!r}, context_epochs={self.context_epochs!r}"
            )
            raise ValueError(msg)
        if self.class_names != CLASS_NAMES[self.stage_set]:
            msg = (
                f"class_names must be {CLASS_NAMES[self.stage_set]} for stage set "
                f"{self.stage_set}; got {self.class_names}"
            )
            raise ValueError(msg)
        expected = {s: stage_groups(s, self.stage_set) for s in CLASS_NAMES if s < self.stage_set}
        if self.derived_stage_sets != expected:
            msg = f"derived_stage_sets must be {expected}; got {self.derived_stage_sets}"
            raise ValueError(msg)
        self._check_layout()
        n_features = self.inputs[0].shape[-1] if self.inputs[0].shape else None
        if n_features != len(self.feature_names):
            msg = (
                f"the last axis of input {self.inputs[0].name!r} ({n_features}) must equal "
                f"the number of feature_names ({len(self.feature_names)})"
            )
            raise ValueError(msg)
        return self

    def _check_layout(self) -> None:
        """``x`` has a channel axis exactly when the card describes a channel set."""
        x = self.inputs[0].shape
        if self.channel_set is None:
            if len(x) == 4:
                msg = (f"input {self.inputs[0].name!r} has 4 axes {x} but the card has no "
                       "channel_set; describe the channels or use (batch, n_epochs, n_features)")
                raise ValueError(msg)
            return
        if len(x) != 4 or x[2] != CHANNEL_AXIS:
            msg = (f"a channel-set model's input {self.inputs[0].name!r} must have shape "
                   f"(batch, n_epochs, {CHANNEL_AXIS!r}, n_features); got {x}")
            raise ValueError(msg)

    @property
    def n_features(self) -> int:
        """Number of features the network reads per epoch (per channel of a channel set)."""
        return len(self.feature_names)

    def to_json(self) -> str:
        """Serialise the card as indented JSON (the format :func:`load_card` reads)."""
        return self.model_dump_json(indent=2) + "\n"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "<card>"
        parts.append(f"field '{field}': {item['msg']}")
    return "; ".join(parts)


def card_from_mapping(data: Mapping[str, object], source: str = "<mapping>") -> ModelCard:
    """Validate a mapping (e.g. parsed JSON) as a :class:`ModelCard`.

    Raises
    ------
    ModelCardError
        Naming ``source`` and every field that failed.
    """
    try:
        return ModelCard.model_validate(data)
    except ValidationError as err:
        msg = f"invalid model card {source}: {_describe(err)}. Re-export the model or fix the card."
        raise ModelCardError(msg) from None


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card JSON file.

    Parameters
    ----------
    path : str or Path
        The ``<name>.json`` file.

    Returns
    -------
    ModelCard
        The validated card.

    Raises
    ------
    ModelCardError
        If the file is missing, is not JSON, or a field does not validate; the message
        names the file and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        msg = f"cannot read model card {path}: {err.strerror or err}"
        raise ModelCardError(msg) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        msg = (
            f"model card {path} is not valid JSON: {err.msg} at line {err.lineno}, "
            f"column {err.colno}"
        )
        raise ModelCardError(msg) from None
    if not isinstance(data, dict):
        msg = f"model card {path} must hold a JSON object; got {type(data).__name__}"
        raise ModelCardError(msg)
    return card_from_mapping(data, source=str(path))


def save_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` as JSON to ``path`` and return the path."""
    path = Path(path)
    path.write_text(card.to_json(), encoding="utf-8")
    return path
