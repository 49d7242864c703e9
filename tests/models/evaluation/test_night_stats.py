from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from ingestors.types import Hypnogram
from models.evaluation.night_stats import NightStats, night_stats, night_stats_from_stages
from models.stages import Stage, class_stages

W, N1, N2, N3, REM = Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.REM
UNS, MOV = Stage.UNSCORED, Stage.MOVEMENT
PER_MIN = 2  # 30-s epochs


def night(*blocks: tuple[Stage, float]) -> np.ndarray:
    """Stages from (stage, minutes) blocks."""
    return np.concatenate(
        [np.full(round(m * PER_MIN), s, dtype=np.int8) for s, m in blocks]
    )


# 5 min unscored before lights-off, 10 min wake, 5 N1, 20 N2, 30 N3, 4 W (awakening),
# 10 N2, 15 REM, 1 movement, 2 W (awakening), 8 N2, 6 wake at the end, 3 min unscored.
NIGHT = night(
    (UNS, 5), (W, 10), (N1, 5), (N2, 20), (N3, 30), (W, 4), (N2, 10), (REM, 15), (MOV, 1),
    (W, 2), (N2, 8), (W, 6), (UNS, 3),
)


def test_hand_built_night():
    s = night_stats_from_stages(NIGHT)
    assert s.recording_min == 119
    assert s.lights_off_epoch == 10
    assert s.lights_on_epoch == NIGHT.size - 6
    assert s.tib_min == 111  # 5 min unscored before and 3 after are not in bed
    assert s.sleep_onset_epoch == 10 + 20
    assert s.sol_min == 10
    assert s.tst_min == 5 + 20 + 30 + 10 + 15 + 8
    assert s.spt_min == 5 + 20 + 30 + 4 + 10 + 15 + 1 + 2 + 8
    assert s.waso_min == 6  # the final 6 min of wake are after the last sleep epoch
    assert s.rem_latency_min == 5 + 20 + 30 + 4 + 10
    assert s.se_pct == pytest.approx(88 / 111 * 100)
    assert s.n_awakenings == 2
    # all wake in bed: 10 before sleep onset, 6 inside SPT, 6 after the last sleep epoch
    assert s.minutes == {"W": 22, "N1": 5, "N2": 38, "N3": 30, "REM": 15}
    assert s.pct_tst["N2"] == pytest.approx(38 / 88 * 100)
    assert sum(s.pct_tst.values()) == pytest.approx(100)
    assert list(s.pct_tst) == ["N1", "N2", "N3", "REM"]
    assert s.movement_min == 1
    assert s.unscored_min == 0
    assert s.spt_min == s.tst_min + s.waso_min + s.movement_min
    assert sum(s.minutes.values()) == s.tib_min - s.movement_min - s.unscored_min


def test_unscored_inside_the_night_stays_in_bed():
    s = night_stats_from_stages(night((W, 2), (N2, 3), (UNS, 1), (N2, 4), (UNS, 2)))
    assert s.tib_min == 10
    assert s.unscored_min == 1
    assert s.spt_min == 8
    assert s.waso_min == 0
    assert s.n_awakenings == 0


def test_every_run_of_wake_inside_spt_is_an_awakening():
    stages = night((W, 2), (N2, 5), (W, 0.5), (N2, 5), (W, 1.5), (N2, 5), (W, 3))
    assert night_stats_from_stages(stages).n_awakenings == 2


def test_night_without_sleep():
    s = night_stats_from_stages(night((UNS, 1), (W, 30), (MOV, 1)))
    assert s.tst_min == s.spt_min == s.waso_min == 0
    assert s.tib_min == 31
    assert s.se_pct == 0
    assert s.sleep_onset_epoch is None
    assert s.sol_min is None and s.rem_latency_min is None
    assert set(s.pct_tst.values()) == {None}
    assert s.minutes["W"] == 30
    assert s.n_awakenings == 0
    assert s.movement_min == 1


def test_night_without_rem():
    s = night_stats_from_stages(night((W, 3), (N1, 2), (N2, 10)))
    assert s.rem_latency_min is None
    assert s.minutes["REM"] == 0 and s.pct_tst["REM"] == 0
    assert s.sol_min == 3


def test_all_unscored():
    s = night_stats_from_stages(np.full(10, UNS, np.int8))
    assert s.tib_min == 0 and s.tst_min == 0
    assert s.lights_off_epoch is None and s.lights_on_epoch is None
    assert s.se_pct is None and s.sol_min is None
    assert s.recording_min == 5
    assert set(s.minutes.values()) == {0.0}


def test_epoch_length_is_used():
    s = night_stats_from_stages(np.array([W, N2, N2, REM], np.int8), epoch_s=60)
    assert s.tst_min == 3
    assert s.sol_min == 1
    assert s.rem_latency_min == 2
    assert s.epoch_s == 60.0


def test_hypnogram_variant_and_as_dict():
    hyp = Hypnogram(NIGHT, datetime(2024, 3, 1, 22, 0, tzinfo=UTC), subject="s1")
    s = night_stats(hyp)
    assert s == night_stats_from_stages(NIGHT)
    d = s.as_dict()
    assert list(d) == list(NightStats.__dataclass_fields__)
    assert d["tst_min"] == 88 and d["minutes"]["N3"] == 30
    assert type(d["tst_min"]) is float and type(d["n_awakenings"]) is int
    row = s.as_row()
    assert list(row)[-9:] == ["minutes_W", "minutes_N1", "minutes_N2", "minutes_N3",
                              "minutes_REM", "pct_tst_N1", "pct_tst_N2", "pct_tst_N3",
                              "pct_tst_REM"]
    assert all(isinstance(v, (int, float)) or v is None for v in row.values())


@pytest.mark.parametrize(
    ("stages", "epoch_s", "error", "match"),
    [
        ([], 30, ValueError, "non-empty"),
        ([[0, 1]], 30, ValueError, "1-D"),
        ([0, 5], 30, ValueError, r"\[-2, 4\]"),
        ([0.0, 1.0], 30, TypeError, "integer"),
        ([0, 1], 0, ValueError, "epoch_s"),
        ([0, 1], float("nan"), ValueError, "epoch_s"),
    ],
)
def test_bad_input(stages, epoch_s, error, match):
    with pytest.raises(error, match=match):
        night_stats_from_stages(stages, epoch_s)


def test_night_stats_rejects_arrays():
    with pytest.raises(TypeError, match="night_stats_from_stages"):
        night_stats(NIGHT)


def test_stage_set_4_reports_light_and_deep_not_n1_and_n2():
    s5 = night_stats_from_stages(NIGHT)
    s4 = night_stats_from_stages(NIGHT, stage_set=4)
    assert s4.stage_set == 4
    assert s4.minutes == {"W": 22, "light": 43, "deep": 30, "REM": 15}
    assert s4.pct_tst["light"] == pytest.approx(s5.pct_tst["N1"] + s5.pct_tst["N2"])
    # everything but the stage breakdown is the same in any stage set
    same = ("tib_min", "sol_min", "spt_min", "tst_min", "se_pct", "waso_min",
            "rem_latency_min", "n_awakenings", "movement_min", "unscored_min")
    assert all(getattr(s4, f) == getattr(s5, f) for f in same)
    with pytest.raises(ValueError, match="stage set must be one of"):
        night_stats_from_stages(NIGHT, stage_set=6)


def test_four_class_model_output_summarised_in_its_own_set():
    # a 4-class model's hypnogram is stored with light as N2: in its own set it says light
    classes = np.array([0, 0, 1, 1, 1, 2, 2, 0, 3, 3, 1, 0], np.int8)
    s = night_stats_from_stages(class_stages(classes, 4), stage_set=4)
    assert s.minutes == {"W": 2.0, "light": 2.0, "deep": 1.0, "REM": 1.0}
    assert s.sol_min == 1.0 and s.waso_min == 0.5 and s.rem_latency_min == 3.0
