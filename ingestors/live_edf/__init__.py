"""Growing EDF/EDF+ files (recordings still being written) as live sessions on Kafka.

See :mod:`ingestors.live_edf.reader` for the incremental reader,
:mod:`ingestors.live_edf.channels` for channels and units and
:mod:`ingestors.live_edf.rpeaks` for the R-peak detector.
"""

from ingestors.live_edf.channels import ChannelPlan, choose_channels
from ingestors.live_edf.reader import LIVE_ALIASES, EdfFollower, LiveSignal, SignalBlock
from ingestors.live_edf.rpeaks import RPeakDetector

__all__ = [
    "LIVE_ALIASES", "ChannelPlan", "EdfFollower", "LiveSignal", "RPeakDetector", "SignalBlock",
    "choose_channels",
]
