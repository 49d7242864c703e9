"""The spool and sender of a live ingestor, and the drains of spools left by earlier runs.

:func:`live_outlet` opens (and locks) the spool of one session in
``settings.spool_folder()``, starts an :class:`~ingestors.base.sender.OutboxSender` on it,
and one more on every other spool in the folder that no process owns (sessions of
ingestors that were killed or stopped while the broker was down): those are sent too,
and deleted once empty if their session had ended, or had nothing appended for longer than
``silence_timeout_s`` (the worker has finished it: it can no longer be resumed). A spool
of the same subject and session is resumed (:attr:`LiveOutlet.resumed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ingestors.base.sender import OutboxSender, ProducerFactory, SendStatus, producer_factory
from ingestors.base.session import SessionInfo, SessionSender, Topics
from ingestors.base.spool import (
    SpoolError,
    SpoolLockedError,
    SpoolOutbox,
    leftover_spools,
    spool_file,
)
from stream.settings import StreamSettings

__all__ = ["LiveOutlet", "live_outlet"]

log = logging.getLogger(__name__)


@dataclass
class _Drain:
    spool: SpoolOutbox
    sender: OutboxSender
    stale_s: float  # an unfinished session silent this long is finished by the worker
    task: asyncio.Task[None] | None = None

    def start(self) -> _Drain:
        self.task = asyncio.create_task(self.sender.run())
        return self

    @property
    def disposable(self) -> bool:
        """Empty, and its session ended, never started, or is too old to be resumed."""
        meta = self.spool.meta()
        if self.spool.rows:
            return False
        quiet_s = time.time() - float(meta.get("appended_at", "0"))
        return "ended" in meta or "session" not in meta or quiet_s > self.stale_s

    def close(self) -> None:
        """Close the spool, deleting it when nothing in it is worth keeping."""
        delete = self.disposable
        if not delete and self.spool.rows:
            log.warning("%d messages (%.1f MB) of session %s stay in the spool %s; the next "
                        "ingestor run that reaches the broker sends them", self.spool.rows,
                        self.spool.bytes / 1e6, self.spool.meta().get("session_id"),
                        self.spool.path)
        self.spool.close(delete=delete)


@dataclass
class LiveOutlet:
    """Where a live session's messages go: its spool, drained by a sender.

    Attributes
    ----------
    spool : SpoolOutbox
        The session's spool.
    sender : OutboxSender
        Sends it.
    topics : Topics
        Topic names.
    bootstrap : str
        The brokers (for messages).
    resumed : SessionInfo or None
        The session a spool of an earlier run holds (its start was spooled), else None.
    leftovers : list
        Drains of other sessions' spools.
    """

    spool: SpoolOutbox
    sender: OutboxSender
    topics: Topics
    bootstrap: str
    resumed: SessionInfo | None = None
    leftovers: list[_Drain] = field(default_factory=list)
    _own: _Drain | None = field(default=None, init=False, repr=False)

    @property
    def send(self) -> SendStatus:
        """The sender's counters."""
        return self.sender.status

    @property
    def ended_before(self) -> bool:
        """The spooled session had ended already: nothing more may be appended."""
        return "ended" in self.spool.meta()

    def session_sender(self, info: SessionInfo, *, regenerates: bool = False) -> SessionSender:
        """A sender of ``info`` into this spool (see :class:`SessionSender`)."""
        return SessionSender(info, self.spool, self.topics, regenerates=regenerates)

    def text(self) -> str:
        """Broker state and backlog for a status line (rich markup)."""
        send = self.sender.status
        state = send.text() if send.unreachable_since is None else f"[red]{send.text()}[/]"
        text = f"{state} | {self.spool.backlog().text()}"
        waiting = [d.spool for d in self.leftovers if d.spool.rows]
        if waiting:
            text += (f" | earlier spools {len(waiting)} "
                     f"({sum(s.rows for s in waiting)} messages)")
        return text

    def check(self) -> None:
        """Raise the sender's error if it stopped for good (see :class:`SendError`)."""
        task = None if self._own is None else self._own.task
        if task is not None and task.done() and not task.cancelled() \
                and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def finish(self) -> None:
        """Seal the spool and wait until the broker has everything (and the earlier spools).

        Raises
        ------
        SendError
            If sending failed for good.
        """
        self.spool.seal()
        tasks = [d.task for d in (self._own, *self.leftovers) if d is not None and d.task]
        await asyncio.wait(tasks)
        self.check()

    def _context(self) -> str:
        send = self.sender.status
        if send.unreachable_since is not None:
            return (f"; the broker at {self.bootstrap} has acknowledged nothing since "
                    f"{send.unreachable_since.astimezone():%Y-%m-%d %H:%M:%S %Z} "
                    f"({send.last_error})")
        if not send.acked:  # the first send is still under way
            return f"; the broker at {self.bootstrap} has acknowledged nothing yet"
        return f"; the broker at {self.bootstrap} acknowledged {send.acked} messages so far"


def _sender(settings: StreamSettings, spool: SpoolOutbox, factory: ProducerFactory,
            label: str) -> OutboxSender:
    return OutboxSender(spool, factory, label=label, window=settings.send_window,
                        timeout_s=settings.send_timeout_s, retry_max_s=settings.send_retry_max_s)


def _leftovers(settings: StreamSettings, own: SpoolOutbox,
               factory: ProducerFactory) -> list[_Drain]:
    """Drains of the spools no process owns, sealed (nobody appends to them any more)."""
    drains = []
    for path in leftover_spools(own.path.parent, own.path):
        try:
            spool = SpoolOutbox.open(path, max_bytes=own.max_bytes, create=False)
        except SpoolLockedError:
            continue  # its owner sends it
        except (SpoolError, ValueError) as err:
            log.warning("skipping %s: %s", path, err)
            continue
        spool.seal()
        meta = spool.meta()
        log.info("sending %d messages of session %s (subject %s) left in %s", spool.rows,
                 meta.get("session_id"), meta.get("subject_id"), path)
        drains.append(_Drain(spool, _sender(settings, spool, factory,
                                            f"earlier spool {path.name}"),
                             settings.silence_timeout_s))
    return drains


@asynccontextmanager
async def live_outlet(settings: StreamSettings, subject_id: str, session_id: str, label: str,
                      factory: ProducerFactory | None = None) -> AsyncIterator[LiveOutlet]:
    """Open the spool of a live session and send it (and earlier spools) while in use.

    Parameters
    ----------
    settings : StreamSettings
        Broker, Kafka security, topics, spool folder and bound, sender settings.
    subject_id, session_id : str
        The session.
    label : str
        What is sent, for messages (``"BLE session"``).
    factory : ProducerFactory, optional
        Makes started producers; default idempotent ``AIOKafkaProducer`` s of ``settings``.

    Yields
    ------
    LiveOutlet
        Call :meth:`LiveOutlet.finish` after the session end to wait for the broker; left
        without it (an error, a cancellation), what was not acknowledged stays spooled.

    Raises
    ------
    SpoolLockedError
        If another ingestor owns the session's spool.
    SpoolError
        If the spool is damaged or of another session.
    """
    factory = factory if factory is not None else producer_factory(settings)
    path = spool_file(settings.spool_folder(), subject_id, session_id)
    spool = SpoolOutbox.open(path, max_bytes=int(settings.spool_max_mb * 1e6),
                             subject_id=subject_id, session_id=session_id)
    outlet = LiveOutlet(spool, _sender(settings, spool, factory, label), Topics.of(settings),
                        settings.bootstrap, SessionSender.resumable(spool))
    spool.context = outlet._context
    drains = [_Drain(spool, outlet.sender, settings.silence_timeout_s)]
    try:
        outlet.leftovers = _leftovers(settings, spool, factory)
        drains += outlet.leftovers
        outlet._own = drains[0]
        for drain in drains:
            drain.start()
        yield outlet
    finally:
        await _stop(drains)


async def _stop(drains: list[_Drain]) -> None:
    """Stop the senders (those still running are cancelled) and close their spools."""
    tasks = [d.task for d in drains if d.task is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for drain in drains:
        done = drain.task
        if done is not None and not done.cancelled() and done.exception() is not None \
                and drain is not drains[0]:
            log.error("sending %s failed: %s", drain.spool.path, done.exception())
        drain.close()
