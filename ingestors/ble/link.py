"""The connection to a Bluetooth LE heart-rate device: :class:`BleakLink` and its upkeep.

:func:`connection_loop` keeps the link up, re-establishing a dropped one with doubling
back-off; whatever the device measured while the link was down is missing from the stream
(a gap), not filled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ingestors.ble.measurement import HEART_RATE_MEASUREMENT_UUID

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient

__all__ = ["BleError", "BleakLink", "HeartRateLink", "LinkStatus", "connection_loop"]

log = logging.getLogger(__name__)


class BleError(RuntimeError):
    """The device cannot serve heart rate (names the device and what it offers)."""


class HeartRateLink(Protocol):
    """What :func:`ingest_ble` needs of a device connection (see :class:`BleakLink`)."""

    @property
    def address(self) -> str:
        """The device's address (for messages)."""

    def subscribe(self, on_value: Callable[[bytes], None],
                  on_lost: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        """Connect and deliver every 0x2A37 value to ``on_value`` until the context exits.

        ``on_lost`` is called when the device drops the link. Entering raises on a failed
        connection (retried by the caller) or :class:`BleError` for a device without the
        characteristic (not retried).
        """


@dataclass(frozen=True)
class BleakLink:
    """A device reached through bleak's ``BleakClient``.

    Parameters
    ----------
    address : str
        Bluetooth address (``AA:BB:CC:DD:EE:FF``; a UUID on macOS).
    backend : type, optional
        A ``bleak.backends.client.BaseBleakClient`` subclass; default bleak's platform
        backend (BlueZ, CoreBluetooth, WinRT, Android).
    options : mapping, optional
        More keyword arguments of ``BleakClient`` (and so of the backend).
    timeout_s : float
        Connection and service discovery time limit.
    """

    address: str
    backend: type[BaseBleakClient] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 20.0

    @asynccontextmanager
    async def subscribe(self, on_value: Callable[[bytes], None],
                        on_lost: Callable[[], None]) -> AsyncIterator[None]:
        """Connect, check for 0x2A37 and subscribe; stop and disconnect on exit."""
        from bleak import BleakClient

        client = BleakClient(self.address, lambda _client: on_lost(), backend=self.backend,
                             timeout=self.timeout_s, **self.options)
        async with client:
            if client.services.get_characteristic(HEART_RATE_MEASUREMENT_UUID) is None:
                offered = ", ".join(s.uuid for s in client.services) or "none"
                msg = (f"BLE device {self.address} has no Heart Rate Measurement "
                       f"characteristic (0x2A37 of service 0x180D); its services: {offered}")
                raise BleError(msg)
            await client.start_notify(HEART_RATE_MEASUREMENT_UUID,
                                      lambda _char, data: on_value(bytes(data)))
            try:
                yield
            finally:
                if client.is_connected:
                    with contextlib.suppress(Exception):
                        await client.stop_notify(HEART_RATE_MEASUREMENT_UUID)


class LinkStatus(Protocol):
    """The counters :func:`connection_loop` keeps (see :class:`~ingestors.ble.BleStatus`)."""

    connected: bool
    connections: int
    reconnect_attempts: int
    last_error: str


async def connection_loop(link: HeartRateLink, status: LinkStatus,
                          on_value: Callable[[bytes], None], stop: asyncio.Event,
                          min_backoff_s: float, max_backoff_s: float) -> None:
    """Keep the link up until ``stop``: reconnect with doubling back-off after a drop.

    Raises
    ------
    BleError
        For a device without heart rate (not retried).
    ImportError
        Without bleak.
    """
    backoff = min_backoff_s
    while not stop.is_set():
        lost = asyncio.Event()
        try:
            async with link.subscribe(on_value, lost.set):
                status.connected = True
                status.connections += 1
                backoff = min_backoff_s
                log.info("BLE %s: connected, notifications on", link.address)
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                if lost.is_set():
                    log.warning("BLE %s: link lost; reconnecting (samples until then are "
                                "missing from the stream)", link.address)
        except (BleError, ImportError):  # no heart rate service, or no bleak: not retried
            raise
        except Exception as err:
            status.reconnect_attempts += 1
            status.last_error = f"{type(err).__name__}: {err}"
            log.warning("BLE %s: connection failed (%s); next try in %.1f s", link.address,
                        status.last_error, backoff)
        finally:
            status.connected = False
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2.0, max_backoff_s)
