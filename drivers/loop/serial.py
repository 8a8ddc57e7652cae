"""A loop detector that reports on a serial line in text (``L1 ON`` / ``L1 OFF`` and the like).

The patterns are configuration (regular expressions for present and clear), so several
loops of one detector can share its port, each with its own patterns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog

from drivers.serial_line import SerialLineHub
from gateway.config import ConfigError, Options
from gateway.ports import DeviceLink, DeviceUnavailable

log = structlog.get_logger("drivers.loop.serial")


class SerialLoop:
    def __init__(self, hub: SerialLineHub, *, present: str, clear: str) -> None:
        self.hub = hub
        self.present, self.clear = re.compile(present), re.compile(clear)

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
        try:
            while True:
                item = await sub.queue.get()
                if isinstance(item, DeviceUnavailable):
                    raise item
                link.healthy()
                if not item:
                    continue
                if self.present.search(item):
                    link.report(True)
                elif self.clear.search(item):
                    link.report(False)
        finally:
            self.hub.unsubscribe(sub)
