"""Parking sessions: entry, exit, space assignment, and what a session owes.

Entry and exit are the two commands every front door uses (the API's operator endpoints,
the lanes' barriers, the simulator), so that a lane entry and an API entry are the same
thing with the same outbox event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.fees import (
    ExitStatus,
    Fee,
    PaymentRecord,
    Rate,
    calculate_fee,
    duration_minutes,
    exit_status,
)
from gateway.errors import Conflict, Invalid, NotFound, PaymentRequired
from gateway.services import Ctx, charging, memberships, one, require, scalar, unique_code
from gateway.services.vehicles import register_unowned
from gateway.store import outbox
from gateway.timeutil import iso, parse, parse_opt

# Which space types suit which vehicles, in order of preference. Handicapped spaces are
# never given out automatically (they need a permit an operator checks), and vehicles
# that are not EVs are kept off charging spaces so that EVs can still find one.
SPACE_PREFERENCE: dict[str, tuple[str, ...]] = {
    "motorcycle": ("motorcycle", "compact", "standard"),
    "small": ("compact", "standard"),
    "medium": ("standard",),
    "large": ("standard",),
    "extra_large": ("standard",),
}


def new_ticket_number(db: Database) -> str:
    return unique_code(
        db, "sessions", "ticket_number", lambda: "TKT-" + secrets.token_hex(6).upper()
    )


def _preference(vehicle_type: dict[str, Any]) -> tuple[str, ...]:
    name = vehicle_type["name"].lower()
    if "motorcycle" in name or "motorbike" in name:
        return SPACE_PREFERENCE["motorcycle"]
    return SPACE_PREFERENCE.get(vehicle_type["size_category"], ("standard",))


def pick_space(db: Database, vehicle: dict[str, Any], at: datetime) -> int | None:
    """A free space for the vehicle, or None when no space is free (the entry still succeeds).

    Any free space is given out (field reference 8.1), best fit first: EV-charging spaces
    for EVs, then the vehicle's preferred space types, then other types; EV-charging spaces
    go to other vehicles and handicapped spaces to anyone only when nothing else is free.
    """
    vehicle_type = require(db, "vehicle_types", vehicle["vehicle_type_id"], "vehicle type")
    held = reserved_space_ids(db, at)
    ranks = ["WHEN is_ev_charging = 1 OR space_type = 'ev_charging' THEN ?"]
    params: list[Any] = [0 if vehicle["is_ev"] else 90]
    ranks.append("WHEN is_handicapped = 1 OR space_type = 'handicapped' THEN 99")
    for n, space_type in enumerate(_preference(vehicle_type)):
        ranks.append("WHEN space_type = ? THEN ?")
        params.extend([space_type, 10 + n])
    for row in db.query(
        f"SELECT id FROM spaces WHERE status = 'available'"
        f" ORDER BY CASE {' '.join(ranks)} ELSE 50 END, id LIMIT ?",
        [*params, len(held) + 1],
    ):
        if row["id"] not in held:
            return int(row["id"])
    return None


def reserved_space_ids(db: Database, at: datetime) -> set[int]:
    """Spaces held for a reservation whose window covers ``at``: not for other vehicles."""
    ts = iso(at)
    return {
        row["space_id"]
        for row in db.query(
            "SELECT space_id FROM reservations WHERE space_id IS NOT NULL"
            " AND status IN ('pending', 'confirmed') AND start_time <= ? AND end_time > ?",
            [ts, ts],
        )
    }


def arriving_reservation(db: Database, ctx: Ctx, vehicle_id: int) -> dict[str, Any] | None:
    """A confirmed reservation of the vehicle whose check-in is open now.

    A reserved car that arrives at an entry lane (or is entered by an operator) is
    checked in automatically, as the driver would expect.
    """
    policy = ctx.reservation_policy
    for r in db.query(
        "SELECT * FROM reservations WHERE vehicle_id = ? AND status = 'confirmed' AND end_time > ?"
        " ORDER BY start_time",
        [vehicle_id, iso(ctx.now)],
    ):
        start, end = parse(r["start_time"]), parse(r["end_time"])
        if policy.check_in_opens(start) <= ctx.now < policy.no_show_at(start, end):
            return r
    return None


def reserved_place(
    db: Database, vehicle: dict[str, Any], reservation: dict[str, Any], at: datetime
) -> int | None:
    """The reserved space if free, else a free space of the reserved zone, else any (13.1)."""
    if reservation["space_id"] is not None:
        space = one(db, "SELECT status FROM spaces WHERE id = ?", [reservation["space_id"]])
        if space is not None and space["status"] in ("available", "reserved"):
            return int(reservation["space_id"])
    if reservation["zone_id"] is not None:
        held = reserved_space_ids(db, at)
        for row in db.query(
            "SELECT id FROM spaces WHERE zone_id = ? AND status = 'available' ORDER BY id",
            [reservation["zone_id"]],
        ):
            if row["id"] not in held:
                return int(row["id"])
    return pick_space(db, vehicle, at)


def mark_checked_in(db: Database, ctx: Ctx, reservation: dict[str, Any], session_id: int) -> None:
    db.execute(
        "UPDATE reservations SET status = 'checked_in', session_id = ?, updated_at = ? WHERE id = ?",
        [session_id, iso(ctx.now), reservation["id"]],
    )
    outbox.append(
        db,
        "reservation_checked_in",
        {
            "reservation_id": reservation["id"],
            "confirmation_number": reservation["confirmation_number"],
            "session_id": session_id,
        },
        ctx.now,
    )


@dataclass(frozen=True, kw_only=True)
class EntryResult:
    session_id: int
    ticket_number: str
    space_id: int | None
    vehicle_id: int


def entry(
    db: Database,
    ctx: Ctx,
    *,
    license_plate: str,
    entry_gate: str | None = None,
    lpr_image: str | None = None,
    entry_time: datetime | None = None,
    reservation: dict[str, Any] | None = None,
    space_id: int | None = None,
) -> EntryResult:
    """Admit a vehicle: find or create it, refuse it when already inside, give it a space.

    A vehicle with a reservation whose check-in is open is checked in on the way (its
    reserved space, or a space of its zone).
    """
    at = entry_time or ctx.now
    if at > ctx.now:
        raise Invalid("entry_time must not be in the future", field="entry_time")
    vehicle = one(db, "SELECT * FROM vehicles WHERE license_plate = ?", [license_plate])
    if vehicle is None:
        vehicle = register_unowned(db, ctx, license_plate, source="gate")
    inside = one(
        db,
        "SELECT id, ticket_number FROM sessions WHERE vehicle_id = ? AND status = 'active'",
        [vehicle["id"]],
    )
    if inside is not None:
        raise Conflict(
            f"vehicle {license_plate} is already inside (ticket {inside['ticket_number']})",
            ticket_number=inside["ticket_number"],
            session_id=inside["id"],
            reason="already_inside",
        )
    if reservation is None:
        reservation = arriving_reservation(db, ctx, vehicle["id"])
    reservation_id = reservation["id"] if reservation is not None else None
    if space_id is None:
        space_id = (
            reserved_place(db, vehicle, reservation, at)
            if reservation
            else pick_space(db, vehicle, at)
        )
    ticket = new_ticket_number(db)
    ts = iso(ctx.now)
    session_id = db.execute(
        "INSERT INTO sessions (vehicle_id, space_id, reservation_id, ticket_number, status, entry_time,"
        " entry_gate, lpr_image, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)",
        [vehicle["id"], space_id, reservation_id, ticket, iso(at), entry_gate, lpr_image, ts, ts],
    ).lastrowid
    assert session_id is not None
    if space_id is not None:
        _set_space_status(db, space_id, "occupied", ctx.now)
    if reservation is not None:
        mark_checked_in(db, ctx, reservation, session_id)
    outbox.append(
        db,
        "session_started",
        {
            "session_id": session_id,
            "ticket_number": ticket,
            "vehicle_id": vehicle["id"],
            "license_plate": license_plate,
            "space_id": space_id,
            "entry_time": at,
            "entry_gate": entry_gate,
            "reservation_id": reservation_id,
        },
        ctx.now,
    )
    return EntryResult(
        session_id=session_id, ticket_number=ticket, space_id=space_id, vehicle_id=vehicle["id"]
    )


def _set_space_status(db: Database, space_id: int, status: str, now: datetime) -> None:
    db.execute(
        "UPDATE spaces SET status = ?, updated_at = ? WHERE id = ?", [status, iso(now), space_id]
    )


def _free_space(db: Database, space_id: int, now: datetime) -> None:
    """The car has left the space: ``occupied`` becomes ``available``.

    Only ``occupied``: a status staff set while the car was there (``maintenance``,
    ``out_of_service``, ``reserved``) is theirs, and the space must not be handed out
    again just because its last car drove off.
    """
    db.execute(
        "UPDATE spaces SET status = 'available', updated_at = ? WHERE id = ? AND status = 'occupied'",
        [iso(now), space_id],
    )


# -- what a session owes ----------------------------------------------------------------


def load_rates(db: Database) -> list[Rate]:
    return [
        Rate(
            id=r["id"],
            rate_type=r["rate_type"],
            amount=Decimal(r["amount"]),
            grace_period_minutes=r["grace_period_minutes"],
            vehicle_type_id=r["vehicle_type_id"],
            zone_id=r["zone_id"],
            effective_from=parse(r["effective_from"]),
            effective_to=parse_opt(r["effective_to"]),
            is_active=bool(r["is_active"]),
            peak_multiplier=Decimal(r["peak_multiplier"]),
            peak_start_time=_time(r["peak_start_time"]),
            peak_end_time=_time(r["peak_end_time"]),
        )
        for r in db.query("SELECT * FROM rates WHERE is_active = 1")
    ]


def _time(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


def session_fee(db: Database, session: dict[str, Any], end: datetime | None, now: datetime) -> Fee:
    """The fee of a stay ending at ``end`` (default: its exit time, or now while it runs)."""
    if end is None:
        end = parse(session["exit_time"]) if session["exit_time"] else now
    vehicle = require(db, "vehicles", session["vehicle_id"], "vehicle")
    zone_id = (
        scalar(db, "SELECT zone_id FROM spaces WHERE id = ?", [session["space_id"]])
        if session["space_id"] is not None
        else None
    )
    member = memberships.benefit_for(db, session, now.date())
    return calculate_fee(
        entry=parse(session["entry_time"]),
        end=end,
        rates=load_rates(db),
        vehicle_type_id=vehicle["vehicle_type_id"],
        zone_id=zone_id,
        member=member,
        charges=charging.charges_for_session(db, session["id"]),
    )


def completed_payments(db: Database, session_id: int) -> list[PaymentRecord]:
    return [
        PaymentRecord(
            amount=Decimal(r["amount"]),
            paid_at=parse(r["paid_at"]),
            ev_covered=Decimal(r["ev_covered"]),
        )
        for r in db.query(
            "SELECT amount, paid_at, ev_covered FROM payments WHERE session_id = ? AND status = 'completed'",
            [session_id],
        )
    ]


def owed(db: Database, ctx: Ctx, session: dict[str, Any]) -> tuple[Fee, ExitStatus]:
    fee = session_fee(db, session, None, ctx.now)
    return fee, exit_status(
        fee.total,
        completed_payments(db, session["id"]),
        ctx.now,
        ctx.exit_window,
        ev_charging=fee.ev_charging,
    )


def running_charge(db: Database, session_id: int) -> bool:
    """Whether a charge linked to the session is still running (the car is still plugged in)."""
    return bool(
        scalar(
            db,
            "SELECT 1 FROM charging_sessions WHERE parking_session_id = ? AND status IN ('started', 'charging')",
            [session_id],
        )
    )


# -- exit ----------------------------------------------------------------------------------


def find_for_exit(
    db: Database, *, ticket_number: str | None, license_plate: str | None
) -> dict[str, Any]:
    if ticket_number:
        session = one(db, "SELECT * FROM sessions WHERE ticket_number = ?", [ticket_number])
        if session is None:
            raise NotFound(f"unknown ticket {ticket_number}", reason="unknown")
        if session["status"] != "active":
            raise NotFound(f"ticket {ticket_number} has already left", reason="already_left")
        return session
    session = one(
        db,
        "SELECT s.* FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id"
        " WHERE v.license_plate = ? AND s.status = 'active'",
        [license_plate],
    )
    if session is None:
        raise NotFound(f"no vehicle with plate {license_plate} is inside", reason="unknown")
    return session


@dataclass(frozen=True, kw_only=True)
class ExitResult:
    session_id: int
    duration_minutes: int
    ticket_number: str
    fee_total: Decimal


def exit_(
    db: Database,
    ctx: Ctx,
    *,
    ticket_number: str | None = None,
    license_plate: str | None = None,
    exit_gate: str | None = None,
    waive: str | None = None,
) -> ExitResult:
    """Let a vehicle out when nothing is owed; otherwise 402 and nothing changes.

    ``waive`` names why an exit is allowed without payment (a lane in free-exit mode, an
    allow-listed plate); it is recorded in the event so that every free exit is audited.
    """
    session = find_for_exit(db, ticket_number=ticket_number, license_plate=license_plate)
    if running_charge(db, session["id"]):
        raise Conflict(
            "a charging session of this vehicle is still running; stop charging first",
            reason="charging",
        )
    fee, status = owed(db, ctx, session)
    if status.amount_due > 0 and waive is None:
        raise PaymentRequired(
            f"payment required: {status.amount_due} still due",
            amount_due=float(status.amount_due),
            session_id=session["id"],
            ticket_number=session["ticket_number"],
            reason="grace_expired" if status.is_paid else "unpaid",
        )
    ts = iso(ctx.now)
    # The fee and the member's saving are recorded as they stood at the exit, so that usage
    # reports stay true when rates change later.
    db.execute(
        "UPDATE sessions SET status = 'completed', exit_time = ?, exit_gate = ?, fee_total = ?,"
        " membership_id = ?, member_discount = ?, updated_at = ? WHERE id = ?",
        [
            ts,
            exit_gate,
            str(fee.total),
            fee.membership_id,
            str(fee.discounts) if fee.membership_id is not None else None,
            ts,
            session["id"],
        ],
    )
    if session["space_id"] is not None:
        _free_space(db, session["space_id"], ctx.now)
    if session["reservation_id"] is not None:
        db.execute(
            "UPDATE reservations SET status = 'completed', updated_at = ? WHERE id = ?",
            [ts, session["reservation_id"]],
        )
    minutes = duration_minutes(parse(session["entry_time"]), ctx.now)
    outbox.append(
        db,
        "session_completed",
        {
            "session_id": session["id"],
            "ticket_number": session["ticket_number"],
            "vehicle_id": session["vehicle_id"],
            "exit_time": ctx.now,
            "exit_gate": exit_gate,
            "duration_minutes": minutes,
            "fee_total": fee.total,
            "amount_waived": status.amount_due if waive else 0,
            "waived_because": waive,
        },
        ctx.now,
    )
    return ExitResult(
        session_id=session["id"],
        duration_minutes=minutes,
        ticket_number=session["ticket_number"],
        fee_total=fee.total,
    )


def assign_space(db: Database, ctx: Ctx, session_id: int, space_id: int) -> None:
    session = require(db, "sessions", session_id, "session")
    space = require(db, "spaces", space_id, "space")
    if session["status"] != "active":
        raise Conflict("session is not active")
    if session["space_id"] == space_id:
        return
    if space["status"] != "available":
        raise Conflict(f"space {space['space_number']} is {space['status']}")
    if session["space_id"] is not None:
        _free_space(db, session["space_id"], ctx.now)
    _set_space_status(db, space_id, "occupied", ctx.now)
    db.execute(
        "UPDATE sessions SET space_id = ?, updated_at = ? WHERE id = ?",
        [space_id, iso(ctx.now), session_id],
    )
    outbox.append(
        db,
        "session_space_assigned",
        {
            "session_id": session_id,
            "from_space_id": session["space_id"],
            "space_id": space_id,
        },
        ctx.now,
    )


def cancel_unused_entry(db: Database, ctx: Ctx, session_id: int, why: str) -> None:
    """Undo an entry whose vehicle never drove in (it backed out at the entry barrier).

    Only a session that is still active and has no payment is cancelled; its space is
    freed and a reservation it checked in goes back to confirmed.
    """
    session = one(db, "SELECT * FROM sessions WHERE id = ?", [session_id])
    if session is None or session["status"] != "active":
        return
    if scalar(db, "SELECT 1 FROM payments WHERE session_id = ? LIMIT 1", [session_id]):
        return
    ts = iso(ctx.now)
    db.execute(
        "UPDATE sessions SET status = 'cancelled', notes = ?, updated_at = ? WHERE id = ?",
        [f"entry not used: {why}", ts, session_id],
    )
    if session["space_id"] is not None:
        _free_space(db, session["space_id"], ctx.now)
    if session["reservation_id"] is not None:
        db.execute(
            "UPDATE reservations SET status = 'confirmed', session_id = NULL, updated_at = ?"
            " WHERE id = ? AND status = 'checked_in'",
            [ts, session["reservation_id"]],
        )
    outbox.append(
        db,
        "session_cancelled",
        {"session_id": session_id, "ticket_number": session["ticket_number"], "why": why},
        ctx.now,
    )
