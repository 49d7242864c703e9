"""Page ``/sleepstream/stats/``: this worker's counters as JSON.

``GET /sleepstream/stats/?window=60``. ``ingest_delay_*_s``: broker timestamp ->
processing, over the last ``window`` s. ``input_readable``: whether the last check could
read every assigned input partition (null before the first check); ``outages``: how many
times it could not; ``input_unreadable_s``: how long, in all (the longest partition).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import faust
import numpy as np

if TYPE_CHECKING:
    from stream.deps import Deps

__all__ = ["register", "stats"]


def stats(deps: Deps, window_s: float) -> dict[str, Any]:
    """The page's figures."""
    s, gaps, gate = deps.worker.stats, deps.gaps, deps.gate
    since = time.time() - window_s
    recent = np.asarray([d for t, d in s.ingest_delays if t >= since])
    return {
        "worker": deps.worker_name, "messages": s.messages, "chunks": s.chunks,
        "duplicates": s.duplicates, "seq_gaps": s.seq_gaps,
        "delivery_gaps": gaps.gaps, "redelivered": gaps.filled,
        "epochs_closed": s.epochs_closed,
        "causal_events": s.causal_events, "offline_events": s.offline_events,
        "nights_finished": s.nights_finished, "dead_letters": dict(s.dead_letters),
        "held_unknown_session": s.held_unknown_session,
        "active_subjects": deps.worker.active_subjects, "batches": s.batches,
        "checkpoints": s.checkpoints, "window_s": window_s,
        "ingest_delay_p50_s": float(np.percentile(recent, 50)) if recent.size else None,
        "ingest_delay_p99_s": float(np.percentile(recent, 99)) if recent.size else None,
        "ingest_delay_max_s": float(recent.max()) if recent.size else None,
        "input_readable": gate.readable(), "outages": gate.outages,
        "input_unreadable_s": round(gate.unreadable_s(), 3),
    }


def register(app: faust.App, deps: Deps) -> None:
    """Add the stats page to ``app``."""

    @app.page("/sleepstream/stats/")
    async def stats_page(web: Any, request: Any) -> Any:
        """Counters of this worker as JSON."""
        return web.json(stats(deps, float(request.query.get("window", 60))))
