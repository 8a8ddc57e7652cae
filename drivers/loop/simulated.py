"""A simulated loop: the site simulator (or a test) sets it occupied or clear."""

from __future__ import annotations

import asyncio

from gateway.ports import DeviceLink


class SimulatedLoop:
    def __init__(self) -> None:
        self.occupied = False
        self._changed = asyncio.Event()

    def set(self, occupied: bool) -> None:
        self.occupied = occupied
        self._changed.set()

    async def run(self, link: DeviceLink) -> None:
        link.healthy()
        link.report(self.occupied)
        while True:
            await self._changed.wait()
            self._changed.clear()
            link.report(self.occupied)
