"""Membership plans and subscriptions, and the benefit a member's stay gets.

A membership covers the vehicles listed on it for a term of whole calendar months. Its
status is kept in the database, but the API always reports the effective one (a term that
has ended is expired, or renewed when ``auto_renew`` is on); a periodic sweep writes those
transitions with their events (:func:`sweep`).

Memberships sold centrally (:func:`upsert_central`, :func:`cancel_central`, pushed over
MQTT) are keyed by the central ``external_id`` and cover plates, not a local account:
they have no ``user_id``, no local payment, and never renew themselves (the central system
pushes the new ``valid_to``). The lanes find them the same way as local ones, through
``membership_vehicles``, so a member is recognised the moment the command commits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.memberships import MemberBenefit, add_months
from gateway.domain.money import ZERO, cents
from gateway.errors import Conflict, Forbidden, Invalid, NotFound
from gateway.services import (
    Ctx,
    name_taken,
    one,
    receipt_code,
    require,
    require_owner_or,
    rows,
    stamp_insert,
    stamp_update,
    unique_code,
)
from gateway.services import vehicles as vehicle_service
from gateway.store import outbox
from gateway.timeutil import iso, parse

# -- plans ---------------------------------------------------------------------------------


def create_plan(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    if name_taken(db, "membership_plans", "name", values["name"]):
        raise Conflict(f"a plan named {values['name']!r} already exists")
    plan_id = stamp_insert(db, "membership_plans", values, ctx.now)
    outbox.append(db, "membership_plan_created", {"plan_id": plan_id, **values}, ctx.now)
    return plan_id


def update_plan(db: Database, ctx: Ctx, plan_id: int, changes: dict[str, Any]) -> None:
    require(db, "membership_plans", plan_id, "membership plan")
    if "name" in changes and name_taken(
        db, "membership_plans", "name", changes["name"], except_id=plan_id
    ):
        raise Conflict(f"a plan named {changes['name']!r} already exists")
    stamp_update(db, "membership_plans", plan_id, changes, ctx.now)
    outbox.append(db, "membership_plan_updated", {"plan_id": plan_id, "changes": changes}, ctx.now)


# -- subscriptions ------------------------------------------------------------------------


def vehicle_ids(db: Database, membership_id: int) -> list[int]:
    return [
        r["vehicle_id"]
        for r in rows(
            db,
            "SELECT vehicle_id FROM membership_vehicles WHERE membership_id = ? ORDER BY vehicle_id",
            [membership_id],
        )
    ]


def effective_status(membership: dict[str, Any], today: date) -> str:
    """``active`` memberships whose term ended are expired (or renewed by the sweep)."""
    if membership["status"] == "active" and date.fromisoformat(membership["end_date"]) < today:
        return "active" if membership["auto_renew"] else "expired"
    return str(membership["status"])


def active_membership_of(
    db: Database, user_id: int, today: date, exclude: int | None = None
) -> dict[str, Any] | None:
    for m in rows(
        db, "SELECT * FROM memberships WHERE user_id = ? AND status = 'active'", [user_id]
    ):
        if m["id"] != exclude and effective_status(m, today) == "active":
            return m
    return None


def _record_payment(
    db: Database,
    ctx: Ctx,
    membership_id: int,
    user_id: int,
    plan: dict[str, Any],
    method: str | None,
    term_start: date,
    term_end: date,
) -> int | None:
    """The plan price charged for a term (none for a free plan)."""
    price = cents(Decimal(plan["price"]))
    if price == 0:
        return None
    receipt = unique_code(db, "membership_payments", "receipt_number", receipt_code)
    payment_id = stamp_insert(
        db,
        "membership_payments",
        {
            "membership_id": membership_id,
            "user_id": user_id,
            "amount": price,
            "currency": plan["currency"],
            "payment_method": method,
            "status": "completed",
            "receipt_number": receipt,
            "term_start": term_start.isoformat(),
            "term_end": term_end.isoformat(),
            "paid_at": ctx.now,
        },
        ctx.now,
    )
    outbox.append(
        db,
        "membership_payment_completed",
        {
            "membership_payment_id": payment_id,
            "membership_id": membership_id,
            "amount": price,
            "receipt_number": receipt,
        },
        ctx.now,
    )
    return payment_id


def subscribe(
    db: Database,
    ctx: Ctx,
    *,
    plan_id: int,
    vehicles: list[int],
    auto_renew: bool,
    payment_method: str | None,
) -> tuple[int, int | None]:
    user_id = ctx.actor.id
    if user_id is None:
        raise Forbidden("log in to subscribe")
    plan = require(db, "membership_plans", plan_id, "membership plan")
    wanted = sorted(set(vehicles))
    if len(wanted) > plan["vehicle_limit"]:
        raise Invalid(
            f"the plan covers at most {plan['vehicle_limit']} vehicle(s)", field="vehicle_ids"
        )
    for vehicle_id in wanted:
        vehicle = require(db, "vehicles", vehicle_id, "vehicle")
        if vehicle["user_id"] != user_id:
            raise Forbidden(f"vehicle {vehicle_id} is not yours")
    if not plan["is_active"]:
        raise Conflict("this plan is no longer offered")
    today = ctx.utc_today
    if active_membership_of(db, user_id, today):
        raise Conflict("you already have an active membership")
    for vehicle_id in wanted:
        _vehicle_free(db, vehicle_id, today, None)
    end = add_months(today, plan["duration_months"])
    membership_id = stamp_insert(
        db,
        "memberships",
        {
            "user_id": user_id,
            "plan_id": plan_id,
            "start_date": today.isoformat(),
            "end_date": end.isoformat(),
            "status": "active",
            "auto_renew": auto_renew,
            "payment_method": payment_method,
        },
        ctx.now,
    )
    for vehicle_id in wanted:
        db.execute(
            "INSERT INTO membership_vehicles (membership_id, vehicle_id) VALUES (?, ?)",
            [membership_id, vehicle_id],
        )
    payment_id = _record_payment(db, ctx, membership_id, user_id, plan, payment_method, today, end)
    outbox.append(
        db,
        "membership_started",
        {
            "membership_id": membership_id,
            "user_id": user_id,
            "plan_id": plan_id,
            "vehicle_ids": wanted,
            "start_date": today.isoformat(),
            "end_date": end.isoformat(),
            "auto_renew": auto_renew,
        },
        ctx.now,
    )
    return membership_id, payment_id


def _vehicle_free(db: Database, vehicle_id: int, today: date, exclude: int | None) -> None:
    for m in rows(
        db,
        "SELECT m.* FROM memberships m JOIN membership_vehicles mv ON mv.membership_id = m.id"
        " WHERE mv.vehicle_id = ? AND m.status = 'active'",
        [vehicle_id],
    ):
        if m["id"] != exclude and effective_status(m, today) == "active":
            raise Conflict(f"vehicle {vehicle_id} is already on membership {m['id']}")


def cancel(db: Database, ctx: Ctx, membership_id: int) -> None:
    m = require(db, "memberships", membership_id, "membership")
    require_owner_or(ctx.actor, m["user_id"], staff=False, what="membership")
    if effective_status(m, ctx.utc_today) != "active":
        raise Conflict(f"membership is {effective_status(m, ctx.utc_today)}")
    db.execute(
        "UPDATE memberships SET status = 'cancelled', cancelled_at = ?, auto_renew = 0, updated_at = ?"
        " WHERE id = ?",
        [iso(ctx.now), iso(ctx.now), membership_id],
    )
    outbox.append(db, "membership_cancelled", {"membership_id": membership_id}, ctx.now)


def _next_term(m: dict[str, Any], plan: dict[str, Any], today: date) -> tuple[date, date]:
    """The term after the current end; several may have passed unrenewed (auto-renew
    between sweeps), so it is the first that reaches today."""
    start = date.fromisoformat(m["end_date"])
    end = add_months(start, plan["duration_months"])
    while end < today:
        end = add_months(end, plan["duration_months"])
    return start, end


def renew(db: Database, ctx: Ctx, membership_id: int) -> int | None:
    """Extend an active membership by one term; restart an ended one from today."""
    m = require(db, "memberships", membership_id, "membership")
    require_owner_or(ctx.actor, m["user_id"], staff=False, what="membership")
    plan = require(db, "membership_plans", m["plan_id"], "membership plan")
    today = ctx.utc_today
    status = effective_status(m, today)
    if status == "active":
        start, end = _next_term(m, plan, today)
        values: dict[str, Any] = {"end_date": end.isoformat()}
    else:
        if status == "suspended":
            raise Conflict("a suspended membership cannot be renewed")
        if active_membership_of(db, m["user_id"], today, exclude=membership_id):
            raise Conflict("the user already has another active membership")
        for vehicle_id in vehicle_ids(db, membership_id):
            _vehicle_free(db, vehicle_id, today, membership_id)
        start, end = today, add_months(today, plan["duration_months"])
        values = {
            "start_date": today.isoformat(),
            "end_date": end.isoformat(),
            "status": "active",
            "cancelled_at": None,
        }
    stamp_update(db, "memberships", membership_id, values, ctx.now)
    payment_id = _record_payment(
        db, ctx, membership_id, m["user_id"], plan, m["payment_method"], start, end
    )
    outbox.append(db, "membership_renewed", {"membership_id": membership_id, **values}, ctx.now)
    return payment_id


def sweep(db: Database, ctx: Ctx) -> int:
    """Persist term ends: auto-renew what asks for it, expire the rest. Returns the count."""
    changed = 0
    today = ctx.utc_today
    for m in rows(
        db,
        "SELECT * FROM memberships WHERE status = 'active' AND end_date < ?",
        [today.isoformat()],
    ):
        if m["auto_renew"]:
            plan = require(db, "membership_plans", m["plan_id"], "membership plan")
            start, end = _next_term(m, plan, today)
            stamp_update(db, "memberships", m["id"], {"end_date": end.isoformat()}, ctx.now)
            _record_payment(db, ctx, m["id"], m["user_id"], plan, m["payment_method"], start, end)
            outbox.append(
                db,
                "membership_renewed",
                {"membership_id": m["id"], "end_date": end.isoformat(), "automatic": True},
                ctx.now,
            )
        else:
            stamp_update(db, "memberships", m["id"], {"status": "expired"}, ctx.now)
            outbox.append(db, "membership_expired", {"membership_id": m["id"]}, ctx.now)
        changed += 1
    return changed


# -- memberships sold by the central system ---------------------------------------------


def upsert_central(
    db: Database,
    ctx: Ctx,
    *,
    external_id: str,
    plan_name: str,
    plates: list[str],
    valid_from: date,
    valid_to: date,
    status: str,
) -> dict[str, Any]:
    """Create or replace the central membership ``external_id`` (plates already normalised).

    Its vehicles are exactly ``plates`` afterwards (plates new to the site become ownerless
    vehicles). Refused, changing nothing: an unknown plan, more plates than the plan covers,
    a plate on another active membership, an end before the start.
    """
    plan = one(db, "SELECT * FROM membership_plans WHERE name = ?", [plan_name])
    if plan is None:
        raise Invalid(f"no membership plan named {plan_name!r}", field="plan")
    wanted_plates = sorted(set(plates))
    if len(wanted_plates) > plan["vehicle_limit"]:
        raise Invalid(
            f"plan {plan_name!r} covers at most {plan['vehicle_limit']} vehicle(s)",
            field="vehicles",
        )
    if valid_to < valid_from:
        raise Invalid("valid_to is before valid_from", field="valid_to")
    existing = one(db, "SELECT * FROM memberships WHERE external_id = ?", [external_id])
    exclude = existing["id"] if existing else None
    vehicle_ids_: list[int] = []
    for plate in wanted_plates:
        row = one(db, "SELECT id FROM vehicles WHERE license_plate = ?", [plate])
        if row is None:
            row = vehicle_service.register_unowned(db, ctx, plate, "central_membership")
        elif status == "active":
            _vehicle_free(db, row["id"], ctx.utc_today, exclude)
        vehicle_ids_.append(int(row["id"]))
    values: dict[str, Any] = {
        "plan_id": plan["id"],
        "start_date": valid_from.isoformat(),
        "end_date": valid_to.isoformat(),
        "status": status,
        "auto_renew": False,
        "cancelled_at": iso(ctx.now) if status == "cancelled" else None,
    }
    if existing is None:
        membership_id = stamp_insert(
            db, "memberships", {"external_id": external_id, "user_id": None, **values}, ctx.now
        )
    else:
        membership_id = int(existing["id"])
        if existing["status"] == "cancelled" and status == "cancelled":
            values["cancelled_at"] = existing["cancelled_at"]
        stamp_update(db, "memberships", membership_id, values, ctx.now)
        db.execute("DELETE FROM membership_vehicles WHERE membership_id = ?", [membership_id])
    for vehicle_id in vehicle_ids_:
        db.execute(
            "INSERT INTO membership_vehicles (membership_id, vehicle_id) VALUES (?, ?)",
            [membership_id, vehicle_id],
        )
    data = {
        "membership_id": membership_id,
        "external_id": external_id,
        "created": existing is None,
        "plan_id": plan["id"],
        "plan": plan["name"],
        "plates": wanted_plates,
        "vehicle_ids": vehicle_ids_,
        "valid_from": values["start_date"],
        "valid_to": values["end_date"],
        "status": status,
    }
    outbox.append(db, "membership_upserted", data, ctx.now)
    return {"membership_id": membership_id, "external_id": external_id, "created": existing is None}


def cancel_central(db: Database, ctx: Ctx, external_id: str) -> dict[str, Any]:
    """Cancel the central membership; cancelling a cancelled one again changes nothing."""
    m = one(db, "SELECT * FROM memberships WHERE external_id = ?", [external_id])
    if m is None:
        raise NotFound(f"no membership with external_id {external_id}")
    if m["status"] != "cancelled":
        db.execute(
            "UPDATE memberships SET status = 'cancelled', cancelled_at = ?, updated_at = ?"
            " WHERE id = ?",
            [iso(ctx.now), iso(ctx.now), m["id"]],
        )
        outbox.append(
            db,
            "membership_cancelled",
            {"membership_id": m["id"], "external_id": external_id},
            ctx.now,
        )
    return {"membership_id": m["id"], "external_id": external_id, "status": "cancelled"}


# -- benefits -----------------------------------------------------------------------------


def membership_for_stay(
    db: Database, vehicle_id: int, entry: datetime, tz_today: date
) -> dict[str, Any] | None:
    """The active membership listing the vehicle whose term contains the entry date."""
    day = entry.date().isoformat()
    for m in rows(
        db,
        "SELECT m.* FROM memberships m JOIN membership_vehicles mv ON mv.membership_id = m.id"
        " WHERE mv.vehicle_id = ? AND m.status = 'active' AND m.start_date <= ?",
        [vehicle_id, day],
    ):
        if effective_status(m, tz_today) != "active":
            continue
        if date.fromisoformat(m["end_date"]) >= entry.date() or m["auto_renew"]:
            return m
    return None


def term_start(db: Database, membership: dict[str, Any], day: date) -> date:
    """The start of the term that contains ``day``.

    Terms follow each other every ``duration_months`` from ``start_date`` (a renewal
    extends by one term from the end, a restart moves ``start_date``), so the allowance of
    included hours is fresh at each term, as the field reference's "current term" asks.
    """
    plan = require(db, "membership_plans", membership["plan_id"], "membership plan")
    start = date.fromisoformat(membership["start_date"])
    months = max(1, int(plan["duration_months"]))
    current, k = start, 1
    while (following := add_months(start, k * months)) < day:  # end_date is the term's last day
        current, k = following, k + 1
    return current


def hours_used_before(db: Database, membership: dict[str, Any], before: datetime) -> Decimal:
    """Hours of the membership's stays in the term of ``before`` completed before it."""
    total = 0.0
    for s in rows(
        db,
        "SELECT s.entry_time, s.exit_time FROM sessions s"
        " JOIN membership_vehicles mv ON mv.vehicle_id = s.vehicle_id"
        " WHERE mv.membership_id = ? AND s.status = 'completed' AND s.entry_time >= ?"
        " AND s.exit_time <= ?",
        [membership["id"], term_start(db, membership, before.date()).isoformat(), iso(before)],
    ):
        total += (parse(s["exit_time"]) - parse(s["entry_time"])).total_seconds() / 3600
    return Decimal(str(round(total, 4)))


def benefit_for(db: Database, session: dict[str, Any], today: date) -> MemberBenefit | None:
    entry = parse(session["entry_time"])
    m = membership_for_stay(db, session["vehicle_id"], entry, today)
    if m is None:
        return None
    plan = require(db, "membership_plans", m["plan_id"], "membership plan")
    left = None
    if plan["included_hours"] is not None:
        used = hours_used_before(db, m, entry)
        left = max(0, int((Decimal(plan["included_hours"]) - used) * 60))
    return MemberBenefit(
        membership_id=m["id"],
        discount_percentage=Decimal(plan["discount_percentage"]),
        included_minutes_left=left,
        ev_charging_included=bool(plan["ev_charging_included"]),
    )


def term_sessions(
    db: Database, membership: dict[str, Any], today: date | None = None
) -> list[dict[str, Any]]:
    """Stays of the membership's vehicles that entered during its current term.

    The term ends with its ``end_date`` (unless it renews itself: the sweep moves the date)
    or when the membership was cancelled; stays after that are no member's stays.
    """
    sql = (
        "SELECT s.* FROM sessions s JOIN membership_vehicles mv ON mv.vehicle_id = s.vehicle_id"
        " WHERE mv.membership_id = ? AND s.entry_time >= ? AND s.status != 'cancelled'"
    )
    first = (
        term_start(db, membership, today)
        if today is not None
        else date.fromisoformat(membership["start_date"])
    )
    params: list[Any] = [membership["id"], first.isoformat()]
    if not membership["auto_renew"]:
        sql += " AND s.entry_time < ?"
        params.append((date.fromisoformat(membership["end_date"]) + timedelta(days=1)).isoformat())
    if membership["cancelled_at"] is not None:
        sql += " AND s.entry_time < ?"
        params.append(membership["cancelled_at"])
    return list(rows(db, sql, params))


def _hours(sessions: list[dict[str, Any]], now: datetime) -> float:
    seconds = 0.0
    for s in sessions:
        end = parse(s["exit_time"]) if s["exit_time"] else now
        seconds += max(0.0, (end - parse(s["entry_time"])).total_seconds())
    return round(seconds / 3600, 2)


def _term_day(membership: dict[str, Any], today: date) -> date:
    """The day whose term is "current": today, or the last day of an ended membership."""
    last = date.fromisoformat(membership["end_date"])
    if membership["cancelled_at"] is not None:
        last = min(last, parse(membership["cancelled_at"]).date())
    return (
        today
        if membership["auto_renew"] and membership["cancelled_at"] is None
        else min(today, last)
    )


def usage_hours(db: Database, membership: dict[str, Any], now: datetime) -> float:
    return _hours(term_sessions(db, membership, _term_day(membership, now.date())), now)


def usage(db: Database, ctx: Ctx, membership_id: int) -> dict[str, Any]:
    from gateway.services.sessions import session_fee  # sessions uses this module for benefits

    m = require(db, "memberships", membership_id, "membership")
    require_owner_or(ctx.actor, m["user_id"], staff=False, what="membership")
    plan = require(db, "membership_plans", m["plan_id"], "membership plan")
    stays = term_sessions(db, m, _term_day(m, ctx.utc_today))
    savings = ZERO
    for s in stays:
        if s["status"] == "completed" and s["member_discount"] is not None:
            savings += Decimal(s["member_discount"])
        elif s["status"] == "active":
            savings += session_fee(db, s, None, ctx.now).discounts
    used = _hours(stays, ctx.now)
    remaining = None
    if plan["included_hours"] is not None:
        remaining = round(max(0.0, plan["included_hours"] - used), 2)
    return {
        "membership_id": membership_id,
        "hours_used": used,
        "hours_remaining": remaining,
        "sessions_count": len(stays),
        "savings_to_date": float(cents(savings)),
        "days_remaining": max(0, (date.fromisoformat(m["end_date"]) - ctx.utc_today).days),
        "status": effective_status(m, ctx.utc_today),
    }
