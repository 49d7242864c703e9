"""Regular high-rate signals (EEG): cut on the grid by sample index and sent compact.

An EEG channel is a regular stream: sample ``k`` lies at ``k / rate_hz`` seconds after the
session start (``sample0`` of :class:`~stream.schemas.samples.SampleChunk`). Its samples
travel as recorded, EDF digital values (int16, or float32 for 24-bit BDF) with the channel's
calibration (:class:`RegularSpec`: physical uV = ``raw * scale + offset``), so nothing is lost
on the way.

The grid is the one of :mod:`ingestors.base.grid`, expressed in samples: cell ``c`` of a
channel holds the samples ``k`` with ``floor(k / (rate_hz * span_s)) == c``. Cells depend
only on the sample index, never on when the samples were read, so a replay and a live file
cut the same chunks. :func:`regular_pieces` cuts a known run of samples (the replay plans a
night at once); :class:`RegularChunker` cuts a growing one, a cell only once every sample
of it has been read (a live file). A cell becomes one chunk, or several of at most
``max_samples`` samples; a gap in the samples (a run that starts later than the last one
ended) splits a cell, since a chunk's samples are consecutive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.base.grid import DEFAULT_MAX_SAMPLES, check_max_samples, check_span, split
from stream.schemas.samples import COMPACT_DTYPES

__all__ = ["RawSamples", "RegularChunker", "RegularPiece", "RegularSpec", "check_raw",
           "regular_pieces"]

_RAW_DTYPES = tuple(np.dtype(d) for d in COMPACT_DTYPES)
#: Raw samples of a regular stream: EDF digital values as int16, or float32 (24-bit BDF).
RawSamples = NDArray[np.int16 | np.float32]


class RegularSpec(NamedTuple):
    """How the raw samples of one regular channel are placed and calibrated.

    Attributes
    ----------
    rate_hz : float
        Sampling rate; sample ``k`` is at ``k / rate_hz`` s after the session start.
    scale, offset : float
        Physical value in the modality's unit (uV for EEG) = ``raw * scale + offset``.
    """

    rate_hz: float
    scale: float
    offset: float

    def check(self, what: str) -> RegularSpec:
        """Return the spec if rate, scale and offset are usable; else raise ValueError."""
        if not (math.isfinite(self.rate_hz) and 0 < self.rate_hz <= 10_000):
            msg = f"{what}: `rate_hz` must be a number of Hz in (0, 10000]; got {self.rate_hz!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.scale) and self.scale != 0 and math.isfinite(self.offset)):
            msg = (f"{what}: calibration must be finite with a scale != 0; got scale "
                   f"{self.scale!r}, offset {self.offset!r}")
            raise ValueError(msg)
        return self

    def physical(self, raw: RawSamples) -> NDArray[np.float64]:
        """Physical values of ``raw``, computed as the worker computes them from a chunk."""
        return raw.astype(np.float64) * self.scale + self.offset


class RegularPiece(NamedTuple):
    """Samples of one chunk: index of the first on the channel's grid, and the raw samples."""

    sample0: int
    raw: RawSamples


def check_raw(raw: NDArray[np.generic], what: str) -> RawSamples:
    """Return ``raw`` if it is a 1-D int16 or float32 array of finite values, else raise."""
    arr = np.asarray(raw)
    if arr.dtype not in _RAW_DTYPES or arr.ndim != 1:
        msg = (f"{what}: raw samples must be a 1-D int16 or float32 array; got "
               f"{arr.dtype} of shape {arr.shape}")
        raise ValueError(msg)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        msg = f"{what}: raw float32 samples must be finite; send gaps as missing samples"
        raise ValueError(msg)
    return arr


def _cells(first: int, n: int, per_cell: float) -> NDArray[np.int64]:
    """Grid cell of the samples ``first .. first + n - 1``."""
    if float(per_cell).is_integer():  # exact integer arithmetic for the usual rates
        return (np.arange(first, first + n, dtype=np.int64) // int(per_cell)).astype(np.int64)
    return np.floor(np.arange(first, first + n, dtype=np.float64) / per_cell).astype(np.int64)


def regular_pieces(sample0: int, n: int, rate_hz: float, span_s: float,
                   max_samples: int = DEFAULT_MAX_SAMPLES) -> Iterator[tuple[int, int, int]]:
    """The chunks of ``n`` consecutive samples starting at index ``sample0``.

    Yields
    ------
    cell, a, b : int
        Grid cell, and the chunk's samples ``a:b`` (0-based within the run).
    """
    per_cell = rate_hz * check_span("span_s", span_s)
    check_max_samples(max_samples)
    if n <= 0:
        return
    cell = _cells(sample0, n, per_cell)
    edges = np.flatnonzero(np.diff(cell)) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, n], strict=True):
        for i0, i1 in split(int(a), int(b), max_samples):
            yield int(cell[a]), i0, i1


class RegularChunker:
    """Cuts one growing regular stream into the chunks :func:`regular_pieces` would cut.

    Runs of consecutive samples are added (:meth:`add`); :meth:`ready` returns the chunks
    of every cell that lies wholly before the next sample index to come, and :meth:`rest`
    the remaining ones at the end.

    Parameters
    ----------
    rate_hz : float
        The stream's rate.
    span_s : float
        Grid span in s.
    max_samples : int
        Most samples per chunk.
    """

    def __init__(self, rate_hz: float, span_s: float,
                 max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            msg = f"`rate_hz` must be a number of Hz > 0; got {rate_hz!r}"
            raise ValueError(msg)
        self.rate_hz, self.span_s = float(rate_hz), check_span("span_s", span_s)
        self.max_samples = check_max_samples(max_samples)
        self.end = 0  # index of the next sample expected
        self._runs: list[tuple[int, list[RawSamples]]] = []  # (sample0, parts), in order
        self._dtype: np.dtype[np.generic] | None = None

    @property
    def pending(self) -> int:
        """Samples added but not yet cut into chunks."""
        return sum(p.size for _, parts in self._runs for p in parts)

    def add(self, sample0: int, raw: RawSamples) -> None:
        """Append samples ``sample0 .. sample0 + len(raw) - 1`` (a later start is a gap).

        Raises
        ------
        ValueError
            If they overlap what was added, or change the raw type.
        """
        if raw.size == 0:
            return
        if sample0 < self.end:
            msg = (f"regular samples must not overlap: got samples from index {sample0}, but "
                   f"those up to {self.end - 1} were added already")
            raise ValueError(msg)
        if self._dtype is not None and raw.dtype != self._dtype:
            msg = f"raw samples changed type from {self._dtype} to {raw.dtype}"
            raise ValueError(msg)
        self._dtype = raw.dtype
        if self._runs and sample0 == self.end:
            self._runs[-1][1].append(raw)
        else:
            self._runs.append((sample0, [raw]))
        self.end = sample0 + raw.size

    def ready(self, upto: int | None = None) -> list[RegularPiece]:
        """Chunks of the cells that end at or before sample index ``upto``.

        ``upto`` defaults to the next sample expected; no later sample can fall into them.
        """
        limit = self.end if upto is None else max(min(upto, self.end), 0)
        cell = int(_cells(limit, 1, self.rate_hz * self.span_s)[0])
        first = self._first_of(cell)
        return self._take(first)

    def rest(self) -> list[RegularPiece]:
        """Chunks of every pending sample (the stream ends)."""
        return self._take(self.end)

    def _first_of(self, cell: int) -> int:
        """First sample index of ``cell`` (the smallest index the grid puts there)."""
        per_cell = self.rate_hz * self.span_s
        k = max(int(math.floor(cell * per_cell)) - 1, 0)
        while _cells(k, 1, per_cell)[0] < cell:  # at most a step or two past the estimate
            k += 1
        return k

    def _take(self, cut: int) -> list[RegularPiece]:
        """Cut every pending sample below index ``cut`` into chunks."""
        pieces: list[RegularPiece] = []
        keep: list[tuple[int, list[RawSamples]]] = []
        for start, parts in self._runs:
            raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
            n = min(max(cut - start, 0), raw.size)
            pieces += [RegularPiece(start + a, raw[a:b])
                       for _, a, b in regular_pieces(start, n, self.rate_hz, self.span_s,
                                                     self.max_samples)]
            if n < raw.size:
                keep.append((start + n, [raw[n:]]))
        self._runs = keep
        return pieces
