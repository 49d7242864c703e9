"""A worker without Faust: its two tables as dicts, a clock the test moves, what it published."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stream.readability import InputGate
from stream.schemas import StageEvent
from stream.settings import StreamSettings
from stream.staging import FamilyModels
from stream.worker import Effects, Inbound, Worker


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    """A worker, its two tables as dicts, and everything it published and released."""

    def __init__(self, family_models: dict[str, FamilyModels], *, gated: bool = False,
                 **settings: Any) -> None:
        self.state: dict[str, str] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.clock = Clock()
        self.settings = StreamSettings(**settings)
        self.family_models = family_models
        self.events: list[StageEvent] = []
        self.summaries: list[Any] = []
        self.dead: list[Any] = []
        self.released: set[int] = set()
        self.offset = 0
        # gated: readability checks as the app makes them (InputGate on the fake clock)
        self.gate = InputGate(self.settings.grace_s, self.clock) if gated else None
        self.restart()

    def restart(self) -> None:
        """A new worker process: memory gone, tables kept (JSON round trip)."""
        self.state = json.loads(json.dumps(self.state))
        self.worker = Worker(self.settings, self.state.get, self.rows.get,
                             family_models=self.family_models, clock=self.clock,
                             inputs=self.gate)

    def msg(self, kind: str, payload: Any, key: str | None = None, raw: bytes | None = None,
            partition: int = 0) -> Inbound:
        self.offset += 1
        value = raw if raw is not None else payload.model_dump_json().encode()
        subject = key if key is not None else payload.subject_id
        return Inbound(kind, f"sleep.{kind}", partition, self.offset,  # type: ignore[arg-type]
                       subject.encode(), value, token=self.offset)

    def apply(self, fx: Effects) -> Effects:
        self.events += fx.stage_events
        self.summaries += fx.summaries
        self.dead += fx.dead_letters
        for _, key, value in fx.state:
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        for _, key, block in fx.rows:
            if block is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = json.loads(json.dumps(block))
        self.released |= {int(t) for t in fx.release if t is not None}  # type: ignore[call-overload]
        return fx

    def _both(self, fx: Effects) -> Effects:
        self.apply(fx)
        cp = self.apply(self.worker.checkpoints())
        fx.state, fx.rows, fx.release = cp.state, cp.rows, fx.release + cp.release
        return fx

    def feed(self, batch: list[Inbound]) -> Effects:
        return self._both(self.worker.handle(batch))

    def tick(self, wall: datetime | None = None) -> Effects:
        return self._both(self.worker.tick(wall))


