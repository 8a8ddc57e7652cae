"""The car park's structure: levels, zones and spaces."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlite_utils import Database

from gateway.errors import Conflict
from gateway.events import EVENTS
from gateway.services import Ctx, name_taken, one, require, stamp_insert, stamp_update
from gateway.store import outbox

SPACE_TYPES = ("standard", "compact", "handicapped", "ev_charging", "motorcycle")
SPACE_STATUSES = ("available", "occupied", "reserved", "maintenance", "out_of_service")


def _unique_level_name(db: Database, name: str, level_id: int | None = None) -> None:
    if name_taken(db, "levels", "name", name, except_id=level_id):
        raise Conflict(f"a level named {name!r} already exists")


def _unique_zone_name(db: Database, level_id: int, name: str, zone_id: int | None = None) -> None:
    if name_taken(
        db, "zones", "name", name, where="level_id = ?", params=[level_id], except_id=zone_id
    ):
        raise Conflict(f"level {level_id} already has a zone named {name!r}")


def _created(db: Database, ctx: Ctx, event_type: str, table: str, row_id: int) -> None:
    """The creation event from the row as stored (the columns the caller left out carry
    their defaults), with the fields its registered Struct lists (gateway.events)."""
    struct = EVENTS[event_type]
    row = require(db, table, row_id, table)
    key = msgspec.structs.fields(struct)[0].encode_name  # level_id, zone_id, ...
    raw = {
        f.encode_name: row_id if f.encode_name == key else row[f.encode_name]
        for f in msgspec.structs.fields(struct)
    }
    data = msgspec.to_builtins(msgspec.convert(raw, struct, strict=False))
    outbox.append(db, event_type, data, ctx.now)


def create_level(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    _unique_level_name(db, values["name"])
    level_id = stamp_insert(db, "levels", values, ctx.now)
    _created(db, ctx, "level_created", "levels", level_id)
    return level_id


def update_level(db: Database, ctx: Ctx, level_id: int, changes: dict[str, Any]) -> None:
    require(db, "levels", level_id, "level")
    if "name" in changes:
        changes = {**changes, "name": changes["name"].strip()}
        _unique_level_name(db, changes["name"], level_id)
    stamp_update(db, "levels", level_id, changes, ctx.now)
    outbox.append(db, "level_updated", {"level_id": level_id, "changes": changes}, ctx.now)


def create_zone(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    require(db, "levels", values["level_id"], "level")
    _unique_zone_name(db, values["level_id"], values["name"])
    zone_id = stamp_insert(db, "zones", values, ctx.now)
    _created(db, ctx, "zone_created", "zones", zone_id)
    return zone_id


def update_zone(db: Database, ctx: Ctx, zone_id: int, changes: dict[str, Any]) -> None:
    zone = require(db, "zones", zone_id, "zone")
    if "name" in changes:
        changes = {**changes, "name": changes["name"].strip()}
        _unique_zone_name(db, zone["level_id"], changes["name"], zone_id)
    stamp_update(db, "zones", zone_id, changes, ctx.now)
    outbox.append(db, "zone_updated", {"zone_id": zone_id, "changes": changes}, ctx.now)


def create_space(db: Database, ctx: Ctx, values: dict[str, Any]) -> int:
    zone = require(db, "zones", values["zone_id"], "zone")
    if name_taken(
        db,
        "spaces",
        "space_number",
        values["space_number"],
        where="zone_id = ?",
        params=[zone["id"]],
    ):
        raise Conflict(f"space {values['space_number']} already exists in zone {zone['id']}")
    if values.get("floor") is None:
        level = require(db, "levels", zone["level_id"], "level")
        values = {**values, "floor": level["floor_number"]}
    if values.get("space_type") == "ev_charging":
        values = {**values, "is_ev_charging": True}
    space_id = stamp_insert(db, "spaces", {**values, "status": "available"}, ctx.now)
    _created(db, ctx, "space_created", "spaces", space_id)
    return space_id


def update_space(db: Database, ctx: Ctx, space_id: int, changes: dict[str, Any]) -> None:
    space = require(db, "spaces", space_id, "space")
    new_status = changes.get("status")
    if new_status and new_status != space["status"]:
        occupant = one(
            db,
            "SELECT ticket_number FROM sessions WHERE space_id = ? AND status = 'active'",
            [space_id],
        )
        if occupant and new_status == "available":
            raise Conflict(
                f"space is occupied by session {occupant['ticket_number']}; "
                "move or end that session first",
                ticket_number=occupant["ticket_number"],
            )
    stamp_update(db, "spaces", space_id, changes, ctx.now)
    outbox.append(db, "space_updated", {"space_id": space_id, "changes": changes}, ctx.now)
    if new_status and new_status != space["status"]:
        outbox.append(
            db,
            "space_status_changed",
            {
                "space_id": space_id,
                "zone_id": space["zone_id"],
                "from": space["status"],
                "to": new_status,
                "by": ctx.actor.id,
            },
            ctx.now,
        )


def zone_availability(db: Database, zone_id: int) -> dict[str, Any]:
    require(db, "zones", zone_id, "zone")
    counts = {s: 0 for s in SPACE_STATUSES}
    for row in db.query(
        "SELECT status, COUNT(*) AS n FROM spaces WHERE zone_id = ? GROUP BY status", [zone_id]
    ):
        counts[row["status"]] = row["n"]
    total = sum(counts.values())
    available = counts["available"]
    return {
        "zone_id": zone_id,
        "total": total,
        "available": available,
        "occupied": counts["occupied"],
        "reserved": counts["reserved"],
        "maintenance": counts["maintenance"],
        "out_of_service": counts["out_of_service"],
        "occupancy_rate": round((total - available) / total * 100, 2) if total else 0.0,
    }
