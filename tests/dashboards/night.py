"""A real night staged by the shipped models and written through the real v1 sink.

Two subjects share the bundled Sleep-Accel night, re-anchored to end a minute ago so that
"active in the last N minutes" queries see it:

* ``<id>`` as recorded;
* ``<id>-dropout``: the watch is off for epochs 300-319 (no sample at all: the epochs are
  staged with ``valid = false``) and the heart rate alone is missing for epochs 500-509.

A third, ``<id>-psg``, is a PSG night of generated two-channel EEG over the night's last
hour, staged by psg models (5 classes) from the worker's own epoch assembly: both channels
lose their electrodes for epochs :data:`EEG_OFF` (no EEG at all) and Pz-Oz alone for
:data:`PZ_OFF`.

Each subject gets causal events (the causal model on each epoch's window, as
:meth:`FamilyModels.predict_night` computes it), the offline revision and its summary
from :meth:`FamilyModels.stage_night`, and a causal summary; the causal events carry the
inputs of their epoch. Two workers report their health six times.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ingestors.replay import ReplayNight, ReplayStream, sleep_accel_nights
from ingestors.samples import SAMPLE_NIGHT, sleep_accel_sample
from stream.engine import EPOCH_S, Session, SubjectProcessor
from stream.replay_eval import batch_rows
from stream.schemas import EpochInputStats, NightSummary, StageEvent
from stream.schemas.session import Modality
from stream.sinks import InfluxV1Sink, PipelineStats, SinkItem
from stream.staging import FamilyModels, night_summary
from tests.stream._psg import generated_night

WATCH_OFF = range(300, 320)
HR_OFF = range(500, 510)
PSG_EPOCHS = 120
EEG_OFF = range(40, 45)
PZ_OFF = range(60, 70)
WORKERS = ("worker-1", "worker-2")
N_REPORTS = 6


@dataclass
class Subject:
    """What was written for one subject."""

    session: Session
    causal: list[StageEvent]
    offline: list[StageEvent]
    summary: NightSummary


@dataclass
class Night:
    """Everything written into ``database``."""

    database: str
    subjects: dict[str, Subject]
    reports: list[PipelineStats]
    start: datetime
    end: datetime

    @property
    def n_epochs(self) -> int:
        return len(next(iter(self.subjects.values())).causal)


def _epochs(t_s: NDArray[np.float64], n: int) -> NDArray[np.int64]:
    # samples before the start belong to the first epoch, as in the batch features
    return np.clip(np.floor(t_s / EPOCH_S).astype(np.int64), 0, n - 1)


def _without(stream: ReplayStream, epochs: list[range], n: int) -> ReplayStream:
    e = _epochs(stream.t_s, n)
    keep = ~np.isin(e, [i for r in epochs for i in r])
    return ReplayStream(stream.t_s[keep], stream.values[keep])


def _dropout(night: ReplayNight) -> ReplayNight:
    n, s = night.n_epochs, night.streams
    streams: dict[Modality, ReplayStream] = {
        "heart_rate": _without(s["heart_rate"], [WATCH_OFF, HR_OFF], n),
        "activity_counts": _without(s["activity_counts"], [WATCH_OFF], n),
    }
    return dataclasses.replace(night, subject_id=f"{night.subject_id}-dropout",
                               streams=streams)


def _inputs(night: ReplayNight) -> list[EpochInputStats]:
    n = night.n_epochs
    hr, act = night.streams["heart_rate"], night.streams["activity_counts"]
    eh, ea = _epochs(hr.t_s, n), _epochs(act.t_s, n)
    out = []
    for k in range(n):
        h, a = hr.values[eh == k], act.values[ea == k]
        out.append(EpochInputStats(
            hr_mean_bpm=float(h.mean()) if h.size else None, hr_samples=int(h.size),
            activity_counts=float(a.sum()) if a.size else None, activity_samples=int(a.size)))
    return out


def _has_data(inputs: EpochInputStats) -> bool:
    return inputs.hr_samples + inputs.activity_samples > 0


def _causal_events(family_models: FamilyModels, session: Session, probs: NDArray[np.float32],
                   inputs: list[EpochInputStats],
                   has_data: list[bool] | None = None) -> list[StageEvent]:
    names = family_models.causal.card.class_names
    events = []
    for k, p in enumerate(probs):
        best = int(p.argmax())
        closed = session.epoch_start(k + 1)
        events.append(StageEvent(
            subject_id=session.subject_id, session_id=session.session_id, epoch_index=k,
            epoch_start_utc=session.epoch_start(k), model_name=family_models.causal.card.name,
            model_version=family_models.causal.card.version, kind="causal", stage_set=len(names),  # type: ignore[arg-type]
            stage=names[best], probabilities={n: float(p[j]) for j, n in enumerate(names)},
            confidence=float(p[best]),
            valid=_has_data(inputs[k]) if has_data is None else has_data[k],
            closed_at_utc=closed, emitted_at_utc=closed + timedelta(milliseconds=40),
            latency_s=0.04, inputs=inputs[k]))
    return events


def stage_subject(family_models: FamilyModels, night: ReplayNight, start: datetime) -> Subject:
    """Stage one night that starts at ``start`` (timezone-aware, a multiple of 30 s)."""
    session = Session(night.subject_id, night.session_id, start)
    rows = batch_rows(night)
    causal_probs, _ = family_models.predict_night(rows)
    causal = _causal_events(family_models, session, causal_probs, _inputs(night))
    end = session.epoch_start(night.n_epochs)
    offline, summary = family_models.stage_night(session, rows, [e.valid for e in causal],
                                          closed_at=end, emitted_at=end)
    assert summary is not None
    return Subject(session, causal, offline, summary)


def _reports(end: datetime) -> list[PipelineStats]:
    return [
        PipelineStats(worker=w, events_per_s=2.0 + i + j, stage_events=100 * (i + 1),
                      dead_letters=j + (i // 3), consumer_lag=10 * j + i,
                      epoch_close_latency_p50_s=0.02 * (j + 1),
                      epoch_close_latency_p99_s=0.1 * (j + 1) + 0.01 * i,
                      active_subjects=1, t_utc=end - timedelta(seconds=30 * (N_REPORTS - i)))
        for j, w in enumerate(WORKERS) for i in range(N_REPORTS)
    ]


def _items(subjects: dict[str, Subject], reports: list[PipelineStats]) -> list[SinkItem]:
    items: list[SinkItem] = []
    for s in subjects.values():
        causal_summary = night_summary(s.session, [e.stage for e in s.causal],
                                       [e.valid for e in s.causal],
                                       stage_set=s.causal[0].stage_set,
                                       model_name=s.causal[0].model_name, kind="causal",
                                       emitted_at=s.summary.emitted_at_utc)
        items += [*s.causal, *s.offline, s.summary, causal_summary]
    return [*items, *reports]


def stage_psg_subject(family_models: FamilyModels, subject_id: str, start: datetime) -> Subject:
    """A PSG night of generated EEG, closed by the worker's engine and staged by psg models."""
    stages = (["W"] * 10 + ["N2"] * 20 + ["N3"] * 30 + ["N2"] * 30 + ["W"] * 30)[:PSG_EPOCHS]
    night = generated_night(subject_id, stages, 100.0, 2, seed=7)
    night.start = start
    lost = [(c, k) for c in ("Fpz-Cz", "Pz-Oz") for k in EEG_OFF] + \
        [("Pz-Oz", k) for k in PZ_OFF]
    chunks = [c for c in night.chunks(30.0) if (c.channel, c.sample0 // 3000) not in lost]
    session = Session.from_event(night.start_event())
    proc = SubjectProcessor(session, grace_s=30.0)
    closed = []
    for chunk in chunks:
        proc.apply(chunk)
        closed += proc.close(proc.due())
    closed += proc.close_until(night.end_event(chunks).t_utc)
    rows = np.stack([e.row for e in closed])
    present = np.stack([e.present for e in closed])
    causal_probs, _ = family_models.predict_night(rows, present)
    causal = _causal_events(family_models, session, causal_probs, [e.inputs for e in closed],
                            [e.has_data for e in closed])
    end = session.epoch_start(len(closed))
    offline, summary = family_models.stage_night(session, rows, [e.has_data for e in closed],
                                                 closed_at=end, emitted_at=end,
                                                 present=present)
    assert summary is not None
    return Subject(session, causal, offline, summary)


def write_night(url: str, database: str, psg_weights: Path) -> Night:
    """Stage the three subjects and write everything through :class:`InfluxV1Sink`."""
    (recorded,) = sleep_accel_nights(sleep_accel_sample(), (SAMPLE_NIGHT,))
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(int(now.timestamp()) // 30 * 30 - 60, UTC)
    start = end - timedelta(seconds=EPOCH_S * recorded.n_epochs)
    family_models = FamilyModels("wearable")
    subjects = {n.subject_id: stage_subject(family_models, n, start)
                for n in (recorded, _dropout(recorded))}
    psg = f"{recorded.subject_id}-psg"
    subjects[psg] = stage_psg_subject(FamilyModels("psg", psg_weights), psg,
                                      end - timedelta(seconds=EPOCH_S * PSG_EPOCHS))
    reports = _reports(now)

    async def send() -> None:
        # batches under 1 MiB: aiohttp warns (ResourceWarning) about larger raw bodies
        sink = InfluxV1Sink(url, database, batch_size=1000, flush_interval_s=0.1)
        await sink.write_batch(_items(subjects, reports))
        await sink.close()
        assert sink.stats.points_rejected == 0

    asyncio.run(send())
    return Night(database, subjects, reports, start, now)
