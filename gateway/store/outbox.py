"""The transactional outbox: every state change appends its event in the same transaction.

The row id is the gateway's monotonic sequence number (AUTOINCREMENT never reuses an id,
even after the newest rows are pruned), and ``event_id`` is a UUID the central system
deduplicates by. Relays (MQTT, HTTP) read from here; nothing else publishes events, so a
change can never reach the database without reaching the central system eventually.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from gateway.timeutil import iso


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"cannot put {type(value).__name__} in an event")


def append(db: Database, event_type: str, data: dict[str, Any], occurred_at: datetime) -> int:
    """Append one event; must be called inside the command's transaction. Returns its sequence."""
    cursor = db.execute(
        "INSERT INTO outbox (event_id, type, occurred_at, payload) VALUES (?, ?, ?, ?)",
        [str(uuid.uuid4()), event_type, iso(occurred_at), json.dumps(data, default=_default)],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid
