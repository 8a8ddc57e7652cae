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
from gateway.services import SYSTEM, Ctx, one, payments, pricing, scalar, structure

log = structlog.get_logger("simulator")


def seed_demo_site(db: Database, ctx: Ctx) -> bool:
    """A level, two zones, 30 spaces and a rate, in an empty database only."""
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
            structure.create_space(
                db,
                ctx,
                {
                    "zone_id": zone,
                    "space_number": f"{zone_name[-1]}-{n:03d}",
                    "space_type": "ev_charging" if n <= ev else "standard",
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
            if await self.deps.store.write(lambda db: seed_demo_site(db, ctx)):
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
            if not await self._pass(self.entry, plate):
                bound.info("sim_vehicle_turned_away")
                return
            await asyncio.sleep(self._rng.uniform(self.config.dwell_min_s, self.config.dwell_max_s))
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
