"""Rates and discount codes: what the site charges, set by the admin or the central system."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.discounts import Discount
from gateway.errors import Conflict, Invalid
from gateway.services import Ctx, name_taken, one, require, stamp_insert, stamp_update
from gateway.store import outbox
from gateway.timeutil import iso, parse, parse_opt


def _check_rate(values: dict[str, Any]) -> None:
    start, end = values.get("effective_from"), values.get("effective_to")
    if start is not None and end is not None and end <= start:
        raise Invalid("effective_to must be after effective_from", field="effective_to")
    if (values.get("peak_start_time") is None) != (values.get("peak_end_time") is None):
        raise Invalid(
            "peak_start_time and peak_end_time go together: give both or neither",
            field="peak_start_time",
        )


def _unique_rate(db: Database, rate: dict[str, Any], rate_id: int | None = None) -> None:
    """Two active rates with the same name, type, scope (vehicle type, zone) and start are a
    double submission: 409. A rate of the same name starting later is how a price change
    is scheduled, and deactivated rates are history; neither counts."""
    start = rate["effective_from"]
    taken = name_taken(
        db,
        "rates",
        "name",
        rate["name"],
        where="is_active = 1 AND rate_type = ? AND vehicle_type_id IS ? AND zone_id IS ?"
        " AND effective_from = ?",
        params=[
            rate["rate_type"],
            rate.get("vehicle_type_id"),
            rate.get("zone_id"),
            iso(start) if isinstance(start, datetime) else start,
        ],
        except_id=rate_id,
    )
    if taken is not None:
        raise Conflict(
            f"an active {rate['rate_type']} rate named {rate['name']!r} with this scope and"
            f" start already exists (rate {taken})",
            rate_id=taken,
        )


def create_rate(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    _check_rate(values)  # request rules (422) before existence (404): field reference 1.2
    if values.get("vehicle_type_id") is not None:
        require(db, "vehicle_types", values["vehicle_type_id"], "vehicle type")
    if values.get("zone_id") is not None:
        require(db, "zones", values["zone_id"], "zone")
    _unique_rate(db, values)
    rate_id = stamp_insert(db, "rates", {**values, "is_active": True}, ctx.now)
    outbox.append(db, "rate_created", {"rate_id": rate_id, **values}, ctx.now)
    return rate_id


def update_rate(db: Database, ctx: Ctx, rate_id: int, changes: dict[str, Any]) -> None:
    current = require(db, "rates", rate_id, "rate")
    merged = {
        "effective_from": parse(current["effective_from"]),
        "effective_to": parse_opt(current["effective_to"]),
        "peak_start_time": current["peak_start_time"],
        "peak_end_time": current["peak_end_time"],
        **changes,
    }
    _check_rate(merged)
    if "name" in changes:
        changes = {**changes, "name": changes["name"].strip()}
    if "name" in changes or changes.get("is_active"):
        after = {**current, **changes}
        if after["is_active"]:
            _unique_rate(db, after, rate_id)
    stamp_update(db, "rates", rate_id, changes, ctx.now)
    outbox.append(db, "rate_updated", {"rate_id": rate_id, "changes": changes}, ctx.now)


def deactivate_rate(db: Database, ctx: Ctx, rate_id: int) -> None:
    require(db, "rates", rate_id, "rate")
    stamp_update(db, "rates", rate_id, {"is_active": False}, ctx.now)
    outbox.append(db, "rate_deactivated", {"rate_id": rate_id}, ctx.now)


# -- discounts ---------------------------------------------------------------------------


def _check_discount(values: dict[str, Any]) -> None:
    if values["valid_to"] <= values["valid_from"]:
        raise Invalid("valid_to must be after valid_from", field="valid_to")
    if values["discount_type"] == "percentage" and values["value"] > 100:
        raise Invalid("a percentage discount cannot exceed 100", field="value")


def create_discount(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    code = values["code"]
    _check_discount(values)  # request rules (422) before the duplicate check (409): 1.2
    if one(db, "SELECT id FROM discounts WHERE code = ?", [code]):
        raise Conflict(f"discount code {code} already exists")
    discount_id = stamp_insert(
        db, "discounts", {**values, "current_uses": 0, "is_active": True}, ctx.now
    )
    outbox.append(db, "discount_created", {"discount_id": discount_id, **values}, ctx.now)
    return discount_id


def update_discount(db: Database, ctx: Ctx, discount_id: int, changes: dict[str, Any]) -> None:
    current = require(db, "discounts", discount_id, "discount")
    merged = {
        "valid_from": parse(current["valid_from"]),
        "valid_to": parse(current["valid_to"]),
        "discount_type": current["discount_type"],
        "value": Decimal(current["value"]),
        **changes,
    }
    _check_discount(merged)
    stamp_update(db, "discounts", discount_id, changes, ctx.now)
    outbox.append(db, "discount_updated", {"discount_id": discount_id, "changes": changes}, ctx.now)


def deactivate_discount(db: Database, ctx: Ctx, discount_id: int) -> None:
    require(db, "discounts", discount_id, "discount")
    stamp_update(db, "discounts", discount_id, {"is_active": False}, ctx.now)
    outbox.append(db, "discount_deactivated", {"discount_id": discount_id}, ctx.now)


def load_discount(db: Database, code: str) -> tuple[Discount, dict[str, Any]] | None:
    row = one(db, "SELECT * FROM discounts WHERE code = ?", [code.strip().upper()])
    if row is None:
        return None
    return discount_from_row(row), row


def discount_from_row(row: dict[str, Any]) -> Discount:
    return Discount(
        id=row["id"],
        code=row["code"],
        discount_type=row["discount_type"],
        value=Decimal(row["value"]),
        valid_from=parse(row["valid_from"]),
        valid_to=parse(row["valid_to"]),
        is_active=bool(row["is_active"]),
        max_uses=row["max_uses"],
        current_uses=row["current_uses"],
        max_uses_per_user=row["max_uses_per_user"],
        min_duration_hours=row["min_duration_hours"],
    )


def uses_by_user(db: Database, discount_id: int, user_id: int) -> int:
    return int(
        db.execute(
            "SELECT COUNT(*) FROM payments WHERE discount_id = ? AND user_id = ? AND status = 'completed'",
            [discount_id, user_id],
        ).fetchone()[0]
    )
