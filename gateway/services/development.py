"""What development mode sets up by itself: a signing secret and the demo's staff accounts.

A development database gets its own random JWT secret (64 hex characters, 256 bits), kept
in ``site_settings`` so that tokens survive a restart, instead of a shared placeholder that
PyJWT rightly calls too short. It also gets a demo admin and a demo operator with random
passwords, printed by ``carpark-gateway run`` at start so that the console can be tried at
once. They are kept in ``site_settings`` too, in clear: that is what makes them printable
on every start, and why it happens in development mode only. The day such a database runs
with ``development = false`` the demo accounts are deactivated and their passwords erased.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from gateway.services import one, rows
from gateway.services.users import create_user
from gateway.timeutil import iso

SECRET_KEY = "development_secret_key"  # noqa: S105 - the name of the setting
DEMO_ACCOUNTS = "demo_accounts"
DEMO = (
    ("admin@demo.local", "admin", "Demo Admin"),
    ("operator@demo.local", "operator", "Demo Operator"),
)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    password: str


def setting(db: Database, key: str) -> str | None:
    row = one(db, "SELECT value FROM site_settings WHERE key = ?", [key])
    return None if row is None else str(row["value"])


def _put(db: Database, key: str, value: str, now: datetime) -> None:
    db.execute(
        "INSERT INTO site_settings (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [key, value, iso(now)],
    )


def secret_key(db: Database, now: datetime) -> str:
    """This database's development secret, made on first use."""
    found = setting(db, SECRET_KEY)
    if found is None:
        found = secrets.token_hex(32)
        _put(db, SECRET_KEY, found, now)
    return found


def new_demo_passwords() -> list[DemoAccount]:
    return [DemoAccount(email, role, secrets.token_urlsafe(9)) for email, role, _ in DEMO]


def demo_accounts(
    db: Database, now: datetime, offered: list[DemoAccount], hashes: dict[str, str]
) -> list[DemoAccount]:
    """The demo accounts of this database, creating those missing with ``offered``.

    An account somebody already made with a demo e-mail (and so whose password we do not
    know) is left alone and not listed.
    """
    known = {a["email"]: DemoAccount(**a) for a in json.loads(setting(db, DEMO_ACCOUNTS) or "[]")}
    names = {email: name for email, _, name in DEMO}
    for account in offered:
        if account.email in known:
            continue
        if one(db, "SELECT id FROM users WHERE email = ?", [account.email]) is not None:
            continue
        create_user(
            db,
            email=account.email,
            password_hash=hashes[account.email],
            full_name=names[account.email],
            role=account.role,
            phone=None,
            now=now,
        )
        known[account.email] = account
    _put(db, DEMO_ACCOUNTS, json.dumps([a.__dict__ for a in known.values()]), now)
    active = {
        r["email"]
        for r in rows(db, "SELECT email FROM users WHERE is_active = 1 AND role != 'customer'")
    }
    return [a for a in known.values() if a.email in active]


def needs_demo_accounts(db: Database) -> bool:
    known = {a["email"] for a in json.loads(setting(db, DEMO_ACCOUNTS) or "[]")}
    return any(
        email not in known and one(db, "SELECT id FROM users WHERE email = ?", [email]) is None
        for email, _, _ in DEMO
    )


def retire_demo_accounts(db: Database, now: datetime) -> int:
    """Production mode: deactivate the demo accounts and forget their passwords."""
    known = [a["email"] for a in json.loads(setting(db, DEMO_ACCOUNTS) or "[]")]
    if not known:
        return 0
    marks = ", ".join("?" * len(known))
    changed = db.execute(
        f"UPDATE users SET is_active = 0, updated_at = ? WHERE is_active = 1 AND email IN ({marks})",
        [iso(now), *known],
    ).rowcount
    db.execute("DELETE FROM site_settings WHERE key IN (?, ?)", [DEMO_ACCOUNTS, SECRET_KEY])
    return int(changed or 0)
