"""A simulated barrier: it reaches the commanded position after its travel time."""

from __future__ import annotations

import asyncio

from gateway.ports import DeviceLink


class SimulatedBarrier:
    def __init__(self, travel_s: float = 1.0) -> None:
        self.travel_s = travel_s
        self.position = "closed"
        self.commands: list[str] = []  # what it was told, for the simulator and tests
        self._link: DeviceLink | None = None
        self._moving: asyncio.Task[None] | None = None

    async def run(self, link: DeviceLink) -> None:
        self._link = link
        link.healthy()
        link.report(self.position)
        try:
            await asyncio.Event().wait()
        finally:
            self._link = None

    def _move(self, target: str) -> None:
        self.commands.append(target)
        if self._moving is not None:
            self._moving.cancel()

        async def travel() -> None:
            await asyncio.sleep(self.travel_s)
            self.position = target
            if self._link is not None:
                self._link.report(target)

        self.position = "opening" if target == "open" else "closing"
        self._moving = asyncio.get_running_loop().create_task(
            travel(), name="simulated-barrier.travel"
        )

    async def open(self) -> None:
        self._move("open")

    async def close(self) -> None:
        self._move("closed")
