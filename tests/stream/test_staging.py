from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.runtime import CardMismatchError
from stream.engine import Session, SubjectProcessor
from stream.schemas import SampleChunk
from stream.staging import FamilyModels, night_summary
from tests.stream.conftest import export_untrained_wearable

START = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained wearable models exported with the live registry (staging logic only)."""
    return export_untrained_wearable(tmp_path_factory.mktemp("weights"))


def _processor(n_epochs: int) -> tuple[Session, SubjectProcessor]:
    session = Session("s1", "n1", START, "wearable", "UTC", False, ("heart_rate",))
    proc = SubjectProcessor(session, grace_s=0.0)
    t = np.arange(0, n_epochs * 30, 5.0)
    proc.apply(SampleChunk(
        subject_id="s1", session_id="n1", source_id="hr", seq=0, modality="heart_rate",
        unit="bpm", t0_utc=START, offsets_s=tuple(t), values=tuple(60 + np.sin(t / 300) * 5),
    ))
    return session, proc


def test_causal_batch_equals_one_by_one_and_offline_covers_night(weights: Path) -> None:
    models = FamilyModels("wearable", weights)
    session, proc = _processor(40)
    closed = proc.close(40)
    now = START + timedelta(hours=1)
    batched = models.stage_causal([(session, e) for e in closed], now, now)
    single = [models.stage_causal([(session, e)], now, now)[0] for e in closed]
    assert [e.epoch_index for e in batched] == list(range(40))
    for a, b in zip(batched, single, strict=True):
        assert a.stage == b.stage
        np.testing.assert_allclose(list(a.probabilities.values()),
                                   list(b.probabilities.values()), rtol=1e-5, atol=1e-6)
    rows = np.stack([e.row for e in closed])
    events, summary = models.stage_night(session, rows, [e.has_data for e in closed], now, now)
    assert len(events) == 40 and {e.kind for e in events} == {"offline"}
    assert summary is not None and summary.n_epochs == 40
    assert abs(sum(summary.minutes.values()) - 20.0) < 1e-9


def test_card_that_does_not_match_is_refused(weights: Path, tmp_path: Path) -> None:
    import json
    import shutil

    for f in weights.iterdir():
        shutil.copy(f, tmp_path)
    card = tmp_path / "wearable-causal.json"
    doc = json.loads(card.read_text())
    doc["feature_version"] = "0"
    card.write_text(json.dumps(doc))
    with pytest.raises(CardMismatchError, match="feature_version"):
        FamilyModels("wearable", tmp_path)


def test_night_summary_hand_computed() -> None:
    session = Session("s1", "n1", START)
    stages = ["W"] * 4 + ["light"] * 6 + ["W"] * 2 + ["REM"] * 4 + ["deep"] * 2 + ["W"] * 2
    s = night_summary(session, stages, [True] * len(stages), stage_set=4, model_name="m",
                      kind="offline", emitted_at=START)
    assert s.tib_min == 10.0
    assert s.sol_min == 2.0
    assert s.tst_min == 6.0
    assert s.waso_min == 1.0
    assert s.rem_latency_min == 4.0
    assert s.se_pct == pytest.approx(60.0)
    assert s.minutes == {"W": 4.0, "light": 3.0, "deep": 1.0, "REM": 2.0}
    assert s.percent_of_tst == pytest.approx({"light": 50.0, "deep": 100 / 6, "REM": 200 / 6})


def test_night_summary_of_a_night_without_sleep_leaves_undefined_values_none() -> None:
    s = night_summary(Session("s1", "n1", START), ["W"] * 6, [True] * 6, stage_set=4,
                      model_name="m", kind="causal", emitted_at=START)
    assert (s.tst_min, s.se_pct, s.waso_min) == (0.0, 0.0, 0.0)
    assert s.sol_min is None and s.rem_latency_min is None
    assert s.percent_of_tst == {"light": None, "deep": None, "REM": None}
    # None survives the codec round trip (JSON null), never NaN
    assert type(s).model_validate_json(s.model_dump_json()) == s


def test_night_summary_checks_the_stage_set() -> None:
    session = Session("s1", "n1", START)
    with pytest.raises(ValueError, match=r"classes of the 4-class set .* got \['N2'\]"):
        night_summary(session, ["W", "N2"], [True] * 2, stage_set=4, model_name="m",
                      kind="offline", emitted_at=START)
    with pytest.raises(ValueError, match="tells REM"):
        night_summary(session, ["W", "sleep"], [True] * 2, stage_set=2, model_name="m",
                      kind="offline", emitted_at=START)
