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
    ChargeLine,
    ExitStatus,
    Fee,
    PaymentRecord,
    Rate,
    calculate_fee,
    duration_minutes,
    exit_status,
)
from gateway.errors import Conflict, Invalid, NotFound, PaymentRequired
from gateway.services import Ctx, one, require, scalar
from gateway.services.vehicles import default_vehicle_type
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
    while True:
        ticket = "TKT-" + secrets.token_hex(6).upper()
        if not scalar(db, "SELECT 1 FROM sessions WHERE ticket_number = ?", [ticket]):
            return ticket


def _preference(vehicle_type: dict[str, Any]) -> tuple[str, ...]:
    name = vehicle_type["name"].lower()
    if "motorcycle" in name or "motorbike" in name:
        return SPACE_PREFERENCE["motorcycle"]
    return SPACE_PREFERENCE.get(vehicle_type["size_category"], ("standard",))


def pick_space(db: Database, vehicle: dict[str, Any], at: datetime) -> int | None:
    """A free space that fits the vehicle, or None (the entry still succeeds without one)."""
    vehicle_type = require(db, "vehicle_types", vehicle["vehicle_type_id"], "vehicle type")
    held = reserved_space_ids(db, at)
    candidates: list[tuple[str, int]] = []
    if vehicle["is_ev"]:
        candidates.append(("ev", 1))
    candidates.extend((space_type, 0) for space_type in _preference(vehicle_type))
    for space_type, ev in candidates:
        type_clause = (
            "is_ev_charging = 1" if space_type == "ev" else "space_type = ? AND is_ev_charging = ?"
        )
        params: list[Any] = [] if space_type == "ev" else [space_type, ev]
        for row in db.query(
            f"SELECT id FROM spaces WHERE status = 'available' AND {type_clause} ORDER BY id LIMIT ?",
            [*params, len(held) + 1],
        ):
            if row["id"] not in held:
                return int(row["id"])
    return None


def reserved_space_ids(db: Database, at: datetime) -> set[int]:
    """Spaces held for a reservation whose window covers ``at`` (none until reservations exist)."""
    return set()


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
    reservation_id: int | None = None,
    space_id: int | None = None,
) -> EntryResult:
    """Admit a vehicle: find or create it, refuse it when already inside, give it a space."""
    at = entry_time or ctx.now
    if at > ctx.now:
        raise Invalid("entry_time must not be in the future", field="entry_time")
    vehicle = one(db, "SELECT * FROM vehicles WHERE license_plate = ?", [license_plate])
    if vehicle is None:
        type_id = default_vehicle_type(db, ctx)
        ts = iso(ctx.now)
        new_id = db.execute(
            "INSERT INTO vehicles (license_plate, vehicle_type_id, user_id, is_ev, created_at, updated_at)"
            " VALUES (?, ?, NULL, 0, ?, ?)",
            [license_plate, type_id, ts, ts],
        ).lastrowid
        vehicle = require(db, "vehicles", int(new_id or 0), "vehicle")
        outbox.append(
            db,
            "vehicle_registered",
            {
                "vehicle_id": vehicle["id"],
                "license_plate": license_plate,
                "user_id": None,
                "vehicle_type_id": type_id,
                "is_ev": False,
                "source": "gate",
            },
            ctx.now,
        )
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
    if space_id is None:
        space_id = pick_space(db, vehicle, at)
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


def member_discount_pct(db: Database, session: dict[str, Any]) -> Decimal | None:
    """The membership discount that applies to this stay (none until memberships exist)."""
    return None


def billed_charges(db: Database, session: dict[str, Any]) -> list[ChargeLine]:
    """Charging billed with this stay (none until EV charging exists)."""
    return []


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
    return calculate_fee(
        entry=parse(session["entry_time"]),
        end=end,
        rates=load_rates(db),
        vehicle_type_id=vehicle["vehicle_type_id"],
        zone_id=zone_id,
        member_discount_pct=member_discount_pct(db, session),
        charges=billed_charges(db, session),
    )


def completed_payments(db: Database, session_id: int) -> list[PaymentRecord]:
    return [
        PaymentRecord(amount=Decimal(r["amount"]), paid_at=parse(r["paid_at"]))
        for r in db.query(
            "SELECT amount, paid_at FROM payments WHERE session_id = ? AND status = 'completed'",
            [session_id],
        )
    ]


def owed(db: Database, ctx: Ctx, session: dict[str, Any]) -> tuple[Fee, ExitStatus]:
    fee = session_fee(db, session, None, ctx.now)
    return fee, exit_status(
        fee.total, completed_payments(db, session["id"]), ctx.now, ctx.exit_window
    )


def running_charge(db: Database, session_id: int) -> bool:
    """Whether a charge linked to the session is still running (none until EV charging exists)."""
    return False


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
    db.execute(
        "UPDATE sessions SET status = 'completed', exit_time = ?, exit_gate = ?, updated_at = ? WHERE id = ?",
        [ts, exit_gate, ts, session["id"]],
    )
    if session["space_id"] is not None:
        _set_space_status(db, session["space_id"], "available", ctx.now)
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
        _set_space_status(db, session["space_id"], "available", ctx.now)
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
