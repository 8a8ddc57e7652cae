"""A loop detector output wired to a discrete input of a Modbus I/O module.

The input is polled (shared with the other devices of the unit); the debounced level is
reported on change, on the first reading after a (re)connect and every ``REPORT_S``.
Through an outage the driver stays subscribed and reports the loss, so the first good
poll brings the lane the loop's level again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from drivers.loop.debounce import Debouncer, reads_for
from drivers.modbus import ModbusBus, bus_for
from gateway.config import Options
from gateway.ports import REPORT_S, DeviceLink, DeviceUnavailable


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
        debounce = self._debouncer()
        reported_at = float("-inf")
        try:
            while True:
                item = await sub.next()
                if isinstance(item, DeviceUnavailable):
                    link.lost(str(item))
                    debounce = self._debouncer()  # the first good reading counts
                    continue
                link.healthy()
                changed = debounce.feed(item[self.input] == self.active_high)
                now = time.monotonic()
                if changed is not None or now - reported_at >= REPORT_S:
                    assert debounce.state is not None
                    link.report(debounce.state)
                    reported_at = now
        finally:
            poller.unsubscribe(sub)

    def _debouncer(self) -> Debouncer:
        return Debouncer(self.debounce_s, reads_for(self.debounce_s, self.poll_hz))

    async def level(self) -> bool | None:
        """Read the input now (not the debounced level): the interlock's present value."""
        bits = await self.bus.read_inputs(self.unit, self.input, 1)
        return bits[0] == self.active_high
