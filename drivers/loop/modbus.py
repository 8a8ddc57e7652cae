"""A loop detector output wired to a discrete input of a Modbus I/O module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.loop.debounce import Debouncer
from drivers.modbus import ModbusBus, bus_for
from gateway.config import Options
from gateway.ports import DeviceLink


class ModbusLoop:
    def __init__(
        self,
        bus: ModbusBus,
        *,
        unit: int,
        input: int,
        poll_hz: float,
        debounce_ms: float,
        active_high: bool = True,
    ) -> None:
        self.bus, self.unit, self.input = bus, unit, input
        self.poll_hz, self.debounce_s, self.active_high = poll_hz, debounce_ms / 1000, active_high

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], where: str, buses: Mapping[str, ModbusBus]
    ) -> ModbusLoop:
        o = Options(table, where)
        o.text("driver")
        loop = cls(
            bus_for(buses, o),
            unit=o.integer("unit", 1, low=0, high=247),
            input=o.integer("input", low=0, high=65535),
            poll_hz=o.number("poll_hz", 20.0, low=0.5, high=200),
            debounce_ms=o.number("debounce_ms", 100.0, low=0, high=10_000),
            active_high=o.flag("active_high", True),
        )
        o.done()
        return loop

    async def run(self, link: DeviceLink) -> None:
        poller = self.bus.poller(self.unit)
        sub = poller.subscribe((self.input,), self.poll_hz)
        debounce = Debouncer(self.debounce_s)
        try:
            while True:
                item = await sub.get()
                link.healthy()
                state = debounce.feed(item[self.input] == self.active_high)
                if state is not None:
                    link.report(state)
        finally:
            poller.unsubscribe(sub)
