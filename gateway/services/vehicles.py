"""Vehicle types and vehicles."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from gateway.errors import Conflict, Forbidden, NotFound
from gateway.services import Ctx, name_taken, one, require, require_owner_or, scalar
from gateway.store import outbox
from gateway.timeutil import iso

SIZE_CATEGORIES = ("small", "medium", "large", "extra_large")


def create_vehicle_type(
    db: Database, ctx: Ctx, *, name: str, size_category: str, description: str | None
) -> int:
    if name_taken(db, "vehicle_types", "name", name):
        raise Conflict(f"vehicle type {name!r} already exists")
    ts = iso(ctx.now)
    type_id = db.execute(
        "INSERT INTO vehicle_types (name, size_category, description, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [name, size_category, description, ts, ts],
    ).lastrowid
    assert type_id is not None
    outbox.append(
        db,
        "vehicle_type_created",
        {"vehicle_type_id": type_id, "name": name, "size_category": size_category},
        ctx.now,
    )
    return type_id


def default_vehicle_type(db: Database, ctx: Ctx) -> int:
    """The type given to vehicles first seen at a gate (``Car``, created as medium if missing)."""
    name = ctx.parking.default_vehicle_type
    found = scalar(db, "SELECT id FROM vehicle_types WHERE name = ?", [name])
    if found is not None:
        return int(found)
    return create_vehicle_type(db, ctx, name=name, size_category="medium", description=None)


def register_unowned(db: Database, ctx: Ctx, plate: str, source: str) -> dict[str, Any]:
    """A plate the site meets for the first time (at a gate, in a corrected read): an
    ownerless vehicle of the default type, announced like any other registration."""
    type_id = default_vehicle_type(db, ctx)
    ts = iso(ctx.now)
    new_id = db.execute(
        "INSERT INTO vehicles (license_plate, vehicle_type_id, user_id, is_ev, created_at, updated_at)"
        " VALUES (?, ?, NULL, 0, ?, ?)",
        [plate, type_id, ts, ts],
    ).lastrowid
    vehicle = require(db, "vehicles", int(new_id or 0), "vehicle")
    outbox.append(
        db,
        "vehicle_registered",
        {
            "vehicle_id": vehicle["id"],
            "license_plate": plate,
            "user_id": None,
            "vehicle_type_id": type_id,
            "is_ev": False,
            "source": source,
        },
        ctx.now,
    )
    return vehicle


def create_vehicle(
    db: Database,
    ctx: Ctx,
    *,
    license_plate: str,
    vehicle_type_id: int,
    user_id: int | None,
    make: str | None = None,
    model: str | None = None,
    color: str | None = None,
    is_ev: bool = False,
) -> int:
    require(db, "vehicle_types", vehicle_type_id, "vehicle type")
    if user_id is not None:
        require(db, "users", user_id, "user")
    existing = one(db, "SELECT id, user_id FROM vehicles WHERE license_plate = ?", [license_plate])
    if existing is not None:
        if existing["user_id"] is None and user_id is not None:
            # A plate first seen at a gate has no owner yet; its driver claims it by registering.
            return _claim(
                db, ctx, existing["id"], user_id, vehicle_type_id, make, model, color, is_ev
            )
        raise Conflict(f"vehicle with plate {license_plate} already registered")
    ts = iso(ctx.now)
    vehicle_id = db.execute(
        "INSERT INTO vehicles (license_plate, vehicle_type_id, user_id, make, model, color, is_ev,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [license_plate, vehicle_type_id, user_id, make, model, color, int(is_ev), ts, ts],
    ).lastrowid
    assert vehicle_id is not None
    outbox.append(
        db,
        "vehicle_registered",
        {
            "vehicle_id": vehicle_id,
            "license_plate": license_plate,
            "user_id": user_id,
            "vehicle_type_id": vehicle_type_id,
            "is_ev": is_ev,
        },
        ctx.now,
    )
    return vehicle_id


def _claim(
    db: Database,
    ctx: Ctx,
    vehicle_id: int,
    user_id: int,
    vehicle_type_id: int,
    make: str | None,
    model: str | None,
    color: str | None,
    is_ev: bool,
) -> int:
    db.execute(
        "UPDATE vehicles SET user_id = ?, vehicle_type_id = ?, make = ?, model = ?, color = ?,"
        " is_ev = ?, updated_at = ? WHERE id = ?",
        [user_id, vehicle_type_id, make, model, color, int(is_ev), iso(ctx.now), vehicle_id],
    )
    outbox.append(db, "vehicle_claimed", {"vehicle_id": vehicle_id, "user_id": user_id}, ctx.now)
    return vehicle_id


def update_vehicle(db: Database, ctx: Ctx, vehicle_id: int, changes: dict[str, Any]) -> None:
    vehicle = require(db, "vehicles", vehicle_id, "vehicle")
    # Existence (404, ids in the body included) is checked before ownership (403): 1.2.
    if "vehicle_type_id" in changes:
        require(db, "vehicle_types", changes["vehicle_type_id"], "vehicle type")
    require_owner_or(ctx.actor, vehicle["user_id"], staff=False, what="vehicle")
    allowed = {"make", "model", "color", "is_ev", "vehicle_type_id"}
    sets = {k: (int(v) if k == "is_ev" else v) for k, v in changes.items() if k in allowed}
    if not sets:
        return
    assignments = ", ".join(f"{k} = ?" for k in sets)
    db.execute(
        f"UPDATE vehicles SET {assignments}, updated_at = ? WHERE id = ?",
        [*sets.values(), iso(ctx.now), vehicle_id],
    )
    outbox.append(db, "vehicle_updated", {"vehicle_id": vehicle_id, "changes": changes}, ctx.now)


def delete_vehicle(db: Database, ctx: Ctx, vehicle_id: int) -> None:
    """Removes the vehicle from its owner's account.

    A vehicle with parking history keeps its row (sessions and payments refer to it and
    the audit trail must stay intact); it is detached from the owner instead, exactly as
    if it had only been seen at a gate.
    """
    vehicle = require(db, "vehicles", vehicle_id, "vehicle")
    require_owner_or(ctx.actor, vehicle["user_id"], staff=False, what="vehicle")
    if scalar(
        db, "SELECT 1 FROM sessions WHERE vehicle_id = ? AND status = 'active'", [vehicle_id]
    ):
        raise Conflict("vehicle is inside the car park (active session); it cannot be removed")
    booked = one(
        db,
        "SELECT confirmation_number FROM reservations WHERE vehicle_id = ?"
        " AND status IN ('pending', 'confirmed', 'checked_in') AND end_time > ? LIMIT 1",
        [vehicle_id, iso(ctx.now)],
    )
    if booked:
        raise Conflict(
            f"vehicle has reservation {booked['confirmation_number']}; cancel it first",
            confirmation_number=booked["confirmation_number"],
        )
    # Past reservations are history like sessions: they keep the row too.
    if scalar(
        db,
        "SELECT 1 FROM sessions WHERE vehicle_id = ?"
        " UNION ALL SELECT 1 FROM reservations WHERE vehicle_id = ? LIMIT 1",
        [vehicle_id, vehicle_id],
    ):
        db.execute(
            "UPDATE vehicles SET user_id = NULL, updated_at = ? WHERE id = ?",
            [iso(ctx.now), vehicle_id],
        )
    else:
        db.execute("DELETE FROM vehicles WHERE id = ?", [vehicle_id])
    outbox.append(
        db,
        "vehicle_removed",
        {"vehicle_id": vehicle_id, "license_plate": vehicle["license_plate"]},
        ctx.now,
    )


def find_by_plate(db: Database, ctx: Ctx, plate: str) -> dict[str, Any]:
    row = one(db, "SELECT * FROM vehicles WHERE license_plate = ?", [plate])
    if row is None:
        raise NotFound(f"no vehicle with plate {plate}")
    if not ctx.actor.is_staff and row["user_id"] != ctx.actor.id:
        raise Forbidden("this vehicle belongs to another customer")
    return row
