"""Simulated traffic for the demo site: vehicles arrive, park, pay (or not) and leave.

It drives the lanes exactly as the real world would, through the simulated loops and
barriers and a camera-like credential, so a new user of ``make run`` sees the whole path
within a minute: sessions created at the entry, payments at the pay station, refusals
of unpaid exits, barrier movements, all in the log and the API.
"""

from __future__ import annotations

import asyncio
import random
import string
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlite_utils import Database

from drivers.loop.simulated import SimulatedLoop
from gateway.api.deps import Deps
from gateway.config import SimulationConfig
from gateway.domain.lanes import Credential
from gateway.errors import GatewayError
from gateway.lanes.engine import Lane
from gateway.lanes.manager import LaneManager
from gateway.ports import ChargerError
from gateway.services import (
    SYSTEM,
    Ctx,
    charging,
    one,
    payments,
    pricing,
    scalar,
    structure,
    vehicles,
)

log = structlog.get_logger("simulator")


def seed_demo_site(db: Database, ctx: Ctx, chargers: tuple[str, ...] = ()) -> bool:
    """A level, two zones, 30 spaces and a rate, in an empty database only.

    The charging spaces get stations bound to the simulated OCPP charge points, if any.
    """
    if scalar(db, "SELECT COUNT(*) FROM levels"):
        return False
    level = structure.create_level(
        db, ctx, {"name": "Ground", "floor_number": 0, "is_underground": False}
    )
    for zone_name, count, ev in (("Zone A", 20, 2), ("Zone B", 10, 0)):
        zone = structure.create_zone(
            db, ctx, {"level_id": level, "name": zone_name, "total_spaces": count}
        )
        for n in range(1, count + 1):
            space = structure.create_space(
                db,
                ctx,
                {
                    "zone_id": zone,
                    "space_number": f"{zone_name[-1]}-{n:03d}",
                    "space_type": "ev_charging" if n <= ev else "standard",
                },
            )
            if n <= ev:
                charging.create_station(
                    db,
                    ctx,
                    {
                        "space_id": space,
                        "charger_type": "level2",
                        "power_kw": Decimal("7.2"),
                        "connector_type": "Type2",
                        "price_per_kwh": Decimal("0.30"),
                        "ocpp_id": chargers[n - 1] if n <= len(chargers) else None,
                        "connector_id": 1 if n <= len(chargers) else None,
                    },
                )
    pricing.create_rate(
        db,
        ctx,
        {
            "name": "Demo hourly",
            "rate_type": "hourly",
            "amount": Decimal("2.50"),
            "currency": "USD",
            "grace_period_minutes": 0,
            "effective_from": datetime(2024, 1, 1, tzinfo=UTC),
        },
    )
    pricing.create_rate(
        db,
        ctx,
        {
            "name": "Demo daily cap",
            "rate_type": "daily",
            "amount": Decimal("20.00"),
            "currency": "USD",
            "grace_period_minutes": 0,
            "effective_from": datetime(2024, 1, 1, tzinfo=UTC),
        },
    )
    return True


class SiteSimulator:
    def __init__(self, deps: Deps, lanes: LaneManager, config: SimulationConfig) -> None:
        self.deps, self.lanes, self.config = deps, lanes, config
        self.entry = lanes.get(config.entry_lane)
        self.exit = lanes.get(config.exit_lane)
        self._locks = {self.entry.spec.id: asyncio.Lock(), self.exit.spec.id: asyncio.Lock()}
        self._rng = random.Random()

    async def run(self) -> None:
        if self.config.seed_demo_site:
            ctx = self.deps.ctx_for(SYSTEM)
            chargers = self.config.chargers
            if await self.deps.store.write(lambda db: seed_demo_site(db, ctx, chargers)):
                log.info("demo_site_seeded")
        async with asyncio.TaskGroup() as tg:
            n = 0
            while True:
                await asyncio.sleep(self._rng.expovariate(self.config.arrivals_per_minute / 60))
                n += 1
                tg.create_task(self._vehicle(self._plate()), name=f"simulator.vehicle[{n}]")

    def _plate(self) -> str:
        return "SIM" + "".join(self._rng.choices(string.ascii_uppercase + string.digits, k=4))

    async def _vehicle(self, plate: str) -> None:
        bound = log.bind(plate=plate)
        try:
            if self.config.chargers and self._rng.random() < 0.3:
                await self._register_ev(plate)
            if not await self._pass(self.entry, plate):
                bound.info("sim_vehicle_turned_away")
                return
            charge = await self._maybe_charge(plate)
            await asyncio.sleep(self._rng.uniform(self.config.dwell_min_s, self.config.dwell_max_s))
            if charge is not None:
                await self._stop_charge(charge)
            if self._rng.random() < self.config.pay_ratio:
                await self._pay(plate)
            for _ in range(3):
                if await self._pass(self.exit, plate):
                    bound.info("sim_vehicle_left")
                    return
                await asyncio.sleep(5)  # refused: walk to the pay station, come back
                await self._pay(plate)
            bound.warning("sim_vehicle_stuck_at_exit")
        except GatewayError as err:
            bound.warning("sim_vehicle_problem", error=err.detail)

    async def _register_ev(self, plate: str) -> None:
        """Some visitors drive EVs: known as such, they get the charging spaces first."""
        ctx = self.deps.ctx_for(SYSTEM)

        def register(db: Database) -> None:
            if one(db, "SELECT id FROM vehicles WHERE license_plate = ?", [plate]) is None:
                vehicles.create_vehicle(
                    db,
                    ctx,
                    license_plate=plate,
                    vehicle_type_id=vehicles.default_vehicle_type(db, ctx),
                    user_id=None,
                    is_ev=True,
                )

        await self.deps.store.write(register)

    async def _maybe_charge(self, plate: str) -> int | None:
        """A vehicle that got a charging space plugs in (through the charger's real path)."""
        db = self.deps.store.reader
        row = one(
            db,
            "SELECT s.id AS session_id, s.vehicle_id, e.id AS station_id FROM sessions s"
            " JOIN vehicles v ON v.id = s.vehicle_id JOIN ev_stations e ON e.space_id = s.space_id"
            " WHERE v.license_plate = ? AND s.status = 'active' AND e.status = 'available'",
            [plate],
        )
        if row is None:
            return None
        ctx = self.deps.ctx_for(SYSTEM)
        try:
            plan = charging.plan_start(
                db,
                ctx,
                station_id=row["station_id"],
                vehicle_id=row["vehicle_id"],
                parking_session_id=row["session_id"],
                max_power=None,
            )
            tag = f"GW-{self._rng.getrandbits(48):012X}"
            await self.deps.charger.start(
                plan.station, power_kw=plan.power_kw, started_at=ctx.now, id_tag=tag
            )
            try:
                charge_id: int = await self.deps.store.write(
                    lambda db: charging.record_start(db, ctx, plan, ctx.now, id_tag=tag)
                )
            finally:
                self.deps.charger.started_recorded(plan.station)
        except (GatewayError, ChargerError) as err:
            log.info("sim_charge_not_started", plate=plate, error=str(err))
            return None
        log.info("sim_vehicle_charging", plate=plate, charge_id=charge_id)
        return charge_id

    async def _stop_charge(self, charge_id: int) -> None:
        ctx = self.deps.ctx_for(SYSTEM)
        try:
            charge = charging.require_stoppable(self.deps.store.reader, ctx, charge_id)
            station = one(
                self.deps.store.reader,
                "SELECT * FROM ev_stations WHERE id = ?",
                [charge["station_id"]],
            )
            outcome = await self.deps.charger.stop(station or {}, charge, now=ctx.now)
            if not outcome.recorded:
                await self.deps.store.write(
                    lambda db: charging.record_stop(
                        db, ctx, charge_id, outcome.energy_kwh, provisional=outcome.provisional
                    )
                )
        except (GatewayError, ChargerError) as err:
            log.info("sim_charge_not_stopped", charge_id=charge_id, error=str(err))

    async def _pass(self, lane: Lane, plate: str) -> bool:
        """Drive up, show the plate, and drive through if the barrier opens."""
        presence, safety = lane.devices.presence_loop, lane.devices.safety_loop
        if not isinstance(presence, SimulatedLoop) or not isinstance(safety, SimulatedLoop):
            raise RuntimeError(f"lane {lane.spec.id} has no simulated loops")
        async with self._locks[lane.spec.id]:
            presence.set(True)
            await asyncio.sleep(0.5)
            lane.present(Credential(kind="plate", value=plate, confidence=0.99))
            opened = await self._wait(
                lambda: lane.state.position == "open" and lane.state.grant is not None,
                lambda: (
                    lane.state.phase == "idle"
                    and lane.state.last_decision is not None
                    and lane.state.last_decision.credential is not None
                    and lane.state.last_decision.credential.value == plate
                    and not lane.state.last_decision.allowed
                ),
            )
            if not opened:
                presence.set(False)  # reverse out
                await asyncio.sleep(1)
                return False
            safety.set(True)
            await asyncio.sleep(0.5)
            presence.set(False)
            await asyncio.sleep(1)
            safety.set(False)
            await asyncio.sleep(1)
            return True

    @staticmethod
    async def _wait(ok: Any, refused: Any) -> bool:
        async with asyncio.timeout(15):
            while True:
                if ok():
                    return True
                if refused():
                    return False
                await asyncio.sleep(0.05)

    async def _pay(self, plate: str) -> None:
        ctx = self.deps.ctx_for(SYSTEM)

        def pay(db: Database) -> None:
            session = one(
                db,
                "SELECT s.* FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id"
                " WHERE v.license_plate = ? AND s.status = 'active'",
                [plate],
            )
            if session is None:
                return
            quote = payments.quote(db, ctx, session, None)
            if quote.already_paid:
                return
            payments.pay(
                db, ctx, session_id=session["id"], payment_method="card", amount=quote.total
            )

        await self.deps.store.write(pay)
        log.info("sim_vehicle_paid", plate=plate)
