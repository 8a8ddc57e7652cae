"""A loop detector that reports on a serial line in text (``L1 ON`` / ``L1 OFF`` and the like).

The patterns are configuration (regular expressions for present and clear), so several
loops of one detector can share its port, each with its own patterns.

Such detectors speak when a loop changes (many also repeat their state periodically). The
driver keeps the last level the detector gave, across a reconnect of the port (the
detector keeps sensing while the cable is out), and reports it again every ``REPORT_S``;
until the detector has said anything the level is unknown, which the safety interlock
treats as occupied.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog

from drivers.serial_line import SerialLineHub
from gateway.config import ConfigError, Options
from gateway.ports import REPORT_S, DeviceLink, DeviceUnavailable

log = structlog.get_logger("drivers.loop.serial")


class SerialLoop:
    def __init__(self, hub: SerialLineHub, *, present: str, clear: str) -> None:
        self.hub = hub
        self.present, self.clear = re.compile(present), re.compile(clear)
        self._level: bool | None = None

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], where: str, hubs: dict[str, SerialLineHub]
    ) -> SerialLoop:
        o = Options(table, where)
        o.text("driver")
        device = o.text("device")
        baudrate = o.integer("baudrate", 9600, low=300, high=921600)
        present, clear = o.text("present"), o.text("clear")
        o.done()
        hub = hubs.setdefault(device, SerialLineHub(device, baudrate=baudrate))
        if hub.baudrate != baudrate:
            raise ConfigError(f"{where}.baudrate differs from another device on {device}")
        try:
            return cls(hub, present=present, clear=clear)
        except re.error as err:
            raise ConfigError(f"{where}: bad pattern: {err}") from err

    async def run(self, link: DeviceLink) -> None:
        sub = self.hub.subscribe()
        reported_at = float("-inf")
        try:
            while True:
                try:
                    async with asyncio.timeout(REPORT_S):
                        item = await sub.queue.get()
                except TimeoutError:
                    item = None  # quiet line: time to re-report
                if isinstance(item, DeviceUnavailable):
                    raise item
                if item is not None:
                    link.healthy()
                    if self.present.search(item):
                        self._level = True
                        reported_at = float("-inf")
                    elif self.clear.search(item):
                        self._level = False
                        reported_at = float("-inf")
                now = time.monotonic()
                if self._level is not None and now - reported_at >= REPORT_S:
                    link.report(self._level)
                    reported_at = now
        finally:
            self.hub.unsubscribe(sub)

    async def level(self) -> bool | None:
        """The last level the detector gave (it cannot be asked)."""
        return self._level
