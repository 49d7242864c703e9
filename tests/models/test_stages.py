from __future__ import annotations

import numpy as np
import pytest

from models.stages import (
    EXCLUDED,
    Stage,
    StageCodeError,
    class_stages,
    parse_stage,
    parse_stages,
    reduce_stages,
    stage_names,
)


@pytest.mark.parametrize(
    ("code", "scheme", "expected"),
    [
        (-1, "sleep-accel", Stage.UNSCORED),
        (0, "sleep-accel", Stage.W),
        ("4", "sleep-accel", Stage.N3),
        (5.0, "sleep-accel", Stage.REM),
        ("W", "slpdb", Stage.W),
        ("4", "slpdb", Stage.N3),
        ("R", "slpdb", Stage.REM),
        ("MT", "slpdb", Stage.MOVEMENT),
        ("M", "slpdb", Stage.MOVEMENT),
        ("Sleep stage W", "sleep-edf", Stage.W),
        ("Sleep stage 4", "sleep-edf", Stage.N3),
        ("Sleep stage R", "sleep-edf", Stage.REM),
        ("Sleep stage ?", "sleep-edf", Stage.UNSCORED),
        ("Movement time", "sleep-edf", Stage.MOVEMENT),
        ("Wake|0", "nsrr", Stage.W),
        ("Stage 1 sleep|1", "nsrr", Stage.N1),
        ("Stage 4 sleep|4", "nsrr", Stage.N3),
        ("REM sleep|5", "nsrr", Stage.REM),
        ("Unscored|9", "nsrr", Stage.UNSCORED),
        ("N2", "text", Stage.N2),
        ("rem", "text", Stage.REM),
        ("Sleep stage 3", "text", Stage.N3),
        ("n/a", "text", Stage.UNSCORED),
    ],
)
def test_parse_stage_every_dialect(code: object, scheme: str, expected: Stage) -> None:
    assert parse_stage(code, scheme) is expected  # type: ignore[arg-type]


def test_unknown_code_names_code_and_known_set() -> None:
    with pytest.raises(StageCodeError, match=r"unknown slpdb stage code 'X'.*'MT'"):
        parse_stage("X", "slpdb")
    with pytest.raises(ValueError, match="stage scheme must be one of"):
        parse_stage("W", "rk")  # type: ignore[arg-type]


def test_reductions() -> None:
    stages = np.array([0, 1, 2, 3, 4, -1, -2], dtype=np.int8)
    assert reduce_stages(stages, 5).tolist() == [0, 1, 2, 3, 4, EXCLUDED, EXCLUDED]
    assert reduce_stages(stages, 4).tolist() == [0, 1, 1, 2, 3, EXCLUDED, EXCLUDED]
    assert reduce_stages(stages, 3).tolist() == [0, 1, 1, 1, 2, EXCLUDED, EXCLUDED]
    assert reduce_stages(stages, 2).tolist() == [0, 1, 1, 1, 1, EXCLUDED, EXCLUDED]
    assert stage_names(4) == ("W", "light", "deep", "REM")
    with pytest.raises(ValueError, match="stage set must be one of"):
        reduce_stages(stages, 6)
    with pytest.raises(ValueError, match=r"in \[-2, 4\]"):
        reduce_stages(np.array([7]), 4)


def test_parse_stages_array() -> None:
    out = parse_stages(["W", "1", "R", "MT"], "slpdb")
    assert out.dtype == np.int8
    assert out.tolist() == [Stage.W, Stage.N1, Stage.REM, Stage.MOVEMENT]


@pytest.mark.parametrize("stage_set", [5, 4, 3, 2])
def test_class_stages_invert_the_reduction(stage_set: int) -> None:
    classes = np.array([*range(stage_set), -1], dtype=np.int8)
    stages = class_stages(classes, stage_set)
    assert reduce_stages(stages, stage_set).tolist() == classes.tolist()
    assert stages[-1] == Stage.UNSCORED


def test_class_stages_write_light_as_n2_and_check_the_range() -> None:
    assert class_stages([0, 1, 2, 3], 4).tolist() == [Stage.W, Stage.N2, Stage.N3, Stage.REM]
    with pytest.raises(ValueError, match=r"4-class set must be in \[-1, 3\]; got 4"):
        class_stages([0, 4], 4)
