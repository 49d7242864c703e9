"""A night ready for training: feature rows, stage labels and who it belongs to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
    features : ndarray of float32, shape (n_epochs, n_features)
        Causal feature rows, exactly as the stream computes them.
    stages : ndarray of int8, shape (n_epochs,)
        Canonical :class:`models.stages.Stage` labels (unscored/movement kept).
    start : datetime
        Timezone-aware start of epoch 0.
    start_is_nominal : bool
        True when the source gave no clock time.
    """

    night: str
    subject: str
    features: NDArray[np.float32]
    stages: NDArray[np.int8]
    start: datetime
    start_is_nominal: bool = False

    def __post_init__(self) -> None:
        if self.features.shape[0] != self.stages.shape[0]:
            msg = (
                f"night {self.night}: {self.features.shape[0]} feature rows but "
                f"{self.stages.shape[0]} stage labels; they must be one per epoch"
            )
            raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.stages.shape[0])

    def labels(self, stage_set: int = 4) -> NDArray[np.int8]:
        """Class indices in a 4/3/2-class set; -1 where the epoch is not scored."""
        return reduce_stages(self.stages, stage_set)


@dataclass(frozen=True, eq=False)
class NightSet:
    """The nights of one corpus and the feature family they were computed for."""

    name: str
    family: str
    feature_names: tuple[str, ...]
    nights: tuple[Night, ...]

    def __iter__(self) -> Iterator[Night]:
        return iter(self.nights)

    def __len__(self) -> int:
        return len(self.nights)

    @property
    def subjects(self) -> tuple[str, ...]:
        """Distinct subjects, in order of first appearance."""
        return tuple(dict.fromkeys(n.subject for n in self.nights))

    def select(self, subjects: Sequence[str]) -> tuple[Night, ...]:
        """The nights of the given subjects, in corpus order."""
        wanted = set(subjects)
        return tuple(n for n in self.nights if n.subject in wanted)
