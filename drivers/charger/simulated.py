"""A simulated charger: it delivers the requested power for as long as the charge runs.

Energy is the integral of the effective power (the station's ``power_kw``, capped by the
requested maximum) over the charging time, which is also how the field reference
estimates energy for a station without meter readings. Stations bound to an OCPP charge
point never use it (see :class:`StationChargers`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.ports import StopOutcome
from gateway.timeutil import parse


class SimulatedCharger:
    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime, id_tag: str
    ) -> None:
        return None

    def started_recorded(self, station: dict[str, Any]) -> None:
        return None

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> StopOutcome:
        power = Decimal(station["power_kw"])
        if charge["max_power_requested"] is not None:
            power = min(power, Decimal(charge["max_power_requested"]))
        seconds = Decimal(str(max(0.0, (now - parse(charge["start_time"])).total_seconds())))
        return StopOutcome(energy_kwh=power * seconds / Decimal(3600))

    def availability_changed(self, station: dict[str, Any], available: bool) -> None:
        return None


class StationChargers:
    """The Charger port for all stations: OCPP for stations bound to a charge point."""

    def __init__(self, csms: Any | None) -> None:
        self.csms = csms
        self.meter = SimulatedCharger()

    def _for(self, station: dict[str, Any]) -> Any:
        if station.get("ocpp_id") and self.csms is not None:
            return self.csms
        return self.meter

    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime, id_tag: str
    ) -> None:
        await self._for(station).start(
            station, power_kw=power_kw, started_at=started_at, id_tag=id_tag
        )

    def started_recorded(self, station: dict[str, Any]) -> None:
        self._for(station).started_recorded(station)

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> StopOutcome:
        outcome: StopOutcome = await self._for(station).stop(station, charge, now=now)
        return outcome

    def availability_changed(self, station: dict[str, Any], available: bool) -> None:
        target = self._for(station)
        if target is self.csms:
            self.csms.schedule(
                self.csms.set_availability(station, available), "change_availability"
            )
