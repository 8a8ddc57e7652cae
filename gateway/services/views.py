"""The read model: rows rendered as the API's resources, with their nested objects.

Small reference tables (vehicle types, levels, zones) are memoised per :class:`Views`
instance, so rendering a page of 100 sessions costs a handful of queries, not hundreds.
Money leaves as a JSON number with cents (``Decimal`` quantised, then ``float``, which
prints back exactly as ``15.0`` / ``3.13``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.money import cents
from gateway.services import Ctx, one


def money(value: Decimal | str | int | float | None) -> float | None:
    if value is None:
        return None
    return float(cents(Decimal(str(value))))


def number(value: str | None) -> float | None:
    return None if value is None else float(Decimal(value))


class Views:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._types: dict[int, dict[str, Any]] = {}
        self._levels: dict[int, dict[str, Any]] = {}
        self._zones: dict[int, dict[str, Any]] = {}

    # -- reference data -------------------------------------------------------
    def vehicle_type(self, type_id: int) -> dict[str, Any]:
        if type_id not in self._types:
            row = one(self.db, "SELECT * FROM vehicle_types WHERE id = ?", [type_id])
            assert row is not None, type_id
            self._types[type_id] = vehicle_type_view(row)
        return self._types[type_id]

    def level(self, level_id: int) -> dict[str, Any]:
        if level_id not in self._levels:
            row = one(self.db, "SELECT * FROM levels WHERE id = ?", [level_id])
            assert row is not None, level_id
            self._levels[level_id] = level_view(row)
        return self._levels[level_id]

    def zone(self, zone_id: int) -> dict[str, Any]:
        if zone_id not in self._zones:
            row = one(self.db, "SELECT * FROM zones WHERE id = ?", [zone_id])
            assert row is not None, zone_id
            self._zones[zone_id] = self.zone_row(row)
        return self._zones[zone_id]

    def zone_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "level_id": row["level_id"],
            "name": row["name"],
            "description": row["description"],
            "total_spaces": row["total_spaces"],
            "color_code": row["color_code"],
            "level": self.level(row["level_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    # -- resources ------------------------------------------------------------
    def vehicle_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "license_plate": row["license_plate"],
            "vehicle_type_id": row["vehicle_type_id"],
            "user_id": row["user_id"],
            "make": row["make"],
            "model": row["model"],
            "color": row["color"],
            "is_ev": bool(row["is_ev"]),
            "vehicle_type": self.vehicle_type(row["vehicle_type_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def vehicle(self, vehicle_id: int) -> dict[str, Any]:
        row = one(self.db, "SELECT * FROM vehicles WHERE id = ?", [vehicle_id])
        assert row is not None, vehicle_id
        return self.vehicle_row(row)

    def space_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "zone_id": row["zone_id"],
            "space_number": row["space_number"],
            "space_type": row["space_type"],
            "floor": row["floor"],
            "row": row["row"],
            "is_ev_charging": bool(row["is_ev_charging"]),
            "is_handicapped": bool(row["is_handicapped"]),
            "status": row["status"],
            "zone": self.zone(row["zone_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def space(self, space_id: int | None) -> dict[str, Any] | None:
        if space_id is None:
            return None
        row = one(self.db, "SELECT * FROM spaces WHERE id = ?", [space_id])
        return None if row is None else self.space_row(row)

    def session_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "vehicle_id": row["vehicle_id"],
            "space_id": row["space_id"],
            "reservation_id": row["reservation_id"],
            "ticket_number": row["ticket_number"],
            "status": row["status"],
            "entry_time": row["entry_time"],
            "exit_time": row["exit_time"],
            "entry_gate": row["entry_gate"],
            "exit_gate": row["exit_gate"],
            "notes": row["notes"],
            "vehicle": self.vehicle(row["vehicle_id"]),
            "space": self.space(row["space_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def session(self, session_id: int) -> dict[str, Any]:
        row = one(self.db, "SELECT * FROM sessions WHERE id = ?", [session_id])
        assert row is not None, session_id
        return self.session_row(row)


def vehicle_type_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "size_category": row["size_category"],
        "description": row["description"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def level_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "floor_number": row["floor_number"],
        "is_underground": bool(row["is_underground"]),
        "max_height_m": number(row["max_height_m"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def rate_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "rate_type": row["rate_type"],
        "amount": money(row["amount"]),
        "currency": row["currency"],
        "vehicle_type_id": row["vehicle_type_id"],
        "zone_id": row["zone_id"],
        "grace_period_minutes": row["grace_period_minutes"],
        "effective_from": row["effective_from"],
        "effective_to": row["effective_to"],
        "peak_multiplier": number(row["peak_multiplier"]),
        "peak_start_time": row["peak_start_time"],
        "peak_end_time": row["peak_end_time"],
        "min_duration_minutes": row["min_duration_minutes"],
        "max_duration_minutes": row["max_duration_minutes"],
        "is_active": bool(row["is_active"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def discount_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "discount_type": row["discount_type"],
        "value": number(row["value"]),
        "valid_from": row["valid_from"],
        "valid_to": row["valid_to"],
        "max_uses": row["max_uses"],
        "max_uses_per_user": row["max_uses_per_user"],
        "min_duration_hours": row["min_duration_hours"],
        "partner_name": row["partner_name"],
        "current_uses": row["current_uses"],
        "is_active": bool(row["is_active"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def payment_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "session_id": row["session_id"],
        "user_id": row["user_id"],
        "amount": money(row["amount"]),
        "amount_tendered": money(row["tendered"]),
        "currency": row["currency"],
        "payment_method": row["payment_method"],
        "status": row["status"],
        "transaction_id": row["transaction_id"],
        "discount_id": row["discount_id"],
        "discount_amount": money(row["discount_amount"]),
        "tax_amount": money(row["tax_amount"]),
        "total_amount": money(row["total_amount"]),
        "receipt_number": row["receipt_number"],
        "paid_at": row["paid_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def plan_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "duration_months": row["duration_months"],
        "price": money(row["price"]),
        "currency": row["currency"],
        "vehicle_limit": row["vehicle_limit"],
        "included_hours": row["included_hours"],
        "discount_percentage": number(row["discount_percentage"]),
        "priority_reservation": bool(row["priority_reservation"]),
        "ev_charging_included": bool(row["ev_charging_included"]),
        "is_active": bool(row["is_active"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class BookingViews(Views):
    """Views whose status depends on the time: reservations (no-shows) and memberships (terms)."""

    def __init__(self, db: Database, ctx: Ctx) -> None:
        super().__init__(db)
        self.ctx = ctx

    def reservation_row(self, row: dict[str, Any]) -> dict[str, Any]:
        from gateway.services.reservations import effective_status

        return {
            "id": row["id"],
            "user_id": row["user_id"],
            "vehicle_id": row["vehicle_id"],
            "space_id": row["space_id"],
            "zone_id": row["zone_id"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
            "status": effective_status(self.ctx, row),
            "confirmation_number": row["confirmation_number"],
            "special_requests": row["special_requests"],
            "reservation_fee": money(row["reservation_fee"]),
            "is_paid": bool(row["is_paid"]),
            "cancelled_at": row["cancelled_at"],
            "cancellation_reason": row["cancellation_reason"],
            "session_id": row["session_id"],
            "vehicle": self.vehicle(row["vehicle_id"]),
            "space": self.space(row["space_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def reservation(self, reservation_id: int) -> dict[str, Any]:
        row = one(self.db, "SELECT * FROM reservations WHERE id = ?", [reservation_id])
        assert row is not None, reservation_id
        return self.reservation_row(row)

    def membership_row(self, row: dict[str, Any]) -> dict[str, Any]:
        from gateway.services.memberships import effective_status, usage_hours, vehicle_ids

        plan = one(self.db, "SELECT * FROM membership_plans WHERE id = ?", [row["plan_id"]])
        assert plan is not None
        return {
            "id": row["id"],
            "user_id": row["user_id"],
            "plan_id": row["plan_id"],
            "vehicle_ids": vehicle_ids(self.db, row["id"]),
            "start_date": row["start_date"],
            "end_date": row["end_date"],
            "status": effective_status(row, self.ctx.utc_today),
            "auto_renew": bool(row["auto_renew"]),
            "payment_method": row["payment_method"],
            "payment_method_id": row["payment_method_id"],
            "used_hours": usage_hours(self.db, row, self.ctx.now),
            "plan": plan_view(plan),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def membership(self, membership_id: int) -> dict[str, Any]:
        row = one(self.db, "SELECT * FROM memberships WHERE id = ?", [membership_id])
        assert row is not None, membership_id
        return self.membership_row(row)

    def station_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "space_id": row["space_id"],
            "charger_type": row["charger_type"],
            "power_kw": number(row["power_kw"]),
            "connector_type": row["connector_type"],
            "price_per_kwh": number(row["price_per_kwh"]),
            "installed_at": row["installed_at"],
            "manufacturer": row["manufacturer"],
            "serial_number": row["serial_number"],
            "status": row["status"],
            "last_maintenance": row["last_maintenance"],
            "ocpp_id": row["ocpp_id"],
            "connector_id": row["connector_id"],
            "space": self.space(row["space_id"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
