"""What every ingestor shares: sessions, chunking on the grid, and a durable outbox.

* :mod:`~ingestors.base.session`: a session's identity and messages (start, chunks
  numbered per source, end with the final ``seq``) appended to an outbox.
* :mod:`~ingestors.base.grid`: the 5-s grid that cuts streams into chunks, the same for a
  replayed night and a live device; :mod:`~ingestors.base.regular` cuts regular high-rate
  signals (EEG) on it by sample index, into compact chunks of raw samples.
* :mod:`~ingestors.base.outbox` and :mod:`~ingestors.base.spool`: what waits for the
  broker, in memory (replays) or in a locked SQLite spool per session (live ingestors).
* :mod:`~ingestors.base.sender`: sends an outbox in order with an idempotent producer,
  through broker outages (back-off, a fresh producer, re-sending the unacknowledged).
* :mod:`~ingestors.base.live`: a live session's spool and sender, and the drains of
  spools that earlier runs left.
"""

from ingestors.base.grid import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_SPANS,
    GridChunker,
    Piece,
    check_max_samples,
    grid_cells,
    split,
)
from ingestors.base.live import LiveOutlet, live_outlet
from ingestors.base.outbox import Backlog, MemoryOutbox, Outbox, Row, Stored
from ingestors.base.regular import (
    RawSamples,
    RegularChunker,
    RegularPiece,
    RegularSpec,
    check_raw,
    regular_pieces,
)
from ingestors.base.sender import (
    OutboxSender,
    Producer,
    ProducerFactory,
    SendError,
    SendStatus,
    is_transient,
    kafka_producer,
    producer_factory,
)
from ingestors.base.session import LiveSession, SessionInfo, SessionSender, Topics
from ingestors.base.spool import (
    SpoolError,
    SpoolFullError,
    SpoolLockedError,
    SpoolOutbox,
    leftover_spools,
    spool_file,
)

__all__ = [
    "DEFAULT_MAX_SAMPLES", "DEFAULT_SPANS", "Backlog", "GridChunker", "LiveOutlet",
    "LiveSession", "MemoryOutbox", "Outbox", "OutboxSender", "Piece", "Producer",
    "ProducerFactory", "RawSamples", "RegularChunker", "RegularPiece", "RegularSpec", "Row",
    "SendError", "SendStatus", "SessionInfo", "SessionSender", "SpoolError", "SpoolFullError",
    "SpoolLockedError", "SpoolOutbox", "Stored", "Topics", "check_max_samples", "check_raw",
    "grid_cells", "is_transient", "kafka_producer", "leftover_spools", "live_outlet",
    "producer_factory", "regular_pieces", "spool_file", "split",
]
