"""A simulated barrier: it reaches the commanded position after its travel time.

It reports like a barrier with limit switches: its position on start, ``moving`` while it
travels, and the position again every ``REPORT_S``. ``stuck`` makes it take commands and
never move (a jammed arm), for tests and demos of the lane's faults.
"""

from __future__ import annotations

import asyncio

from gateway.ports import REPORT_S, DeviceLink


class SimulatedBarrier:
    def __init__(self, travel_s: float = 1.0) -> None:
        self.travel_s = travel_s
        self.position = "closed"
        self.stuck = False
        self.commands: list[str] = []  # what it was told, for the simulator and tests
        self._link: DeviceLink | None = None
        self._moving: asyncio.Task[None] | None = None

    async def run(self, link: DeviceLink) -> None:
        self._link = link
        try:
            while True:
                link.healthy()
                link.report(self._reported())
                await asyncio.sleep(REPORT_S)
        finally:
            self._link = None

    def _reported(self) -> str:
        return "moving" if self.position in ("opening", "closing") else self.position

    def _move(self, target: str) -> None:
        self.commands.append(target)
        if self.stuck or self.position == target:
            return
        if self._moving is not None:
            self._moving.cancel()

        async def travel() -> None:
            await asyncio.sleep(self.travel_s)
            self.position = target
            if self._link is not None:
                self._link.report(target)

        self.position = "opening" if target == "open" else "closing"
        if self._link is not None:
            self._link.report("moving")
        self._moving = asyncio.get_running_loop().create_task(
            travel(), name="simulated-barrier.travel"
        )

    def by_hand(self, position: str) -> None:
        """Someone moves the arm (no command): for tests and demos of the lane's alarms."""
        if self._moving is not None:
            self._moving.cancel()
        self.position = position
        if self._link is not None:
            self._link.report(position)

    async def open(self) -> None:
        self._move("open")

    async def close(self) -> None:
        self._move("closed")
