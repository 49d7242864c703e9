"""FamilyModels for psg: channel sets of any size in one call, 5 classes, the night summary."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from models.card import load_card, save_card
from models.runtime import CardMismatchError
from stream.eeg_assembly import eeg_night_rows
from stream.engine import ClosedEpoch, Session, SubjectProcessor
from stream.staging import FamilyModels
from tests.stream._psg import EegNight, generated_night

CLOSED_AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def models(psg_weights: Path) -> FamilyModels:
    return FamilyModels("psg", psg_weights)


def closed_epochs(night: EegNight) -> tuple[Session, list[ClosedEpoch]]:
    session = Session.from_event(night.start_event())
    proc = SubjectProcessor(session, grace_s=30.0)
    chunks = night.chunks(30.0)
    closed = []
    for c in chunks:
        proc.apply(c)
        closed += proc.close(proc.due())
    closed += proc.close_until(night.end_event(chunks).t_utc)
    return session, closed


@pytest.fixture(scope="module")
def nights() -> list[EegNight]:
    stages = ["W"] * 3 + ["N2"] * 3 + ["N3"] * 6 + ["W"] * 2 + ["N2"] * 16
    return [generated_night(f"s{c}", stages, fs, c, seed=c)
            for c, fs in ((1, 100.0), (2, 256.0), (6, 256.0))]


def test_causal_epochs_of_1_2_and_6_channels_share_one_call(
        models: FamilyModels, nights: list[EegNight]) -> None:
    per_night = [closed_epochs(n) for n in nights]
    # every night's epoch k closes together: one call with channel sets padded to 6
    together = [models.stage_causal([(s, closed[k]) for s, closed in per_night], CLOSED_AT)
                for k in range(nights[0].n_epochs)]
    for i, (night, (session, closed)) in enumerate(zip(nights, per_night, strict=True)):
        alone = models.stage_causal([(session, e) for e in closed], CLOSED_AT)
        rows = eeg_night_rows(night.signals(), night.n_epochs)
        batch, _ = models.predict_night(rows.features, rows.present)
        for k, event in enumerate(alone):
            mixed = together[k][i]
            assert (event.subject_id, event.epoch_index) == (mixed.subject_id, k)
            assert event.stage_set == 5 and tuple(event.probabilities) == (
                "W", "N1", "N2", "N3", "REM")
            p = np.array(list(event.probabilities.values()))
            np.testing.assert_allclose(list(mixed.probabilities.values()), p, atol=1e-6)
            np.testing.assert_allclose(p, batch[k], atol=1e-6)
            assert event.inputs is not None and event.inputs.eeg_channels == len(night.labels)
    # the models are not constant: the parity above compares probabilities that move
    assert np.ptp(batch, axis=0).max() > 0.1


def test_a_masked_channel_is_a_missing_one(models: FamilyModels,
                                           nights: list[EegNight]) -> None:
    rows = eeg_night_rows(nights[1].signals(), nights[1].n_epochs)
    present = rows.present.copy()
    present[:, 1] = False
    masked = models.predict_night(rows.features, present)
    alone = models.predict_night(rows.features[:, :1], rows.present[:, :1])
    for a, b in zip(masked, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="need `present` of shape"):
        models.predict_night(rows.features)


def test_offline_revision_and_5_class_summary(models: FamilyModels,
                                              nights: list[EegNight]) -> None:
    night = nights[2]
    session = Session.from_event(night.start_event())
    rows = eeg_night_rows(night.signals(), night.n_epochs)
    events, summary = models.stage_night(session, rows.features, [True] * night.n_epochs,
                                         CLOSED_AT, present=rows.present)
    _, offline = models.predict_night(rows.features, rows.present)
    np.testing.assert_allclose([list(e.probabilities.values()) for e in events], offline,
                               atol=1e-6)
    assert summary is not None and summary.model_name == "psg-offline"
    assert set(summary.minutes) == {"W", "N1", "N2", "N3", "REM"}
    assert set(summary.percent_of_tst) == {"N1", "N2", "N3", "REM"}
    counts = {s: sum(e.stage == s for e in events) for s in summary.minutes}
    assert summary.minutes == {s: n / 2 for s, n in counts.items()}
    assert summary.tib_min == night.n_epochs / 2


def test_cards_that_do_not_fit_a_channel_set_are_refused(psg_weights: Path,
                                                         tmp_path: Path) -> None:
    for name in ("psg-causal", "psg-offline"):
        for ext in (".onnx", ".json"):
            shutil.copy(psg_weights / f"{name}{ext}", tmp_path / f"{name}{ext}")
    card = load_card(tmp_path / "psg-offline.json")
    spec = card.channel_set
    assert spec is not None
    save_card(card.model_copy(update={"channel_set": spec.model_copy(
        update={"max_channels": 4})}), tmp_path / "psg-offline.json")
    capped = FamilyModels("psg", tmp_path)
    capped.check_channels(["C3-M2"] * 4)
    with pytest.raises(ValueError, match=r"reads 1\.\.4 eeg channels; the session has 6"):
        capped.check_channels([f"c{i}" for i in range(6)])
    # a card without a channel set cannot stage per-channel rows
    save_card(card.model_copy(update={"channel_set": None, "inputs": (
        card.inputs[0].model_copy(update={"shape": ("batch", "n_epochs", card.n_features)}),
        card.inputs[1].model_copy(update={"shape": ("batch", "n_epochs")}))}),
        tmp_path / "psg-offline.json")
    with pytest.raises(CardMismatchError, match="'channel_set'"):
        FamilyModels("psg", tmp_path)
