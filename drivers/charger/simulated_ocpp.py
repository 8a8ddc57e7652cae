"""A simulated charge point that speaks OCPP 1.6J to the gateway's own endpoint.

The demo site's EV stations are bound to these, so ``make run`` exercises the real path:
websocket, BootNotification, heartbeats, remote start, StartTransaction, MeterValues,
remote stop, StopTransaction. It behaves like a simple AC wallbox: it accepts remote
starts, delivers its power limit, reports the energy register every ``meter_interval``
seconds, and reconnects when the link drops.

Everything a connection starts (the transaction, the meter loop, status notifications)
runs in that connection's task group: when the link drops or the daemon stops, it is
cancelled with the connection instead of failing later on a closed socket as an orphan
task ("Task exception was never retrieved").
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    RemoteStartStopStatus,
)

log = structlog.get_logger("drivers.ocpp.simulated")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SimulatedChargePoint(ChargePoint):
    def __init__(
        self, cp_id: str, connection: Any, *, power_w: float = 7200, meter_interval: float = 5
    ) -> None:
        super().__init__(cp_id, connection)
        self.power_w = power_w
        self.meter_interval = meter_interval
        self.register_wh = random.randint(100_000, 900_000)
        self.transaction: int | None = None
        self._charging: asyncio.Task[None] | None = None
        self.tasks: asyncio.TaskGroup | None = None  # the connection's, set by its runner

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        assert self.tasks is not None, "a charge point runs inside its connection's task group"
        return self.tasks.create_task(coro, name=f"simulated-charger[{self.id}].{name}")

    @on(Action.remote_start_transaction)
    async def remote_start(self, id_tag: str, connector_id: int | None = None, **extra: Any) -> Any:
        if self.transaction is not None:
            return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        profile = extra.get("charging_profile") or {}
        periods = profile.get("charging_schedule", {}).get("charging_schedule_period", [])
        if periods:
            self.power_w = min(self.power_w, float(periods[0].get("limit", self.power_w)))
        self._spawn(self._begin(id_tag, connector_id or 1), "start")
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)
    async def remote_stop(self, transaction_id: int) -> Any:
        if transaction_id != self.transaction:
            return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)
        self._spawn(self._end("Remote"), "stop")
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.change_availability)
    async def change_availability(self, connector_id: int, type: str) -> Any:
        status = (
            ChargePointStatus.available if type == "Operative" else ChargePointStatus.unavailable
        )
        self._spawn(self._status(max(1, connector_id), status), "status")
        return call_result.ChangeAvailability(status=AvailabilityStatus.accepted)

    async def _status(self, connector: int, status: str) -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector,
                error_code=ChargePointErrorCode.no_error,
                status=status,
                timestamp=_now(),
            )
        )

    async def _begin(self, id_tag: str, connector: int) -> None:
        await self._status(connector, ChargePointStatus.preparing)
        response = await self.call(
            call.StartTransaction(
                connector_id=connector,
                id_tag=id_tag,
                meter_start=self.register_wh,
                timestamp=_now(),
            )
        )
        if response.id_tag_info["status"] != "Accepted":
            await self._status(connector, ChargePointStatus.available)
            return
        self.transaction = response.transaction_id
        await self._status(connector, ChargePointStatus.charging)
        self._charging = self._spawn(self._meter(connector), "meter")

    async def _meter(self, connector: int) -> None:
        while self.transaction is not None:
            await asyncio.sleep(self.meter_interval)
            self.register_wh += int(self.power_w * self.meter_interval / 3600)
            await self.call(
                call.MeterValues(
                    connector_id=connector,
                    transaction_id=self.transaction,
                    meter_value=[
                        {
                            "timestamp": _now(),
                            "sampled_value": [
                                {
                                    "value": str(self.register_wh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                }
                            ],
                        }
                    ],
                )
            )

    async def _end(self, reason: str) -> None:
        if self._charging is not None:
            self._charging.cancel()
        transaction, self.transaction = self.transaction, None
        if transaction is None:
            return
        await self.call(
            call.StopTransaction(
                meter_stop=self.register_wh,
                timestamp=_now(),
                transaction_id=transaction,
                reason=reason,
            )
        )
        await self._status(1, ChargePointStatus.finishing)
        await asyncio.sleep(2)
        await self._status(1, ChargePointStatus.available)

    async def boot(self) -> None:
        response = await self.call(
            call.BootNotification(charge_point_model="SimBox 7", charge_point_vendor="carpark")
        )
        await self._status(1, ChargePointStatus.available)
        while True:
            await asyncio.sleep(response.interval)
            await self.call(call.Heartbeat())


async def run_simulated_charge_point(url: Callable[[], Awaitable[str]], cp_id: str) -> None:
    """Connect, boot, answer the gateway; reconnect after a drop, like a real charger.

    ``url`` waits until the gateway's own OCPP listener is up and names its bound address,
    so the demo's chargers never dial before it listens, nor another daemon's port.
    """
    while True:
        base = await url()
        try:
            async with websockets.connect(f"{base}/ocpp/{cp_id}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                point = SimulatedChargePoint(cp_id, ws)
                async with asyncio.TaskGroup() as tg:
                    point.tasks = tg
                    tg.create_task(point.start(), name=f"simulated-charger[{cp_id}].link")
                    tg.create_task(point.boot(), name=f"simulated-charger[{cp_id}].boot")
        except* (
            OSError,
            websockets.ConnectionClosed,
            websockets.InvalidStatus,
            TimeoutError,
        ) as group:
            log.info(
                "simulated_charger_reconnecting", charge_point=cp_id, error=str(group.exceptions[0])
            )
        await asyncio.sleep(2)
