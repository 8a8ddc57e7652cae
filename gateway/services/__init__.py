"""Services: the one way state changes. The API and the lane drivers both call these.

A command is a plain function ``(db, ctx, ...) -> result`` run inside one transaction by
:meth:`gateway.store.Store.write`; it checks, changes rows, and appends its outbox events.
Time and the acting user come in through :class:`Ctx` so that every rule is testable.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from gateway.config import ChargingConfig, ParkingConfig, ReservationsConfig
from gateway.domain.reservations import ReservationPolicy
from gateway.errors import Forbidden, NotFound
from gateway.timeutil import iso


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who is acting: a logged-in user, or the gateway itself (a lane, the simulator)."""

    id: int | None
    role: str  # customer | operator | admin | system
    email: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in {"operator", "admin", "system"}

    @property
    def is_admin(self) -> bool:
        return self.role in {"admin", "system"}


SYSTEM = Actor(id=None, role="system")


@dataclass(frozen=True, kw_only=True)
class Ctx:
    now: datetime
    actor: Actor
    parking: ParkingConfig
    reservations: ReservationsConfig = field(default_factory=ReservationsConfig)
    charging: ChargingConfig = field(default_factory=ChargingConfig)
    timezone: str = "UTC"
    ocpp_id_tags: tuple[str, ...] = ()

    @property
    def exit_window(self) -> timedelta:
        return timedelta(minutes=self.parking.exit_window_minutes)

    @property
    def reservation_policy(self) -> ReservationPolicy:
        r = self.reservations
        return ReservationPolicy(
            max_duration=timedelta(hours=r.max_duration_hours),
            checkin_early=timedelta(minutes=r.checkin_early_minutes),
            no_show_after=timedelta(minutes=r.no_show_after_minutes)
            if r.no_show_after_minutes
            else None,
        )

    @property
    def today(self) -> date:
        """The site's local calendar day."""
        return self.now.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def utc_today(self) -> date:
        """The UTC calendar day: the API's ``date`` values (membership terms, installation
        dates) are UTC dates (field reference 1.1), as are the entry dates they are compared to."""
        return self.now.astimezone(UTC).date()


def one(db: Database, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
    return next(iter(db.query(sql, list(params))), None)


def rows(db: Database, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
    return iter(db.query(sql, list(params)))


def scalar(db: Database, sql: str, params: Iterable[Any] = ()) -> Any:
    row = db.execute(sql, list(params)).fetchone()
    return None if row is None else row[0]


def unique_code(db: Database, table: str, column: str, make: Callable[[], str]) -> str:
    """A fresh random code (ticket, receipt, confirmation number) not yet used in
    ``table.column``: a clash is astronomically rare, but a duplicate must never be handed out."""
    while True:
        code = make()
        if not scalar(db, f"SELECT 1 FROM {table} WHERE {column} = ?", [code]):
            return code


def same_name(a: str, b: str) -> bool:
    """Names that people would take for the same one: case and surrounding spaces aside
    (``D-1`` and ``d-1``, ``Level 1`` and ``level 1 ``)."""
    return a.strip().casefold() == b.strip().casefold()


def name_taken(
    db: Database,
    table: str,
    column: str,
    value: str,
    *,
    where: str = "1 = 1",
    params: Iterable[Any] = (),
    except_id: int | None = None,
) -> int | None:
    """The id of another row of ``table`` (among those ``where`` selects) whose ``column``
    is the same name as ``value`` (:func:`same_name`), or None.

    Compared in Python, not with SQLite's NOCASE (which folds ASCII only); the tables it
    serves (levels, zones, the spaces of one zone, rates, plans, vehicle types) are small,
    and the single writer makes the check and the insert after it atomic.
    """
    for row in db.query(f"SELECT id, {column} AS name FROM {table} WHERE {where}", list(params)):
        if row["id"] != except_id and row["name"] is not None and same_name(row["name"], value):
            return int(row["id"])
    return None


def receipt_code() -> str:
    return "RCP-" + secrets.token_hex(6).upper()


def require(db: Database, table: str, id_: int, what: str) -> dict[str, Any]:
    """The row, or NotFound naming the thing the way a client calls it."""
    row = one(db, f"SELECT * FROM {table} WHERE id = ?", [id_])
    if row is None:
        raise NotFound(f"{what} {id_} not found")
    return row


def require_owner_or(actor: Actor, owner_id: int | None, *, staff: bool, what: str) -> None:
    """Owners may; staff may when ``staff`` (else only admins); everyone else is refused."""
    if actor.is_admin or (staff and actor.is_staff):
        return
    if owner_id is not None and owner_id == actor.id:
        return
    raise Forbidden(f"not allowed to access this {what}")


def _stored(value: Any) -> Any:
    """Python values as our columns hold them (see gateway.store.migrations)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def stamp_insert(db: Database, table: str, values: dict[str, Any], now: datetime) -> int:
    """Insert a row with its created/updated stamps; returns the new id."""
    ts = iso(now)
    row = {k: _stored(v) for k, v in values.items()}
    pk = db.table(table).insert({**row, "created_at": ts, "updated_at": ts}).last_pk
    assert pk is not None
    return int(pk)


def stamp_update(
    db: Database, table: str, id_: int, changes: dict[str, Any], now: datetime
) -> None:
    if changes:
        row = {k: _stored(v) for k, v in changes.items()}
        db.table(table).update(id_, {**row, "updated_at": iso(now)})
