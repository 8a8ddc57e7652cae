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


@MIGRATIONS(name="0002_reservations_memberships_charging")
def reservations_memberships_charging(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE reservations (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),
    zone_id INTEGER REFERENCES zones(id),
    space_id INTEGER REFERENCES spaces(id),
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
    confirmation_number TEXT NOT NULL UNIQUE,
    special_requests TEXT,
    reservation_fee TEXT NOT NULL DEFAULT '0.00',
    is_paid INTEGER NOT NULL DEFAULT 0,
    cancelled_at TEXT,
    cancellation_reason TEXT,
    session_id INTEGER REFERENCES sessions(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (end_time > start_time)
);
CREATE INDEX reservations_window ON reservations(status, start_time, end_time);
CREATE INDEX reservations_zone ON reservations(zone_id, status, start_time);
CREATE INDEX reservations_space ON reservations(space_id, status, start_time);
CREATE INDEX reservations_user ON reservations(user_id);
CREATE INDEX reservations_vehicle ON reservations(vehicle_id, status);
CREATE TABLE membership_plans (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT,
    duration_months INTEGER NOT NULL CHECK (duration_months >= 1),
    price TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    vehicle_limit INTEGER NOT NULL DEFAULT 1,
    included_hours INTEGER,
    discount_percentage TEXT NOT NULL DEFAULT '0',
    priority_reservation INTEGER NOT NULL DEFAULT 0,
    ev_charging_included INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE memberships (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    plan_id INTEGER NOT NULL REFERENCES membership_plans(id),
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'expired', 'suspended', 'cancelled')),
    auto_renew INTEGER NOT NULL DEFAULT 0,
    payment_method TEXT,
    payment_method_id TEXT,
    cancelled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX memberships_user ON memberships(user_id, status);
CREATE TABLE membership_vehicles (
    membership_id INTEGER NOT NULL REFERENCES memberships(id),
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),
    PRIMARY KEY (membership_id, vehicle_id)
);
CREATE INDEX membership_vehicles_vehicle ON membership_vehicles(vehicle_id);
CREATE TABLE membership_payments (
    id INTEGER PRIMARY KEY,
    membership_id INTEGER NOT NULL REFERENCES memberships(id),
    user_id INTEGER REFERENCES users(id),
    amount TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    payment_method TEXT,
    status TEXT NOT NULL DEFAULT 'completed',
    receipt_number TEXT NOT NULL UNIQUE,
    term_start TEXT NOT NULL,
    term_end TEXT NOT NULL,
    paid_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE ev_stations (
    id INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL UNIQUE REFERENCES spaces(id),
    charger_type TEXT NOT NULL CHECK (charger_type IN ('level1', 'level2', 'dc_fast')),
    power_kw TEXT NOT NULL,
    connector_type TEXT NOT NULL,
    price_per_kwh TEXT NOT NULL,
    installed_at TEXT NOT NULL,
    manufacturer TEXT,
    serial_number TEXT,
    status TEXT NOT NULL DEFAULT 'available',
    last_maintenance TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE charging_sessions (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES ev_stations(id),
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),
    parking_session_id INTEGER REFERENCES sessions(id),
    user_id INTEGER REFERENCES users(id),
    start_time TEXT NOT NULL,
    end_time TEXT,
    energy_kwh TEXT NOT NULL DEFAULT '0',
    cost TEXT NOT NULL DEFAULT '0.00',
    idle_fee TEXT NOT NULL DEFAULT '0.00',
    status TEXT NOT NULL CHECK (status IN ('started', 'charging', 'completed', 'interrupted')),
    max_power_requested TEXT,
    billed INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX charging_one_running_per_station ON charging_sessions(station_id)
    WHERE status IN ('started', 'charging');
CREATE INDEX charging_parking ON charging_sessions(parking_session_id, status);
CREATE INDEX charging_vehicle ON charging_sessions(vehicle_id);
ALTER TABLE sessions ADD COLUMN fee_total TEXT;
ALTER TABLE sessions ADD COLUMN membership_id INTEGER REFERENCES memberships(id);
ALTER TABLE sessions ADD COLUMN member_discount TEXT;
ALTER TABLE payments ADD COLUMN ev_covered TEXT NOT NULL DEFAULT '0.00'
""",
    )


@MIGRATIONS(name="0003_plate_reads_and_lists")
def plate_reads_and_lists(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE plate_reads (
    id INTEGER PRIMARY KEY,
    lane_id TEXT,
    camera_id TEXT,
    source TEXT NOT NULL CHECK (source IN ('camera', 'smart_camera')),
    plate TEXT NOT NULL,
    confidence REAL NOT NULL,
    confident INTEGER NOT NULL,
    reads INTEGER NOT NULL DEFAULT 1,
    alternatives TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(alternatives)),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    frame_path TEXT,
    crop_path TEXT,
    evidence_bytes INTEGER NOT NULL DEFAULT 0,
    session_id INTEGER REFERENCES sessions(id),
    decision TEXT,
    corrected_from TEXT,
    corrected_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX plate_reads_lane ON plate_reads(lane_id, first_seen);
CREATE INDEX plate_reads_plate ON plate_reads(plate);
CREATE INDEX plate_reads_time ON plate_reads(first_seen);
CREATE INDEX plate_reads_evidence ON plate_reads(id) WHERE evidence_bytes > 0;
CREATE TABLE plate_lists (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    list TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
    lane_id TEXT,
    reason TEXT,
    valid_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX plate_lists_entry ON plate_lists(plate, IFNULL(lane_id, ''))
""",
    )


@MIGRATIONS(name="0004_upstream")
def upstream(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE outbox_cursors (
    channel TEXT PRIMARY KEY,
    delivered_id INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE commands (
    request_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    result TEXT NOT NULL CHECK (json_valid(result)),
    received_at TEXT NOT NULL
);
CREATE INDEX outbox_occurred ON outbox(occurred_at)
""",
    )


@MIGRATIONS(name="0005_ocpp")
def ocpp(db: Database) -> None:
    _run(
        db,
        """
ALTER TABLE ev_stations ADD COLUMN ocpp_id TEXT;
ALTER TABLE ev_stations ADD COLUMN connector_id INTEGER;
CREATE UNIQUE INDEX ev_stations_ocpp ON ev_stations(ocpp_id, connector_id) WHERE ocpp_id IS NOT NULL;
ALTER TABLE charging_sessions ADD COLUMN id_tag TEXT;
ALTER TABLE charging_sessions ADD COLUMN meter_start_wh INTEGER;
ALTER TABLE charging_sessions ADD COLUMN meter_last_wh INTEGER;
ALTER TABLE charging_sessions ADD COLUMN meter_stop_wh INTEGER;
ALTER TABLE charging_sessions ADD COLUMN stop_reason TEXT;
ALTER TABLE charging_sessions ADD COLUMN charging_ended_at TEXT;
ALTER TABLE charging_sessions ADD COLUMN unplugged_at TEXT;
ALTER TABLE charging_sessions ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
CREATE INDEX charging_id_tag ON charging_sessions(id_tag, status);
CREATE TABLE ocpp_chargers (
    id TEXT PRIMARY KEY,
    vendor TEXT,
    model TEXT,
    serial_number TEXT,
    firmware_version TEXT,
    connected INTEGER NOT NULL DEFAULT 0,
    last_boot TEXT,
    last_seen TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
""",
    )
    # A charge started at the charger (an RFID card) may have no known vehicle.
    db.table("charging_sessions").transform(not_null={"vehicle_id": False})


@MIGRATIONS(name="0006_i14_console")
def console(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE site_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE alarm_acks (
    sequence INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL,
    lane_id TEXT,
    acknowledged_by INTEGER REFERENCES users(id),
    actor TEXT,
    note TEXT,
    acknowledged_at TEXT NOT NULL
)
""",
    )


@MIGRATIONS(name="0006_i17_central_memberships", transactional=False)
def central_memberships(db: Database) -> None:
    """Memberships sold by the central system: keyed by its ``external_id``, with no local
    account (``user_id`` NULL), recognised by their vehicles' plates at every site.

    Dropping NOT NULL means rebuilding a table that others reference, so this follows
    SQLite's procedure for it: foreign keys off (only possible outside a transaction),
    rebuild in one transaction, ``foreign_key_check`` before the commit, keys back on.
    """
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            db.table("memberships").transform(not_null={"user_id": False})
            _run(
                db,
                """
ALTER TABLE memberships ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX memberships_external ON memberships(external_id) WHERE external_id IS NOT NULL
""",
            )
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")
