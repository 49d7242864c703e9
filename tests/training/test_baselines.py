from __future__ import annotations

import numpy as np
import pytest

from models.stages import reduce_stages
from tests.training._synth import synth_set
from training.baselines import _save, logreg_baseline, walch_baselines
from training.report import build_report


def test_logreg_baseline_learns_the_synthetic_answer(tmp_path):
    probs, stages, meta = logreg_baseline(synth_set(5))["logreg"]
    assert len(probs) == 5 and len(meta) == 5
    for p in probs.values():
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    _save(tmp_path, "logreg", probs, stages, meta)
    report = build_report(tmp_path, plots=False)
    assert report.scores["baseline-logreg"][4].pooled.kappa > 0.6


@pytest.mark.shared_data
def test_walch_classifiers_run_on_the_authors_features(shared_data):
    folder = shared_data / "sleep-accel-walch-features" / "features"
    subjects = ("46343", "759667", "781756", "844359", "1066528", "1360686")
    out = walch_baselines(folder, subjects, folds="3", names=("walch-logreg", "walch-rf"))
    assert set(out) == {"walch-logreg", "walch-rf"}
    probs, stages, _ = out["walch-rf"]
    y = reduce_stages(stages["46343"], 3)
    assert probs["46343"].shape == (len(y), 3)
