"""Plate reads (with their evidence), operator corrections, and the allow/deny plate lists."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from gateway.domain.plate_reads import Match, match, neighbours
from gateway.errors import Conflict, Invalid
from gateway.services import Ctx, one, require, rows, scalar, stamp_insert, stamp_update
from gateway.services.vehicles import register_unowned
from gateway.store import outbox
from gateway.timeutil import iso

LISTS = ("allow", "deny")


# -- reads --------------------------------------------------------------------------------


def record_read(
    db: Database,
    ctx: Ctx,
    *,
    read_id: int | None = None,
    lane_id: str | None,
    camera_id: str | None,
    source: str,
    plate: str,
    confidence: float,
    confident: bool,
    reads: int,
    alternatives: list[tuple[str, float]],
    first_seen: datetime,
    last_seen: datetime,
) -> int:
    read_id = stamp_insert(
        db,
        "plate_reads",
        {
            **({"id": read_id} if read_id is not None else {}),
            "lane_id": lane_id,
            "camera_id": camera_id,
            "source": source,
            "plate": plate,
            "confidence": confidence,
            "confident": confident,
            "reads": reads,
            "alternatives": json.dumps(alternatives),
            "first_seen": first_seen,
            "last_seen": last_seen,
        },
        ctx.now,
    )
    outbox.append(
        db,
        "plate_read",
        {
            "read_id": read_id,
            "lane_id": lane_id,
            "camera_id": camera_id,
            "source": source,
            "plate": plate,
            "confidence": confidence,
            "confident": confident,
            "alternatives": alternatives,
        },
        ctx.now,
    )
    return read_id


def set_evidence(
    db: Database, read_id: int, frame_path: str | None, crop_path: str | None, size: int
) -> None:
    db.execute(
        "UPDATE plate_reads SET frame_path = ?, crop_path = ?, evidence_bytes = ? WHERE id = ?",
        [frame_path, crop_path, size, read_id],
    )


def enforce_quota(db: Database, quota_bytes: int) -> int:
    """Delete the oldest evidence until the total fits the quota; returns the files removed."""
    total = int(
        scalar(
            db, "SELECT IFNULL(SUM(evidence_bytes), 0) FROM plate_reads WHERE evidence_bytes > 0"
        )
    )
    removed = 0
    if total <= quota_bytes:
        return 0
    for r in rows(
        db,
        "SELECT id, frame_path, crop_path, evidence_bytes FROM plate_reads WHERE evidence_bytes > 0"
        " ORDER BY id",
    ):
        for path in (r["frame_path"], r["crop_path"]):
            if path:
                Path(path).unlink(missing_ok=True)
                removed += 1
        db.execute(
            "UPDATE plate_reads SET frame_path = NULL, crop_path = NULL, evidence_bytes = 0 WHERE id = ?",
            [r["id"]],
        )
        total -= r["evidence_bytes"]
        if total <= quota_bytes:
            break
    return removed


def link_decision(db: Database, read_id: int, session_id: int | None, decision: str) -> None:
    db.execute(
        "UPDATE plate_reads SET session_id = IFNULL(?, session_id), decision = ? WHERE id = ?",
        [session_id, decision, read_id],
    )


def correct(db: Database, ctx: Ctx, read_id: int, plate: str) -> None:
    """An operator fixes a misread; the session the read created or matched follows it."""
    read = require(db, "plate_reads", read_id, "plate read")
    if read["plate"] == plate:
        return
    stamp_update(
        db,
        "plate_reads",
        read_id,
        {
            "plate": plate,
            "corrected_from": read["corrected_from"] or read["plate"],
            "corrected_by": ctx.actor.id,
        },
        ctx.now,
    )
    outbox.append(
        db,
        "plate_read_corrected",
        {"read_id": read_id, "from": read["plate"], "to": plate, "by": ctx.actor.id},
        ctx.now,
    )
    if read["session_id"] is None:
        return
    session = require(db, "sessions", read["session_id"], "session")
    vehicle = one(db, "SELECT * FROM vehicles WHERE license_plate = ?", [plate])
    if vehicle is not None and vehicle["id"] == session["vehicle_id"]:
        return
    if (
        session["status"] == "active"
        and vehicle is not None
        and scalar(
            db,
            "SELECT 1 FROM sessions WHERE vehicle_id = ? AND status = 'active' AND id != ?",
            [vehicle["id"], session["id"]],
        )
    ):
        raise Conflict(f"vehicle {plate} already has an active session")
    if vehicle is None:
        vehicle = register_unowned(db, ctx, plate, source="correction")
    vehicle_id = vehicle["id"]
    stamp_update(db, "sessions", session["id"], {"vehicle_id": vehicle_id}, ctx.now)
    outbox.append(
        db,
        "session_vehicle_corrected",
        {
            "session_id": session["id"],
            "from_vehicle_id": session["vehicle_id"],
            "to_vehicle_id": vehicle_id,
            "plate": plate,
            "read_id": read_id,
        },
        ctx.now,
    )


def read_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "lane_id": row["lane_id"],
        "camera_id": row["camera_id"],
        "source": row["source"],
        "plate": row["plate"],
        "confidence": row["confidence"],
        "confident": bool(row["confident"]),
        "reads": row["reads"],
        "alternatives": [{"plate": p, "share": s} for p, s in json.loads(row["alternatives"])],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "has_frame": row["frame_path"] is not None,
        "has_crop": row["crop_path"] is not None,
        "session_id": row["session_id"],
        "decision": row["decision"],
        "corrected_from": row["corrected_from"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# -- matching a read against the vehicles inside -------------------------------------------


def match_inside(db: Database, plate: str) -> Match:
    """Exact, or the only vehicle inside within one OCR confusion or edit of the read."""
    if scalar(
        db,
        "SELECT 1 FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id"
        " WHERE v.license_plate = ? AND s.status = 'active'",
        [plate],
    ):
        return Match("exact", plate)
    return match(plate, near_inside(db, plate))


def near_inside(db: Database, plate: str) -> list[str]:
    """Plates of vehicles inside one OCR confusion or edit away from ``plate`` (not itself):
    the candidates an operator chooses from when a read is uncertain."""
    near = sorted(neighbours(plate))
    found: list[str] = []
    for start in range(0, len(near), 500):  # SQLite's bound-parameter limit
        chunk = near[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.extend(
            r["license_plate"]
            for r in rows(
                db,
                f"SELECT v.license_plate FROM vehicles v JOIN sessions s ON s.vehicle_id = v.id"
                f" WHERE s.status = 'active' AND v.license_plate IN ({marks})",
                chunk,
            )
        )
    return found


# -- plate lists ------------------------------------------------------------------------------


def _listed(db: Database, plate: str, lane_id: str | None) -> dict[str, Any] | None:
    return one(
        db,
        "SELECT * FROM plate_lists WHERE plate = ? AND IFNULL(lane_id, '') = IFNULL(?, '')",
        [plate, lane_id],
    )


def add_list_entry(
    db: Database,
    ctx: Ctx,
    *,
    plate: str,
    list_type: str,
    lane_id: str | None,
    reason: str | None,
    valid_until: datetime | None,
) -> int:
    """List a plate for a lane (or the whole site). A plate already listed there is a
    409 naming its entry: turning a deny into an allow is an explicit update
    (:func:`update_list_entry`), never a side effect of adding the plate again."""
    existing = _listed(db, plate, lane_id)
    if existing is not None:
        where = f"lane {lane_id}" if lane_id else "the site"
        raise Conflict(
            f"{plate} is already on the {existing['list']} list of {where}"
            f" (entry {existing['id']}); change that entry with PUT",
            entry_id=existing["id"],
            list=existing["list"],
        )
    return upsert_list_entry(
        db,
        ctx,
        plate=plate,
        list_type=list_type,
        lane_id=lane_id,
        reason=reason,
        valid_until=valid_until,
    )


def update_list_entry(db: Database, ctx: Ctx, entry_id: int, changes: dict[str, Any]) -> None:
    """Change an entry's list, reason or expiry (the plate and lane name the entry)."""
    entry = require(db, "plate_lists", entry_id, "plate list entry")
    if changes.get("list", entry["list"]) not in LISTS:
        raise Invalid("list must be allow or deny", field="list")
    stamp_update(db, "plate_lists", entry_id, changes, ctx.now)
    values = {k: entry[k] for k in ("plate", "list", "lane_id", "reason", "valid_until")}
    outbox.append(db, "plate_list_updated", {"entry_id": entry_id, **values, **changes}, ctx.now)


def upsert_list_entry(
    db: Database,
    ctx: Ctx,
    *,
    plate: str,
    list_type: str,
    lane_id: str | None,
    reason: str | None,
    valid_until: datetime | None,
) -> int:
    """Add or replace the entry of a plate at a lane: the central system's
    ``upsert_plate_list``, whose lists are authoritative for the site."""
    if list_type not in LISTS:
        raise Invalid("list must be allow or deny", field="list")
    existing = _listed(db, plate, lane_id)
    values = {
        "plate": plate,
        "list": list_type,
        "lane_id": lane_id,
        "reason": reason,
        "valid_until": valid_until,
    }
    if existing is not None:
        stamp_update(db, "plate_lists", existing["id"], values, ctx.now)
        entry_id = int(existing["id"])
    else:
        entry_id = stamp_insert(db, "plate_lists", values, ctx.now)
    outbox.append(db, "plate_list_updated", {"entry_id": entry_id, **values}, ctx.now)
    return entry_id


def remove_list_entry(db: Database, ctx: Ctx, entry_id: int) -> None:
    entry = require(db, "plate_lists", entry_id, "plate list entry")
    db.execute("DELETE FROM plate_lists WHERE id = ?", [entry_id])
    outbox.append(
        db,
        "plate_list_removed",
        {
            "entry_id": entry_id,
            "plate": entry["plate"],
            "list": entry["list"],
            "lane_id": entry["lane_id"],
        },
        ctx.now,
    )


def list_verdict(db: Database, plate: str, lane_id: str, now: datetime) -> str | None:
    """``deny``, ``allow`` or None for this plate at this lane; a deny anywhere wins."""
    verdicts = {
        r["list"]
        for r in rows(
            db,
            "SELECT list FROM plate_lists WHERE plate = ? AND (lane_id IS NULL OR lane_id = ?)"
            " AND (valid_until IS NULL OR valid_until > ?)",
            [plate, lane_id, iso(now)],
        )
    }
    if "deny" in verdicts:
        return "deny"
    return "allow" if "allow" in verdicts else None


def list_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "plate",
            "list",
            "lane_id",
            "reason",
            "valid_until",
            "created_at",
            "updated_at",
        )
    }
