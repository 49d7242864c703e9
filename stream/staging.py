"""Stage closed epochs with the exported models: batched causal calls, whole-night revisions.

:class:`Stager` loads one family's causal and offline ONNX models, refuses cards that do
not match the live feature registry, and turns closed epochs into
:class:`~stream.schemas.StageEvent` payloads — one onnxruntime call for every epoch that
closed together, whatever subject it belongs to — and a finished night into offline
events plus a :class:`~stream.schemas.NightSummary`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.features import FEATURE_VERSION, feature_names
from models.runtime import OnnxStager, load_model, validate_card
from models.stages import Stage
from stream.engine import EPOCH_S, ClosedEpoch, Session
from stream.schemas import EpochInputStats, ModelKind, NightSummary, StageEvent

__all__ = ["CLASS_TO_STAGE", "Stager", "night_summary"]

#: 4-class model output (W, light, deep, REM) as canonical stages (light drawn as N2).
CLASS_TO_STAGE = np.array([Stage.W, Stage.N2, Stage.N3, Stage.REM], dtype=np.int8)


def _events(
    session: Session,
    indices: Sequence[int],
    probs: NDArray[np.float32],
    model: OnnxStager,
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
class Stager:
    """The causal and offline models of one family, checked against the live registry.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        Model family; models ``<family>-causal`` and ``<family>-offline`` are loaded.
    weights_dir : Path, optional
        Where the ``.onnx`` and card files are (default: the package's shipped weights).
    """

    family: str
    weights_dir: Path | None = None

    def __post_init__(self) -> None:
        names = feature_names(self.family)
        self.causal = load_model(f"{self.family}-causal", self.weights_dir)
        self.offline = load_model(f"{self.family}-offline", self.weights_dir)
        validate_card(self.causal.card, names, FEATURE_VERSION, EPOCH_S,
                      self.causal.card.context_epochs)
        validate_card(self.offline.card, names, FEATURE_VERSION, EPOCH_S, None)
        self.context_epochs = int(self.causal.card.context_epochs or 25)

    def stage_causal(
        self,
        closed: Sequence[tuple[Session, ClosedEpoch]],
        closed_at: datetime,
        emitted_at: datetime | None = None,
    ) -> list[StageEvent]:
        """Stage epochs that closed together (any subjects) in one model call."""
        if not closed:
            return []
        x = np.stack([e.window for _, e in closed])
        valid = np.stack([e.valid for _, e in closed])
        probs = self.causal.predict(x, valid)
        stamp = emitted_at or datetime.now(closed_at.tzinfo)
        events: list[StageEvent] = []
        for i, (session, epoch) in enumerate(closed):
            events += _events(session, [epoch.index], probs[i: i + 1], self.causal, "causal",
                              [epoch.has_data], closed_at, stamp,
                              [EpochInputStats(**dataclasses.asdict(epoch.inputs))])
        return events

    def predict_night(
        self, rows: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Batch predictions of a whole night: what the stream must reproduce epoch by epoch.

        Returns
        -------
        causal, offline : ndarray of float32, shape (n_epochs, n_classes)
            The causal model on each epoch's last ``context_epochs`` rows (left-padded,
            masked) and the offline model on the whole night.
        """
        n, ctx = rows.shape[0], self.context_epochs
        if n == 0:
            empty = np.zeros((0, len(self.causal.card.class_names)), np.float32)
            return empty, empty.copy()
        padded = np.concatenate([np.zeros((ctx - 1, rows.shape[1]), np.float32), rows])
        valid = np.concatenate([np.zeros(ctx - 1, np.float32), np.ones(n, np.float32)])
        idx = np.arange(n)[:, None] + np.arange(ctx)[None, :]
        causal = np.concatenate([
            self.causal.predict(padded[idx[i: i + 1000]], valid[idx[i: i + 1000]])
            for i in range(0, n, 1000)
        ])
        offline = self.offline.predict(rows[None], np.ones((1, n), np.float32))[0]
        return causal, offline

    def stage_night(
        self,
        session: Session,
        rows: NDArray[np.float32],
        has_data: Sequence[bool],
        closed_at: datetime,
        emitted_at: datetime | None = None,
    ) -> tuple[list[StageEvent], NightSummary | None]:
        """Re-score a whole night with the offline model.

        Parameters
        ----------
        rows : ndarray of float32, shape (n_epochs, n_features)
            The night's feature rows, epoch 0 first.
        has_data : sequence of bool, length n_epochs
            Whether each epoch had samples (reported on the events).
        """
        if rows.shape[0] == 0:
            return [], None
        probs = self.offline.predict(rows[None], np.ones((1, rows.shape[0]), np.float32))[0]
        stamp = emitted_at or datetime.now(closed_at.tzinfo)
        events = _events(session, range(rows.shape[0]), probs, self.offline, "offline",
                         has_data, closed_at, stamp)
        summary = night_summary(session, [e.stage for e in events], has_data,
                                self.offline.card.name, "offline", stamp)
        return events, summary


def night_summary(
    session: Session,
    stages: Sequence[str],
    has_data: Sequence[bool],
    model_name: str,
    kind: ModelKind,
    emitted_at: datetime,
) -> NightSummary:
    """Night statistics of a 4-class (W, light, deep, REM) hypnogram of a session.

    Time in bed is the whole session; sleep onset is the first non-W epoch, the sleep
    period runs from it to the end of the last non-W epoch, and WASO counts W epochs
    inside that period. Undefined values (no sleep, no REM) are None.
    """
    n = len(stages)
    minute = EPOCH_S / 60.0
    classes = ("W", "light", "deep", "REM")
    sleep = [i for i, s in enumerate(stages) if s != "W"]
    minutes = {c: sum(1 for s in stages if s == c) * minute for c in classes}
    tst = n * minute - minutes["W"]
    onset = sleep[0] if sleep else None
    waso = (sum(1 for s in stages[onset: sleep[-1] + 1] if s == "W") * minute
            if onset is not None else 0.0)
    rem = next((i for i, s in enumerate(stages) if s == "REM"), None)
    return NightSummary(
        subject_id=session.subject_id, session_id=session.session_id, model_name=model_name,
        kind=kind, t_start_utc=session.epoch_start(0), t_end_utc=session.epoch_start(n),
        n_epochs=n, n_valid_epochs=int(sum(bool(v) for v in has_data)),
        tib_min=n * minute, tst_min=tst,
        se_pct=100.0 * tst / (n * minute) if n else None,
        sol_min=onset * minute if onset is not None else None, waso_min=waso,
        rem_latency_min=(rem - onset) * minute if rem is not None and onset is not None
        else None,
        minutes=minutes,
        percent_of_tst={c: (100.0 * minutes[c] / tst if tst and c != "W" else 0.0)
                        for c in classes if c != "W"},
        emitted_at_utc=emitted_at,
    )
