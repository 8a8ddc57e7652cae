"""Reading the outbox for a channel, and the channel's delivery cursor.

Each channel (``mqtt``, ``http``) has its own cursor: the highest event id whose
delivery it has recorded. Events are sent oldest first, so everything up to the cursor
is delivered; after an outage or a restart a channel resumes right after its cursor and
may resend only the events whose acknowledgement it had not recorded yet. The central
side deduplicates by ``event_id``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from gateway.services import one, rows, scalar
from gateway.timeutil import iso

_quote = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str


def cursor(db: Database, channel: str) -> int:
    row = one(db, "SELECT delivered_id FROM outbox_cursors WHERE channel = ?", [channel])
    return int(row["delivered_id"]) if row else 0


def advance(db: Database, channel: str, delivered_id: int, now: datetime) -> None:
    """Move the cursor forward (never back: a late write of an older value changes nothing)."""
    db.execute(
        "INSERT INTO outbox_cursors (channel, delivered_id, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(channel) DO UPDATE SET delivered_id = MAX(delivered_id, excluded.delivered_id),"
        " updated_at = excluded.updated_at",
        [channel, delivered_id, iso(now)],
    )


def events_after(db: Database, after: int, limit: int) -> list[dict[str, Any]]:
    return list(
        rows(
            db,
            "SELECT id, event_id, type, occurred_at, payload FROM outbox WHERE id > ? ORDER BY id"
            " LIMIT ?",
            [after, limit],
        )
    )


def envelope(row: dict[str, Any], site_id: str) -> dict[str, Any]:
    """The event as the central system receives it."""
    return {
        "event_id": row["event_id"],
        "sequence": row["id"],
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "site_id": site_id,
        "data": json.loads(row["payload"]),
    }


def envelope_bytes(row: dict[str, Any], site_id: str) -> bytes:
    """The same, built without re-parsing the stored JSON (the relay's hot path).

    Byte for byte what ``json.dumps`` makes of :func:`envelope` (same separators, ASCII
    escapes), with the strings escaped by its C encoder and no dict to walk per event.
    """
    return (
        '{"event_id": '
        + _quote(row["event_id"])
        + ', "sequence": '
        + str(int(row["id"]))
        + ', "type": '
        + _quote(row["type"])
        + ', "occurred_at": '
        + _quote(row["occurred_at"])
        + ', "site_id": '
        + _quote(site_id)
        + ', "data": '
        + str(row["payload"])
        + "}"
    ).encode()


def depth(db: Database, channel: str) -> tuple[int, str | None]:
    """Undelivered events of a channel, and when the oldest of them happened."""
    after = cursor(db, channel)
    count = int(scalar(db, "SELECT COUNT(*) FROM outbox WHERE id > ?", [after]))
    oldest = scalar(db, "SELECT occurred_at FROM outbox WHERE id > ? ORDER BY id LIMIT 1", [after])
    return count, oldest


def prune(db: Database, channels: list[str], older_than: datetime) -> int:
    """Delete events every channel has delivered and that are older than the retention.

    With no channel configured nothing counts as delivered and nothing is pruned: the
    outbox is then the site's only record for a central system that pulls it over HTTP.
    """
    if not channels:
        return 0
    delivered = min(cursor(db, c) for c in channels)
    result = db.execute(
        "DELETE FROM outbox WHERE id <= ? AND occurred_at < ?", [delivered, iso(older_than)]
    )
    return int(result.rowcount or 0)
