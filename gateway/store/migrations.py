"""Schema, as sqlite-utils ``Migrations``: each step runs once, in a transaction.

Conventions: timestamps are TEXT in one fixed UTC ISO 8601 form (so they compare as
strings), money is TEXT holding a ``Decimal`` (SQLite's REAL would lose cents), booleans
are 0/1. Constraints the business depends on are enforced by the database too (one
active session per vehicle, unique tickets and receipts), so that no code path can
break them.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("carpark-gateway")


def _run(db: Database, script: str) -> None:
    # Not executescript(): it would COMMIT the migration's transaction half way.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS(name="0001_core")
def core(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    full_name TEXT NOT NULL,
    phone TEXT,
    role TEXT NOT NULL CHECK (role IN ('customer', 'operator', 'admin')),
    is_active INTEGER NOT NULL DEFAULT 1,
    is_verified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE vehicle_types (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    size_category TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE vehicles (
    id INTEGER PRIMARY KEY,
    license_plate TEXT NOT NULL UNIQUE,
    vehicle_type_id INTEGER NOT NULL REFERENCES vehicle_types(id),
    user_id INTEGER REFERENCES users(id),
    make TEXT,
    model TEXT,
    color TEXT,
    is_ev INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX vehicles_user ON vehicles(user_id);
CREATE TABLE levels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    floor_number INTEGER NOT NULL,
    is_underground INTEGER NOT NULL DEFAULT 0,
    max_height_m TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE zones (
    id INTEGER PRIMARY KEY,
    level_id INTEGER NOT NULL REFERENCES levels(id),
    name TEXT NOT NULL,
    description TEXT,
    total_spaces INTEGER NOT NULL DEFAULT 0,
    color_code TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX zones_level ON zones(level_id);
CREATE TABLE spaces (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES zones(id),
    space_number TEXT NOT NULL,
    space_type TEXT NOT NULL,
    floor INTEGER,
    row TEXT,
    is_ev_charging INTEGER NOT NULL DEFAULT 0,
    is_handicapped INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'available',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (zone_id, space_number)
);
CREATE INDEX spaces_status ON spaces(status, space_type);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),
    space_id INTEGER REFERENCES spaces(id),
    reservation_id INTEGER,
    ticket_number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'completed', 'cancelled')),
    entry_time TEXT NOT NULL,
    exit_time TEXT,
    entry_gate TEXT,
    exit_gate TEXT,
    lpr_image TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX sessions_one_active_per_vehicle ON sessions(vehicle_id) WHERE status = 'active';
CREATE INDEX sessions_vehicle ON sessions(vehicle_id, entry_time);
CREATE INDEX sessions_status ON sessions(status, space_id);
CREATE INDEX sessions_entry_time ON sessions(entry_time);
CREATE INDEX sessions_exit_time ON sessions(exit_time);
CREATE TABLE rates (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    rate_type TEXT NOT NULL CHECK (rate_type IN ('hourly', 'daily', 'flat')),
    amount TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    vehicle_type_id INTEGER REFERENCES vehicle_types(id),
    zone_id INTEGER REFERENCES zones(id),
    grace_period_minutes INTEGER NOT NULL DEFAULT 15,
    effective_from TEXT NOT NULL,
    effective_to TEXT,
    peak_multiplier TEXT NOT NULL DEFAULT '1.0',
    peak_start_time TEXT,
    peak_end_time TEXT,
    min_duration_minutes INTEGER,
    max_duration_minutes INTEGER,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE discounts (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    discount_type TEXT NOT NULL CHECK (discount_type IN ('percentage', 'fixed_amount', 'free_hours')),
    value TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    max_uses INTEGER,
    max_uses_per_user INTEGER NOT NULL DEFAULT 1,
    min_duration_hours INTEGER,
    partner_name TEXT,
    current_uses INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    user_id INTEGER REFERENCES users(id),
    amount TEXT NOT NULL,
    tendered TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    payment_method TEXT NOT NULL CHECK (payment_method IN ('cash', 'card', 'mobile')),
    status TEXT NOT NULL,
    transaction_id TEXT,
    discount_id INTEGER REFERENCES discounts(id),
    discount_amount TEXT NOT NULL,
    tax_amount TEXT NOT NULL,
    total_amount TEXT NOT NULL,
    receipt_number TEXT NOT NULL UNIQUE,
    paid_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_session ON payments(session_id, status);
CREATE INDEX payments_user ON payments(user_id);
CREATE INDEX payments_paid_at ON payments(paid_at);
CREATE INDEX payments_discount ON payments(discount_id, user_id);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL CHECK (json_valid(payload))
)
""",
    )
