"""Ports: the small Protocols the core uses to reach devices. Drivers implement them.

The core never imports a driver; the composition root (``gateway.daemon``) picks the
implementation from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


class ChargerError(Exception):
    """The charger refused or did not answer; the message says which, for the API's 409."""


@dataclass(frozen=True)
class StopOutcome:
    """How a stop ended: ``recorded`` when the charger already reported it (StopTransaction);
    otherwise ``energy_kwh`` is for the caller to record, ``provisional`` when it is only the
    last metered value because the charger did not confirm in time."""

    energy_kwh: Decimal
    recorded: bool = False
    provisional: bool = False


class Charger(Protocol):
    """The charge points behind the EV stations."""

    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime, id_tag: str
    ) -> None:
        """Ask the station's charger to start; returns once it accepted, raises ChargerError."""

    def started_recorded(self, station: dict[str, Any]) -> None:
        """The API recorded the charge it asked for (a StartTransaction may link to it now)."""

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> StopOutcome:
        """Ask it to stop; returns once the charge's energy is known."""

    def availability_changed(self, station: dict[str, Any], available: bool) -> None:
        """A station was set to maintenance (or back): tell its charger, in the background."""


class DeviceUnavailable(Exception):
    """The device stopped answering (connection lost, timeout, protocol error).

    Drivers translate their library's errors into this at the boundary; the lane's
    supervisor reports the fault, backs off and starts the driver again.
    """


REPORT_S = 2.0
"""Every driver reports its device's current level after it (re)connects and at least this
often, not only on change: a report the lane missed is healed by the next one."""


class DeviceLink(Protocol):
    """How a driver reports to its lane. Reports are levels: the lane keeps the latest."""

    def healthy(self) -> None:
        """The device answered (clears a communication fault)."""

    def report(self, value: bool | str) -> None:
        """A loop's occupied state, or a barrier's position (``"open"``, ``"closed"``,
        ``"moving"``, or ``"unknown"`` for a driver that cannot tell)."""

    def fault(self, message: str | None) -> None:
        """A fault the device itself reports (e.g. a barrier controller's fault input); None clears it."""

    def lost(self, message: str) -> None:
        """The device stopped answering while the driver keeps retrying by itself (a camera
        stream, a Modbus poller); ``healthy`` clears it."""


class LoopDetector(Protocol):
    async def run(self, link: DeviceLink) -> None:
        """Report the loop's (debounced) state until cancelled; raise DeviceUnavailable on loss."""

    async def level(self) -> bool | None:
        """The loop's present raw level, read now where the device can be asked (None:
        unknown). The safety interlock calls it just before a close is written."""


class Barrier(Protocol):
    async def run(self, link: DeviceLink) -> None:
        """Report the barrier's position until cancelled; raise DeviceUnavailable on loss."""

    async def open(self) -> None:
        """Command it open; raises DeviceUnavailable when the command cannot be delivered."""

    async def close(self) -> None:
        """Command it closed; raises DeviceUnavailable when the command cannot be delivered."""
