"""What the console shows, read from the lanes and the database (never written here).

Each function returns plain dicts for one panel. They run on the event loop's read
connection, like the API's reads: short indexed queries, bounded by ``LIMIT``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.api.deps import Deps
from gateway.console import words
from gateway.domain.plates import InvalidPlate, normalize_plate
from gateway.services import Ctx, alarms, one, plates, rows, scalar, sessions
from gateway.timeutil import iso, parse
from gateway.upstream import outbox

FEED_SIZE = 60
ALARM_WINDOW = timedelta(hours=24)
REVIEW_WINDOW = timedelta(hours=12)


def feed_item(row: dict[str, Any]) -> dict[str, Any] | None:
    if row["type"] in words.QUIET:
        return None
    data = json.loads(row["payload"])
    return {
        "sequence": row["id"],
        "type": row["type"],
        "at": row["occurred_at"],
        "lane_id": data.get("lane_id") or "",
        "category": words.category(row["type"]),
        "tone": words.tone(row["type"], data),
        "text": words.event_text(row["type"], data),
        "alarm": alarms.is_alarm(row["type"]),
    }


def feed(db: Database, *, after: int | None = None, limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The newest events, newest first; or those after ``after`` (oldest of them first
    dropped beyond ``limit``)."""
    if after is None:
        found = rows(
            db,
            "SELECT id, type, occurred_at, payload FROM outbox WHERE type NOT IN"
            " ('charging_meter', 'charger_status') ORDER BY id DESC LIMIT ?",
            [limit],
        )
    else:
        found = reversed(
            list(
                rows(
                    db,
                    "SELECT id, type, occurred_at, payload FROM outbox WHERE id > ? ORDER BY id"
                    " DESC LIMIT ?",
                    [after, limit],
                )
            )
        )
    return [item for row in found if (item := feed_item(row)) is not None]


def last_sequence(db: Database) -> int:
    return int(scalar(db, "SELECT IFNULL(MAX(id), 0) FROM outbox"))


def open_alarms(db: Database, now: datetime) -> list[dict[str, Any]]:
    out = []
    for row in alarms.unacknowledged(db, now - ALARM_WINDOW):
        item = feed_item(row)
        if item is not None:
            out.append(item)
    return out


def lane_cards(deps: Deps, db: Database, open_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if deps.lanes is None:
        return []
    return [lane_card(lane, db, open_) for lane in deps.lanes.lanes.values()]


def lane_card(lane: Any, db: Database, open_: list[dict[str, Any]]) -> dict[str, Any]:
    status = lane.status()
    decision = status.get("last_decision")
    read = one(
        db,
        "SELECT id, plate, confidence, confident, crop_path, frame_path, first_seen"
        " FROM plate_reads WHERE lane_id = ? ORDER BY id DESC LIMIT 1",
        [status["id"]],
    )
    devices = status.get("devices") or {}
    problems = [
        f"{name.replace('_', ' ')}: {state}"
        for name, state in devices.items()
        if state not in ("ok", "starting")
    ]
    # Whatever the lane reports as faults or alarms is shown, whatever its shape.
    faults = [str(f).replace("_", " ") for f in status.get("faults") or ()]
    lane_alarms = [_alarm_text(a) for a in status.get("alarms") or ()]
    return {
        **status,
        "mode_text": words.MODES.get(status["mode"], status["mode"]),
        "decision_text": words.decision_text(decision),
        "read": read,
        "fault_lines": faults + [p for p in problems if p.split(":")[0] not in faults],
        "lane_alarms": lane_alarms,
        "open_alarms": [a for a in open_ if a["lane_id"] == status["id"]],
        "modes": [
            (m, words.MODES[m]) for m in words.MODES if m != "free_exit" or status["kind"] == "exit"
        ],
    }


def _alarm_text(alarm: Any) -> str:
    if isinstance(alarm, dict):
        return str(alarm.get("message") or alarm.get("type") or alarm)
    return str(alarm).replace("_", " ")


def occupancy(db: Database) -> list[dict[str, Any]]:
    """Per level, its zones with their spaces by status."""
    levels: dict[int, dict[str, Any]] = {}
    for z in rows(
        db,
        "SELECT l.id AS level_id, l.name AS level, l.floor_number, z.id AS zone_id, z.name AS zone"
        " FROM zones z JOIN levels l ON l.id = z.level_id ORDER BY l.floor_number, l.id, z.id",
    ):
        level = levels.setdefault(
            z["level_id"],
            {"id": z["level_id"], "name": z["level"], "zones": [], "totals": _counts()},
        )
        level["zones"].append({"id": z["zone_id"], "name": z["zone"], "counts": _counts()})
    zones = {zone["id"]: (zone, level) for level in levels.values() for zone in level["zones"]}
    for r in rows(db, "SELECT zone_id, status, COUNT(*) AS n FROM spaces GROUP BY zone_id, status"):
        if r["zone_id"] not in zones:
            continue
        zone, level = zones[r["zone_id"]]
        key = "maintenance" if r["status"] == "out_of_service" else r["status"]
        for counts in (zone["counts"], level["totals"]):
            counts[key] = counts.get(key, 0) + r["n"]
            counts["total"] += r["n"]
    return list(levels.values())


def _counts() -> dict[str, int]:
    return {"available": 0, "occupied": 0, "reserved": 0, "maintenance": 0, "total": 0}


def active_sessions(db: Database, ctx: Ctx, query: str = "", limit: int = 25) -> dict[str, Any]:
    """Vehicles inside, newest first, matching a plate or ticket fragment, with the fee now."""
    where, params = ["s.status = 'active'"], []
    text = query.strip().upper()
    if text:
        try:
            plate = normalize_plate(text)
        except InvalidPlate:
            plate = text
        where.append("(v.license_plate LIKE ? OR s.ticket_number LIKE ?)")
        params.extend([f"%{plate}%", f"%{text}%"])
    clause = " AND ".join(where)
    total = scalar(
        db,
        f"SELECT COUNT(*) FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id WHERE {clause}",
        params,
    )
    found = []
    for s in rows(
        db,
        f"SELECT s.*, v.license_plate, sp.space_number FROM sessions s"
        f" JOIN vehicles v ON v.id = s.vehicle_id LEFT JOIN spaces sp ON sp.id = s.space_id"
        f" WHERE {clause} ORDER BY s.entry_time DESC, s.id DESC LIMIT ?",
        [*params, limit],
    ):
        fee, status = sessions.owed(db, ctx, s)
        minutes = max(0, int((ctx.now - parse(s["entry_time"])).total_seconds() // 60))
        found.append(
            {
                "id": s["id"],
                "plate": s["license_plate"],
                "ticket": s["ticket_number"],
                "entry_time": s["entry_time"],
                "entry_gate": s["entry_gate"],
                "space": s["space_number"],
                "minutes": minutes,
                "fee": fee.total,
                "due": status.amount_due,
                "paid": status.is_paid,
                "in_exit_window": status.in_exit_window,
                "charging": sessions.running_charge(db, s["id"]),
            }
        )
    return {"query": query, "sessions": found, "total": total, "shown": len(found)}


def reads_to_review(db: Database, now: datetime, min_confidence: float) -> list[dict[str, Any]]:
    """Reads an exit refused as uncertain, or read with low confidence, not yet corrected."""
    found = []
    for r in rows(
        db,
        "SELECT * FROM plate_reads WHERE corrected_from IS NULL AND first_seen >= ?"
        " AND (decision = 'plate_uncertain' OR confident = 0 OR confidence < ?)"
        " ORDER BY id DESC LIMIT 10",
        [iso(now - REVIEW_WINDOW), min_confidence],
    ):
        view = plates.read_view(r)
        alternatives = [a["plate"] for a in view["alternatives"] if a["plate"] != r["plate"]]
        candidates = sorted(plates.near_inside(db, r["plate"])) if r["plate"] else []
        inside = set(candidates)
        found.append(
            {
                **view,
                "why": words.REFUSED["plate_uncertain"]
                if r["decision"] == "plate_uncertain"
                else f"Low confidence ({float(r['confidence']):.0%})",
                "candidates": candidates,
                "alternatives": [a for a in alternatives if a not in inside][:4],
            }
        )
    return found


def chargers(db: Database) -> list[dict[str, Any]]:
    out = []
    for s in rows(
        db,
        "SELECT e.*, sp.space_number, c.connected AS charger_connected FROM ev_stations e"
        " LEFT JOIN spaces sp ON sp.id = e.space_id LEFT JOIN ocpp_chargers c ON c.id = e.ocpp_id"
        " ORDER BY e.id",
    ):
        charge = one(
            db,
            "SELECT c.*, v.license_plate FROM charging_sessions c"
            " LEFT JOIN vehicles v ON v.id = c.vehicle_id"
            " WHERE c.station_id = ? AND c.status IN ('started', 'charging') ORDER BY c.id DESC LIMIT 1",
            [s["id"]],
        )
        out.append(
            {
                "id": s["id"],
                "space": s["space_number"],
                "status": s["status"],
                "ocpp_id": s["ocpp_id"],
                "connected": None if s["ocpp_id"] is None else bool(s["charger_connected"]),
                "power_kw": Decimal(s["power_kw"]),
                "charge": None
                if charge is None
                else {
                    "id": charge["id"],
                    "status": charge["status"],
                    "plate": charge["license_plate"],
                    "start_time": charge["start_time"],
                    "energy_kwh": Decimal(charge["energy_kwh"]),
                    "cost": Decimal(charge["cost"]),
                },
            }
        )
    return out


def upstream(deps: Deps, db: Database, now: datetime) -> dict[str, Any]:
    """Each channel to the central system: link state, undelivered events, the oldest's age."""
    channels = []
    for name, channel in deps.upstream.items():
        count, oldest = outbox.depth(db, name)
        channels.append(
            {
                "name": name,
                "connected": bool(getattr(channel, "connected", False)),
                "last_error": getattr(channel, "last_error", None),
                "backlog": count,
                "oldest_age_s": (now - parse(oldest)).total_seconds() if oldest else None,
            }
        )
    return {
        "channels": channels,
        "events": int(scalar(db, "SELECT COUNT(*) FROM outbox")),
        "threshold": deps.config.sync.backlog_alarm,
    }
