"""``replay-eval`` of PSG recordings: EDF folders through the real stream, parity and κ.

EDF files are written here (tests/ingestors/_psg_data.py): the real Sleep-EDF Pz-Oz clips
(tests/data excerpt) beside generated Fpz-Cz, with their real hypnograms, and generated EEG
whose stages are known (alpha wake, theta N1/N2, delta N3, low-amplitude REM) at 100 and
256 Hz on 2 and 6 channels. They are read by the PSG replay (``ingestors.psg_replay``), sent
through an embedded broker and worker with psg models, and :func:`~stream.replay_eval.evaluate`
checks every epoch against :func:`~stream.replay_eval.batch_predictions` and scores the
stages in 5, 4, 3 and 2 classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ingestors.errors import DataQualityWarning
from ingestors.replay import psg_nights
from stream.cli import app as cli_app
from stream.replay_eval import batch_predictions, psg_batch_rows, run_and_evaluate
from stream.stack import LocalStack, StackError
from stream.staging import FamilyModels
from tests.ingestors._psg_data import (
    digitise,
    night_stages,
    sleep_edf_hypnogram,
    stage_eeg,
    write_psg,
)
from tests.ingestors.test_psg_replay import SC4001_START, sleep_edf_folder

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, psg_weights: Path) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("psg-eval"), env={
        "SLEEPSTREAM_WEIGHTS_DIR": str(psg_weights), "SLEEPSTREAM_WEB_ENABLED": "false",
        "SLEEPSTREAM_END_WAIT_S": "2"})
    try:
        local.start()
    except StackError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no embedded stack: {err}")
    yield local
    local.stop()


@pytest.fixture(scope="module")
def generated_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Sleep-EDF style nights of generated EEG: 2 channels at 256 Hz, 6 at 100 Hz."""
    folder = tmp_path_factory.mktemp("generated")
    stages = night_stages(70, 40, 64)
    labels = ("EEG Fpz-Cz", "EEG Pz-Oz", "C3-M2", "C4-M1", "O1-M2", "EEG F4-M1")
    for night, fs, n in (("SC4051E0", 256.0, 2), ("SC4052E0", 100.0, 6)):
        channels = [digitise(stage_eeg(stages, fs, seed=k + int(fs)), labels[k], fs)
                    for k in range(n)]
        start = datetime(2024, 3, 9, 22, 0, 0)  # noqa: DTZ001 - EDF clock time
        write_psg(folder / f"{night}-PSG.edf", channels, start)
        sleep_edf_hypnogram(folder / f"{night[:7]}C-Hypnogram.edf", stages, start,
                            subject=night[:7])
    return folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Path:
    data = np.load(test_data / "sleep-edf" / "pz-oz-first-900s.npz")
    clips = {str(n): data["val"][i] for i, n in enumerate(data["night"])
             if str(n) in ("SC4001E0", "SC4002E0")}
    starts = {"SC4001E0": SC4001_START, "SC4002E0": datetime(1989, 4, 25, 14, 50)}  # noqa: DTZ001
    return sleep_edf_folder(tmp_path_factory.mktemp("clips"), clips, test_data / "sleep-edf",
                            starts)


def test_psg_batch_rows_are_the_front_end_on_the_samples_sent(
        generated_folder: Path, psg_weights: Path) -> None:
    (night,) = psg_nights(generated_folder, ["SC4051E0"])
    rows = psg_batch_rows(night)
    assert rows.features.shape[:2] == rows.present.shape == (night.n_epochs, 2)
    assert rows.present.all()  # the cropped night lies inside the recording
    probs = batch_predictions(night, FamilyModels("psg", psg_weights))
    assert probs["causal"].shape == probs["offline"].shape == (night.n_epochs, 5)


def test_replay_eval_of_psg_recordings_equals_the_batch_and_scores_5_classes(
        stack: LocalStack, generated_folder: Path, clip_folder: Path, psg_weights: Path,
        tmp_path: Path) -> None:
    # the clips cover 15 min of the recordings: the scored part they cover, uncropped
    with pytest.warns(DataQualityWarning, match="the EEG covers epochs 0..29"):
        clips = psg_nights(clip_folder, crop_min=None)
    nights = clips + psg_nights(generated_folder)
    assert [len(n.channels) for n in nights] == [2, 2, 2, 6]
    settings = stack.settings().model_copy(update={"weights_dir": psg_weights})
    result = run_and_evaluate("edf", nights, settings, timeout_s=300, progress=False)
    assert result.complete and result.parity_ok, result.markdown()
    assert all(d <= 1e-5 for p in result.parity for d in p.max_abs_diff.values())
    assert set(result.reports) == {"causal", "offline"}
    for by_set in result.reports.values():
        assert sorted(by_set) == [2, 3, 4, 5]
        five = by_set[5].pooled
        assert five.class_names == ("W", "N1", "N2", "N3", "REM")
        assert five.confusion.sum() == sum(n.n_epochs for n in nights)
    paths = result.write(tmp_path / "out")
    assert {p.name for p in paths} >= {"results.json", "results.md",
                                       "confusion-causal-5class.png"}
    assert "| causal | 5 |" in result.markdown()


def test_the_replay_eval_command_on_an_edf_folder(
        stack: LocalStack, generated_folder: Path, psg_weights: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEEPSTREAM_WEIGHTS_DIR", str(psg_weights))
    monkeypatch.setenv("SLEEPSTREAM_PARTITIONS", str(stack.partitions))
    out = tmp_path / "eval"
    # the same nights again under other ids would be duplicates: the running worker
    # already staged them, so a second run of the same folder must change nothing
    result = CliRunner().invoke(cli_app, [
        "replay-eval", "edf", str(generated_folder), "--broker", stack.broker.url,
        "--out", str(out), "--timeout", "300"])
    assert result.exit_code == 0, result.output
    assert "Parity with the batch predictions (every epoch, |dp| <= 1e-05): yes" in \
        result.output
    assert (out / "confusion-offline-5class.png").is_file()
