"""Run a live ingestor until the user stops it (Ctrl-C or a service manager's SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["run_until_signal"]

T = TypeVar("T")


def run_until_signal(session: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``session(stop)`` in a new event loop; SIGINT or SIGTERM set ``stop``.

    The session ends itself cleanly once ``stop`` is set (a live ingestor sends its session
    end), so the signal never interrupts a send half-way.
    """

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await session(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
