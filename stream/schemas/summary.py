"""``sleep.summaries.v1``: night statistics of a staged session."""

from __future__ import annotations

from pydantic import Field

from stream.schemas.base import FiniteFloat, Identifier, Payload, UtcDatetime
from stream.schemas.stages import ModelKind

__all__ = ["NightSummary"]


class NightSummary(Payload):
    """Night statistics computed from one model's hypnogram of a session.

    Minutes per class are in the model's stage set (4 classes: W, light, deep, REM).
    Latencies are None when undefined (no sleep, no REM).
    """

    subject_id: Identifier
    session_id: Identifier
    model_name: str
    kind: ModelKind
    t_start_utc: UtcDatetime
    t_end_utc: UtcDatetime
    n_epochs: int = Field(ge=0)
    n_valid_epochs: int = Field(ge=0)
    tib_min: FiniteFloat
    tst_min: FiniteFloat
    se_pct: FiniteFloat | None
    sol_min: FiniteFloat | None
    waso_min: FiniteFloat
    rem_latency_min: FiniteFloat | None
    minutes: dict[str, FiniteFloat]
    percent_of_tst: dict[str, FiniteFloat]
    emitted_at_utc: UtcDatetime
