"""Hypnogram and confusion-matrix figures, drawn the way sleep scientists read them.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through
``pyplot``: nothing global is touched, no window opens, and the functions are safe to call
from a worker thread. Each returns the figure and, given ``path``, also writes a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike, NDArray

from ingestors.types import EPOCH_S, Hypnogram
from models.stages import EXCLUDED, reduce_stages, stage_names

__all__ = ["plot_confusion_matrix", "plot_hypnogram"]

_REM_COLOR = "tab:red"
_GAP_COLOR = "0.75"
_CLASS_COLORS = ("#e8a33d", "#8fc1e3", "#3b7dc4", "#1b3a6b", _REM_COLOR)  # W N1 N2 N3 REM


class _Track(NamedTuple):
    """One hypnogram ready to draw: reduced classes, raw stages and its time base."""

    classes: NDArray[np.int8]
    stages: NDArray[np.int8]
    epoch_s: float
    start: datetime | None  # real clock start; None for arrays and nominal starts
    anchor: datetime | None  # any start (nominal too), to place tracks relative to each other


def _track(hyp: Hypnogram | ArrayLike, epoch_s: float, stage_set: int, name: str) -> _Track:
    if isinstance(hyp, Hypnogram):
        stages, epoch_s, anchor = np.asarray(hyp.stages), hyp.epoch_s, hyp.start
        start = None if hyp.start_is_nominal else hyp.start
    else:
        stages, start, anchor = np.asarray(hyp), None, None
    if stages.ndim != 1 or stages.size == 0:
        msg = (
            f"`{name}` must be a Hypnogram or a non-empty 1-D stage array; "
            f"got shape {stages.shape}"
        )
        raise ValueError(msg)
    if epoch_s <= 0:
        msg = f"`epoch_s` must be > 0 s; got {epoch_s}"
        raise ValueError(msg)
    classes = reduce_stages(stages, stage_set)
    return _Track(classes, stages.astype(np.int8), float(epoch_s), start, anchor)


def _y_order(stage_set: int) -> tuple[int, ...]:
    """Class indices from the top of the axis down: W, REM, then the rest in depth order."""
    names = stage_names(stage_set)
    rem = names.index("REM") if "REM" in names else None
    rest = [i for i in range(1, len(names)) if i != rem]
    return (0, *((rem,) if rem is not None else ()), *rest)


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start (inclusive) and stop (exclusive) indices of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _edges(track: _Track, main: _Track, clock: bool) -> NDArray[np.float64]:
    """Epoch boundaries on the x axis: date numbers on a clock axis, else hours.

    In hours, a track is shifted by its start's distance from ``main``'s start when both
    have one (nominal starts included), else it is taken to start with ``main``.
    """
    offsets_s = np.arange(track.classes.size + 1, dtype=np.float64) * track.epoch_s
    if clock and track.start is not None:
        return float(mdates.date2num(track.start)) + offsets_s / 86400.0
    if track.anchor is not None and main.anchor is not None:
        offsets_s += (track.anchor - main.anchor).total_seconds()
    return offsets_s / 3600.0


def _draw_track(ax: Axes, track: _Track, x: NDArray[np.float64], stage_set: int) -> None:
    order = _y_order(stage_set)
    level = np.empty(stage_set, dtype=np.float64)
    level[list(order)] = np.arange(stage_set)[::-1]
    y = np.where(track.classes == EXCLUDED, np.nan, level[np.maximum(track.classes, 0)])
    ax.step(x, np.append(y, y[-1]), where="post", color="0.15", linewidth=1.0)
    if "REM" in stage_names(stage_set):
        rem = stage_names(stage_set).index("REM")
        starts, stops = _runs(track.classes == rem)
        ax.hlines(np.full(starts.size, level[rem]), x[starts], x[stops], colors=_REM_COLOR,
                  linewidth=4.0, zorder=3)
    starts, stops = _runs(track.stages < 0)
    for a, b in zip(starts, stops, strict=True):
        ax.axvspan(x[a], x[b], color=_GAP_COLOR, alpha=0.5, linewidth=0)
    names = stage_names(stage_set)
    ax.set_yticks(level[list(order)], [names[i] for i in order])
    ax.set_ylim(-0.5, stage_set - 0.5)
    ax.grid(axis="y", color="0.9", linewidth=0.5)


def _draw_probabilities(
    ax: Axes, probabilities: ArrayLike, x: NDArray[np.float64], stage_set: int
) -> None:
    probs = np.asarray(probabilities, dtype=np.float64)
    n_epochs = x.size - 1
    if probs.shape != (n_epochs, stage_set) or not np.isfinite(probs).all() or (probs < 0).any():
        msg = (
            f"`probabilities` must be finite and non-negative with shape (n_epochs, n_classes) "
            f"= ({n_epochs}, {stage_set}) for the {stage_set}-class set; got shape "
            f"{probs.shape}. Pass one row of class probabilities per epoch of the hypnogram."
        )
        raise ValueError(msg)
    colors = _set_colors(stage_set)
    # Repeat each row at both edges of its epoch so the areas follow the epoch grid.
    xs = np.repeat(x, 2)[1:-1]
    ax.stackplot(xs, np.repeat(probs, 2, axis=0).T, labels=stage_names(stage_set),
                 colors=colors, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)


def _set_colors(stage_set: int) -> list[str]:
    """One colour per class; merged classes take the colour of their deepest member."""
    canonical = np.arange(5)
    classes = reduce_stages(canonical, stage_set)
    return [_CLASS_COLORS[int(canonical[classes == c][-1])] for c in range(stage_set)]


def _time_origin(tracks: Sequence[_Track]) -> datetime | None:
    """Start of the first track when every track has a real clock start, else None."""
    return tracks[0].start if all(t.start is not None for t in tracks) else None


def _format_time_axis(ax: Axes, origin: datetime | None) -> None:
    if origin is None:
        ax.set_xlabel("hours since start")
        return
    tz = origin.tzinfo
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz, minticks=4, maxticks=12))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.set_xlabel(f"clock time (hh:mm, {origin.tzname() or 'UTC'})")


def plot_hypnogram(
    hyp: Hypnogram | ArrayLike,
    *,
    probabilities: ArrayLike | None = None,
    reference: Hypnogram | ArrayLike | None = None,
    stage_set: int = 5,
    epoch_s: float = EPOCH_S,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Draw a hypnogram as a step plot, optionally over a reference and probabilities.

    Parameters
    ----------
    hyp : Hypnogram or array-like of int, shape (n_epochs,)
        The (predicted) night in canonical :class:`~models.stages.Stage` values.
    probabilities : array-like of float, shape (n_epochs, n_classes), optional
        Class probabilities per epoch of ``hyp`` in the ``stage_set`` class order, drawn as
        stacked areas in a panel under the hypnogram(s).
    reference : Hypnogram or array-like of int, optional
        A second night (e.g. the expert scoring) drawn in a panel underneath. Hypnograms are
        placed by their clock time; arrays are assumed to start with ``hyp``.
    stage_set : {5, 4, 3, 2}
        Class set to draw. The y axis reads W, REM, then lighter to deeper sleep from the
        top down; REM epochs are a thick red bar; UNSCORED and MOVEMENT epochs are gaps
        in the line over a grey band.
    epoch_s : float
        Epoch length in seconds for array input (a Hypnogram brings its own).
    title : str, optional
        Figure title.
    path : str or Path, optional
        Where to write a PNG; parent folders must exist.

    Returns
    -------
    Figure
        The figure. The x axis is clock time (hh:mm in the start's time zone) when every
        track is a Hypnogram with a real clock start, else hours since the start of ``hyp``.
    """
    main = _track(hyp, epoch_s, stage_set, "hyp")
    tracks = [main]
    if reference is not None:
        tracks.append(_track(reference, epoch_s, stage_set, "reference"))
    origin = _time_origin(tracks)
    clock = origin is not None
    n_panels = len(tracks) + (probabilities is not None)
    fig = Figure(figsize=(12, 1.0 + 2.0 * n_panels), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    labels = ["predicted", "reference"] if reference is not None else ["stage"]
    spans = []
    for ax, track, label in zip(axes, tracks, labels, strict=False):
        x = _edges(track, main, clock)
        _draw_track(ax, track, x, stage_set)
        ax.set_ylabel(label)
        spans += [x[0], x[-1]]
    axes[0].set_xlim(min(spans), max(spans))  # shared: every panel shows the union
    if probabilities is not None:
        _draw_probabilities(axes[-1], probabilities, _edges(main, main, clock), stage_set)
    axes[0].legend(handles=[Patch(color=_REM_COLOR, label="REM"),
                            Patch(color=_GAP_COLOR, label="unscored / movement")],
                   loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    _format_time_axis(axes[-1], origin)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_confusion_matrix(
    cm: ArrayLike,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Draw a confusion matrix with counts and row percentages in every cell.

    Cells are coloured by the fraction of their row (recall on the diagonal).

    Parameters
    ----------
    cm : array-like of int, shape (n_classes, n_classes)
        Epoch counts, rows = reference, columns = predicted.
    class_names : sequence of str, length n_classes
        Names in class-index order.
    title : str, optional
        Axes title.
    path : str or Path, optional
        Where to write a PNG.

    Returns
    -------
    Figure
        The figure; rows with no reference epoch show 0 %.
    """
    counts = np.asarray(cm)
    n = len(class_names)
    if counts.shape != (n, n) or (counts < 0).any():
        msg = (
            f"`cm` must be a non-negative ({n}, {n}) matrix for class_names {tuple(class_names)}; "
            f"got shape {counts.shape}"
        )
        raise ValueError(msg)
    rows = counts.sum(axis=1, keepdims=True).astype(np.float64)
    frac = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig = Figure(figsize=(1.2 * n + 2.5, 1.1 * n + 1.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of reference row")
    for i in range(n):
        for j in range(n):
            color = "white" if frac[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(counts[i, j])}\n{100 * frac[i, j]:.1f}%", ha="center",
                    va="center", color=color, fontsize="small")
    ax.set_xticks(range(n), list(class_names))
    ax.set_yticks(range(n), list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig

