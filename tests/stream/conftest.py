"""Fixtures shared by the stream tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import InputSet
from models.features import feature_names, feature_version
from stream.stack import EmbeddedBroker, StackError

#: What the wearable models of :func:`input_set_weights` were "validated" on.
WEARABLE_SETS = (
    InputSet(inputs=("heart_rate", "activity"), cohorts=("sleep-accel",),
             cv_metrics={"kappa_3class": 0.51}),
    InputSet(inputs=("heart_rate",), cohorts=("sleep-accel", "slpdb"),
             cv_metrics={"kappa_3class": 0.44}),
    InputSet(inputs=("activity",), cohorts=("sleep-accel",), cv_metrics={"kappa_3class": 0.3}),
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """An embedded Kafka-compatible broker (noida-db) for the module's tests."""
    try:
        b = EmbeddedBroker(tmp_path_factory.mktemp("broker")).start()
    except StackError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no embedded broker: {err}")
    yield b
    b.stop()



def export_untrained_wearable(out: Path, input_sets: tuple[InputSet, ...] = ()) -> Path:
    """Untrained wearable causal and offline models exported to ``out`` with the live
    registry (for staging logic only), their cards listing ``input_sets``."""
    torch = pytest.importorskip("torch")
    from models.export import export_onnx
    from models.nets import CausalStager, OfflineStager

    names = feature_names("wearable")
    torch.manual_seed(0)
    for net in (CausalStager(len(names), "wearable"), OfflineStager(len(names), "wearable")):
        export_onnx(net.eval(), out, feature_names=names,
                    feature_version=feature_version("wearable"), commit="0000000",
                    input_sets=input_sets)
    return out


@pytest.fixture(scope="session")
def input_set_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained wearable models exported with :data:`WEARABLE_SETS` as their input sets."""
    return export_untrained_wearable(tmp_path_factory.mktemp("input-set-weights"), WEARABLE_SETS)
