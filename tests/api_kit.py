"""Helpers shared by the API, lane and upstream tests.

The database is read through its own read-only SQLite connection (never through the
daemon), so that what a test sees is what was committed: the outbox events a state change
appended, and whether a refused request left every table as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from typing import Any

import httpx

VALID_FROM = "2026-01-01T00:00:00Z"
VALID_TO = "2026-12-31T23:59:59Z"


def db_query(source: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query; ``source`` is a database path or a running gateway."""
    path = source if isinstance(source, str | os.PathLike) else source.daemon.config.database.path
    with closing(sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def outbox_ids(source: Any) -> list[int]:
    """The ids of every event still in the outbox, oldest first."""
    return [r[0] for r in db_query(source, "SELECT id FROM outbox ORDER BY id")]


def events_of(source: Any, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the outbox events of one type, oldest first."""
    found = db_query(source, "SELECT payload FROM outbox WHERE type = ? ORDER BY id", (event_type,))
    return [json.loads(r[0]) for r in found]


def outbox_mark(gw: Any) -> int:
    """The sequence of the newest outbox event (0 when empty)."""
    return int(db_query(gw, "SELECT COALESCE(MAX(id), 0) FROM outbox")[0][0])


def events_since(gw: Any, mark: int) -> list[str]:
    return [r[0] for r in db_query(gw, "SELECT type FROM outbox WHERE id > ? ORDER BY id", (mark,))]


def payloads_since(gw: Any, mark: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r[0], json.loads(r[1]))
        for r in db_query(gw, "SELECT type, payload FROM outbox WHERE id > ? ORDER BY id", (mark,))
    ]


def space_status(gw: Any, space_id: int) -> str:
    return str(db_query(gw, "SELECT status FROM spaces WHERE id = ?", (space_id,))[0][0])


def snapshot(gw: Any) -> dict[str, Any]:
    """Everything a refused request must leave untouched."""
    return {
        "outbox": db_query(gw, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM outbox"),
        "sessions": db_query(gw, "SELECT * FROM sessions ORDER BY id"),
        "spaces": db_query(gw, "SELECT id, status, updated_at FROM spaces ORDER BY id"),
        "vehicles": db_query(gw, "SELECT * FROM vehicles ORDER BY id"),
        "vehicle_types": db_query(gw, "SELECT * FROM vehicle_types ORDER BY id"),
        "payments": db_query(gw, "SELECT * FROM payments ORDER BY id"),
        "rates": db_query(gw, "SELECT * FROM rates ORDER BY id"),
        "discounts": db_query(gw, "SELECT * FROM discounts ORDER BY id"),
    }


def assert_refused(r: httpx.Response, *codes: int, label: object = None) -> None:
    """A 400/422 (or the given codes) with a JSON body carrying a string ``detail``.

    ``label`` (the bad input, say) is shown first in a failure's message.
    """
    allowed = codes or (400, 422)
    where = () if label is None else (label,)
    assert r.status_code in allowed, (*where, r.status_code, r.text)
    body = r.json()
    assert isinstance(body, dict), (*where, body)
    assert isinstance(body.get("detail"), str) and body["detail"], (*where, body)


def send(client: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    """``bytes`` go out raw as ``application/json``; anything else is JSON-encoded."""
    if isinstance(body, bytes):
        return client.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )
    return client.request(method, url, json=body)


def when(text: str) -> datetime:
    """A datetime of a response (always UTC with an offset)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.utcoffset() is not None, text
    return value


def enter(client: httpx.Client, plate: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/sessions/entry", json={"license_plate": plate, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def car_type(admin: httpx.Client) -> int:
    """The id of the default ``Car`` type (created when the site has none yet)."""
    for t in admin.get("/vehicle-types").json():
        if t["name"] == "Car":
            return int(t["id"])
    r = admin.post("/vehicle-types", json={"name": "Car", "size_category": "medium"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def fee(client: httpx.Client, session_id: int, **params: Any) -> dict[str, Any]:
    r = client.get(f"/sessions/{session_id}/calculate-fee", params=params)
    assert r.status_code == 200, r.text
    body = dict(r.json())
    breakdown = body["breakdown"]
    assert round(sum(line["amount"] for line in breakdown), 2) == body["total"], body
    return body


def lines(body: dict[str, Any]) -> list[tuple[str, float]]:
    """A fee's breakdown as (description, amount) pairs."""
    return [(line["description"], line["amount"]) for line in body["breakdown"]]


def pay(client: httpx.Client, session_id: int, amount: float, **extra: Any) -> httpx.Response:
    return client.post(
        "/payments",
        json={"session_id": session_id, "payment_method": "card", "amount": amount, **extra},
    )


def make_rate(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Rate",
        "rate_type": "hourly",
        "amount": 5.0,
        "effective_from": "2024-01-01T00:00:00Z",
        **fields,
    }
    r = admin.post("/rates", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def make_discount(admin: httpx.Client, code: str, **fields: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": f"Discount {code}",
        "discount_type": "percentage",
        "value": 20.0,
        "valid_from": VALID_FROM,
        "valid_to": VALID_TO,
        **fields,
    }
    r = admin.post("/discounts", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())
