"""A Modbus connection (TCP or RTU) shared by the devices on it, and its input pollers.

pymodbus' client is not safe for concurrent use, and an RS-485 line carries one request
at a time anyway, so every request on a bus goes through one lock, under a timeout.
Devices on the same unit share one poller that reads the span of discrete inputs they
all need in a single request, at the highest rate any of them asked for: on a 9600-baud
RTU line that is the difference between polling at 20 Hz and not keeping up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.config import ConfigError, Options
from gateway.ports import DeviceUnavailable

log = structlog.get_logger("drivers.modbus")

RETRY_MAX_S = 1.5  # the longest pause of a unit poller between failed polls


@dataclass(frozen=True, kw_only=True)
class BusSpec:
    name: str
    transport: str  # tcp | rtu
    host: str | None = None
    port: int = 502
    device: str | None = None
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1
    timeout_s: float = 0.5


def parse_bus(name: str, table: Mapping[str, Any]) -> BusSpec:
    o = Options(table, f"modbus.{name}")
    transport = o.choice("transport", ("tcp", "rtu"))
    if transport == "tcp":
        spec = BusSpec(
            name=name,
            transport="tcp",
            host=o.text("host"),
            port=o.integer("port", 502, low=1, high=65535),
            timeout_s=o.number("timeout_s", 0.5, low=0.01, high=30),
        )
    else:
        spec = BusSpec(
            name=name,
            transport="rtu",
            device=o.text("device"),
            baudrate=o.integer("baudrate", 19200, low=300, high=921600),
            parity=o.choice("parity", ("N", "E", "O"), "N"),
            stopbits=o.integer("stopbits", 1, low=1, high=2),
            timeout_s=o.number("timeout_s", 0.5, low=0.01, high=30),
        )
    o.done()
    return spec


class ModbusBus:
    """One connection; all requests serialised, each under the bus timeout."""

    def __init__(self, spec: BusSpec) -> None:
        self.spec = spec
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._pollers: dict[int, UnitPoller] = {}

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        s = self.spec
        # retries=0 and our own timeout: a dead device must fail fast, the supervisor retries.
        if s.transport == "tcp":
            assert s.host is not None
            return AsyncModbusTcpClient(
                s.host,
                port=s.port,
                timeout=s.timeout_s,
                retries=0,
                reconnect_delay=0,
                name=f"modbus[{s.name}]",
            )
        assert s.device is not None
        return AsyncModbusSerialClient(
            s.device,
            baudrate=s.baudrate,
            parity=s.parity,
            stopbits=s.stopbits,
            timeout=s.timeout_s,
            retries=0,
            reconnect_delay=0,
            name=f"modbus[{s.name}]",
        )

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        client = self._new_client()
        try:
            async with asyncio.timeout(self.spec.timeout_s * 2):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as err:
            client.close()
            raise DeviceUnavailable(f"modbus[{self.spec.name}]: cannot connect: {err}") from err
        if not ok:
            client.close()
            raise DeviceUnavailable(f"modbus[{self.spec.name}]: cannot connect")
        self._client = client
        return client

    async def _call(self, what: str, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        # Waiting for the bus is bounded too (far above a queue of slow requests): a request
        # that never ends (a library that swallowed its timeout) must show up as a fault and
        # have its connection dropped, not freeze every device behind it.
        try:
            async with asyncio.timeout(max(2.0, 10 * self.spec.timeout_s)):
                await self._lock.acquire()
        except TimeoutError:
            self.close()
            raise DeviceUnavailable(f"modbus[{self.spec.name}]: {what}: bus busy") from None
        try:
            client = await self._connected()
            try:
                async with asyncio.timeout(self.spec.timeout_s):
                    response = await getattr(client, fn_name)(*args, **kwargs)
            except (TimeoutError, ModbusException, OSError) as err:
                self.close()  # a half-dead connection is replaced on the next call
                raise DeviceUnavailable(
                    f"modbus[{self.spec.name}]: {what}: {str(err) or type(err).__name__}"
                ) from err
        finally:
            self._lock.release()
        if response.isError():
            raise DeviceUnavailable(f"modbus[{self.spec.name}]: {what}: device answered {response}")
        return response

    async def read_inputs(self, unit: int, address: int, count: int) -> list[bool]:
        response = await self._call(
            f"read inputs {address}+{count} of unit {unit}",
            "read_discrete_inputs",
            address,
            count=count,
            device_id=unit,
        )
        bits = list(response.bits[:count])
        if len(bits) != count:
            raise DeviceUnavailable(f"modbus[{self.spec.name}]: short reply from unit {unit}")
        return bits

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._call(
            f"write coil {address} of unit {unit}", "write_coil", address, value, device_id=unit
        )

    def poller(self, unit: int) -> UnitPoller:
        if unit not in self._pollers:
            self._pollers[unit] = UnitPoller(self, unit)
        return self._pollers[unit]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class Subscription:
    addresses: tuple[int, ...]
    stale_s: float = 5.0
    queue: asyncio.Queue[dict[int, bool] | DeviceUnavailable] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1)
    )

    async def get(self) -> dict[int, bool]:
        """The next reading of the inputs.

        A poller that goes quiet is a device fault: a safety loop must never keep its last
        "clear" because nobody reads it any more.
        """
        try:
            async with asyncio.timeout(self.stale_s):
                item = await self.queue.get()
        except TimeoutError:
            raise DeviceUnavailable(f"no reading of the inputs for {self.stale_s:g} s") from None
        if isinstance(item, DeviceUnavailable):
            raise item
        return item

    async def next(self) -> dict[int, bool] | DeviceUnavailable:
        """The next reading, or the error of a failed poll (the poller keeps retrying, so a
        device stays subscribed through an outage and is read again on the first good poll).
        Raises DeviceUnavailable only when the poller went quiet, as ``get`` does."""
        try:
            async with asyncio.timeout(self.stale_s):
                return await self.queue.get()
        except TimeoutError:
            raise DeviceUnavailable(f"no reading of the inputs for {self.stale_s:g} s") from None

    def offer(self, item: dict[int, bool] | DeviceUnavailable) -> None:
        """Latest value wins: a slow consumer sees the newest inputs, never a backlog."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)


class UnitPoller:
    """Reads the discrete inputs its subscribers need, in one request per cycle."""

    def __init__(self, bus: ModbusBus, unit: int) -> None:
        self.bus = bus
        self.unit = unit
        self.hz = 1.0
        self.subscriptions: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._progress = 0.0  # loop time of the poll task's last finished cycle

    def subscribe(self, addresses: tuple[int, ...], hz: float) -> Subscription:
        # A cycle takes at most a connect and a read (3 timeouts) plus the poll period;
        # a reading later than that (with a margin for a busy CPU) means a stuck poller.
        sub = Subscription(addresses, stale_s=3 * self.bus.spec.timeout_s + 2 / hz + 2.0)
        self.subscriptions.append(sub)
        self.hz = max(self.hz, hz)
        loop = asyncio.get_running_loop()
        stuck = self._task is not None and loop.time() - self._progress > sub.stale_s
        if self._task is None or self._task.done() or stuck:
            if self._task is not None:
                self._task.cancel()
            self._progress = loop.time()
            self._task = loop.create_task(
                self._run(), name=f"modbus[{self.bus.spec.name}].unit[{self.unit}].poll"
            )
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        if not self.subscriptions and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while self.subscriptions:
            wanted = sorted({a for s in self.subscriptions for a in s.addresses})
            low, high = wanted[0], wanted[-1]
            try:
                bits = await self.bus.read_inputs(self.unit, low, high - low + 1)
            except DeviceUnavailable as err:
                failures += 1
                self._progress = asyncio.get_running_loop().time()
                for sub in list(self.subscriptions):
                    sub.offer(err)
                # Bounded below the subscribers' stale time: an outage is a stream of
                # errors, never a silence, and a device that returns is read within 1.5 s.
                await asyncio.sleep(
                    min(RETRY_MAX_S, random.uniform(0, 1.5 ** min(10, failures)) / 10 + 0.05)
                )
                continue
            failures = 0
            self._progress = asyncio.get_running_loop().time()
            snapshot = {low + i: bit for i, bit in enumerate(bits)}
            for sub in list(self.subscriptions):
                sub.offer({a: snapshot[a] for a in sub.addresses})
            await asyncio.sleep(1 / self.hz)


def build_buses(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, ModbusBus]:
    return {name: ModbusBus(parse_bus(name, table)) for name, table in tables.items()}


def bus_for(buses: Mapping[str, ModbusBus], o: Options) -> ModbusBus:
    name = o.text("bus")
    if name not in buses:
        raise ConfigError(f"{o.where}.bus: no [modbus.{name}] connection is configured")
    return buses[name]
