"""The live page on the worker's web server, and the task that feeds it.

Routes (all ``GET``):

``/live/``
    The page (``stream/live/page/``: HTML, CSS and vanilla JS drawing SVG; no external
    resources).
``/live/api/subjects``
    One row per subject: its latest session, start, epochs scored (causal, offline), the
    current stage, the last update, whether the night ended and has a summary.
``/live/api/night?subject=S[&session=X][&known=V]``
    The arrays the page draws (:meth:`~stream.live.view.LiveView.night`); the latest
    session unless ``session`` is given. With ``known`` equal to the night's ``version``
    the answer is only ``{"version": V, "unchanged": true}``.

Unknown subjects and sessions get a 404 with a JSON ``error`` that names them; a missing
``subject`` a 400.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import faust

from stream.live.follow import LiveFollower
from stream.live.view import LiveView, UnknownNight
from stream.settings import StreamSettings

__all__ = ["install_live"]

_ASSETS = {"live.js": "text/javascript", "live.css": "text/css"}
_NO_STORE = {"Cache-Control": "no-store"}


def _asset(name: str) -> bytes:
    return (resources.files("stream.live") / "page" / name).read_bytes()


def install_live(app: faust.App, settings: StreamSettings) -> LiveView | None:
    """Register the live page's routes and its follower task on ``app``.

    Parameters
    ----------
    app : faust.App
        The worker's app (:func:`stream.app.create_app`).
    settings : StreamSettings
        ``live_enabled``, ``live_lookback_h``, ``live_sessions_per_subject``, the broker
        and the topic names.

    Returns
    -------
    LiveView or None
        The store the page reads, or None when the page is off (``live_enabled`` or
        ``web_enabled`` false).
    """
    if not (settings.live_enabled and settings.web_enabled):
        return None
    view = LiveView(sessions_per_subject=settings.live_sessions_per_subject)
    follower = LiveFollower(settings, view)
    index = _asset("index.html").decode()
    assets = {name: _asset(name) for name in _ASSETS}

    @app.page("/live/", name="live_index")
    async def live_index(web: Any, request: Any) -> Any:
        return web.html(index, headers=dict(_NO_STORE))

    for name, ctype in _ASSETS.items():
        def make(name: str = name, ctype: str = ctype) -> None:
            async def asset(web: Any, request: Any) -> Any:
                return web.bytes(assets[name], content_type=ctype, headers=dict(_NO_STORE))
            app.page(f"/live/{name}", name=f"live_{name.replace('.', '_')}")(asset)
        make()

    @app.page("/live/api/subjects", name="live_subjects")
    async def live_subjects(web: Any, request: Any) -> Any:
        return web.json({"subjects": view.subjects(), "undecodable": dict(view.undecodable),
                         "follower_errors": follower.errors}, headers=dict(_NO_STORE))

    @app.page("/live/api/night", name="live_night")
    async def live_night(web: Any, request: Any) -> Any:
        subject = request.query.get("subject")
        if not subject:
            return web.json({"error": "give the subject: /live/api/night?subject=ID"},
                            status=400, headers=dict(_NO_STORE))
        try:
            night = view.night_of(subject, request.query.get("session") or None)
        except UnknownNight as err:
            return web.json({"error": str(err)}, status=404, headers=dict(_NO_STORE))
        if request.query.get("known") == str(night.version):
            return web.json({"version": night.version, "unchanged": True},
                            headers=dict(_NO_STORE))
        return web.json(view.night(subject, night.session_id), headers=dict(_NO_STORE))

    @app.task
    async def follow_for_live_page() -> None:
        """Read the outputs into the live view until the worker stops."""
        await follower.run()

    return view
