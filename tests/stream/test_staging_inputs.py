"""FamilyModels refuses a session whose inputs its models were not validated on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from models.card import session_inputs
from stream.schemas.session import MODALITIES
from stream.staging import FamilyModels
from tests.stream.conftest import WEARABLE_SETS


def _with_sets(weights: Path, out: Path, **sets: list[dict[str, Any]] | None) -> Path:
    """A copy of ``weights`` whose cards list ``sets[kind]`` (None: no input sets)."""
    out.mkdir(exist_ok=True)
    for f in weights.iterdir():
        shutil.copy(f, out)
    for kind, listed in sets.items():
        card = out / f"wearable-{kind}.json"
        doc = json.loads(card.read_text())
        if listed is None:
            doc.pop("input_sets")
        else:
            doc["input_sets"] = listed
        card.write_text(json.dumps(doc))
    return out


def test_session_inputs_know_every_session_modality() -> None:
    """models/card.py keeps its own modality map (no stream import); it must stay complete."""
    assert session_inputs(MODALITIES) == ("activity", "eeg", "heart_rate", "rr")


@pytest.mark.parametrize(("modalities", "matched"), [
    (("heart_rate", "activity_counts"), WEARABLE_SETS[0]),
    (("acceleration", "heart_rate"), WEARABLE_SETS[0]),
    (("heart_rate",), WEARABLE_SETS[1]),
    (("activity_counts", "acceleration"), WEARABLE_SETS[2]),
])
def test_a_validated_set_is_accepted_and_named(
        input_set_weights: Path, modalities: tuple[str, ...], matched: Any) -> None:
    models = FamilyModels("wearable", input_set_weights)
    models.check_inputs(modalities)
    assert models.matched_input_sets(modalities) == {"causal": matched, "offline": matched}
    assert models.matched_input_sets(modalities)["causal"].cv_metrics == matched.cv_metrics


@pytest.mark.parametrize(("modalities", "sent"), [
    (("rr",), "rr"),
    (("heart_rate", "rr"), "heart_rate+rr"),
    (("heart_rate", "activity_counts", "rr"), "activity+heart_rate+rr"),
])
def test_a_set_no_model_was_validated_on_is_refused(
        input_set_weights: Path, modalities: tuple[str, ...], sent: str) -> None:
    models = FamilyModels("wearable", input_set_weights)
    with pytest.raises(ValueError) as err:
        models.check_inputs(modalities)
    assert str(err.value) == (
        "the wearable models here were validated on activity+heart_rate, heart_rate, "
        f"activity; this session sends {sent}. To stage it, send one of "
        "activity+heart_rate, heart_rate, activity or install wearable models trained and "
        f"validated on {sent} (SLEEPSTREAM_WEIGHTS_DIR)")


def test_cards_without_input_sets_check_nothing(input_set_weights: Path,
                                               tmp_path: Path) -> None:
    old = _with_sets(input_set_weights, tmp_path, causal=None, offline=None)
    models = FamilyModels("wearable", old)
    models.check_inputs(["rr"])
    assert models.matched_input_sets(["rr"]) == {}


def test_each_card_that_lists_sets_must_accept_the_session(input_set_weights: Path,
                                                          tmp_path: Path) -> None:
    # only the offline card lists sets: it alone decides
    only_offline = _with_sets(input_set_weights, tmp_path / "a",
                              causal=None, offline=[{"inputs": ["rr"]}])
    models = FamilyModels("wearable", only_offline)
    assert list(models.matched_input_sets(["rr"])) == ["offline"]
    with pytest.raises(ValueError, match="validated on rr; this session sends heart_rate"):
        models.check_inputs(["heart_rate"])
    # the two cards list different sets: a session must be in both
    differ = _with_sets(input_set_weights, tmp_path / "b",
                        offline=[{"inputs": ["heart_rate"]}, {"inputs": ["rr"]}])
    models = FamilyModels("wearable", differ)
    models.check_inputs(["heart_rate"])
    with pytest.raises(ValueError) as err:
        models.check_inputs(["activity_counts"])
    assert str(err.value) == (
        "the wearable models here were validated on wearable-causal on activity+heart_rate, "
        "heart_rate, activity; wearable-offline on heart_rate, rr; this session sends "
        "activity. To stage it, send one of heart_rate or install wearable models trained "
        "and validated on activity (SLEEPSTREAM_WEIGHTS_DIR)")
    disjoint = _with_sets(input_set_weights, tmp_path / "c", offline=[{"inputs": ["rr"]}])
    with pytest.raises(ValueError, match=r"activity \(SLEEPSTREAM_WEIGHTS_DIR\); the two "
                                         "models share no validated set"):
        FamilyModels("wearable", disjoint).check_inputs(["activity_counts"])
