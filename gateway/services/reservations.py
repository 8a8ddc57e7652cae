"""Reservations: booking ahead with a capacity guarantee, check-in, cancellation, no-shows.

Capacity is guaranteed per zone and for the whole site at every moment of a window (see
:mod:`gateway.domain.reservations`): a reservation naming a zone must fit in that zone,
and every reservation must fit in the site, which together mean the bookings can always
be parked. A reservation naming a space also holds that space: two reservations of one
space may not overlap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from gateway.domain.reservations import (
    BLOCKING,
    Window,
    fits,
    new_confirmation_number,
    peak_overlap,
)
from gateway.errors import Conflict, Forbidden, Invalid
from gateway.services import Ctx, one, require, require_owner_or, rows, scalar, unique_code
from gateway.services import sessions as session_service
from gateway.store import outbox
from gateway.timeutil import iso, parse

UNUSABLE_SPACE = ("maintenance", "out_of_service")


def capacity(db: Database, zone_id: int | None) -> int:
    """Spaces that can take a car (not in maintenance or out of service)."""
    clause, params = ("zone_id = ?", [zone_id]) if zone_id is not None else ("1 = 1", [])
    return int(
        scalar(
            db,
            f"SELECT COUNT(*) FROM spaces WHERE {clause} AND status NOT IN (?, ?)",
            [*params, *UNUSABLE_SPACE],
        )
    )


def bookings(
    db: Database,
    window: Window,
    *,
    zone_id: int | None = None,
    space_id: int | None = None,
    exclude: int | None = None,
) -> list[Window]:
    """Blocking reservations overlapping ``window`` (of a zone, a space, or the whole site)."""
    where = ["status IN ('pending', 'confirmed', 'checked_in')", "start_time < ?", "end_time > ?"]
    params: list[Any] = [iso(window.end), iso(window.start)]
    if zone_id is not None:
        where.append("zone_id = ?")
        params.append(zone_id)
    if space_id is not None:
        where.append("space_id = ?")
        params.append(space_id)
    if exclude is not None:
        where.append("id != ?")
        params.append(exclude)
    return [
        Window(parse(r["start_time"]), parse(r["end_time"]))
        for r in rows(
            db, f"SELECT start_time, end_time FROM reservations WHERE {' AND '.join(where)}", params
        )
    ]


def walk_ins(db: Database, ctx: Ctx, window: Window, zone_id: int | None) -> int:
    """Vehicles parked without a reservation that may still be there during ``window``.

    A vehicle that came on a reservation whose window is over (it overstays) is no longer
    counted by that reservation, so it counts as a walk-in: it still takes a place.
    """
    if window.start >= ctx.now + timedelta(hours=ctx.reservations.session_horizon_hours):
        return 0
    unreserved = (
        "s.status = 'active' AND (s.reservation_id IS NULL OR EXISTS (SELECT 1 FROM"
        " reservations r WHERE r.id = s.reservation_id AND r.end_time <= ?))"
    )
    if zone_id is None:
        return int(
            scalar(db, f"SELECT COUNT(*) FROM sessions s WHERE {unreserved}", [iso(ctx.now)])
        )
    return int(
        scalar(
            db,
            "SELECT COUNT(*) FROM sessions s JOIN spaces p ON p.id = s.space_id"
            f" WHERE {unreserved} AND p.zone_id = ?",
            [iso(ctx.now), zone_id],
        )
    )


def _check_bookable(
    db: Database,
    ctx: Ctx,
    window: Window,
    zone_id: int | None,
    space_id: int | None,
    vehicle_id: int,
    exclude: int | None,
) -> None:
    """The state checks of a booking (409s); the window itself is checked by _check_window."""
    clash = one(
        db,
        "SELECT confirmation_number FROM reservations WHERE vehicle_id = ? AND"
        " status IN ('pending', 'confirmed', 'checked_in') AND start_time < ? AND end_time > ?"
        + (" AND id != ?" if exclude else ""),
        [vehicle_id, iso(window.end), iso(window.start), *([exclude] if exclude else [])],
    )
    if clash:
        raise Conflict(
            f"this vehicle already has reservation {clash['confirmation_number']} in that window"
        )
    if space_id is not None and bookings(db, window, space_id=space_id, exclude=exclude):
        raise Conflict("the space is already reserved for part of that window")
    if zone_id is not None and not fits(
        capacity(db, zone_id),
        bookings(db, window, zone_id=zone_id, exclude=exclude),
        window,
        occupied=walk_ins(db, ctx, window, zone_id),
    ):
        raise Conflict("the zone is fully booked for part of that window")
    if not fits(
        capacity(db, None),
        bookings(db, window, exclude=exclude),
        window,
        occupied=walk_ins(db, ctx, window, None),
    ):
        raise Conflict("the car park is fully booked for part of that window")


def _resolve_place(
    db: Database, zone_id: int | None, space_id: int | None
) -> tuple[int | None, int | None]:
    if zone_id is not None:
        require(db, "zones", zone_id, "zone")
    if space_id is not None:
        space = require(db, "spaces", space_id, "space")
        if zone_id is not None and space["zone_id"] != zone_id:
            raise Invalid("the space is not in the given zone", field="space_id")
        zone_id = space["zone_id"]
    return zone_id, space_id


def _check_window(ctx: Ctx, window: Window, *, started_ok: bool = False) -> None:
    """The request-level rules (422), checked before anything is looked up (check order 1.2).

    ``started_ok``: an update may keep the start of a window that has already begun.
    """
    now = window.start if started_ok else ctx.now
    problem = ctx.reservation_policy.window_problem(window, now)
    if problem:
        # "end_time must be after start_time" is about the end: only a problem that begins
        # with "start_time" is the start's.
        raise Invalid(problem, field="start_time" if problem.startswith("start") else "end_time")


def create(
    db: Database,
    ctx: Ctx,
    *,
    vehicle_id: int,
    zone_id: int | None,
    space_id: int | None,
    start: datetime,
    end: datetime,
    special_requests: str | None,
) -> int:
    window = Window(start, end)
    _check_window(ctx, window)
    vehicle = require(db, "vehicles", vehicle_id, "vehicle")
    zone_id, space_id = _resolve_place(db, zone_id, space_id)
    if not ctx.actor.is_staff and vehicle["user_id"] != ctx.actor.id:
        raise Forbidden("you can only reserve for your own vehicles")
    _check_bookable(db, ctx, window, zone_id, space_id, vehicle_id, None)
    owner = (
        ctx.actor.id if not ctx.actor.is_staff or vehicle["user_id"] is None else vehicle["user_id"]
    )
    if owner is None:
        raise Invalid("the vehicle has no owner to hold the reservation", field="vehicle_id")
    number = unique_code(db, "reservations", "confirmation_number", new_confirmation_number)
    ts = iso(ctx.now)
    reservation_id = db.execute(
        "INSERT INTO reservations (user_id, vehicle_id, zone_id, space_id, start_time, end_time, status,"
        " confirmation_number, special_requests, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?)",
        [
            owner,
            vehicle_id,
            zone_id,
            space_id,
            iso(start),
            iso(end),
            number,
            special_requests,
            ts,
            ts,
        ],
    ).lastrowid
    assert reservation_id is not None
    outbox.append(
        db,
        "reservation_created",
        {
            "reservation_id": reservation_id,
            "confirmation_number": number,
            "vehicle_id": vehicle_id,
            "zone_id": zone_id,
            "space_id": space_id,
            "start_time": start,
            "end_time": end,
            "user_id": owner,
        },
        ctx.now,
    )
    return reservation_id


def _modifiable(ctx: Ctx, reservation: dict[str, Any]) -> None:
    status = effective_status(ctx, reservation)
    if status not in ("pending", "confirmed"):
        raise Conflict(f"reservation is {status}")


def update(db: Database, ctx: Ctx, reservation_id: int, changes: dict[str, Any]) -> None:
    # Check order (field reference 1.2): what the request says on its own (422), then the
    # reservation (404), its owner (403), the rules needing stored values (422, 404), and
    # only then its status and the other bookings (409).
    if "start_time" in changes and "end_time" in changes:
        # Both times given: end after start and the maximum length need nothing stored.
        _check_window(ctx, Window(changes["start_time"], changes["end_time"]), started_ok=True)
    current = require(db, "reservations", reservation_id, "reservation")
    require_owner_or(ctx.actor, current["user_id"], staff=False, what="reservation")
    start = changes.get("start_time", parse(current["start_time"]))
    end = changes.get("end_time", parse(current["end_time"]))
    window = Window(start, end)
    if (start, end) != (parse(current["start_time"]), parse(current["end_time"])):
        _check_window(ctx, window, started_ok=start == parse(current["start_time"]))
    zone_id = changes.get("zone_id", current["zone_id"])
    space_id = changes.get("space_id", current["space_id"])
    if "zone_id" in changes and "space_id" not in changes and current["space_id"] is not None:
        space = require(db, "spaces", current["space_id"], "space")
        if space["zone_id"] != zone_id:
            space_id = None  # moving to another zone releases the old zone's space
    if space_id is not None and "space_id" in changes and "zone_id" not in changes:
        zone_id = None  # a space named alone brings its zone (as on create)
    zone_id, space_id = _resolve_place(db, zone_id, space_id)
    _modifiable(ctx, current)
    moved = (start, end, zone_id, space_id) != (
        parse(current["start_time"]),
        parse(current["end_time"]),
        current["zone_id"],
        current["space_id"],
    )
    if moved:
        _check_bookable(db, ctx, window, zone_id, space_id, current["vehicle_id"], reservation_id)
    values = {
        "start_time": iso(start),
        "end_time": iso(end),
        "zone_id": zone_id,
        "space_id": space_id,
        "special_requests": changes.get("special_requests", current["special_requests"]),
        "updated_at": iso(ctx.now),
    }
    db.table("reservations").update(reservation_id, values)
    outbox.append(db, "reservation_updated", {"reservation_id": reservation_id, **values}, ctx.now)


def cancel(db: Database, ctx: Ctx, reservation_id: int, reason: str | None) -> None:
    current = require(db, "reservations", reservation_id, "reservation")
    require_owner_or(ctx.actor, current["user_id"], staff=False, what="reservation")
    _modifiable(ctx, current)
    ts = iso(ctx.now)
    db.execute(
        "UPDATE reservations SET status = 'cancelled', cancelled_at = ?, cancellation_reason = ?,"
        " updated_at = ? WHERE id = ?",
        [ts, reason, ts, reservation_id],
    )
    outbox.append(
        db, "reservation_cancelled", {"reservation_id": reservation_id, "reason": reason}, ctx.now
    )


def check_in(db: Database, ctx: Ctx, reservation_id: int) -> session_service.EntryResult:
    """Admit the reserved vehicle: a new session (or the one it already has) on its space."""
    current = require(db, "reservations", reservation_id, "reservation")
    require_owner_or(ctx.actor, current["user_id"], staff=True, what="reservation")
    status = effective_status(ctx, current)
    if status != "confirmed":
        raise Conflict(f"reservation is {status}; only a confirmed reservation can be checked in")
    opens = ctx.reservation_policy.check_in_opens(parse(current["start_time"]))
    if ctx.now < opens:
        raise Conflict(f"check-in opens at {iso(opens)}")
    vehicle = require(db, "vehicles", current["vehicle_id"], "vehicle")
    inside = one(
        db, "SELECT * FROM sessions WHERE vehicle_id = ? AND status = 'active'", [vehicle["id"]]
    )
    if inside is not None:
        if inside["reservation_id"] is not None:
            raise Conflict(f"vehicle is already inside on reservation {inside['reservation_id']}")
        # The car came in through a lane before anyone checked it in: link that session.
        db.execute(
            "UPDATE sessions SET reservation_id = ?, updated_at = ? WHERE id = ?",
            [reservation_id, iso(ctx.now), inside["id"]],
        )
        session_service.mark_checked_in(db, ctx, current, inside["id"])
        return session_service.EntryResult(
            session_id=inside["id"],
            ticket_number=inside["ticket_number"],
            space_id=inside["space_id"],
            vehicle_id=vehicle["id"],
        )
    return session_service.entry(
        db,
        ctx,
        license_plate=vehicle["license_plate"],
        entry_gate="reservation check-in",
        reservation=current,
    )


def effective_status(ctx: Ctx, reservation: dict[str, Any]) -> str:
    return ctx.reservation_policy.effective_status(
        reservation["status"],
        parse(reservation["start_time"]),
        parse(reservation["end_time"]),
        ctx.now,
    )


def mark_no_shows(db: Database, ctx: Ctx) -> int:
    """Record no-shows whose deadline passed (the API already reports them; this persists it)."""
    marked = 0
    for r in rows(
        db,
        "SELECT * FROM reservations WHERE status IN ('pending', 'confirmed') AND start_time <= ?",
        [iso(ctx.now)],
    ):
        if effective_status(ctx, r) == "no_show":
            db.execute(
                "UPDATE reservations SET status = 'no_show', updated_at = ? WHERE id = ?",
                [iso(ctx.now), r["id"]],
            )
            outbox.append(
                db,
                "reservation_no_show",
                {"reservation_id": r["id"], "confirmation_number": r["confirmation_number"]},
                ctx.now,
            )
            marked += 1
    return marked


def availability(
    db: Database, ctx: Ctx, start: datetime, end: datetime, zone_id: int | None
) -> dict[str, Any]:
    """Free spaces for a window, and how many more reservations the zone (or site) can take."""
    if end <= start:
        raise Invalid("end_time must be after start_time", field="end_time")
    if zone_id is not None:
        require(db, "zones", zone_id, "zone")
    window = Window(start, end)
    held = {
        r["space_id"]
        for r in rows(
            db,
            "SELECT space_id FROM reservations WHERE space_id IS NOT NULL AND status IN (?, ?, ?)"
            " AND start_time < ? AND end_time > ?",
            [*BLOCKING, iso(end), iso(start)],
        )
    }
    where, params = "status = 'available'", []
    if zone_id is not None:
        where, params = "status = 'available' AND zone_id = ?", [zone_id]
    free = [
        r
        for r in rows(db, f"SELECT * FROM spaces WHERE {where} ORDER BY id", params)
        if r["id"] not in held
    ]
    cap = capacity(db, zone_id)
    peak = peak_overlap(bookings(db, window, zone_id=zone_id), window)
    parked = walk_ins(db, ctx, window, zone_id)
    return {
        "free_space_rows": free,
        "capacity": cap,
        "reserved_peak": peak,
        "walk_ins": parked,
        "bookable": max(0, cap - peak - parked),
    }
