"""Accounts: self-registered customers, and staff made with the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from gateway.errors import Conflict
from gateway.services import one
from gateway.store import outbox
from gateway.timeutil import iso

ROLES = ("customer", "operator", "admin")
_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps login timing the same for
# known and unknown accounts, so the endpoint does not reveal who has one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    db: Database,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    role: str,
    phone: str | None,
    now: datetime,
) -> int:
    """Create an account; the hash is computed by the caller, outside the write lock."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    email = email.strip().lower()
    if one(db, "SELECT id FROM users WHERE email = ?", [email]):
        raise Conflict(f"a user with e-mail {email} already exists")
    ts = iso(now)
    user_id = db.execute(
        "INSERT INTO users (email, password_hash, full_name, phone, role, is_active, is_verified,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?)",
        [email, password_hash, full_name.strip(), phone, role, ts, ts],
    ).lastrowid
    assert user_id is not None
    # The event names the account, never its password or hash.
    outbox.append(db, "user_created", {"user_id": user_id, "email": email, "role": role}, now)
    return user_id


def login_candidate(db: Database, email: str) -> dict[str, Any] | None:
    """The account a login names, when it exists and may log in."""
    user = one(db, "SELECT * FROM users WHERE email = ?", [email.strip().lower()])
    return user if user is not None and user["is_active"] else None


def password_matches(user: dict[str, Any] | None, password: str) -> bool:
    """argon2 verification (slow on purpose: run it in a worker thread). An unknown or
    inactive account is checked against a dummy hash, so both take the same time."""
    try:
        _hasher.verify(user["password_hash"] if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


def user_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "full_name": row["full_name"],
        "phone": row["phone"],
        "role": row["role"],
        "is_active": bool(row["is_active"]),
        "is_verified": bool(row["is_verified"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
