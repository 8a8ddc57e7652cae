"""Ports: the small Protocols the core uses to reach devices. Drivers implement them.

The core never imports a driver; the composition root (``gateway.daemon``) picks the
implementation from the configuration.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


class ChargerError(Exception):
    """The charger refused or did not answer; the message says which, for the API's 409/503."""


class Charger(Protocol):
    """The charge points behind the EV stations."""

    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime
    ) -> None:
        """Ask the station's charger to start; returns once it accepted, raises ChargerError."""

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> Decimal:
        """Ask it to stop; returns the energy delivered by this charge, in kWh."""


class DeviceUnavailable(Exception):
    """The device stopped answering (connection lost, timeout, protocol error).

    Drivers translate their library's errors into this at the boundary; the lane's
    supervisor reports the fault, backs off and starts the driver again.
    """


class DeviceLink(Protocol):
    """How a driver reports to its lane."""

    def healthy(self) -> None:
        """The device answered (clears a communication fault)."""

    def report(self, value: bool | str) -> None:
        """A loop's occupied state, or a barrier's position (``"open"`` / ``"closed"``)."""

    def fault(self, message: str | None) -> None:
        """A fault the device itself reports (e.g. a barrier controller's fault input); None clears it."""

    def lost(self, message: str) -> None:
        """The device stopped answering while the driver keeps retrying by itself (a camera stream)."""


class LoopDetector(Protocol):
    async def run(self, link: DeviceLink) -> None:
        """Report the loop's (debounced) state until cancelled; raise DeviceUnavailable on loss."""


class Barrier(Protocol):
    async def run(self, link: DeviceLink) -> None:
        """Report the barrier's position until cancelled; raise DeviceUnavailable on loss."""

    async def open(self) -> None:
        """Command it open; raises DeviceUnavailable when the command cannot be delivered."""

    async def close(self) -> None:
        """Command it closed; raises DeviceUnavailable when the command cannot be delivered."""
