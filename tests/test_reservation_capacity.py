"""The reservation capacity rule as a property, through the real services on a real store.

Whatever reservations arrive (a zone, a space, or neither; any windows over the next days),
moved or cancelled afterwards, with cars already parked: the accepted ones never need more
places than a zone or the whole site has at any moment, two of one space never overlap,
and a refusal always had a reason (the booking would not have fitted).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.config import ParkingConfig, ReservationsConfig
from gateway.errors import Conflict
from gateway.services import SYSTEM, Actor, Ctx, reservations, sessions, structure, users
from gateway.services import vehicles as vehicle_service
from gateway.store import Store

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SLOT = timedelta(minutes=30)
HORIZON = timedelta(hours=ReservationsConfig().session_horizon_hours)


@dataclass(frozen=True)
class Booking:
    id: int
    zone_id: int | None
    space_id: int | None
    start: datetime
    end: datetime


# -- the independent model -------------------------------------------------------------------


def in_force(bookings: list[Booking], t: datetime) -> list[Booking]:
    return [b for b in bookings if b.start <= t < b.end]


def moments(bookings: list[Booking], start: datetime, end: datetime) -> list[datetime]:
    """Where the count can change inside [start, end): its start and every booking start."""
    return [start, *(b.start for b in bookings if start <= b.start < end)]


def would_fit(
    bookings: list[Booking],
    capacity: dict[int | None, int],
    walk_ins: dict[int | None, int],
    zone_id: int | None,
    space_id: int | None,
    start: datetime,
    end: datetime,
) -> bool:
    """Whether one more booking fits, computed by brute force from the rule's statement."""
    if space_id is not None and any(
        b.space_id == space_id and b.start < end and start < b.end for b in bookings
    ):
        return False
    parked = start < NOW + HORIZON  # parked cars count for windows starting within the horizon
    scopes: list[int | None] = [None] if zone_id is None else [zone_id, None]
    for scope in scopes:
        mine = [b for b in bookings if scope is None or b.zone_id == scope]
        for t in moments(mine, start, end):
            need = len(in_force(mine, t)) + 1 + (walk_ins[scope] if parked else 0)
            if need > capacity[scope]:
                return False
    return True


def assert_never_overbooked(
    bookings: list[Booking], capacity: dict[int | None, int], walk_ins: dict[int | None, int]
) -> None:
    for scope, cap in capacity.items():
        mine = [b for b in bookings if scope is None or b.zone_id == scope]
        for t in {b.start for b in mine}:
            booked = len(in_force(mine, t))
            assert booked <= cap, (scope, t, booked, cap)
            if t < NOW + HORIZON:
                assert booked + walk_ins[scope] <= cap, (scope, t, booked, walk_ins[scope], cap)
    by_space: dict[int, list[Booking]] = {}
    for b in bookings:
        if b.space_id is not None:
            by_space.setdefault(b.space_id, []).append(b)
    for held in by_space.values():
        held.sort(key=lambda b: b.start)
        for a, b in itertools.pairwise(held):
            assert a.end <= b.start, (a, b)


# -- the site -------------------------------------------------------------------------------

space_strategy = st.sampled_from(["available", "available", "available", "maintenance"])
site_strategy = st.lists(
    st.lists(space_strategy, min_size=0, max_size=4),  # the spaces of a zone, by status
    min_size=1,
    max_size=3,
)
window = st.tuples(st.integers(0, 4 * 24), st.integers(1, 24))  # in 30-minute slots
create_op = st.tuples(
    st.just("create"),
    st.one_of(st.none(), st.integers(0, 2)),  # zone (an index), or none
    st.one_of(st.none(), st.integers(0, 2)),  # a space of that zone (an index), or none
    st.booleans(),  # with a space: name its zone too
    window,
)
move_op = st.tuples(st.just("move"), st.integers(0, 50), window)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 50))
ops_strategy = st.lists(
    st.one_of(create_op, create_op, create_op, create_op, move_op, cancel_op),
    min_size=4,
    max_size=30,
)


class Site:
    def __init__(self, store: Store, zones: list[list[str]], walk_ins: int) -> None:
        self.store = store
        self.customer = store.write_sync(
            lambda db: users.create_user(
                db,
                email="driver@example.com",
                password_hash="x",
                full_name="Driver",
                role="customer",
                phone=None,
                now=NOW,
            )
        )
        self.ctx = Ctx(
            now=NOW, actor=Actor(id=self.customer, role="customer"), parking=ParkingConfig()
        )
        system = Ctx(now=NOW, actor=SYSTEM, parking=ParkingConfig())
        self.zones: list[tuple[int, list[int]]] = []
        self.car_type = 0
        self.plates = 0

        def build(db: Any) -> None:
            level = structure.create_level(db, system, {"name": "L1", "floor_number": 1})
            for z, statuses in enumerate(zones):
                zone = structure.create_zone(db, system, {"level_id": level, "name": f"Z{z}"})
                ids = []
                for n, status in enumerate(statuses):
                    space = structure.create_space(
                        db,
                        system,
                        {"zone_id": zone, "space_number": f"{z}-{n}", "space_type": "standard"},
                    )
                    if status != "available":
                        structure.update_space(db, system, space, {"status": status})
                    ids.append(space)
                self.zones.append((zone, ids))
            self.car_type = vehicle_service.default_vehicle_type(db, system)
            for n in range(walk_ins):
                sessions.entry(db, system, license_plate=f"WALK{n}")

        store.write_sync(build)
        usable = {
            zone: sum(1 for s in statuses if s != "maintenance")
            for (zone, _), statuses in zip(self.zones, zones, strict=True)
        }
        self.capacity: dict[int | None, int] = {None: sum(usable.values()), **usable}
        parked: dict[int | None, int] = {None: walk_ins}
        for zone, _ in self.zones:
            parked[zone] = int(
                store.reader.execute(
                    "SELECT COUNT(*) FROM sessions s JOIN spaces p ON p.id = s.space_id"
                    " WHERE s.status = 'active' AND p.zone_id = ?",
                    [zone],
                ).fetchone()[0]
            )
        self.walk_ins = parked

    def new_vehicle(self) -> int:
        self.plates += 1
        plate = f"CAR{self.plates}"
        return int(
            self.store.write_sync(
                lambda db: vehicle_service.create_vehicle(
                    db,
                    self.ctx,
                    license_plate=plate,
                    vehicle_type_id=self.car_type,
                    user_id=self.customer,
                )
            )
        )

    def stored(self) -> list[Booking]:
        return [
            Booking(
                r["id"], r["zone_id"], r["space_id"], _parse(r["start_time"]), _parse(r["end_time"])
            )
            for r in self.store.reader.query(
                "SELECT * FROM reservations WHERE status IN ('pending', 'confirmed', 'checked_in')"
                " ORDER BY id"
            )
        ]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _window(slots: tuple[int, int]) -> tuple[datetime, datetime]:
    start, length = slots
    return NOW + start * SLOT, NOW + (start + length) * SLOT


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(zones=site_strategy, walk_ins=st.integers(0, 2), ops=ops_strategy)
def test_accepted_reservations_never_overbook(
    zones: list[list[str]], walk_ins: int, ops: list[tuple[Any, ...]]
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="capacity-"))
    store = Store(folder / "gateway.db")
    try:
        store.migrate()
        site = Site(store, zones, walk_ins)
        accepted = refused = 0
        for op in ops:
            live = site.stored()
            if op[0] == "create":
                _, zone_pick, space_pick, name_zone, slots = op
                start, end = _window(slots)
                zone_id = space_id = None
                if zone_pick is not None:
                    zone_id, spaces = site.zones[zone_pick % len(site.zones)]
                    if space_pick is not None and spaces:
                        space_id = spaces[space_pick % len(spaces)]
                        zone_id = zone_id if name_zone else None
                expect_zone = zone_id
                if space_id is not None:
                    expect_zone = next(z for z, ids in site.zones if space_id in ids)
                fits = would_fit(
                    live, site.capacity, site.walk_ins, expect_zone, space_id, start, end
                )
                vehicle_id = site.new_vehicle()
                try:
                    store.write_sync(
                        lambda db, v=vehicle_id, z=zone_id, s=space_id, a=start, b=end: (
                            reservations.create(
                                db,
                                site.ctx,
                                vehicle_id=v,
                                zone_id=z,
                                space_id=s,
                                start=a,
                                end=b,
                                special_requests=None,
                            )
                        )
                    )
                except Conflict:
                    refused += 1
                    assert not fits, ("refused although it fits", op, live)
                else:
                    accepted += 1
                    assert fits, ("accepted although it does not fit", op, live)
            elif op[0] == "move" and live:
                _, pick, slots = op
                target = live[pick % len(live)]
                start, end = _window(slots)
                others = [b for b in live if b.id != target.id]
                fits = would_fit(
                    others,
                    site.capacity,
                    site.walk_ins,
                    target.zone_id,
                    target.space_id,
                    start,
                    end,
                )
                try:
                    store.write_sync(
                        lambda db, t=target.id, a=start, b=end: reservations.update(
                            db, site.ctx, t, {"start_time": a, "end_time": b}
                        )
                    )
                except Conflict:
                    assert not fits, ("move refused although it fits", op, live)
                else:
                    assert fits, ("move accepted although it does not fit", op, live)
            elif op[0] == "cancel" and live:
                target = live[op[1] % len(live)]
                store.write_sync(lambda db, t=target.id: reservations.cancel(db, site.ctx, t, None))
            assert_never_overbooked(site.stored(), site.capacity, site.walk_ins)
        assert accepted + refused == sum(1 for op in ops if op[0] == "create")
        event(f"some refused: {refused > 0}")
        event(f"some accepted: {accepted > 0}")
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)
