"""The input sets of a model card: what subsets of its inputs a model was validated on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.card import (
    INPUT_NAMES,
    InputSet,
    ModelCardError,
    card_from_mapping,
    load_card,
    save_card,
    session_inputs,
)
from models.runtime import default_weights_dir

SETS = (
    InputSet(inputs=("heart_rate", "activity"), cohorts=("sleep-accel",),
             cv_metrics={"kappa_3class": 0.51, "kappa_4class": 0.48}),
    InputSet(inputs=("heart_rate",), cohorts=("sleep-accel", "slpdb"),
             cv_metrics={"kappa_3class": 0.44}),
    InputSet(inputs=("activity",), cohorts=("sleep-accel",)),
)


def _shipped(name: str = "wearable-causal") -> dict[str, Any]:
    """A shipped card as parsed JSON."""
    data: dict[str, Any] = json.loads((default_weights_dir() / f"{name}.json").read_text())
    return data


def test_a_card_without_input_sets_still_loads() -> None:
    data = _shipped()
    data.pop("input_sets", None)
    card = card_from_mapping(data)
    assert card.input_sets == ()
    assert "input_sets" not in _shipped("psg-offline")  # psg cards have a channel set instead
    assert load_card(default_weights_dir() / "psg-offline.json").input_sets == ()


def test_card_round_trip_with_input_sets(tmp_path: Path) -> None:
    card = card_from_mapping({**_shipped(), "input_sets": SETS})
    path = save_card(card, tmp_path / "wearable-causal.json")
    again = load_card(path)
    assert again == card and again.input_sets == SETS
    stored = json.loads(path.read_text())["input_sets"]
    assert stored[0] == {"inputs": ["activity", "heart_rate"], "cohorts": ["sleep-accel"],
                         "cv_metrics": {"kappa_3class": 0.51, "kappa_4class": 0.48}}
    assert stored[2] == {"inputs": ["activity"], "cohorts": ["sleep-accel"], "cv_metrics": {}}


def test_inputs_are_stored_sorted() -> None:
    a = InputSet(inputs=("heart_rate", "activity"))
    assert a.inputs == ("activity", "heart_rate") and a.label == "activity+heart_rate"
    assert a == InputSet(inputs=("activity", "heart_rate"))
    assert a.inputs == session_inputs(["heart_rate", "activity_counts"])


@pytest.mark.parametrize(("inputs", "message"), [
    (("heart_rate", "hr"), r"unknown input names \['hr'\]; an input set lists names of "
                           r"\['heart_rate', 'activity', 'rr', 'eeg'\]"),
    (("rr", "rr"), r"input names must be unique within an input set; repeated: \['rr'\]"),
    ((), "at least 1 item"),
])
def test_bad_input_names_are_refused_naming_file_and_field(
        inputs: tuple[str, ...], message: str, tmp_path: Path) -> None:
    data = {**_shipped(), "input_sets": [{"inputs": list(inputs)}]}
    path = tmp_path / "wearable-causal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match=message) as err:
        load_card(path)
    assert str(path) in str(err.value) and "field 'input_sets.0.inputs'" in str(err.value)


def test_a_card_refuses_a_set_listed_twice_and_unknown_fields() -> None:
    twice = [{"inputs": ["heart_rate", "activity"]}, {"inputs": ["activity", "heart_rate"]}]
    with pytest.raises(ModelCardError, match=r"listed once; repeated: \['activity\+heart_rate"):
        card_from_mapping({**_shipped(), "input_sets": twice})
    extra = [{"inputs": ["rr"], "kappa": 0.4}]
    with pytest.raises(ModelCardError, match="field 'input_sets.0.kappa'"):
        card_from_mapping({**_shipped(), "input_sets": extra})


def test_session_inputs_map_modalities_to_inputs() -> None:
    assert session_inputs(["acceleration", "heart_rate", "activity_counts"]) == (
        "activity", "heart_rate")
    assert session_inputs(("rr",)) == ("rr",)
    assert session_inputs(["eeg"]) == ("eeg",)
    assert session_inputs([]) == ()
    assert set(session_inputs(["heart_rate", "activity_counts", "rr", "eeg"])) == set(
        INPUT_NAMES)
    with pytest.raises(ValueError, match=r"unknown session modalities \['ppg'\]; a session "
                                         r"sends some of \['heart_rate', 'activity_counts'"):
        session_inputs(["heart_rate", "ppg"])


def test_export_writes_the_input_sets_into_the_card(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from models.export import export_onnx
    from models.nets import CausalStager

    names = tuple(f"feature_{i}" for i in range(5))
    torch.manual_seed(0)
    result = export_onnx(CausalStager(len(names), "wearable").eval(), tmp_path,
                         feature_names=names, feature_version="1", commit="0000000",
                         input_sets=SETS)
    assert result.card.input_sets == SETS
    assert load_card(result.card_path).input_sets == SETS
    with pytest.raises(ModelCardError, match=r"field 'input_sets.0.inputs'.*unknown input "
                                             r"names \['ppg'\]"):
        export_onnx(CausalStager(len(names), "wearable"), tmp_path / "bad",
                    feature_names=names, feature_version="1", commit="0000000",
                    input_sets=[{"inputs": ("ppg",)}])  # type: ignore[list-item]
    assert not (tmp_path / "bad").exists()  # refused before anything was written
