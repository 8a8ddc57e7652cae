"""Alarms: the events a person must see (an unauthorised passage, a lane fault, a backlog),
and their acknowledgement by the operator.

An alarm *is* its outbox event; nothing else records it, so the central system and the
console see the same thing. Acknowledging one is recorded once (``alarm_acks``, keyed by the
event's sequence) with who did it and an optional note, and is itself an outbox event
(``alarm_acknowledged``), so the acknowledgement reaches the central system too. It does
not change the condition: a lane fault clears when the device answers again, not when a
person clicks.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from gateway.errors import Conflict, Invalid, NotFound
from gateway.services import Ctx, one, rows
from gateway.store import outbox
from gateway.timeutil import iso

# Event types that are alarms, wherever they come from; any type ending in "_alarm" is one too.
ALARM_TYPES = (
    "lane_fault",
    "unauthorised_passage",
    "barrier_open_without_grant",
    "anti_passback_violation",
    "plate_denied",
    "charger_stop_unmatched",
    "outbox_backlog_alarm",
)


def is_alarm(event_type: str) -> bool:
    return event_type in ALARM_TYPES or event_type.endswith("_alarm")


_WHERE = "(o.type IN ({}) OR o.type LIKE '%\\_alarm' ESCAPE '\\')".format(
    ", ".join(f"'{t}'" for t in ALARM_TYPES)
)


def unacknowledged(db: Database, since: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """Alarms raised since ``since`` that nobody acknowledged yet, newest first."""
    return list(
        rows(
            db,
            f"SELECT o.id, o.type, o.occurred_at, o.payload FROM outbox o"
            f" LEFT JOIN alarm_acks a ON a.sequence = o.id"
            f" WHERE {_WHERE} AND a.sequence IS NULL AND o.occurred_at >= ?"
            f" ORDER BY o.id DESC LIMIT ?",
            [iso(since), limit],
        )
    )


def acknowledge(db: Database, ctx: Ctx, sequence: int, note: str | None = None) -> None:
    """Record that a person has seen alarm ``sequence`` (an outbox event's sequence)."""
    event = one(db, "SELECT id, type, payload FROM outbox WHERE id = ?", [sequence])
    if event is None:
        raise NotFound(f"alarm {sequence} not found")
    if not is_alarm(event["type"]):
        raise Invalid(f"event {sequence} ({event['type']}) is not an alarm", field="sequence")
    if one(db, "SELECT 1 FROM alarm_acks WHERE sequence = ?", [sequence]) is not None:
        raise Conflict(f"alarm {sequence} is already acknowledged")
    lane_id = json.loads(event["payload"]).get("lane_id")
    note = (note or "").strip()[:200] or None
    db.execute(
        "INSERT INTO alarm_acks (sequence, event_type, lane_id, acknowledged_by, actor, note,"
        " acknowledged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [sequence, event["type"], lane_id, ctx.actor.id, ctx.actor.email, note, iso(ctx.now)],
    )
    outbox.append(
        db,
        "alarm_acknowledged",
        {
            "sequence": sequence,
            "type": event["type"],
            "lane_id": lane_id,
            "actor": ctx.actor.email,
            "note": note,
        },
        ctx.now,
    )
