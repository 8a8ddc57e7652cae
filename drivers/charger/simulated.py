"""A simulated charger: it delivers the requested power for as long as the charge runs.

Energy is the integral of the effective power (the station's ``power_kw``, capped by the
requested maximum) over the charging time, which is also how the field reference
estimates energy for a station without meter readings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.timeutil import parse


class SimulatedCharger:
    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime
    ) -> None:
        return None

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> Decimal:
        power = Decimal(station["power_kw"])
        if charge["max_power_requested"] is not None:
            power = min(power, Decimal(charge["max_power_requested"]))
        seconds = Decimal(str(max(0.0, (now - parse(charge["start_time"])).total_seconds())))
        return power * seconds / Decimal(3600)
