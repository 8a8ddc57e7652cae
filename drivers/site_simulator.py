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
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlite_utils import Database

from drivers.loop.simulated import SimulatedLoop
from gateway.api.deps import Deps
from gateway.config import SimulationConfig
from gateway.domain.lanes import Credential, Decision
from gateway.errors import GatewayError
from gateway.lanes.engine import Lane
from gateway.lanes.manager import LaneManager
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


# The optional columns of a rate the demo leaves unset, named as the API's create names
# them all (the rate_created event lists every column; gateway.events.RateCreated).
NO_RATE_OPTIONS: dict[str, Any] = {
    "vehicle_type_id": None,
    "zone_id": None,
    "effective_to": None,
    "peak_multiplier": Decimal("1.0"),
    "peak_start_time": None,
    "peak_end_time": None,
    "min_duration_minutes": None,
    "max_duration_minutes": None,
}


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
                        "installed_at": None,
                        "manufacturer": None,
                        "serial_number": None,
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
            **NO_RATE_OPTIONS,
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
            **NO_RATE_OPTIONS,
        },
    )
    return True


class SiteSimulator:
    """The demo's traffic. ``outcomes`` counts how each simulated visit ended (``left``,
    ``turned_away``, ``stuck_at_exit``, ``problem``), so a test can hold the demo to its promise:
    every car that paid leaves."""

    def __init__(self, deps: Deps, lanes: LaneManager, config: SimulationConfig) -> None:
        self.deps, self.lanes, self.config = deps, lanes, config
        self.entry = lanes.get(config.entry_lane)
        self.exit = lanes.get(config.exit_lane)
        self._locks = {self.entry.spec.id: asyncio.Lock(), self.exit.spec.id: asyncio.Lock()}
        self._rng = random.Random()
        self.outcomes: Counter[str] = Counter()
        self.paid: set[str] = set()  # plates that paid at least once
        self.left: set[str] = set()
        self.in_flight = 0
        self.arriving = True  # False: no new vehicle arrives (the ones inside still leave)

    async def seed(self) -> None:
        """The demo's structure, before anything serves: the console shows it from the first
        page, and the simulated chargers' stations exist when they first connect."""
        if self.config.seed_demo_site:
            ctx = self.deps.ctx_for(SYSTEM)
            chargers = self.config.chargers
            if await self.deps.store.write(lambda db: seed_demo_site(db, ctx, chargers)):
                log.info("demo_site_seeded")

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            n = 0
            while True:
                await asyncio.sleep(self._rng.expovariate(self.config.arrivals_per_minute / 60))
                if not self.arriving:
                    continue
                n += 1
                tg.create_task(self._vehicle(self._plate()), name=f"simulator.vehicle[{n}]")

    def _plate(self) -> str:
        return "SIM" + "".join(self._rng.choices(string.ascii_uppercase + string.digits, k=4))

    async def _vehicle(self, plate: str) -> None:
        self.in_flight += 1
        try:
            outcome = await self._visit(plate, log.bind(plate=plate))
        finally:
            self.in_flight -= 1
        self.outcomes[outcome] += 1
        if outcome == "left":
            self.left.add(plate)

    async def _visit(self, plate: str, bound: Any) -> str:
        try:
            if self.config.chargers and self._rng.random() < 0.3:
                await self._register_ev(plate)
            entered = await self._pass(self.entry, plate)
            if entered is None or not entered.allowed:
                bound.info("sim_vehicle_turned_away")
                return "turned_away"
            charge = await self._maybe_charge(plate)
            await asyncio.sleep(self._rng.uniform(self.config.dwell_min_s, self.config.dwell_max_s))
            if charge is not None:
                await self._stop_charge(charge)
            if self._rng.random() < self.config.pay_ratio:
                await self._pay(plate)
            for _ in range(3):
                decision = await self._pass(self.exit, plate)
                if decision is not None and decision.allowed:
                    bound.info("sim_vehicle_left")
                    return "left"
                await asyncio.sleep(5)  # refused: walk to the pay station, come back
                if decision is not None and decision.reason == "charging" and charge is not None:
                    await self._stop_charge(charge)  # unplug first
                await self._pay(plate)
            bound.warning(
                "sim_vehicle_stuck_at_exit",
                reason=None if decision is None else decision.reason,
            )
            return "stuck_at_exit"
        except GatewayError as err:
            bound.warning("sim_vehicle_problem", error=err.detail)
            return "problem"

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
        row = one(
            self.deps.store.reader,
            "SELECT s.id AS session_id, s.vehicle_id, e.id AS station_id FROM sessions s"
            " JOIN vehicles v ON v.id = s.vehicle_id JOIN ev_stations e ON e.space_id = s.space_id"
            " WHERE v.license_plate = ? AND s.status = 'active' AND e.status = 'available'",
            [plate],
        )
        if row is None:
            return None
        try:
            charge_id = await charging.start_remote(
                self.deps.store,
                self.deps.charger,
                self.deps.ctx_for(SYSTEM),
                station_id=row["station_id"],
                vehicle_id=row["vehicle_id"],
                parking_session_id=row["session_id"],
                max_power=None,
            )
        except GatewayError as err:
            log.info("sim_charge_not_started", plate=plate, error=err.detail)
            return None
        log.info("sim_vehicle_charging", plate=plate, charge_id=charge_id)
        return charge_id

    async def _stop_charge(self, charge_id: int) -> None:
        try:
            await charging.stop_remote(
                self.deps.store, self.deps.charger, self.deps.ctx_for(SYSTEM), charge_id
            )
        except GatewayError as err:
            log.info("sim_charge_not_stopped", charge_id=charge_id, error=err.detail)

    async def _pass(self, lane: Lane, plate: str) -> Decision | None:
        """Drive up, show the plate, and drive through if the barrier opens for it.

        Returns the lane's decision for *this* presentation of the plate (None when the
        lane did not answer in time). The wait is on the decision about the credential
        just shown, never on what the lane said before: a car refused a minute ago that
        has paid since must not read its old refusal and back away from the open barrier.
        """
        presence, safety = lane.devices.presence_loop, lane.devices.safety_loop
        if not isinstance(presence, SimulatedLoop) or not isinstance(safety, SimulatedLoop):
            raise RuntimeError(f"lane {lane.spec.id} has no simulated loops")
        async with self._locks[lane.spec.id]:
            presence.set(True)
            await asyncio.sleep(0.5)
            credential = Credential(kind="plate", value=plate, confidence=0.99)
            lane.present(credential)

            def answered() -> Decision | None:
                last = lane.state.last_decision
                return last if last is not None and last.credential is credential else None

            try:
                async with asyncio.timeout(15):
                    while True:
                        decision = answered()
                        if decision is not None and not decision.allowed:
                            break
                        if (
                            decision is not None
                            and lane.state.position == "open"
                            and lane.state.grant is decision
                        ):
                            break
                        await asyncio.sleep(0.05)
            except TimeoutError:
                log.warning("sim_lane_no_answer", lane=lane.spec.id, plate=plate)
                decision = None
            if decision is None or not decision.allowed:
                presence.set(False)  # reverse out
                await asyncio.sleep(1)
                return decision
            safety.set(True)
            await asyncio.sleep(0.5)
            presence.set(False)
            await asyncio.sleep(1)
            safety.set(False)
            await asyncio.sleep(1)
            return decision

    async def _pay(self, plate: str) -> None:
        ctx = self.deps.ctx_for(SYSTEM)

        def pay(db: Database) -> bool:
            session = one(
                db,
                "SELECT s.* FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id"
                " WHERE v.license_plate = ? AND s.status = 'active'",
                [plate],
            )
            if session is None:
                return False
            quote = payments.quote(db, ctx, session, None)
            if quote.already_paid:
                return False
            payments.pay(
                db, ctx, session_id=session["id"], payment_method="card", amount=quote.total
            )
            return True

        if await self.deps.store.write(pay):
            self.paid.add(plate)
            log.info("sim_vehicle_paid", plate=plate)
