"""Final models: trained on all subjects, exported to ONNX with their model card.

The hyperparameters are those the CV run recorded in its ``cv.json`` (so the card's
metrics belong to the shipped configuration); ``config_dir`` forces the YAML files.
Procedure (documented in the cards' ``training_data``): exactly as one CV fold, but with
no test subject: ``n_val_subjects`` subjects (seeded draw) are held out for early stopping
and the choice of the best state, and all other subjects train. Feature statistics come
from the training subjects. The card's ``cv_metrics`` are read from the CV run folder's
``results.json`` (pooled κ for each stage set, macro-F1, median subject κ, and the pooled κ
of every test view, e.g. ``kappa_5class_fpz-cz`` for Fpz-Cz alone).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.card import ChannelSet, DatasetRef, InputSet
from training.config import TrainConfig, config_path, load_config
from training.cv import TrainerOptions, fit_model, make_folds
from training.datasets.base import NightSet
from training.report import summary_metrics

__all__ = [
    "CHANNEL_SETS", "DATASETS", "cv_metrics", "input_sets", "ship_config", "ship_models",
]

_PHYSIONET = ("Goldberger A. et al. (2000) PhysioBank, PhysioToolkit, and PhysioNet. "
              "Circulation 101(23):e215-e220.")

_SLEEP_ACCEL = DatasetRef(
    name="Sleep-Accel (Motion and heart rate from a wrist-worn wearable and labeled sleep "
         "from polysomnography)",
    licence="ODC-By-1.0", url="https://doi.org/10.13026/hmhs-py35", n_subjects=31,
    citation="Walch O. et al. (2019) Sleep stage prediction with raw acceleration and "
             "photoplethysmography heart rate data derived from a consumer wearable device. "
             "SLEEP 42(12). PhysioNet, doi:10.13026/hmhs-py35.")
_SLPDB = DatasetRef(
    name="MIT-BIH Polysomnographic Database (SLPDB)", licence="ODC-By-1.0",
    url="https://physionet.org/content/slpdb/", n_subjects=16,
    citation="Ichimaru Y., Moody G.B. (1999) Development of the polysomnographic database on "
             "CD-ROM. Psychiatry Clin Neurosci 53:175-177.")
_SLEEP_ACCEL_TEXT = ("Sleep-Accel (Walch O., Huang Y., Forger D., Goldstein C., PhysioNet, "
                     "doi:10.13026/hmhs-py35), ODC-By 1.0")
_SLPDB_TEXT = ("the MIT-BIH Polysomnographic Database (Ichimaru Y., Moody G.B. 1999, "
               "PhysioNet), ODC-By 1.0")

#: Dataset references and attribution text per training dataset.
DATASETS: dict[str, tuple[tuple[DatasetRef, ...], str]] = {
    "sleep-accel": (
        (_SLEEP_ACCEL,),
        f"Trained on {_SLEEP_ACCEL_TEXT}; the authors' cropped heart rate and activity "
        "counts. " + _PHYSIONET),
    "slpdb": (
        (_SLPDB,),
        f"Trained on {_SLPDB_TEXT}; RR intervals from the expert beat annotations. "
        + _PHYSIONET),
    "sleep-edf": ((
        DatasetRef(
            name="Sleep-EDF Database Expanded, sleep-cassette study: 20 nights of 10 subjects "
                 "(SC4001-SC4092), per-epoch EEG spectra of Fpz-Cz and Pz-Oz",
            licence="ODC-By-1.0", url="https://doi.org/10.13026/C2X676", n_subjects=10,
            citation="Kemp B., Zwinderman A.H., Tuk B., Kamphuisen H.A.C., Oberye J.J.L. "
                     "(2000) Analysis of a sleep-dependent neuronal feedback loop: the "
                     "slow-wave microcontinuity of the EEG. IEEE-BME 47(9):1185-1194."),),
        "Trained on the Sleep-EDF Database Expanded (Kemp B. et al. 2000, IEEE-BME "
        "47(9):1185-1194; PhysioNet, doi:10.13026/C2X676), ODC-By 1.0: the expert hypnograms "
        "and the Welch spectra of EEG Fpz-Cz and Pz-Oz per 30-s epoch (as computed by GitHub "
        "matteo-omizzolo/sleep-EDF, MIT), nights cropped to the sleep period +- 30 min. "
        + _PHYSIONET),
    "sleep-accel+slpdb": (
        (_SLEEP_ACCEL, _SLPDB),
        f"Trained on {_SLEEP_ACCEL_TEXT}: the authors' cropped heart rate and activity "
        f"counts; and on {_SLPDB_TEXT}: the heart rate a watch would report every 5 s (the "
        "mean normal-to-normal interval of the last 15 s), derived from the expert beat "
        "annotations (no activity). " + _PHYSIONET),
}

#: The channel set of the models trained on each multi-channel corpus.
CHANNEL_SETS: dict[str, ChannelSet] = {
    "sleep-edf": ChannelSet(
        modality="eeg", trained_on=("EEG Fpz-Cz", "EEG Pz-Oz"),
        note="Any EEG derivation and any number of channels: every channel is encoded with "
             "the same weights, with channel dropout in training, and pooled by attention "
             "over the channels present. EOG and EMG channels are not inputs (no model has "
             "been trained on them)."),
}


def cv_metrics(cv_dir: str | Path, variant: str) -> dict[str, float]:
    """Card metrics of one variant from a CV run's ``results.json``.

    Raises
    ------
    FileNotFoundError
        If the run has no ``results.json`` (run ``sleepstream train report`` on it).
    """
    path = Path(cv_dir) / "results.json"
    if not path.is_file():
        msg = f"{path} not found; run `sleepstream train cv` (or `train report`) first"
        raise FileNotFoundError(msg)
    results = json.loads(path.read_text())
    if variant not in results:
        warnings.warn(f"{path} has no {variant!r} results (has {sorted(results)}); the card "
                      "gets no CV metrics. Run that variant's CV, then ship again.",
                      UserWarning, stacklevel=2)
        return {}
    out = summary_metrics(results[variant])
    top = max(results[variant], key=int)
    for name, per_set in results.items():
        if name.startswith(f"{variant}-") and top in per_set:
            out[f"kappa_{top}class_{name.removeprefix(variant + '-')}"] = float(
                per_set[top]["pooled"]["kappa"])
    return out


def input_sets(nights: NightSet, cv_dir: str | Path, variant: str) -> tuple[InputSet, ...]:
    """The sets of inputs a variant was cross-validated on, with their pooled κ per cohort.

    Every set of inputs the corpus's nights have (their full inputs and their
    :attr:`Night.subsets`) whose CV results exist in ``results.json``: the test views
    ``<variant>-<cohort>-<inputs>``, or, for a corpus of one cohort, its main results for
    the nights' full inputs. Channel-set corpora (psg) have none.
    """
    path = Path(cv_dir) / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    single = len({n.cohort for n in nights}) == 1
    found: dict[tuple[str, ...], dict[str, dict[str, float]]] = {}
    for n in nights:
        for inputs in (n.inputs, *n.subsets) if n.inputs else ():
            view = f"{variant}-{n.cohort}-{'+'.join(inputs)}"
            per_set = results.get(view) or (
                results.get(variant) if single and inputs == n.inputs else None)
            if per_set:
                found.setdefault(inputs, {})[n.cohort] = {
                    f"kappa_{k}class_{n.cohort}": float(v["pooled"]["kappa"])
                    for k, v in per_set.items()}
    return tuple(
        InputSet(inputs=inputs, cohorts=tuple(sorted(by_cohort)),
                 cv_metrics={k: v for m in by_cohort.values() for k, v in m.items()})
        for inputs, by_cohort in sorted(found.items(), key=lambda kv: -len(kv[0])))


def ship_config(dataset: str, variant: str, cv_dir: str | Path,
                config_dir: str | Path | None = None) -> TrainConfig:
    """The config the CV run evaluated (so the card's metrics are its), else the YAML."""
    if config_dir is None:
        path = Path(cv_dir) / "cv.json"
        runs = json.loads(path.read_text()).get("variants", {}) if path.is_file() else {}
        if variant in runs:
            return TrainConfig.model_validate(runs[variant]["config"])
    return load_config(config_path(dataset, variant, config_dir))


def ship_models(
    dataset: str, data: str | Path, cv_dir: str | Path, out: str | Path,
    variants: Sequence[str] = ("causal", "offline"), *,
    opts: TrainerOptions | None = None, config_dir: str | Path | None = None,
) -> list[Path]:
    """Train each variant on all subjects and export ``<family>-<variant>.onnx`` + card."""
    from models.export import export_onnx
    from models.features.registry import feature_version
    from training.run import load_dataset, quiet_lightning

    quiet_lightning()
    opts = opts or TrainerOptions()
    nights = load_dataset(dataset, data, progress=False)
    refs, attribution = DATASETS[dataset]
    written: list[Path] = []
    for variant in variants:
        cfg = ship_config(dataset, variant, cv_dir, config_dir)
        metrics = cv_metrics(cv_dir, variant)
        # one "fold" whose test group is empty: the first LOSO fold's split plus its subject
        fold = make_folds(nights.subjects, "loso", n_val_subjects=cfg.n_val_subjects,
                          seed=cfg.seed, cohorts=nights.cohorts)[0]
        train = nights.select(fold.train + fold.test)
        fit = fit_model(f"{nights.family}-{variant}", train, nights.select(fold.val), cfg, opts,
                        nights.stage_set)
        if cfg.ensemble == 1:
            fitted = (f"(best at step {fit.best_step} of {fit.steps}, {cfg.monitor} "
                      f"{fit.best_value:.3f}). ")
        else:
            fitted = (f"(the average of {cfg.ensemble} nets: seeds {cfg.seed}-"
                      f"{cfg.seed + cfg.ensemble - 1}, best at steps "
                      f"{list(fit.member_best_steps)}, mean {cfg.monitor} {fit.best_value:.3f}). ")
        described = (
            f"{attribution} {len(nights.subjects)} subjects ({len(nights)} nights): "
            f"{len(fold.train) + 1} trained, {len(fold.val)} held out for early stopping "
            + fitted
            + ("CV metrics: leave-one-subject-out, pooled over subjects." if metrics else
               "No CV metrics: the cross-validation of this configuration did not finish.")
        )
        exported = export_onnx(
            fit.net, out, feature_names=nights.feature_names,
            feature_version=feature_version(nights.family), training_data=described,
            attribution=attribution, datasets=refs,
            cv_metrics={k: v for k, v in metrics.items() if np.isfinite(v)},
            channel_set=CHANNEL_SETS.get(dataset),
            input_sets=input_sets(nights, cv_dir, variant),
        )
        written += [exported.onnx_path, exported.card_path]
    return written
