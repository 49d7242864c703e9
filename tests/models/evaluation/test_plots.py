from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from ingestors.types import NOMINAL_START, Hypnogram
from models.evaluation.plots import plot_confusion_matrix, plot_hypnogram
from models.stages import Stage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TZ = ZoneInfo("Europe/Amsterdam")


def stages(n: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.repeat(rng.integers(0, 5, n // 8), 8).astype(np.int8)
    out[:4] = Stage.UNSCORED
    out[100:103] = Stage.MOVEMENT
    return out


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5000


def ytick_labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def test_hypnogram_clock_axis_and_stage_order(tmp_path):
    start = datetime(2024, 1, 1, 23, 15, tzinfo=TZ)
    hyp = Hypnogram(stages(), start)
    path = tmp_path / "hyp.png"
    fig = plot_hypnogram(hyp, title="night 1", path=path)
    assert isinstance(fig, Figure)
    assert_png(path)
    ax = fig.axes[0]
    assert ytick_labels(ax) == ["W", "REM", "N1", "N2", "N3"]  # top to bottom
    ticks = ax.get_yticks()
    assert list(ticks) == sorted(ticks, reverse=True)  # W highest
    assert ax.get_xlabel().startswith("clock time (hh:mm")
    assert ax.get_xlim()[0] == pytest.approx(mdates.date2num(start))
    assert fig.get_suptitle() == "night 1"
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(len(s) == 5 and s[2] == ":" for s in labels)
    assert "23:30" in labels  # local clock time, not UTC


@pytest.mark.parametrize(
    ("stage_set", "expected"),
    [(4, ["W", "REM", "light", "deep"]), (3, ["W", "REM", "NREM"]), (2, ["W", "sleep"])],
)
def test_hypnogram_reduced_sets(stage_set, expected):
    fig = plot_hypnogram(stages(), stage_set=stage_set)
    assert ytick_labels(fig.axes[0]) == expected
    assert fig.axes[0].get_xlabel() == "hours since start"
    assert fig.axes[0].get_xlim() == pytest.approx((0.0, 240 * 30 / 3600))


def test_hypnogram_nominal_start_uses_hours():
    hyp = Hypnogram(stages(), NOMINAL_START, start_is_nominal=True)
    assert plot_hypnogram(hyp).axes[0].get_xlabel() == "hours since start"


def test_hypnogram_rem_is_highlighted_and_gaps_are_nan():
    st = np.array([Stage.W, Stage.REM, Stage.REM, Stage.UNSCORED, Stage.N2], np.int8)
    ax = plot_hypnogram(st).axes[0]
    step = ax.lines[0]
    y = np.asarray(step.get_ydata(), dtype=float)
    assert np.isnan(y[3]) and not np.isnan(y[:3]).any()
    rem = [c for c in ax.collections if c.get_linewidth()[0] >= 3]
    assert len(rem) == 1 and len(rem[0].get_segments()) == 1  # one REM run


def test_hypnogram_with_reference_and_probabilities(tmp_path):
    start = datetime(2024, 1, 1, 22, 0, tzinfo=UTC)
    pred = Hypnogram(stages(seed=1), start + timedelta(minutes=5))
    ref = Hypnogram(stages(seed=2), start)
    probs = np.random.default_rng(3).dirichlet(np.ones(5), size=len(pred))
    path = tmp_path / "both.png"
    fig = plot_hypnogram(pred, reference=ref, probabilities=probs, path=path)
    assert_png(path)
    top, middle, bottom = fig.axes[:3]
    assert top.get_ylabel() == "predicted"
    assert middle.get_ylabel() == "reference"
    assert bottom.get_ylabel() == "probability"
    assert bottom.get_xlabel().startswith("clock time")
    # The shared x axis spans both nights: from the reference start to the prediction end.
    assert top.get_xlim() == pytest.approx(
        (mdates.date2num(start), mdates.date2num(pred.end))
    )
    legend = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert legend == ["W", "N1", "N2", "N3", "REM"]


def test_probabilities_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(240, 3\)"):
        plot_hypnogram(stages(), stage_set=3, probabilities=np.full((240, 5), 0.2))


def test_hypnogram_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        plot_hypnogram(np.array([], np.int8))
    with pytest.raises(ValueError, match="stage set"):
        plot_hypnogram(stages(), stage_set=6)


def test_confusion_matrix_annotations(tmp_path):
    cm = np.array([[50, 3, 0], [4, 30, 2], [0, 0, 0]])
    path = tmp_path / "cm.png"
    fig = plot_confusion_matrix(cm, ["W", "NREM", "REM"], title="3-class", path=path)
    assert_png(path)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "reference"
    assert ax.get_title() == "3-class"
    texts = [t.get_text() for t in ax.texts]
    assert "50\n94.3%" in texts
    assert "4\n11.1%" in texts
    assert texts.count("0\n0.0%") == 4  # the empty REM row shows 0 %, no division warning
    assert [t.get_text() for t in ax.get_xticklabels()] == ["W", "NREM", "REM"]


def test_confusion_matrix_colours_row_fractions_and_checks_the_shape():
    fig = plot_confusion_matrix(np.eye(2, dtype=int) * 7, ["W", "sleep"])
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b", "c"])
