"""A barrier driven through a Modbus controller or I/O module.

The register map is configuration, so common barrier controllers and plain I/O modules
fit: a coil that opens (pulsed for N ms, or held while open), optionally a coil that
closes, and discrete inputs that report opened / closed / fault.

The position reported is the limit switches': ``open``, ``closed``, or ``moving`` between
them (with only one switch wired, "not closed" is open and "not open" is closed). Without
position inputs it is the driver's belief: ``unknown`` until it has commanded the barrier,
``moving`` for ``travel_s`` after a command, then the commanded position. The position is
reported on change, on the first poll after a (re)connect and every ``REPORT_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog

from drivers.modbus import ModbusBus, bus_for
from gateway.config import ConfigError, Options
from gateway.ports import REPORT_S, DeviceLink, DeviceUnavailable

log = structlog.get_logger("drivers.barrier.modbus")


class ModbusBarrier:
    def __init__(
        self,
        bus: ModbusBus,
        *,
        unit: int,
        open_coil: int,
        close_coil: int | None,
        command: str,
        pulse_ms: float,
        opened_input: int | None,
        closed_input: int | None,
        fault_input: int | None,
        poll_hz: float,
        travel_s: float,
    ) -> None:
        self.bus, self.unit = bus, unit
        self.open_coil, self.close_coil, self.command = open_coil, close_coil, command
        self.pulse_s = pulse_ms / 1000
        self.opened_input, self.closed_input, self.fault_input = (
            opened_input,
            closed_input,
            fault_input,
        )
        self.poll_hz, self.travel_s = poll_hz, travel_s
        self._link: DeviceLink | None = None
        self._pulses: set[asyncio.Task[None]] = set()
        self._assumed: asyncio.Task[None] | None = None
        self._belief = "unknown"  # without position inputs: what the last command implies

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], where: str, buses: Mapping[str, ModbusBus]
    ) -> ModbusBarrier:
        o = Options(table, where)
        o.text("driver")
        command = o.choice("command", ("pulse", "hold"), "pulse")
        barrier = cls(
            bus_for(buses, o),
            unit=o.integer("unit", 1, low=0, high=247),
            open_coil=o.integer("open_coil", low=0, high=65535),
            close_coil=o.integer("close_coil", None, low=0, high=65535),
            command=command,
            pulse_ms=o.number("pulse_ms", 500.0, low=10, high=10_000),
            opened_input=o.integer("opened_input", None, low=0, high=65535),
            closed_input=o.integer("closed_input", None, low=0, high=65535),
            fault_input=o.integer("fault_input", None, low=0, high=65535),
            poll_hz=o.number("poll_hz", 10.0, low=0.5, high=200),
            travel_s=o.number("travel_s", 3.0, low=0, high=60),
        )
        o.done()
        if command == "pulse" and barrier.close_coil is None:
            raise ConfigError(
                f'{where}: a pulse-driven barrier needs close_coil (or use command = "hold")'
            )
        return barrier

    @property
    def _inputs(self) -> tuple[int, ...]:
        return tuple(
            a for a in (self.opened_input, self.closed_input, self.fault_input) if a is not None
        )

    @property
    def _switches(self) -> bool:
        return self.opened_input is not None or self.closed_input is not None

    def _position(self, item: dict[int, bool]) -> str:
        if not self._switches:
            return self._belief
        opened = item[self.opened_input] if self.opened_input is not None else None
        closed = item[self.closed_input] if self.closed_input is not None else None
        if opened:
            return "open"
        if closed:
            return "closed"
        if opened is None:
            return "open"  # only a closed switch: not closed is open
        if closed is None:
            return "closed"  # only an open switch
        return "moving"

    async def run(self, link: DeviceLink) -> None:
        self._link = link
        try:
            if not self._inputs:
                await self._run_without_inputs(link)
            else:
                await self._run_polled(link)
        finally:
            self._link = None

    async def _run_without_inputs(self, link: DeviceLink) -> None:
        """No feedback to poll: prove the controller answers, and report the belief."""
        while True:
            await self.bus.read_inputs(self.unit, 0, 1)
            link.healthy()
            link.report(self._belief)
            await asyncio.sleep(REPORT_S)

    async def _run_polled(self, link: DeviceLink) -> None:
        poller = self.bus.poller(self.unit)
        sub = poller.subscribe(self._inputs, self.poll_hz)
        last: str | None = None
        fault: bool | None = None
        reported_at = float("-inf")
        try:
            while True:
                item = await sub.next()
                if isinstance(item, DeviceUnavailable):
                    link.lost(str(item))
                    last = fault = None  # re-reported on the first good poll
                    continue
                link.healthy()
                if self.fault_input is not None and item[self.fault_input] != fault:
                    fault = item[self.fault_input]
                    link.fault("barrier controller reports a fault" if fault else None)
                position = self._position(item)
                now = time.monotonic()
                if position != last or now - reported_at >= REPORT_S:
                    last, reported_at = position, now
                    link.report(position)
        finally:
            poller.unsubscribe(sub)

    async def _pulse(self, coil: int) -> None:
        await self.bus.write_coil(self.unit, coil, True)

        async def release() -> None:
            await asyncio.sleep(self.pulse_s)
            try:
                await self.bus.write_coil(self.unit, coil, False)
            except DeviceUnavailable as err:
                log.warning("barrier_pulse_release_failed", coil=coil, error=str(err))

        task = asyncio.get_running_loop().create_task(release(), name=f"barrier.pulse[{coil}]")
        self._pulses.add(task)
        task.add_done_callback(self._pulses.discard)

    def _assume(self, position: str) -> None:
        if self._switches:
            return
        if self._assumed is not None:
            self._assumed.cancel()
        self._belief = "moving"
        if self._link is not None:
            self._link.report("moving")

        async def arrive() -> None:
            await asyncio.sleep(self.travel_s)
            self._belief = position
            if self._link is not None:
                self._link.report(position)

        self._assumed = asyncio.get_running_loop().create_task(arrive(), name="barrier.travel")

    async def open(self) -> None:
        if self.command == "pulse":
            await self._pulse(self.open_coil)
        else:
            await self.bus.write_coil(self.unit, self.open_coil, True)
        self._assume("open")

    async def close(self) -> None:
        if self.command == "pulse":
            assert self.close_coil is not None
            await self._pulse(self.close_coil)
        else:
            await self.bus.write_coil(self.unit, self.open_coil, False)
            if self.close_coil is not None:
                await self._pulse(self.close_coil)
        self._assume("closed")
