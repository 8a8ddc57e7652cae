"""The admin dashboard: the state of the site now and the totals of its local day."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from gateway.domain.money import ZERO, cents
from gateway.services import Ctx, rows, scalar
from gateway.timeutil import iso


def day_bounds(ctx: Ctx) -> tuple[str, str]:
    """Start and end (UTC text) of the site's current local day."""
    tz = ZoneInfo(ctx.timezone)
    start = datetime.combine(ctx.today, time(0), tzinfo=tz)
    return iso(start), iso(start + timedelta(days=1))


def dashboard(db: Database, ctx: Ctx) -> dict[str, Any]:
    by_status = {
        r["status"]: r["n"]
        for r in rows(db, "SELECT status, COUNT(*) AS n FROM spaces GROUP BY status")
    }
    total = sum(by_status.values())
    occupied = by_status.get("occupied", 0)
    start, end = day_bounds(ctx)
    revenue = sum(
        (
            Decimal(r["total_amount"])
            for r in rows(
                db,
                "SELECT total_amount FROM payments WHERE status = 'completed' AND paid_at >= ? AND paid_at < ?",
                [start, end],
            )
        ),
        ZERO,
    )
    stations = {
        r["status"]: r["n"]
        for r in rows(db, "SELECT status, COUNT(*) AS n FROM ev_stations GROUP BY status")
    }
    return {
        "total_spaces": total,
        "occupied_spaces": occupied,
        "available_spaces": by_status.get("available", 0),
        "reserved_spaces": by_status.get("reserved", 0),
        "maintenance_spaces": by_status.get("maintenance", 0),
        "occupancy_rate": round(occupied / total * 100, 2) if total else 0.0,
        "active_sessions": scalar(db, "SELECT COUNT(*) FROM sessions WHERE status = 'active'"),
        "today_entries": scalar(
            db,
            "SELECT COUNT(*) FROM sessions WHERE entry_time >= ? AND entry_time < ?",
            [start, end],
        ),
        "today_exits": scalar(
            db, "SELECT COUNT(*) FROM sessions WHERE exit_time >= ? AND exit_time < ?", [start, end]
        ),
        "today_revenue": float(cents(revenue)),
        "active_ev_charging": scalar(
            db, "SELECT COUNT(*) FROM charging_sessions WHERE status IN ('started', 'charging')"
        ),
        "pending_reservations": scalar(
            db,
            "SELECT COUNT(*) FROM reservations WHERE status IN ('pending', 'confirmed')"
            " AND end_time > ?",
            [iso(ctx.now)],
        ),
        "active_memberships": scalar(
            db,
            "SELECT COUNT(*) FROM memberships WHERE status = 'active' AND end_date >= ?",
            [ctx.utc_today.isoformat()],
        ),
        "ev_stations_total": sum(stations.values()),
        "ev_stations_available": stations.get("available", 0),
        "day": ctx.today.isoformat(),
    }
