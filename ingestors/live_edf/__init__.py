"""Growing EDF/EDF+ files (recordings still being written) as live sessions on Kafka.

See :mod:`ingestors.live_edf.reader` for the incremental reader,
:mod:`ingestors.live_edf.channels` for channels and units, :mod:`ingestors.live_edf.rpeaks`
for the R-peak detector and :mod:`ingestors.live_edf.ingestor` for the session.
"""

from ingestors.live_edf.channels import ChannelPlan, choose_channels
from ingestors.live_edf.ingestor import (
    EdfLiveReport,
    EdfLiveStatus,
    ingest_edf_live,
    run_edf_live,
)
from ingestors.live_edf.reader import LIVE_ALIASES, EdfFollower, LiveSignal, SignalBlock
from ingestors.live_edf.rpeaks import RPeakDetector

__all__ = [
    "LIVE_ALIASES", "ChannelPlan", "EdfFollower", "EdfLiveReport",
    "EdfLiveStatus", "LiveSignal", "RPeakDetector", "SignalBlock", "choose_channels",
    "ingest_edf_live", "run_edf_live",
]
