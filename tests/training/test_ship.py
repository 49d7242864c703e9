"""The shipped models: load by name, cards match the live registry, sane output."""

from __future__ import annotations

import numpy as np
import pytest

from models.features.registry import feature_names, feature_version
from models.runtime import load_model, validate_card

SHIPPED = ["wearable-causal", "wearable-offline", "cardio-causal", "cardio-offline"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_matches_the_registry(name):
    model = load_model(name)
    card = model.card
    assert card.name == name and card.stage_set == 4
    validate_card(card, feature_names(card.family), feature_version(card.family), 30.0,
                  25 if card.kind == "causal" else None)
    for k in (4, 3, 2):
        assert -1.0 <= card.cv_metrics[f"kappa_{k}class"] <= 1.0
    if card.family == "wearable":  # the floors on Sleep-Accel LOSO
        floor3, floor4 = (0.45, 0.35) if card.kind == "causal" else (0.50, 0.40)
        assert card.cv_metrics["kappa_3class"] >= floor3
        assert card.cv_metrics["kappa_4class"] >= floor4
    assert card.git_commit and "ODC-By" in card.attribution
    assert "/work" not in card.model_dump_json()  # no machine paths in a shipped card


def test_wearable_causal_on_a_real_excerpt(test_data):
    from training.datasets import load_sleep_accel

    night = load_sleep_accel(test_data / "sleep-accel" / "cropped", progress=False).nights[0]
    model = load_model("wearable-causal")
    feats = np.nan_to_num(night.features)
    n, ctx = len(night), 25
    padded = np.concatenate([np.zeros((ctx - 1, feats.shape[1]), np.float32), feats])
    windows = np.stack([padded[i: i + ctx] for i in range(n)])
    valid = np.stack([np.r_[np.zeros(ctx - 1), np.ones(n)][i: i + ctx] for i in range(n)])
    probs = model.predict(windows, valid.astype(np.float32))
    assert probs.shape == (n, 4)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
