"""EV charging stations and charging sessions, billed with the parking stay.

The energy of a charge comes from the charger behind the station (the :class:`Charger`
port: the simulated meter today, an OCPP charge point later); the service only records
what the charger reports and prices it: ``energy x price_per_kwh``, half-up to cents.
A completed charge linked to a parking session is part of that session's fee, so one
payment at the exit settles parking and charging together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.domain.fees import ChargeLine
from gateway.domain.money import ZERO, cents
from gateway.errors import Conflict, Forbidden, Invalid
from gateway.ports import Charger, ChargerError
from gateway.services import Ctx, one, require, require_owner_or, rows, stamp_insert, stamp_update
from gateway.store import Store, outbox
from gateway.timeutil import iso, parse

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


def _check_binding(
    db: Database, ocpp_id: str | None, connector_id: int | None, station_id: int | None
) -> None:
    if ocpp_id is None:
        return
    taken = one(
        db,
        "SELECT id FROM ev_stations WHERE ocpp_id = ? AND connector_id = ? AND id != ?",
        [ocpp_id, connector_id, station_id or 0],
    )
    if taken is not None:
        raise Conflict(
            f"connector {connector_id} of charge point {ocpp_id} is bound to station {taken['id']}"
        )


def create_station(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    space = require(db, "spaces", values["space_id"], "space")
    _check_binding(db, values.get("ocpp_id"), values.get("connector_id"), None)
    if one(db, "SELECT id FROM ev_stations WHERE space_id = ?", [space["id"]]):
        raise Conflict(f"space {space['space_number']} already has a charging station")
    values = {**values, "installed_at": (values.get("installed_at") or ctx.utc_today).isoformat()}
    station_id = stamp_insert(db, "ev_stations", {**values, "status": "available"}, ctx.now)
    stamp_update(db, "spaces", space["id"], {"is_ev_charging": True}, ctx.now)
    outbox.append(db, "ev_station_created", {"station_id": station_id, **values}, ctx.now)
    return station_id


def update_station(db: Database, ctx: Ctx, station_id: int, changes: dict[str, Any]) -> None:
    station = require(db, "ev_stations", station_id, "station")
    if "ocpp_id" in changes or "connector_id" in changes:
        ocpp_id = changes.get("ocpp_id", station["ocpp_id"])
        connector = changes.get("connector_id", station["connector_id"]) or (1 if ocpp_id else None)
        changes = {**changes, "ocpp_id": ocpp_id, "connector_id": connector if ocpp_id else None}
        _check_binding(db, ocpp_id, connector, station_id)
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
    db: Database,
    ctx: Ctx,
    plan: StartPlan,
    started_at: datetime | None = None,
    *,
    id_tag: str | None = None,
) -> int:
    """Record a charge the charger accepted (re-checking, since time passed while it answered).

    On an OCPP station the charge waits as ``started`` until the charger's StartTransaction
    (with our ``id_tag``) makes it ``charging``; it may have arrived first, already linked.
    """
    if id_tag is not None and plan.station.get("ocpp_id"):
        linked = one(
            db,
            "SELECT id FROM charging_sessions WHERE station_id = ? AND id_tag = ?",
            [plan.station["id"], id_tag],
        )
        if linked is not None:
            return int(linked["id"])
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
            "status": "started" if fresh.station.get("ocpp_id") else "charging",
            "id_tag": id_tag,
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
    vehicle = one(db, "SELECT user_id FROM vehicles WHERE id = ?", [charge["vehicle_id"]])
    owner = (
        vehicle["user_id"]
        if vehicle is not None and vehicle["user_id"] is not None
        else charge["user_id"]
    )
    require_owner_or(ctx.actor, owner, staff=True, what="charging session")
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
    provisional: bool = False,
    meter_stop_wh: int | None = None,
) -> None:
    """Close a charge with the energy the charger metered, and price it.

    ``provisional``: the charger did not confirm the stop in time; the last metered
    energy is billed and a later StopTransaction replaces it (:func:`ocpp_stop`).
    """
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
        {
            "status": "completed",
            "end_time": end,
            "energy_kwh": energy,
            "cost": cost,
            "provisional": provisional,
            "stop_reason": reason,
            "meter_stop_wh": meter_stop_wh,
            "charging_ended_at": end,
        },
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
            "provisional": provisional,
        },
        ctx.now,
    )


# -- asking the charger, then recording: the one path of the API, the console, the demo --------


async def start_remote(
    store: Store,
    charger: Charger,
    ctx: Ctx,
    *,
    station_id: int,
    vehicle_id: int,
    parking_session_id: int | None,
    max_power: Decimal | None,
) -> int:
    """Check, ask the station's charger to start, and record the charge; returns its id.

    Our id tag for the charge goes to the charger, whose StartTransaction names it, so the
    two link up whichever arrives first. A charger that refuses or does not answer is a 409.
    """
    plan = plan_start(
        store.reader,
        ctx,
        station_id=station_id,
        vehicle_id=vehicle_id,
        parking_session_id=parking_session_id,
        max_power=max_power,
    )
    id_tag = f"GW-{secrets.token_hex(6).upper()}"
    try:
        await charger.start(plan.station, power_kw=plan.power_kw, started_at=ctx.now, id_tag=id_tag)
    except ChargerError as err:
        raise Conflict(f"the charger did not start: {err}") from err
    try:
        return await store.write(lambda db: record_start(db, ctx, plan, ctx.now, id_tag=id_tag))
    finally:
        charger.started_recorded(plan.station)


async def stop_remote(store: Store, charger: Charger, ctx: Ctx, charge_id: int) -> None:
    """Ask the charger to stop a charge and make sure it ends up recorded.

    The charger's StopTransaction records the final energy; without one in time, the last
    metered energy is billed as provisional. A charger that refuses is a 409.
    """
    charge = require_stoppable(store.reader, ctx, charge_id)
    station = require(store.reader, "ev_stations", charge["station_id"], "station")
    try:
        outcome = await charger.stop(station, charge, now=ctx.now)
    except ChargerError as err:
        raise Conflict(f"the charger did not stop: {err}") from err
    if not outcome.recorded:
        await store.write(
            lambda db: record_stop(
                db,
                ctx,
                charge_id,
                outcome.energy_kwh,
                stopped_at=ctx.now,
                provisional=outcome.provisional,
            )
        )


# -- OCPP: what the chargers report -----------------------------------------------------------

# OCPP 1.6 connector status -> station status on the API.
OCPP_STATUS = {
    "Available": "available",
    "Preparing": "occupied",
    "Charging": "charging",
    "SuspendedEV": "occupied",
    "SuspendedEVSE": "occupied",
    "Finishing": "occupied",
    "Reserved": "occupied",
    "Unavailable": "maintenance",
    "Faulted": "faulted",
}


def station_for(db: Database, ocpp_id: str, connector_id: int) -> dict[str, Any] | None:
    return one(
        db,
        "SELECT * FROM ev_stations WHERE ocpp_id = ? AND connector_id = ?",
        [ocpp_id, connector_id],
    )


def stations_of(db: Database, ocpp_id: str) -> list[dict[str, Any]]:
    return list(
        rows(db, "SELECT * FROM ev_stations WHERE ocpp_id = ? ORDER BY connector_id", [ocpp_id])
    )


def charger_seen(
    db: Database,
    ctx: Ctx,
    ocpp_id: str,
    *,
    connected: bool | None = None,
    boot: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"last_seen": ctx.now}
    if connected is not None:
        values["connected"] = connected
    if boot is not None:
        values.update(boot, last_boot=ctx.now)
    if one(db, "SELECT id FROM ocpp_chargers WHERE id = ?", [ocpp_id]) is None:
        stamp_insert(db, "ocpp_chargers", {"id": ocpp_id, **values}, ctx.now)
    else:
        db.table("ocpp_chargers").update(
            ocpp_id, {**_stored_values(values), "updated_at": iso(ctx.now)}
        )
    if boot is not None:
        outbox.append(db, "charger_booted", {"charge_point_id": ocpp_id, **boot}, ctx.now)


def _stored_values(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (iso(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool) else v)
        for k, v in values.items()
    }


def ocpp_status(
    db: Database,
    ctx: Ctx,
    ocpp_id: str,
    connector_id: int,
    status: str,
    error_code: str,
    at: datetime,
) -> None:
    """A StatusNotification: the station's status, and the end of a charged car's idle time."""
    targets = (
        stations_of(db, ocpp_id)
        if connector_id == 0
        else [s for s in [station_for(db, ocpp_id, connector_id)] if s is not None]
    )
    mapped = OCPP_STATUS.get(status, "faulted")
    for station in targets:
        if station["status"] == "maintenance" and mapped == "maintenance":
            continue
        set_station_status(db, ctx, station["id"], mapped)
        if status == "Available":
            _close_idle(db, ctx, station, at)
        if status in ("Finishing", "SuspendedEV"):
            db.execute(
                "UPDATE charging_sessions SET charging_ended_at = IFNULL(charging_ended_at, ?)"
                " WHERE station_id = ? AND status = 'charging'",
                [iso(at), station["id"]],
            )
    outbox.append(
        db,
        "charger_status",
        {
            "charge_point_id": ocpp_id,
            "connector_id": connector_id,
            "status": status,
            "error_code": error_code,
        },
        ctx.now,
    )


def _close_idle(db: Database, ctx: Ctx, station: dict[str, Any], at: datetime) -> None:
    """The car was unplugged: bill the idle time it kept the charger after charging ended."""
    charge = one(
        db,
        "SELECT * FROM charging_sessions WHERE station_id = ? AND status = 'completed'"
        " AND unplugged_at IS NULL AND charging_ended_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        [station["id"]],
    )
    if charge is None:
        return
    per_minute = Decimal(ctx.charging.idle_fee_per_minute)
    idle = (
        at - parse(charge["charging_ended_at"])
    ).total_seconds() / 60 - ctx.charging.idle_grace_minutes
    fee = cents(per_minute * Decimal(int(max(0.0, idle)))) if per_minute > 0 else ZERO
    stamp_update(
        db, "charging_sessions", charge["id"], {"unplugged_at": at, "idle_fee": fee}, ctx.now
    )
    if fee > 0:
        outbox.append(
            db,
            "charging_idle_fee",
            {"charge_id": charge["id"], "idle_fee": fee, "minutes": int(max(0.0, idle))},
            ctx.now,
        )


def accepted_tag(db: Database, ctx: Ctx, id_tag: str) -> bool:
    """RFID tags from the config, the members' tags (MEMBER-<id>), and the gateway's own (GW-...)."""
    from gateway.services import memberships

    if id_tag in ctx.ocpp_id_tags or id_tag.startswith("GW-"):
        return True
    if id_tag.startswith("MEMBER-") and id_tag[7:].isdigit():
        m = one(db, "SELECT * FROM memberships WHERE id = ?", [int(id_tag[7:])])
        return m is not None and memberships.effective_status(m, ctx.utc_today) == "active"
    return False


def ocpp_start(
    db: Database,
    ctx: Ctx,
    *,
    ocpp_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_wh: int,
    started_at: datetime,
) -> int | None:
    """A StartTransaction: the transaction id is our charging session's id (never reused).

    A charge the API asked for (RemoteStartTransaction, waiting as ``started`` with our id
    tag) becomes ``charging``; a start at the charger itself (an RFID card) creates the
    charge, for the vehicle parked on the station's space when there is one. Returns None
    when no station is bound to the connector.
    """
    station = station_for(db, ocpp_id, connector_id)
    if station is None:
        return None
    waiting = one(
        db,
        "SELECT * FROM charging_sessions WHERE station_id = ? AND status = 'started'"
        " AND id_tag = ?",
        [station["id"], id_tag],
    )
    if waiting is not None:
        stamp_update(
            db,
            "charging_sessions",
            waiting["id"],
            {
                "status": "charging",
                "start_time": started_at,
                "meter_start_wh": meter_start_wh,
                "meter_last_wh": meter_start_wh,
            },
            ctx.now,
        )
        charge_id = int(waiting["id"])
    else:
        parked = one(
            db,
            "SELECT id, vehicle_id FROM sessions WHERE space_id = ? AND status = 'active'",
            [station["space_id"]],
        )
        running = one(
            db,
            "SELECT id FROM charging_sessions WHERE station_id = ? AND status IN ('started', 'charging')",
            [station["id"]],
        )
        if running is not None:  # a lost StopTransaction: the charger knows better
            record_stop(
                db,
                ctx,
                running["id"],
                _energy(
                    one(db, "SELECT * FROM charging_sessions WHERE id = ?", [running["id"]]) or {}
                ),
                reason="superseded",
            )
        charge_id = stamp_insert(
            db,
            "charging_sessions",
            {
                "station_id": station["id"],
                "vehicle_id": parked["vehicle_id"] if parked else None,
                "parking_session_id": parked["id"] if parked else None,
                "user_id": None,
                "start_time": started_at,
                "status": "charging",
                "id_tag": id_tag,
                "meter_start_wh": meter_start_wh,
                "meter_last_wh": meter_start_wh,
                "energy_kwh": "0",
                "cost": "0.00",
            },
            ctx.now,
        )
    set_station_status(db, ctx, station["id"], "charging")
    outbox.append(
        db,
        "charging_started",
        {
            "charge_id": charge_id,
            "station_id": station["id"],
            "charge_point_id": ocpp_id,
            "connector_id": connector_id,
            "id_tag": id_tag,
            "meter_start_wh": meter_start_wh,
            "started_at": started_at,
        },
        ctx.now,
    )
    return charge_id


def _energy(charge: dict[str, Any]) -> Decimal:
    if charge.get("meter_start_wh") is None or charge.get("meter_last_wh") is None:
        return Decimal(charge.get("energy_kwh") or "0")
    return Decimal(max(0, charge["meter_last_wh"] - charge["meter_start_wh"])) / 1000


def ocpp_meter(db: Database, ctx: Ctx, transaction_id: int, energy_wh: int, at: datetime) -> bool:
    """A MeterValues energy register: the charge's energy and cost so far, live.

    Every charger sends these every sample interval, in the single writer's queue ahead of
    the lanes' writes: a plain UPDATE (sqlite-utils' ``Table.update`` introspects the table
    on every call, which doubled the writer's time per meter value; bench/ocpp.py).
    """
    charge = one(db, "SELECT * FROM charging_sessions WHERE id = ?", [transaction_id])
    if charge is None or charge["status"] not in RUNNING or charge["meter_start_wh"] is None:
        return False
    station = require(db, "ev_stations", charge["station_id"], "station")
    energy = kwh(Decimal(max(0, energy_wh - charge["meter_start_wh"])) / 1000)
    cost = cents(energy * Decimal(station["price_per_kwh"]))
    db.execute(
        "UPDATE charging_sessions SET meter_last_wh = ?, energy_kwh = ?, cost = ?, updated_at = ?"
        " WHERE id = ?",
        [energy_wh, str(energy), str(cost), iso(ctx.now), transaction_id],
    )
    outbox.append(
        db,
        "charging_meter",
        {"charge_id": transaction_id, "energy_kwh": energy, "meter_wh": energy_wh, "at": at},
        ctx.now,
    )
    return True


def ocpp_stop(
    db: Database,
    ctx: Ctx,
    *,
    ocpp_id: str,
    transaction_id: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str,
) -> str:
    """A StopTransaction: the final energy (meterStop - meterStart). Returns what it matched.

    ``completed``: a running charge was closed; ``finalised``: a charge closed provisionally
    (the charger answered late) got its final figures; ``unknown``: no such transaction
    (recorded as an event, still answered normally to the charger).
    """
    charge = one(db, "SELECT * FROM charging_sessions WHERE id = ?", [transaction_id])
    if charge is None or charge["meter_start_wh"] is None:
        outbox.append(
            db,
            "charger_stop_unmatched",
            {
                "charge_point_id": ocpp_id,
                "transaction_id": transaction_id,
                "meter_stop_wh": meter_stop_wh,
                "reason": reason,
            },
            ctx.now,
        )
        return "unknown"
    energy = Decimal(max(0, meter_stop_wh - charge["meter_start_wh"])) / 1000
    if charge["status"] in RUNNING:
        record_stop(
            db,
            ctx,
            transaction_id,
            energy,
            stopped_at=stopped_at,
            reason=reason,
            meter_stop_wh=meter_stop_wh,
        )
        return "completed"
    if charge["provisional"]:
        station = require(db, "ev_stations", charge["station_id"], "station")
        final = kwh(energy)
        cost = cents(final * Decimal(station["price_per_kwh"]))
        stamp_update(
            db,
            "charging_sessions",
            transaction_id,
            {
                "energy_kwh": final,
                "cost": cost,
                "provisional": False,
                "meter_stop_wh": meter_stop_wh,
                "end_time": stopped_at,
                "stop_reason": reason,
            },
            ctx.now,
        )
        outbox.append(
            db,
            "charging_finalised",
            {"charge_id": transaction_id, "energy_kwh": final, "cost": cost},
            ctx.now,
        )
        return "finalised"
    outbox.append(
        db,
        "charger_stop_unmatched",
        {"charge_point_id": ocpp_id, "transaction_id": transaction_id, "reason": "already closed"},
        ctx.now,
    )
    return "already_closed"


def mark_chargers_offline(db: Database, ctx: Ctx, ocpp_id: str) -> None:
    for station in stations_of(db, ocpp_id):
        if station["status"] not in ("maintenance",):
            set_station_status(db, ctx, station["id"], "offline")
    db.execute(
        "UPDATE ocpp_chargers SET connected = 0, updated_at = ? WHERE id = ?",
        [iso(ctx.now), ocpp_id],
    )
    outbox.append(db, "charger_offline", {"charge_point_id": ocpp_id}, ctx.now)


def charges_for_session(db: Database, parking_session_id: int) -> list[ChargeLine]:
    """Completed charges billed with a parking stay (the fee makes them free for members
    whose plan includes charging)."""
    return [
        ChargeLine(
            energy_kwh=Decimal(c["energy_kwh"]),
            cost=Decimal(c["cost"]),
            idle_fee=Decimal(c["idle_fee"]),
        )
        for c in rows(
            db,
            "SELECT energy_kwh, cost, idle_fee FROM charging_sessions"
            " WHERE parking_session_id = ? AND status = 'completed' ORDER BY id",
            [parking_session_id],
        )
    ]


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
