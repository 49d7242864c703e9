"""``sleep.summaries.v1``: night statistics of a staged session."""

from __future__ import annotations

from pydantic import Field

from stream.schemas.base import FiniteFloat, Identifier, Payload, UtcDatetime
from stream.schemas.stages import ModelKind

__all__ = ["NightSummary"]


class NightSummary(Payload):
    """Night statistics computed from one model's hypnogram of a session.

    The values are :func:`models.evaluation.night_stats.night_stats_from_stages` of the
    hypnogram (see that module for the definitions), built by
    :func:`stream.staging.night_summary`:
    the same numbers as ``sleepstream evaluate`` gives for the same night. ``minutes``
    holds the minutes in bed of every class of the model's stage set (W, light, deep,
    REM for the 4-class models) and ``percent_of_tst`` every sleep class as a percent of
    the total sleep time. Undefined values are None: SE without time in bed, SOL and
    the percentages without sleep, REM latency without REM.
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
    percent_of_tst: dict[str, FiniteFloat | None]
    emitted_at_utc: UtcDatetime
