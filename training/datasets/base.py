"""A night ready for training: feature rows, stage labels, validity and who it belongs to."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from models.stages import reduce_stages

__all__ = ["Night", "NightSet"]


@dataclass(frozen=True, eq=False)
class Night:
    """One recorded night as the models see it.

    Attributes
    ----------
    night : str
        Night (record) id, e.g. ``"8692923"`` or ``"slp01a"``.
    subject : str
        The person; folds never split a subject (``slp01a`` and ``slp01b`` are ``slp01``).
    features : ndarray of float32, shape (n_epochs, [n_channels,] n_features)
        Causal feature rows, exactly as the stream computes them; per channel for the
        families of ``models.features.registry.PER_CHANNEL_FAMILIES``.
    stages : ndarray of int8, shape (n_epochs,)
        Canonical :class:`models.stages.Stage` labels (unscored/movement kept).
    start : datetime
        Timezone-aware start of epoch 0.
    start_is_nominal : bool
        True when the source gave no clock time.
    valid : ndarray of float32, shape features.shape[:-1], optional
        1 where an epoch (a channel of an epoch) has data, 0 where it is a gap the nets
        must mask; None: every epoch is valid (missing inputs are then flagged by coverage
        features, as the wearable and cardio features do).
    cohort : str
        The corpus the night comes from (``"sleep-accel"``, ``"slpdb"``): folds and
        validation draws are stratified by it, and training may balance cohorts.
    inputs : tuple of str
        Input names (:data:`models.card.INPUT_NAMES`) the features were computed from, sorted;
        empty for channel-set families.
    subsets : mapping of tuple of str to ndarray
        The same night's feature rows computed from fewer inputs (e.g. heart rate alone of a
        night with heart rate and activity), keyed by those inputs: what a device sending
        only them gives. Training draws them for input dropout; evaluation scores each.
    simulated_apnoea : ndarray of float32, optional
        Feature rows from the night's heart rate alone with sleep apnoea simulated on it
        (:mod:`training.datasets.apnoea`): training crops may come from them
        (``apnoea_share``); they are never tested on.
    """

    night: str
    subject: str
    features: NDArray[np.float32]
    stages: NDArray[np.int8]
    start: datetime
    start_is_nominal: bool = False
    valid: NDArray[np.float32] | None = None
    cohort: str = ""
    inputs: tuple[str, ...] = ()
    subsets: Mapping[tuple[str, ...], NDArray[np.float32]] = field(default_factory=dict)
    simulated_apnoea: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        if self.features.shape[0] != self.stages.shape[0]:
            msg = (
                f"night {self.night}: {self.features.shape[0]} feature rows but "
                f"{self.stages.shape[0]} stage labels; they must be one per epoch"
            )
            raise ValueError(msg)
        if self.valid is not None and self.valid.shape != self.features.shape[:-1]:
            msg = (f"night {self.night}: validity of shape {self.valid.shape} for features of "
                   f"shape {self.features.shape}; it must be features.shape[:-1]")
            raise ValueError(msg)
        others = dict(self.subsets)
        if self.simulated_apnoea is not None:
            others[("simulated apnoea",)] = self.simulated_apnoea
        for inputs, rows in others.items():
            if rows.shape != self.features.shape:
                msg = (f"night {self.night}: features from {'+'.join(inputs)} have shape "
                       f"{rows.shape}, the night's {self.features.shape}; they must match")
                raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.stages.shape[0])

    def with_inputs(self, inputs: tuple[str, ...]) -> Night:
        """The night as a device sending only ``inputs`` gives it (``KeyError`` if unknown)."""
        if inputs == self.inputs:
            return self
        return replace(self, features=self.subsets[inputs], inputs=inputs, subsets={},
                       simulated_apnoea=None)

    def as_simulated_apnoea(self) -> Night:
        """The night from its :attr:`simulated_apnoea` rows (``ValueError`` if it has none)."""
        if self.simulated_apnoea is None:
            msg = f"night {self.night} has no simulated-apnoea rows"
            raise ValueError(msg)
        return replace(self, night=f"{self.night}~apnoea", features=self.simulated_apnoea,
                       inputs=("heart_rate",), subsets={}, simulated_apnoea=None)

    def labels(self, stage_set: int) -> NDArray[np.int8]:
        """Class indices in a 5/4/3/2-class set; -1 where the epoch is not scored."""
        return reduce_stages(self.stages, stage_set)

    def validity(self) -> NDArray[np.float32]:
        """:attr:`valid`, or all ones when it is None."""
        if self.valid is not None:
            return self.valid
        return np.ones(self.features.shape[:-1], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class NightSet:
    """The nights of one corpus, the feature family they were computed for and its classes.

    ``stage_set`` is the number of classes the corpus's models learn (4: W, light, deep,
    REM for the wearable and cardio corpora; 5: W, N1, N2, N3, REM for Sleep-EDF's EEG).
    """

    name: str
    family: str
    feature_names: tuple[str, ...]
    nights: tuple[Night, ...]
    stage_set: int = 4

    def __iter__(self) -> Iterator[Night]:
        return iter(self.nights)

    def __len__(self) -> int:
        return len(self.nights)

    @property
    def subjects(self) -> tuple[str, ...]:
        """Distinct subjects, in order of first appearance."""
        return tuple(dict.fromkeys(n.subject for n in self.nights))

    @property
    def cohorts(self) -> dict[str, str]:
        """Each subject's cohort."""
        return {n.subject: n.cohort for n in self.nights}

    def input_views(self) -> dict[str, NightSet]:
        """Per cohort and per set of inputs its nights have: those nights with only them.

        Named ``<cohort>-<input>+<input>``, e.g. ``sleep-accel-heart_rate``; empty when the
        nights carry no inputs (channel-set families).
        """
        sets: dict[tuple[str, tuple[str, ...]], list[Night]] = {}
        for n in self.nights:
            for inputs in (n.inputs, *n.subsets) if n.inputs else ():
                sets.setdefault((n.cohort, inputs), []).append(n.with_inputs(inputs))
        return {f"{cohort}-{'+'.join(inputs)}": replace(self, nights=tuple(nights))
                for (cohort, inputs), nights in sorted(sets.items())}

    def select(self, subjects: Sequence[str]) -> tuple[Night, ...]:
        """The nights of the given subjects, in corpus order."""
        wanted = set(subjects)
        return tuple(n for n in self.nights if n.subject in wanted)
