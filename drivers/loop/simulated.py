"""A simulated loop: the site simulator (or a test) sets it occupied or clear."""

from __future__ import annotations

import asyncio

from gateway.ports import REPORT_S, DeviceLink


class SimulatedLoop:
    def __init__(self) -> None:
        self.occupied = False
        self._link: DeviceLink | None = None

    def set(self, occupied: bool) -> None:
        """Called on the loop; reported at once, so a short pulse is never lost."""
        self.occupied = occupied
        if self._link is not None:
            self._link.report(occupied)

    async def run(self, link: DeviceLink) -> None:
        self._link = link
        try:
            while True:
                link.healthy()
                link.report(self.occupied)
                await asyncio.sleep(REPORT_S)
        finally:
            self._link = None

    async def level(self) -> bool | None:
        return self.occupied
