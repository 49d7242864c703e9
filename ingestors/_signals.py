"""Run a live ingestor until the user stops it (Ctrl-C or a service manager's SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Abandoned", "run_until_signal"]

T = TypeVar("T")


class Abandoned(RuntimeError):
    """A second signal stopped the ingestor while it waited for the broker."""


def run_until_signal(session: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``session(stop)`` in a new event loop; SIGINT or SIGTERM set ``stop``.

    The session ends itself cleanly once ``stop`` is set (a live ingestor sends its session
    end, then waits until the broker has everything), so the signal never interrupts a send
    half-way. A second signal cancels the session: what the broker has not acknowledged
    stays in the spool, for the next run.

    Raises
    ------
    Abandoned
        After a second signal.
    """

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            stop.set()
            if signals > 1 and task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await session(stop)
        except asyncio.CancelledError:
            if signals > 1:
                msg = ("stopped before the broker acknowledged everything; the rest stays in "
                       "the spool and is sent by the next ingestor run")
                raise Abandoned(msg) from None
            raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
