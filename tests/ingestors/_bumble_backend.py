"""A virtual heart-rate strap (bumble) and a bleak backend that reaches it.

:class:`VirtualStrap` runs two bumble devices on one in-process :class:`~bumble.link.LocalLink`:
a peripheral with the standard Heart Rate Service (0x180D; measurement 0x2A37, notify) and
a central. :class:`BumbleBleakClient` subclasses bleak's ``BaseBleakClient`` and drives that
central, so the unmodified ``BleakClient`` API (connect, service discovery, start/stop_notify,
disconnect callback) runs against the virtual strap: pass ``backend=BumbleBleakClient`` and
``strap=<VirtualStrap>`` to ``BleakClient``. No radio, no BlueZ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.controller import Controller
from bumble.device import Connection, Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.profiles.heart_rate_service import HeartRateService
from bumble.transport.common import AsyncPipeSink

STRAP_ADDRESS = "F1:F1:F1:F1:F1:F1"
CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"
Measurement = HeartRateService.HeartRateMeasurement


def _device(name: str, address: str, link: LocalLink) -> Device:
    controller = Controller(name, link=link, public_address=address)
    return Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


class VirtualStrap:
    """A chest strap on a virtual link, and the central a bleak client drives.

    The strap advertises whenever it has no connection, so a dropped link can be
    re-established. ``subscribed`` is set each time a central enables notifications.
    """

    def __init__(self, heart_rate_service: bool = True) -> None:
        self.link = LocalLink()
        self.peripheral = _device("strap", STRAP_ADDRESS, self.link)
        self.central = _device("central", CENTRAL_ADDRESS, self.link)
        self.service = HeartRateService(read_heart_rate_measurement=lambda _: Measurement(60))
        if heart_rate_service:
            self.peripheral.add_service(self.service)
        self.connection: Connection | None = None
        self.subscribed = asyncio.Event()
        self.sent: list[bytes] = []
        self.peripheral.on("connection", self._on_connection)
        self.peripheral.on("characteristic_subscription", self._on_subscription)

    async def start(self) -> VirtualStrap:
        """Power both devices on and advertise."""
        await self.peripheral.power_on()
        await self.central.power_on()
        await self.peripheral.start_advertising(auto_restart=True)
        return self

    @property
    def address(self) -> str:
        """The address a central connects to."""
        return str(self.peripheral.random_address)

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        connection.on("disconnection", self._on_disconnection)

    def _on_disconnection(self, _reason: int) -> None:
        self.connection = None
        self.subscribed.clear()

    def _on_subscription(self, _connection: Connection, _characteristic: Any,
                         notify: bool, _indicate: bool) -> None:
        if notify:
            self.subscribed.set()

    async def notify(self, value: Measurement | bytes) -> None:
        """Send one 0x2A37 notification (a measurement, or raw bytes as they are)."""
        data = bytes(value)
        self.sent.append(data)
        await self.peripheral.notify_subscribers(
            self.service.heart_rate_measurement_characteristic, data)

    async def drop(self) -> None:
        """Drop the link from the strap's side (as when the strap goes out of range)."""
        if self.connection is not None:
            await self.connection.disconnect()


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend over a :class:`VirtualStrap`'s bumble central."""

    def __init__(self, address_or_ble_device: Any, *,
                 disconnected_callback: Callable[[], None] | None = None,
                 timeout: float = 10.0, strap: VirtualStrap, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self.strap = strap
        self.connection: Connection | None = None
        self.peer: Peer | None = None
        self._closing = False
        self._proxies: dict[int, Any] = {}
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return "virtual-strap"

    @property
    def mtu_size(self) -> int:
        return 23 if self.connection is None else self.connection.att_mtu

    @property
    def is_connected(self) -> bool:
        return self.connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        try:
            self.connection = await asyncio.wait_for(
                self.strap.central.connect(self.address), self._timeout)
        except Exception as err:
            raise BleakError(f"cannot connect to {self.address}: {err}") from err
        self.connection.on("disconnection", self._on_disconnection)
        self.peer = Peer(self.connection)
        await self.peer.discover_all()
        self.services = self._collection()

    def _collection(self) -> BleakGATTServiceCollection:
        assert self.peer is not None
        services = BleakGATTServiceCollection()
        for s in self.peer.services:
            service = BleakGATTService(s, s.handle, _uuid(s.uuid))
            services.add_service(service)
            for c in s.characteristics:
                props: Any = [p.name.lower() for p in type(c.properties) if p in c.properties]
                char = BleakGATTCharacteristic(c, c.handle, _uuid(c.uuid), props,
                                               lambda: 20, service)
                services.add_characteristic(char)
                self._proxies[c.handle] = c
                for d in c.descriptors:
                    services.add_descriptor(BleakGATTDescriptor(d, d.handle, _uuid(d.type),
                                                                char))
        return services

    def _on_disconnection(self, _reason: int) -> None:
        self.connection = self.peer = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        if self.connection is None:
            return
        self._closing = True
        try:
            await self.connection.disconnect()
        finally:
            self.connection = self.peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the virtual strap needs no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("the virtual strap needs no pairing")

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic,
                             **kwargs: Any) -> bytearray:
        return bytearray(await self._proxies[characteristic.handle].read_value())

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                   **kwargs: Any) -> bytearray:
        raise NotImplementedError

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        await self._proxies[characteristic.handle].write_value(bytes(data), response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise NotImplementedError

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = subscriber
        await self._proxies[characteristic.handle].subscribe(subscriber)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if self.connection is not None and subscriber is not None:
            await self._proxies[characteristic.handle].unsubscribe(subscriber)


def _uuid(uuid: Any) -> str:
    """bleak's 128-bit lower-case form of a bumble UUID."""
    from bleak.uuids import normalize_uuid_str

    return normalize_uuid_str(uuid.to_hex_str("-"))
