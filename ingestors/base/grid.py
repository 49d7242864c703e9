"""Chunking on a fixed grid of event time: one implementation for replays and live devices.

Each modality is cut on a grid of ``span`` seconds counted from the session start; every
samples before the start form one cell (index -1). A cell becomes one chunk, or several
of at most ``max_samples`` samples. :func:`grid_cells` cuts a whole, known stream (the
replay plans a night at once); :class:`GridChunker` cuts a stream that grows (a live
device or a growing file): a cell is cut only once nothing more can fall into it, so the
same samples give the same chunks however they were delivered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from stream.schemas.samples import MAX_CHUNK_SAMPLES
from stream.schemas.session import Modality

__all__ = ["DEFAULT_MAX_SAMPLES", "DEFAULT_SPANS", "GridChunker", "Piece", "cell_of",
           "check_max_samples", "grid_cells", "split"]

F64 = NDArray[np.float64]

#: Chunk span in s per modality: what a device would batch before sending.
DEFAULT_SPANS: Final[Mapping[Modality, float]] = MappingProxyType({
    "heart_rate": 5.0, "activity_counts": 15.0, "acceleration": 5.0, "rr": 5.0, "eeg": 5.0,
})
#: Most samples per chunk: 5000 acceleration samples are about 0.4 MB of JSON, below
#: Kafka's default 1 MB message limit (MAX_CHUNK_SAMPLES would be about 4 MB); 5000 compact
#: EEG samples are 13 kB (a 5-s cell holds 5000 samples up to 1 kHz).
DEFAULT_MAX_SAMPLES: Final = 5000


def check_max_samples(max_samples: int) -> int:
    """Return ``max_samples`` if it is an int in 1..MAX_CHUNK_SAMPLES, else raise ValueError."""
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) \
            or not 1 <= max_samples <= MAX_CHUNK_SAMPLES:
        msg = f"`max_samples` must be an int in 1..{MAX_CHUNK_SAMPLES}; got {max_samples!r}"
        raise ValueError(msg)
    return max_samples


def check_span(name: str, span: float) -> float:
    """Return ``span`` as float if it is a finite number of seconds > 0, else raise ValueError."""
    if isinstance(span, bool) or not isinstance(span, int | float) \
            or not math.isfinite(span) or span <= 0:
        msg = f"`{name}` must be a number of seconds > 0; got {span!r}"
        raise ValueError(msg)
    return float(span)


def cell_of(t: F64 | float, span: float) -> F64:
    """Grid cell of each time: ``floor(t / span)``, everything before 0 in cell -1."""
    return np.maximum(np.floor(np.asarray(t, dtype=np.float64) / span), -1.0)


def grid_cells(t: F64, span: float) -> Iterator[tuple[int, int, int]]:
    """The cells of sorted times ``t``: ``(cell, a, b)``, the cell holding ``t[a:b]``."""
    if t.size == 0:
        return
    cell = cell_of(t, span)
    edges = np.flatnonzero(np.diff(cell)) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, t.size], strict=True):
        yield int(cell[a]), int(a), int(b)


def split(a: int, b: int, max_samples: int) -> Iterator[tuple[int, int]]:
    """``[a, b)`` cut into consecutive ranges of at most ``max_samples``."""
    for i0 in range(a, b, max_samples):
        yield i0, min(i0 + max_samples, b)


class Piece(NamedTuple):
    """The samples of one chunk: times in s since the session start, values, beat types."""

    t_s: F64
    values: F64
    beat_types: tuple[str, ...] | None


class GridChunker:
    """Cuts one growing stream into the chunks :func:`grid_cells` would cut it into.

    Samples are added in time order (:meth:`add`); :meth:`ready` returns the chunks of
    every cell that lies wholly before a watermark, the earliest time any later sample may
    have, and :meth:`rest` the remaining ones at the end. A sample added after its cell was
    cut (the watermark was wrong) is not lost: it goes into a chunk of its own later.

    Parameters
    ----------
    span : float
        Grid span in s.
    max_samples : int
        Most samples per chunk.
    """

    def __init__(self, span: float, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        self.span = check_span("span", span)
        self.max_samples = check_max_samples(max_samples)
        self._t: list[F64] = []
        self._v: list[F64] = []
        self._types: list[str] | None = None
        self._last = -math.inf

    @property
    def pending(self) -> int:
        """Samples added but not yet cut into chunks."""
        return sum(t.size for t in self._t)

    def add(self, t_s: F64, values: F64, beat_types: tuple[str, ...] | None = None) -> None:
        """Append samples: times (non-decreasing, not before those added so far) and values.

        Raises
        ------
        ValueError
            If the times go backwards or the lengths differ.
        """
        t = np.asarray(t_s, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if t.size == 0:
            return
        if v.shape[0] != t.size or (beat_types is not None and len(beat_types) != t.size):
            msg = f"{t.size} sample times but {v.shape[0]} values; give one value per time"
            raise ValueError(msg)
        if t[0] < self._last or np.any(np.diff(t) < 0):
            msg = (f"sample times must not decrease; got {float(t.min())} s after "
                   f"{self._last} s")
            raise ValueError(msg)
        self._last = float(t[-1])
        self._t.append(t)
        self._v.append(v)
        if beat_types is not None:
            self._types = [*(self._types or []), *beat_types]

    def ready(self, watermark_s: float) -> list[Piece]:
        """Chunks of the cells that end at or before ``watermark_s``, in time order.

        No later sample can fall into those cells; their samples leave the pending ones.
        """
        if not self._t:
            return []
        t = self._concat()
        limit = float(cell_of(watermark_s, self.span))
        n = int(np.searchsorted(cell_of(t, self.span), limit, side="left"))
        return self._take(n)

    def rest(self) -> list[Piece]:
        """Chunks of every pending sample (the session ends)."""
        if not self._t:
            return []
        return self._take(self._concat().size)

    def _concat(self) -> F64:
        if len(self._t) > 1:
            self._t = [np.concatenate(self._t)]
            self._v = [np.concatenate(self._v)]
        return self._t[0]

    def _take(self, n: int) -> list[Piece]:
        if n == 0:
            return []
        t, v = self._t[0], self._v[0]
        types = self._types
        pieces = [Piece(t[i0:i1], v[i0:i1], None if types is None else tuple(types[i0:i1]))
                  for _, a, b in grid_cells(t[:n], self.span)
                  for i0, i1 in split(a, b, self.max_samples)]
        self._t = [t[n:]] if n < t.size else []
        self._v = [v[n:]] if n < t.size else []
        if types is not None:
            self._types = types[n:] or None
        return pieces
