"""Stage closed epochs with the exported models: batched causal calls, whole-night revisions.

:class:`FamilyModels` loads one family's causal and offline ONNX models, refuses cards that do
not match the live feature registry, and turns closed epochs into
:class:`~stream.schemas.StageEvent` payloads — one onnxruntime call for every epoch that
closed together, whatever subject it belongs to — and a finished night into offline
events plus a :class:`~stream.schemas.NightSummary`.

The psg models read a set of EEG channels per epoch (their cards' ``channel_set``): the
epochs of subjects with different channel counts share the call, each padded to the widest
set with masked channels (a masked channel weighs exactly nothing in the nets' channel
pooling, so padding changes no probability beyond float rounding). They stage 5 classes
(W, N1, N2, N3, REM); their night summaries give N1, N2 and N3 minutes.

A card that lists the input sets its model was validated on (``input_sets``) makes the
stream refuse a session whose inputs are none of them (:meth:`FamilyModels.check_inputs`);
a card without them (older exports) is not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.card import InputSet, session_inputs
from models.evaluation.night_stats import night_stats_from_stages
from models.features import feature_names, feature_version
from models.features.registry import PER_CHANNEL_FAMILIES
from models.runtime import CardMismatchError, OnnxModel, load_model, validate_card
from models.stages import CLASS_NAMES, class_stages, n_classes
from stream.engine import EPOCH_S, ClosedEpoch, Session
from stream.schemas import EpochInputStats, ModelKind, NightSummary, StageEvent

__all__ = ["FamilyModels", "night_summary"]


def _events(
    session: Session,
    indices: Sequence[int],
    probs: NDArray[np.float32],
    model: OnnxModel,
    kind: ModelKind,
    valid: Sequence[bool],
    closed_at: datetime,
    emitted_at: datetime,
    inputs: Sequence[EpochInputStats | None] | None = None,
) -> list[StageEvent]:
    names = model.card.class_names
    best = probs.argmax(axis=1)
    latency = (emitted_at - closed_at).total_seconds()
    out = []
    for i, k in enumerate(indices):
        p = probs[i]
        out.append(StageEvent(
            subject_id=session.subject_id, session_id=session.session_id, epoch_index=k,
            epoch_start_utc=session.epoch_start(k), model_name=model.card.name,
            model_version=model.card.version, kind=kind, stage_set=len(names),  # type: ignore[arg-type]
            stage=names[int(best[i])],
            probabilities={n: float(p[j]) for j, n in enumerate(names)},
            confidence=float(p[best[i]]), valid=bool(valid[i]), closed_at_utc=closed_at,
            emitted_at_utc=emitted_at, latency_s=max(0.0, latency),
            inputs=None if inputs is None else inputs[i],
        ))
    return out


@dataclass
class FamilyModels:
    """The causal and offline models of one family, checked against the live registry.

    Parameters
    ----------
    family : {"wearable", "cardio", "psg"}
        Model family; models ``<family>-causal`` and ``<family>-offline`` are loaded.
    weights_dir : Path, optional
        Where the ``.onnx`` and card files are (default: the package's shipped weights).

    Raises
    ------
    FileNotFoundError
        If a model is not there.
    CardMismatchError
        If a card does not fit the stream's features (names, version, epoch, context, and
        whether it reads a channel set).
    """

    family: str
    weights_dir: Path | None = None

    def __post_init__(self) -> None:
        names = feature_names(self.family)
        self.causal = load_model(f"{self.family}-causal", self.weights_dir)
        self.offline = load_model(f"{self.family}-offline", self.weights_dir)
        version = feature_version(self.family)
        validate_card(self.causal.card, names, version, EPOCH_S, self.causal.card.context_epochs)
        validate_card(self.offline.card, names, version, EPOCH_S, None)
        self.channel_set = self.family in PER_CHANNEL_FAMILIES
        for model in (self.causal, self.offline):
            if (model.card.channel_set is not None) != self.channel_set:
                msg = (f"model {model.card.name!r}: field 'channel_set' is "
                       f"{model.card.channel_set!r} but the stream's {self.family!r} features "
                       f"{'are' if self.channel_set else 'are not'} per channel. Re-export the "
                       "model with its family's layout.")
                raise CardMismatchError(msg)
        self.context_epochs = int(self.causal.card.context_epochs or 25)

    def check_channels(self, channels: Sequence[str]) -> None:
        """Refuse a session's channel set that the models cannot read (``ValueError``)."""
        if not self.channel_set:
            return
        for model in (self.causal, self.offline):
            spec = model.card.channel_set
            assert spec is not None
            most = spec.max_channels
            if not spec.min_channels <= len(channels) <= (most or len(channels)):
                span = f"{spec.min_channels}..{most if most is not None else 'any'}"
                msg = (f"model {model.card.name!r} reads {span} {spec.modality} channels; the "
                       f"session has {len(channels)}: {list(channels)}")
                raise ValueError(msg)

    def check_inputs(self, modalities: Sequence[str]) -> None:
        """Refuse a session whose inputs no model of the family was validated on.

        See :meth:`matched_input_sets` (this is it without the result).

        Raises
        ------
        ValueError
            Naming the family, the session's inputs and every validated set.
        """
        self.matched_input_sets(modalities)

    def matched_input_sets(self, modalities: Sequence[str]) -> dict[ModelKind, InputSet]:
        """The validated input set of each model that a session's modalities match.

        Parameters
        ----------
        modalities : sequence of str
            The session's modalities (``SessionEvent.modalities``); their inputs are
            :func:`models.card.session_inputs`.

        Returns
        -------
        dict of {"causal", "offline"} to InputSet
            For each model whose card lists ``input_sets``, the one equal to the session's
            inputs (with its cross-validated metrics); empty when neither card lists any
            (cards older than input sets: nothing is checked).

        Raises
        ------
        ValueError
            If a card lists input sets and the session's inputs are none of them, or a
            modality is unknown.
        """
        inputs = session_inputs(modalities)
        models: tuple[tuple[ModelKind, OnnxModel], ...] = (
            ("causal", self.causal), ("offline", self.offline))
        listed = {kind: model.card.input_sets for kind, model in models
                  if model.card.input_sets}
        matched = {kind: s for kind, sets in listed.items() for s in sets if s.inputs == inputs}
        if matched.keys() != listed.keys():
            raise ValueError(self._refusal(inputs, listed))
        return matched

    def _refusal(self, inputs: tuple[str, ...],
                 listed: dict[ModelKind, tuple[InputSet, ...]]) -> str:
        """Why a session's inputs are refused, and what would be accepted instead."""
        labels = {kind: [s.label for s in sets] for kind, sets in listed.items()}
        first = next(iter(labels.values()))
        if all(other == first for other in labels.values()):
            validated = ", ".join(first)
        else:  # the two cards disagree: name each model's sets
            validated = "; ".join(f"{self.family}-{kind} on {', '.join(sets)}"
                                  for kind, sets in labels.items())
        common = [label for label in first if all(label in sets for sets in labels.values())]
        sent = "+".join(inputs) or "nothing"
        install = (f"install {self.family} models trained and validated on {sent} "
                   "(SLEEPSTREAM_WEIGHTS_DIR)")
        fix = (f"send one of {', '.join(common)} or {install}" if common
               else f"{install}; the two models share no validated set")
        return (f"the {self.family} models here were validated on {validated}; this session "
                f"sends {sent}. To stage it, {fix}")

    def _causal_batch(
        self, closed: Sequence[tuple[Session, ClosedEpoch]]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The closed epochs' windows as one model input, channel sets padded to the widest."""
        if not self.channel_set:
            return (np.stack([e.window for _, e in closed]),
                    np.stack([e.valid for _, e in closed]))
        first = closed[0][1].window
        width = max(e.window.shape[1] for _, e in closed)
        x = np.zeros((len(closed), first.shape[0], width, first.shape[2]), np.float32)
        valid = np.zeros(x.shape[:-1], np.float32)
        for i, (_, e) in enumerate(closed):
            c = e.window.shape[1]
            x[i, :, :c] = e.window
            valid[i, :, :c] = e.valid
        return x, valid

    def stage_causal(
        self,
        closed: Sequence[tuple[Session, ClosedEpoch]],
        closed_at: datetime,
        emitted_at: datetime | None = None,
    ) -> list[StageEvent]:
        """Stage epochs that closed together (any subjects) in one model call."""
        if not closed:
            return []
        probs = self.causal.predict(*self._causal_batch(closed))
        stamp = emitted_at or datetime.now(closed_at.tzinfo)
        events: list[StageEvent] = []
        for i, (session, epoch) in enumerate(closed):
            events += _events(session, [epoch.index], probs[i: i + 1], self.causal, "causal",
                              [epoch.has_data], closed_at, stamp, [epoch.inputs])
        return events

    def _mask(self, rows: NDArray[np.float32],
              present: NDArray[np.bool_] | NDArray[np.float32] | None) -> NDArray[np.float32]:
        """The models' ``valid`` input of a night's rows."""
        if not self.channel_set:
            return np.ones(rows.shape[0], np.float32)
        if present is None or np.shape(present) != rows.shape[:2]:
            msg = (f"{self.family} rows of shape {rows.shape} (n_epochs, n_channels, "
                   f"n_features) need `present` of shape {rows.shape[:2]}; got "
                   f"{None if present is None else np.shape(present)}")
            raise ValueError(msg)
        return np.asarray(present, np.float32)

    def predict_night(
        self, rows: NDArray[np.float32],
        present: NDArray[np.bool_] | NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Batch predictions of a whole night: what the stream must reproduce epoch by epoch.

        Parameters
        ----------
        rows : ndarray of float32, shape (n_epochs, n_features) or (n_epochs, n_channels,
            n_features)
            The night's feature rows (per channel for psg).
        present : ndarray of bool, shape (n_epochs, n_channels), optional
            psg only (required there): which channels had measures in each epoch.

        Returns
        -------
        causal, offline : ndarray of float32, shape (n_epochs, n_classes)
            The causal model on each epoch's last ``context_epochs`` rows (left-padded,
            masked) and the offline model on the whole night.
        """
        n, ctx = rows.shape[0], self.context_epochs
        mask = self._mask(rows, present)
        if n == 0:
            empty = np.zeros((0, len(self.causal.card.class_names)), np.float32)
            return empty, empty.copy()
        padded = np.concatenate([np.zeros((ctx - 1, *rows.shape[1:]), np.float32), rows])
        valid = np.concatenate([np.zeros((ctx - 1, *mask.shape[1:]), np.float32), mask])
        idx = np.arange(n)[:, None] + np.arange(ctx)[None, :]
        causal = np.concatenate([
            self.causal.predict(padded[idx[i: i + 1000]], valid[idx[i: i + 1000]])
            for i in range(0, n, 1000)
        ])
        offline = self.offline.predict(rows[None], mask[None])[0]
        return causal, offline

    def stage_night(
        self,
        session: Session,
        rows: NDArray[np.float32],
        has_data: Sequence[bool],
        closed_at: datetime,
        emitted_at: datetime | None = None,
        present: NDArray[np.bool_] | NDArray[np.float32] | None = None,
    ) -> tuple[list[StageEvent], NightSummary | None]:
        """Re-score a whole night with the offline model.

        Parameters
        ----------
        rows : ndarray of float32, shape (n_epochs, n_features) or (n_epochs, n_channels,
            n_features)
            The night's feature rows, epoch 0 first.
        has_data : sequence of bool, length n_epochs
            Whether each epoch had input (reported on the events).
        present : ndarray of bool, shape (n_epochs, n_channels), optional
            psg only (required there): which channels had measures in each epoch.
        """
        if rows.shape[0] == 0:
            return [], None
        probs = self.offline.predict(rows[None], self._mask(rows, present)[None])[0]
        stamp = emitted_at or datetime.now(closed_at.tzinfo)
        events = _events(session, range(rows.shape[0]), probs, self.offline, "offline",
                         has_data, closed_at, stamp)
        summary = night_summary(session, [e.stage for e in events], has_data,
                                stage_set=self.offline.card.stage_set,
                                model_name=self.offline.card.name, kind="offline",
                                emitted_at=stamp)
        return events, summary


def night_summary(
    session: Session,
    stages: Sequence[str],
    has_data: Sequence[bool],
    *,
    stage_set: int,
    model_name: str,
    kind: ModelKind,
    emitted_at: datetime,
) -> NightSummary:
    """Night statistics of a session's hypnogram as one model staged it.

    The statistics are :func:`models.evaluation.night_stats.night_stats_from_stages` of
    the hypnogram in the model's own stage set (minutes of W, N1, N2, N3 and REM for the
    5-class psg models, of W, light, deep and REM for the 4-class models), so they equal
    what ``sleepstream evaluate`` reports for the same night; see that module for the
    definitions and the undefined values (None).

    Parameters
    ----------
    session : Session
        The night; its epoch 0 is the first stage.
    stages : sequence of str, length n_epochs >= 1
        Class names of ``stage_set``, epoch 0 first.
    has_data : sequence of bool, length n_epochs
        Whether each epoch had samples (counted in ``n_valid_epochs``).
    stage_set : {5, 4, 3}
        The model's stage set (its card's ``stage_set``).
    model_name, kind : str
        The model card's name and whether it is the causal or the offline model.
    emitted_at : datetime
        When the summary was produced.

    Raises
    ------
    ValueError
        If a stage is not a class of ``stage_set``, or the set has no REM class (2).
    """
    names = CLASS_NAMES[n_classes(stage_set)]
    if "REM" not in names:
        msg = (f"a night summary needs a stage set that tells REM (5, 4 or 3); got "
               f"{stage_set} ({', '.join(names)})")
        raise ValueError(msg)
    unknown = sorted(set(stages) - set(names))
    if unknown:
        msg = f"stages must be classes of the {stage_set}-class set {names}; got {unknown}"
        raise ValueError(msg)
    classes = np.fromiter((names.index(s) for s in stages), np.int8, len(stages))
    st = night_stats_from_stages(class_stages(classes, stage_set), EPOCH_S, stage_set=stage_set)
    return NightSummary(
        subject_id=session.subject_id, session_id=session.session_id, model_name=model_name,
        kind=kind, t_start_utc=session.epoch_start(0),
        t_end_utc=session.epoch_start(len(stages)), n_epochs=len(stages),
        n_valid_epochs=int(sum(bool(v) for v in has_data)), tib_min=st.tib_min,
        tst_min=st.tst_min, se_pct=st.se_pct, sol_min=st.sol_min, waso_min=st.waso_min,
        rem_latency_min=st.rem_latency_min, minutes=dict(st.minutes),
        percent_of_tst=dict(st.pct_tst), emitted_at_utc=emitted_at,
    )
