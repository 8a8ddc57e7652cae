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
