"""Subject-wise cross-validation of the stagers.

Folds group nights by :attr:`Night.subject` (``slp01a``/``slp01b`` are never split). In
each fold the validation subjects, which steer early stopping and the choice of the best
state, are drawn (seeded) from that fold's *training* subjects only; the test subject
steers nothing. Feature standardisation statistics come from the training subjects only.
Every fold stores the test nights' per-epoch probabilities over the corpus's classes (W,
light, deep, REM; W, N1, N2, N3, REM for Sleep-EDF).

A corpus may have *test views*: the same nights prepared differently for testing only
(Sleep-EDF: whole recordings instead of the sleep period, or one EEG channel instead of
two). Each fold's nets, trained once, also predict the test subject's nights of every view,
so that a view's score differs from the main one by the test input alone.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from training.config import TrainConfig
from training.datasets.base import Night, NightSet

__all__ = [
    "Fold",
    "FoldResult",
    "TrainerOptions",
    "fit_net",
    "make_folds",
    "run_cv",
    "save_predictions",
    "validation_nights",
]


class Fold(NamedTuple):
    """One split: subjects to train on, to validate on (from training), and to test."""

    number: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def _n_val(n_train: int, n_val: int) -> int:
    return max(1, min(n_val, n_train - 1))


def make_folds(
    subjects: Sequence[str], scheme: str = "loso", *, n_val_subjects: int = 3, seed: int = 0,
    cohorts: Mapping[str, str] | None = None,
) -> list[Fold]:
    """Subject-wise folds.

    Parameters
    ----------
    subjects : sequence of str
        Distinct subjects (e.g. :attr:`NightSet.subjects`).
    scheme : str
        ``"loso"`` (leave one subject out), ``"k<N>"``/``"<N>"`` for N-fold (e.g. ``"5"``)
        or ``"loco"`` (leave one cohort out: train on the other cohorts, test on all of
        its subjects; needs ``cohorts``).
    n_val_subjects : int
        Validation subjects per fold, drawn from the fold's training subjects.
    seed : int
        Seed of the k-fold assignment and of the validation draws.
    cohorts : mapping of str to str, optional
        Each subject's cohort. With several cohorts among a fold's training subjects, the
        validation subjects are drawn from each in proportion to its size (at least one
        from every cohort that can spare one).
    """
    subs = list(dict.fromkeys(subjects))
    if len(subs) < 3:
        msg = f"cross-validation needs at least 3 subjects; got {len(subs)}"
        raise ValueError(msg)
    groups = _test_groups(subs, scheme, seed, cohorts)
    folds = []
    for i, test in enumerate(groups):
        train = [s for s in subs if s not in test]
        rng = np.random.default_rng([seed, i])
        val = _draw_validation(train, n_val_subjects, rng, cohorts)
        folds.append(Fold(i, tuple(s for s in train if s not in val), val, tuple(test)))
    return folds


def _test_groups(subs: list[str], scheme: str, seed: int,
                 cohorts: Mapping[str, str] | None) -> list[list[str]]:
    if scheme == "loso":
        return [[s] for s in subs]
    if scheme == "loco":
        names = list(dict.fromkeys((cohorts or {}).get(s, "") for s in subs))
        if cohorts is None or len(names) < 2:
            msg = "folds 'loco' (leave one cohort out) need a corpus of at least 2 cohorts"
            raise ValueError(msg)
        return [[s for s in subs if cohorts[s] == c] for c in names]
    try:
        k = int(scheme.lstrip("k"))
    except ValueError:
        k = 0
    if not 2 <= k <= len(subs):
        msg = (f"folds must be 'loso', 'loco' or a fold count in [2, {len(subs)}]; "
               f"got {scheme!r}")
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(len(subs))
    return [[subs[i] for i in order[j::k]] for j in range(k)]


def _draw_validation(train: list[str], n_val: int, rng: np.random.Generator,
                     cohorts: Mapping[str, str] | None) -> tuple[str, ...]:
    """Validation subjects from ``train``: one draw, or one per cohort in proportion."""
    by_cohort: dict[str, list[str]] = {}
    for s in train:
        by_cohort.setdefault((cohorts or {}).get(s, ""), []).append(s)
    if len(by_cohort) == 1:
        idx = sorted(rng.choice(len(train), _n_val(len(train), n_val), replace=False))
        return tuple(train[j] for j in idx)
    picked: set[str] = set()
    for members in by_cohort.values():
        share = max(1, round(n_val * len(members) / len(train)))
        drawn = rng.choice(len(members), _n_val(len(members), share), replace=False)
        picked.update(members[j] for j in drawn)
    return tuple(s for s in train if s in picked)


@dataclass(frozen=True)
class TrainerOptions:
    """What is passed on to :class:`lightning.Trainer` (device handling is Lightning's)."""

    accelerator: str = "cpu"
    devices: int | str = 1
    threads: int = 1
    strategy: str = "auto"

    @property
    def deterministic(self) -> bool | Literal["warn"]:
        """Exact on CPU; on GPUs a warning for ops without a deterministic kernel."""
        return True if self.accelerator == "cpu" else "warn"


@dataclass
class FoldResult:
    """Test-night probabilities of one fold (and of its test views), and how training went."""

    fold: Fold
    probs: dict[str, NDArray[np.float32]]
    best_step: int
    best_value: float
    steps: int
    seconds: float
    history: list[tuple[int, float]] = field(default_factory=list)
    views: dict[str, dict[str, NDArray[np.float32]]] = field(default_factory=dict)


class FitResult(NamedTuple):
    """A trained net (or ensemble) and its early-stopping record.

    For an ensemble, ``best_step``, ``best_value`` and ``steps`` are the members' means
    (rounded steps), ``history`` is the first member's and ``member_best_steps`` lists each.
    """

    net: Any
    best_step: int
    best_value: float
    steps: int
    history: list[tuple[int, float]]
    member_best_steps: tuple[int, ...] = ()


def build_net(name: str, n_features: int, cfg: TrainConfig, stage_set: int = 4) -> Any:
    """The net of model ``name`` with the config's constructor kwargs (see the config file).

    Its number of outputs is the corpus's ``stage_set``.
    """
    from models.nets import build_net as build

    kwargs = dict(cfg.net)
    if kwargs.setdefault("n_outputs", stage_set) != stage_set:
        msg = (f"config 'net' kwargs: n_outputs is {kwargs['n_outputs']} but the corpus has "
               f"{stage_set} classes; drop n_outputs from the config")
        raise ValueError(msg)
    try:
        return build(name, n_features, **kwargs)
    except ValueError as err:
        msg = f"config 'net' kwargs: {err}"
        raise ValueError(msg) from None


def validation_nights(val: Sequence[Night], apnoea_share: float) -> list[Night]:
    """The nights to validate on: ``val``, plus simulated-apnoea versions where asked.

    With ``apnoea_share`` > 0, each night that has :attr:`Night.simulated_apnoea` rows is
    validated on a second time from them (:meth:`Night.as_simulated_apnoea`).
    """
    if apnoea_share <= 0:
        return list(val)
    return [*val, *(n.as_simulated_apnoea() for n in val if n.simulated_apnoea is not None)]


def fit_net(
    name: str, train: Sequence[Night], val: Sequence[Night], cfg: TrainConfig,
    opts: TrainerOptions = TrainerOptions(), stage_set: int = 4,
) -> FitResult:
    """Train the net of model ``name`` on ``train`` with early stopping on ``val``.

    The best state by ``cfg.monitor`` is kept; labels are of ``stage_set`` classes. With
    ``cfg.apnoea_share`` > 0 the validation nights' simulated-apnoea versions are validated
    on as well (:func:`validation_nights`), so that the state kept also stages sleep that
    looks like an apnoea patient's.
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    from training.datamodules import NightDataModule, class_weights
    from training.lit_module import BestState, StagingModule, WeightAverage, feature_stats

    if cfg.monitor == "val_kappa5" and stage_set < 5:
        msg = (f"monitor val_kappa5 needs 5-class labels; this corpus has {stage_set} classes. "
               "Monitor val_kappa4 instead.")
        raise ValueError(msg)
    if opts.accelerator == "cpu" and opts.threads > 0:
        torch.set_num_threads(opts.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    val = validation_nights(val, cfg.apnoea_share)
    net = build_net(name, train[0].features.shape[-1], cfg, stage_set)
    net.set_feature_stats(*feature_stats([n.features for n in train],
                                         [n.validity() for n in train]))
    module = StagingModule(net, cfg.lr, cfg.weight_decay,
                          class_weights(train, cfg.class_weight_power, stage_set))
    dm = NightDataModule(train, val, cfg.crop_epochs, cfg.batch_size,
                         max_steps=cfg.max_steps, seed=cfg.seed, stage_set=stage_set,
                         input_dropout=cfg.input_dropout, cohort_balance=cfg.cohort_balance,
                         apnoea_share=cfg.apnoea_share)
    mode = "min" if cfg.monitor == "val_loss" else "max"
    best = BestState(cfg.monitor, mode)
    trainer = L.Trainer(
        accelerator=opts.accelerator, devices=opts.devices, strategy=opts.strategy,
        max_steps=cfg.max_steps,
        val_check_interval=cfg.val_every_steps, check_val_every_n_epoch=None,
        # BestState before WeightAverage: it copies the averaged weights at validation end
        callbacks=[best, EarlyStopping(cfg.monitor, patience=cfg.patience, mode=mode),
                   *([WeightAverage(cfg.weight_average)] if cfg.weight_average else [])],
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, deterministic=opts.deterministic,
        gradient_clip_val=cfg.grad_clip,
    )
    with warnings.catch_warnings():
        # one "epoch" is the whole crop stream, and there is no worker to add on CPU
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        # torch's own pytree deprecation, raised inside Lightning's loaders (not ours)
        warnings.filterwarnings("ignore", ".*LeafSpec.*", FutureWarning)
        trainer.fit(module, datamodule=dm)
    net = module.net.cpu().eval()
    return FitResult(net, best.best_step, best.sign * best.best, trainer.global_step,
                     best.history)


def redraw_validation(
    train: Sequence[Night], val: Sequence[Night], seed: int
) -> tuple[tuple[Night, ...], tuple[Night, ...]]:
    """Another split of the same nights: as many validation subjects, drawn with ``seed``."""
    pool = (*train, *val)
    subjects = list(dict.fromkeys(n.subject for n in pool))
    n_val = len({n.subject for n in val})
    picked = {subjects[i] for i in np.random.default_rng(seed).choice(len(subjects), n_val,
                                                                       replace=False)}
    return (tuple(n for n in pool if n.subject not in picked),
            tuple(n for n in pool if n.subject in picked))


def fit_model(
    name: str, train: Sequence[Night], val: Sequence[Night], cfg: TrainConfig,
    opts: TrainerOptions = TrainerOptions(), stage_set: int = 4,
) -> FitResult:
    """:func:`fit_net`, or ``cfg.ensemble`` of them (seeds ``seed + i``) averaged.

    With ``ensemble_validation: shared`` every member sees the same training and validation
    nights and only the weights and the training crops differ; with ``per_member`` member
    ``i > 0`` early-stops on its own draw of validation subjects (:func:`redraw_validation`).
    """
    if cfg.ensemble == 1:
        fit = fit_net(name, train, val, cfg, opts, stage_set)
        return fit._replace(member_best_steps=(fit.best_step,))
    from models.nets import StagerEnsemble

    fits = []
    for i in range(cfg.ensemble):
        split = (train, val)
        if i and cfg.ensemble_validation == "per_member":
            split = redraw_validation(train, val, cfg.seed + i)
        fits.append(fit_net(name, *split, cfg.model_copy(update={"seed": cfg.seed + i}), opts,
                            stage_set))
    return FitResult(
        StagerEnsemble([f.net for f in fits]).eval(),
        int(round(float(np.mean([f.best_step for f in fits])))),
        float(np.mean([f.best_value for f in fits])),
        int(round(float(np.mean([f.steps for f in fits])))),
        fits[0].history,
        tuple(f.best_step for f in fits),
    )


def predict_nights(net: Any, nights: Sequence[Night]) -> dict[str, NDArray[np.float32]]:
    """Probabilities ``(T, n_classes)`` of each whole night, keyed by night id."""
    import torch

    from training.datamodules import collate_nights, night_item

    out = {}
    with torch.no_grad():
        for night in nights:
            x, valid, _ = collate_nights([night_item(night, net.n_outputs)])
            fwd = net.forward_sequence if net.kind == "causal" else net
            out[night.night] = fwd(x, valid)[0].numpy().astype(np.float32)
    return out


def run_fold(
    name: str, nights: NightSet, fold: Fold, cfg: TrainConfig, opts: TrainerOptions,
    views: Mapping[str, NightSet] | None = None,
) -> FoldResult:
    """Train on ``fold.train``, stop early on ``fold.val``, predict ``fold.test`` (+ views)."""
    t0 = time.perf_counter()
    fit = fit_model(name, nights.select(fold.train), nights.select(fold.val), cfg, opts,
                    nights.stage_set)
    probs = predict_nights(fit.net, nights.select(fold.test))
    seen = {view: predict_nights(fit.net, v.select(fold.test))
            for view, v in (views or {}).items()}
    return FoldResult(fold, probs, fit.best_step, fit.best_value, fit.steps,
                      time.perf_counter() - t0, fit.history, seen)


_WORKER: dict[str, Any] = {}


def _init_worker(nights: NightSet, views: Mapping[str, NightSet] | None, threads: int) -> None:
    import torch

    from training.run import quiet_lightning

    quiet_lightning()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
    _WORKER["nights"], _WORKER["views"] = nights, views


def _run_in_worker(name: str, fold: Fold, cfg: TrainConfig, opts: TrainerOptions) -> FoldResult:
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    return run_fold(name, _WORKER["nights"], fold, cfg, opts, _WORKER["views"])


def run_cv(
    nights: NightSet,
    variant: str,
    cfg: TrainConfig,
    folds: Sequence[Fold],
    opts: TrainerOptions = TrainerOptions(),
    jobs: int = 1,
    progress: Any = None,
    views: Mapping[str, NightSet] | None = None,
) -> list[FoldResult]:
    """Run every fold of one variant; ``jobs`` > 1 runs folds in worker processes (CPU).

    ``progress`` is an optional callable ``(FoldResult) -> None`` called as folds finish;
    ``views`` are test views of the same nights (see the module docstring).
    """
    name = f"{nights.family}-{variant}"
    results: list[FoldResult] = []
    if jobs <= 1:
        for fold in folds:
            results.append(run_fold(name, nights, fold, cfg, opts, views))
            if progress:
                progress(results[-1])
        return results
    ctx = get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(nights, views, opts.threads)) as pool:
        futures = [pool.submit(_run_in_worker, name, f, cfg, opts) for f in folds]
        for fut in as_completed(futures):
            results.append(fut.result())
            if progress:
                progress(results[-1])
    return sorted(results, key=lambda r: r.fold.number)


def save_predictions(
    path: str | Path, nights: NightSet, variant: str, results: Sequence[FoldResult],
    view: str | None = None,
) -> Path:
    """Write ``predictions-<variant>[-<view>].npz``: per night probs, stages, subject, fold.

    ``nights`` are the nights the probabilities belong to (the view's for a view).
    """
    by_night = {n.night: n for n in nights}
    arrays: dict[str, Any] = {}
    meta = []
    for r in results:
        for night_id, p in (r.probs if view is None else r.views[view]).items():
            n = by_night[night_id]
            arrays[f"probs/{night_id}"] = p
            arrays[f"stages/{night_id}"] = n.stages
            meta.append((night_id, n.subject, r.fold.number, r.best_step, r.seconds))
    arrays["meta"] = np.array(meta, dtype=object).astype(str)
    path = Path(path) / f"predictions-{variant}{'' if view is None else '-' + view}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
