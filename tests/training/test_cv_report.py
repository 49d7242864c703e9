from __future__ import annotations

import numpy as np

from models.evaluation.metrics import score_nights
from models.stages import Stage
from tests.training._synth import synth_set
from training.report import build_report


def test_report_equals_evaluation_scores(tmp_path):
    ns = synth_set(4)
    rng = np.random.default_rng(0)
    arrays, meta = {}, []
    for n in ns:
        p = rng.dirichlet(np.ones(4), size=len(n)).astype(np.float32)
        arrays[f"probs/{n.night}"], arrays[f"stages/{n.night}"] = p, n.stages
        meta.append((n.night, n.subject, "0"))
    np.savez(tmp_path / "predictions-causal.npz", meta=np.array(meta), **arrays)
    report = build_report(tmp_path, plots=True)
    to_stage = np.array([Stage.W, Stage.N2, Stage.N3, Stage.REM], dtype=np.int8)
    pairs = {n.night: (n.stages, to_stage[arrays[f"probs/{n.night}"].argmax(1)]) for n in ns}
    ref = score_nights(pairs, 4)
    got = report.scores["causal"][4]
    assert got.pooled.kappa == ref.pooled.kappa
    assert got.pooled.macro_f1 == ref.pooled.macro_f1
    np.testing.assert_array_equal(got.pooled.confusion, ref.pooled.confusion)
    assert got.spread.median == ref.summary["kappa"].median  # one night per subject
    assert (tmp_path / "results.md").is_file() and (tmp_path / "results.json").is_file()
    assert (tmp_path / "figures" / "hypnogram-causal-s0.png").is_file()
