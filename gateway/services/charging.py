"""EV charging stations and charging sessions, billed with the parking stay.

The energy of a charge comes from the charger behind the station (the :class:`Charger`
port: the simulated meter today, an OCPP charge point later); the service only records
what the charger reports and prices it: ``energy x price_per_kwh``, half-up to cents.
A completed charge linked to a parking session is part of that session's fee, so one
payment at the exit settles parking and charging together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.fees import ChargeLine
from gateway.domain.money import ZERO, cents
from gateway.errors import Conflict, Forbidden, Invalid
from gateway.services import Ctx, one, require, require_owner_or, rows, stamp_insert, stamp_update
from gateway.store import outbox
from gateway.timeutil import parse

STATION_STATUSES = (
    "available",
    "in_use",
    "occupied",
    "charging",
    "faulted",
    "offline",
    "maintenance",
)
CAN_START = ("available", "occupied")  # occupied: a car is plugged in but not charging yet
RUNNING = ("started", "charging")


def kwh(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"))


# -- stations -----------------------------------------------------------------------------


def create_station(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    space = require(db, "spaces", values["space_id"], "space")
    if one(db, "SELECT id FROM ev_stations WHERE space_id = ?", [space["id"]]):
        raise Conflict(f"space {space['space_number']} already has a charging station")
    values = {**values, "installed_at": (values.get("installed_at") or ctx.utc_today).isoformat()}
    station_id = stamp_insert(db, "ev_stations", {**values, "status": "available"}, ctx.now)
    stamp_update(db, "spaces", space["id"], {"is_ev_charging": True}, ctx.now)
    outbox.append(db, "ev_station_created", {"station_id": station_id, **values}, ctx.now)
    return station_id


def update_station(db: Database, ctx: Ctx, station_id: int, changes: dict[str, Any]) -> None:
    station = require(db, "ev_stations", station_id, "station")
    if isinstance(changes.get("last_maintenance"), date):
        changes = {**changes, "last_maintenance": changes["last_maintenance"].isoformat()}
    stamp_update(db, "ev_stations", station_id, changes, ctx.now)
    outbox.append(db, "ev_station_updated", {"station_id": station_id, "changes": changes}, ctx.now)
    if "status" in changes and changes["status"] != station["status"]:
        outbox.append(
            db,
            "ev_station_status_changed",
            {"station_id": station_id, "from": station["status"], "to": changes["status"]},
            ctx.now,
        )


def set_station_status(db: Database, ctx: Ctx, station_id: int, status: str) -> None:
    station = require(db, "ev_stations", station_id, "station")
    if station["status"] == status:
        return
    stamp_update(db, "ev_stations", station_id, {"status": status}, ctx.now)
    outbox.append(
        db,
        "ev_station_status_changed",
        {"station_id": station_id, "from": station["status"], "to": status},
        ctx.now,
    )


# -- charging sessions --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StartPlan:
    """A checked request to start charging, before the charger is asked."""

    station: dict[str, Any]
    vehicle: dict[str, Any]
    parking_session_id: int | None
    power_kw: Decimal


def plan_start(
    db: Database,
    ctx: Ctx,
    *,
    station_id: int,
    vehicle_id: int,
    parking_session_id: int | None,
    max_power: Decimal | None,
) -> StartPlan:
    """Every check of a start, so the charger is only asked for something we will record."""
    station = require(db, "ev_stations", station_id, "station")
    vehicle = require(db, "vehicles", vehicle_id, "vehicle")
    if parking_session_id is not None:
        require(db, "sessions", parking_session_id, "parking session")
    if not ctx.actor.is_staff and vehicle["user_id"] != ctx.actor.id:
        raise Forbidden("you can only charge your own vehicles")
    # A vehicle first seen at a gate has no owner and unknown capabilities: let it charge.
    if not vehicle["is_ev"] and vehicle["user_id"] is not None:
        raise Invalid("this vehicle is not registered as an EV", field="vehicle_id")
    if parking_session_id is not None:
        parking = one(db, "SELECT * FROM sessions WHERE id = ?", [parking_session_id])
        assert parking is not None
        if parking["vehicle_id"] != vehicle_id or parking["status"] != "active":
            raise Invalid(
                "parking_session_id must be an active session of this vehicle",
                field="parking_session_id",
            )
    else:
        parking = one(
            db, "SELECT id FROM sessions WHERE vehicle_id = ? AND status = 'active'", [vehicle_id]
        )
        parking_session_id = parking["id"] if parking else None
    if station["status"] not in CAN_START:
        raise Conflict(f"station {station_id} is {station['status']}")
    if one(
        db,
        "SELECT id FROM charging_sessions WHERE station_id = ? AND status IN ('started', 'charging')",
        [station_id],
    ):
        raise Conflict(f"station {station_id} is busy")
    if one(
        db,
        "SELECT id FROM charging_sessions WHERE vehicle_id = ? AND status IN ('started', 'charging')",
        [vehicle_id],
    ):
        raise Conflict("this vehicle is already charging")
    power = Decimal(station["power_kw"])
    if max_power is not None:
        power = min(power, max_power)
    return StartPlan(
        station=station, vehicle=vehicle, parking_session_id=parking_session_id, power_kw=power
    )


def record_start(
    db: Database, ctx: Ctx, plan: StartPlan, started_at: datetime | None = None
) -> int:
    """Record a charge the charger accepted (re-checking, since time passed while it answered)."""
    fresh = plan_start(
        db,
        ctx,
        station_id=plan.station["id"],
        vehicle_id=plan.vehicle["id"],
        parking_session_id=plan.parking_session_id,
        max_power=plan.power_kw,
    )
    charge_id = stamp_insert(
        db,
        "charging_sessions",
        {
            "station_id": fresh.station["id"],
            "vehicle_id": fresh.vehicle["id"],
            "parking_session_id": fresh.parking_session_id,
            "user_id": ctx.actor.id,
            "start_time": started_at or ctx.now,
            "status": "charging",
            "max_power_requested": fresh.power_kw,
            "energy_kwh": "0",
            "cost": "0.00",
        },
        ctx.now,
    )
    set_station_status(db, ctx, fresh.station["id"], "in_use")
    outbox.append(
        db,
        "charging_started",
        {
            "charge_id": charge_id,
            "station_id": fresh.station["id"],
            "vehicle_id": fresh.vehicle["id"],
            "parking_session_id": fresh.parking_session_id,
            "power_kw": fresh.power_kw,
        },
        ctx.now,
    )
    return charge_id


def require_stoppable(db: Database, ctx: Ctx, charge_id: int) -> dict[str, Any]:
    charge = require(db, "charging_sessions", charge_id, "charging session")
    vehicle = require(db, "vehicles", charge["vehicle_id"], "vehicle")
    require_owner_or(
        ctx.actor,
        vehicle["user_id"] if vehicle["user_id"] is not None else charge["user_id"],
        staff=True,
        what="charging session",
    )
    if charge["status"] not in RUNNING:
        raise Conflict(f"charging session {charge_id} is {charge['status']}")
    return charge


def record_stop(
    db: Database,
    ctx: Ctx,
    charge_id: int,
    energy_kwh: Decimal,
    *,
    stopped_at: datetime | None = None,
    reason: str = "remote",
) -> None:
    """Close a charge with the energy the charger metered, and price it."""
    charge = require(db, "charging_sessions", charge_id, "charging session")
    if charge["status"] not in RUNNING:
        raise Conflict(f"charging session {charge_id} is {charge['status']}")
    station = require(db, "ev_stations", charge["station_id"], "station")
    energy = kwh(max(ZERO, energy_kwh))
    cost = cents(energy * Decimal(station["price_per_kwh"]))
    end = stopped_at or ctx.now
    stamp_update(
        db,
        "charging_sessions",
        charge_id,
        {"status": "completed", "end_time": end, "energy_kwh": energy, "cost": cost},
        ctx.now,
    )
    if station["status"] in ("in_use", "charging", "occupied"):
        set_station_status(db, ctx, station["id"], "available")
    outbox.append(
        db,
        "charging_completed",
        {
            "charge_id": charge_id,
            "station_id": station["id"],
            "vehicle_id": charge["vehicle_id"],
            "parking_session_id": charge["parking_session_id"],
            "energy_kwh": energy,
            "cost": cost,
            "end_time": end,
            "reason": reason,
        },
        ctx.now,
    )


def charges_for_session(
    db: Database, parking_session_id: int, ev_included: bool
) -> list[ChargeLine]:
    """Completed charges billed with a parking stay (free for members whose plan includes it)."""
    lines = []
    for c in rows(
        db,
        "SELECT energy_kwh, cost, idle_fee FROM charging_sessions"
        " WHERE parking_session_id = ? AND status = 'completed' ORDER BY id",
        [parking_session_id],
    ):
        cost = ZERO if ev_included else Decimal(c["cost"])
        idle = ZERO if ev_included else Decimal(c["idle_fee"])
        lines.append(ChargeLine(energy_kwh=Decimal(c["energy_kwh"]), cost=cost, idle_fee=idle))
    return lines


def duration_minutes(charge: dict[str, Any]) -> int:
    if charge["end_time"] is None:
        return 0
    return max(
        0, int((parse(charge["end_time"]) - parse(charge["start_time"])).total_seconds() // 60)
    )


def charge_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "vehicle_id": row["vehicle_id"],
        "parking_session_id": row["parking_session_id"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "energy_kwh": float(Decimal(row["energy_kwh"])),
        "cost": float(cents(Decimal(row["cost"]))),
        "idle_fee": float(cents(Decimal(row["idle_fee"]))),
        "status": row["status"],
        "max_power_requested": None
        if row["max_power_requested"] is None
        else float(Decimal(row["max_power_requested"])),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
