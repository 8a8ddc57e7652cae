"""Payments at the pay station, the booth or in the app, and the exit check of the kiosk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.discounts import discount_amount, unusable_reason
from gateway.domain.fees import exit_status, minutes_left
from gateway.domain.money import ZERO, cents
from gateway.errors import Conflict, Invalid, NotFound, PaymentRequired
from gateway.services import Ctx, one, receipt_code, require, unique_code
from gateway.services.pricing import load_discount, uses_by_user
from gateway.services.sessions import completed_payments, owed, running_charge, session_fee
from gateway.store import outbox
from gateway.timeutil import iso, parse


def new_receipt_number(db: Database) -> str:
    return unique_code(db, "payments", "receipt_number", receipt_code)


@dataclass(frozen=True, kw_only=True)
class Quote:
    """What a payment for the session would be now, before anything is recorded."""

    due_before_code: Decimal
    parking_due: Decimal  # the part of it a code may reduce (never charging: 17.2)
    discount_id: int | None
    discount_amount: Decimal
    total: Decimal
    already_paid: bool
    ev_charging: Decimal  # the charging part of the fee this payment settles


def quote(db: Database, ctx: Ctx, session: dict[str, Any], code: str | None) -> Quote:
    fee = session_fee(db, session, None, ctx.now)
    payments = completed_payments(db, session["id"])
    # The same amount the barrier asks for (11.3): inside the exit window of the latest
    # payment only charging billed since is owed, not parking hours started meanwhile.
    due = exit_status(
        fee.total, payments, ctx.now, ctx.exit_window, ev_charging=fee.ev_charging
    ).amount_due
    # Codes reduce parking, never charging (17.2): take the unpaid charging out first.
    covered_ev = max((p.ev_covered for p in payments), default=ZERO)
    parking_due = max(ZERO, due - max(ZERO, fee.ev_charging - covered_ev))
    discount_id, off = None, ZERO
    if code:
        found = load_discount(db, code)
        uses = None
        if found is not None and ctx.actor.role == "customer" and ctx.actor.id is not None:
            uses = uses_by_user(db, found[0].id, ctx.actor.id)
        reason = unusable_reason(
            found[0] if found else None,
            ctx.now,
            stay_minutes=fee.duration_minutes,
            uses_by_payer=uses,
        )
        if reason is not None:
            raise Invalid(reason, field="discount_code")
        assert found is not None
        discount_id = found[0].id
        off = discount_amount(found[0], parking_due, fee.hourly_amount)
    return Quote(
        due_before_code=due,
        parking_due=parking_due,
        discount_id=discount_id,
        discount_amount=off,
        total=cents(due - off),
        already_paid=bool(payments) and due == 0,
        ev_charging=fee.ev_charging,
    )


def pay(
    db: Database,
    ctx: Ctx,
    *,
    session_id: int,
    payment_method: str,
    amount: Decimal,
    discount_code: str | None = None,
) -> int:
    """Record a completed payment; 402 when the amount tendered does not cover it."""
    session = require(db, "sessions", session_id, "session")
    if session["status"] != "active":
        raise Conflict(f"session {session['ticket_number']} is {session['status']}; nothing to pay")
    q = quote(db, ctx, session, discount_code)
    if q.due_before_code == 0:
        # A payment settles a positive amount due. Taking a 0.00 one would open an exit
        # window over a fee nobody paid (a stay inside its grace period would leave for
        # free long after the grace period ended).
        why = "is already paid" if q.already_paid else "owes nothing now"
        raise Conflict(
            f"nothing to pay: session {session['ticket_number']} {why}",
            reason="already_paid" if q.already_paid else "nothing_due",
        )
    if amount < q.total:
        raise PaymentRequired(
            f"amount {amount} does not cover {q.total}", amount_due=float(q.total)
        )
    ts = iso(ctx.now)
    payment_id = db.execute(
        "INSERT INTO payments (session_id, user_id, amount, tendered, currency, payment_method, status,"
        " transaction_id, discount_id, discount_amount, tax_amount, total_amount, receipt_number,"
        " paid_at, created_at, updated_at, ev_covered)"
        " VALUES (?, ?, ?, ?, 'USD', ?, 'completed', NULL, ?, ?, '0.00', ?, ?, ?, ?, ?, ?)",
        [
            session_id,
            ctx.actor.id,
            str(q.due_before_code),
            str(cents(amount)),
            payment_method,
            q.discount_id,
            str(q.discount_amount),
            str(q.total),
            new_receipt_number(db),
            ts,
            ts,
            ts,
            str(q.ev_charging),
        ],
    ).lastrowid
    assert payment_id is not None
    if q.discount_id is not None:
        db.execute(
            "UPDATE discounts SET current_uses = current_uses + 1, updated_at = ? WHERE id = ?",
            [ts, q.discount_id],
        )
    outbox.append(
        db,
        "payment_completed",
        {
            "payment_id": payment_id,
            "session_id": session_id,
            "ticket_number": session["ticket_number"],
            "amount": q.due_before_code,
            "discount_id": q.discount_id,
            "discount_amount": q.discount_amount,
            "total_amount": q.total,
            "payment_method": payment_method,
            "paid_at": ctx.now,
            "user_id": ctx.actor.id,
        },
        ctx.now,
    )
    return payment_id


def validate_exit(db: Database, ctx: Ctx, ticket_number: str) -> dict[str, Any]:
    session = one(db, "SELECT * FROM sessions WHERE ticket_number = ?", [ticket_number])
    if session is None:
        raise NotFound(f"unknown ticket {ticket_number}")
    fee, status = owed(db, ctx, session)
    active = session["status"] == "active"
    charging = active and running_charge(db, session["id"])
    remaining: int | None = None
    if status.in_exit_window and status.window_ends is not None:
        remaining = minutes_left(status.window_ends, ctx.now)
    elif status.is_paid and status.window_ends is not None:
        remaining = 0
    elif fee.total == 0 and fee.within_grace:
        grace_ends = parse(session["entry_time"]) + timedelta(minutes=fee.grace_period_minutes)
        remaining = minutes_left(grace_ends, ctx.now)
    return {
        "session_id": session["id"],
        "ticket_number": session["ticket_number"],
        "is_paid": status.is_paid,
        "can_exit": active and status.amount_due == 0 and not charging,
        "time_remaining_minutes": remaining,
        "amount_due": float(status.amount_due) if active else 0.0,
        "fee_total": float(fee.total),
        "status": session["status"],
    }
