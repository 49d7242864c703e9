"""The built-in live page: subjects, hypnograms as the night goes on, revision, summary.

:class:`LiveView` (:mod:`stream.live.view`) keeps the recent nights compactly in memory,
:class:`LiveFollower` (:mod:`stream.live.follow`) feeds it from the topics, and
:func:`install_live` (:mod:`stream.live.web`) serves it at ``/live/`` on the worker's web
server.
"""

from __future__ import annotations

from stream.live.follow import LiveFollower
from stream.live.view import EPOCH_S, MAX_EPOCHS, STAGE_SETS, LiveView, UnknownNight
from stream.live.web import install_live

__all__ = ["EPOCH_S", "MAX_EPOCHS", "STAGE_SETS", "LiveFollower", "LiveView", "UnknownNight",
           "install_live"]
