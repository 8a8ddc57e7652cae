"""The demo site that ``make run`` starts: its traffic must show the product working.

The embedded config runs with its traffic compressed (a car every five seconds, which is
about what one exit lane passes, stays of a few seconds, quick barriers) for forty-five
seconds, then arrivals stop and the cars inside leave. Every car
that paid must have left, no grant may have been cancelled for a car that then drove
away, and no task may have crashed or been left behind; the simulated chargers reach
this daemon's own OCPP listener once, after it listens, and keep their connection.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
import structlog

from gateway.services import one
from gateway.timeutil import SystemClock
from tests.api_kit import db_query
from tests.conftest import demo_config, running

ERRORS = {
    "task_crashed",
    "lane_task_failed",
    "device_driver_crashed",
    "decision_failed",
    "sim_vehicle_stuck_at_exit",
    "sim_vehicle_problem",
    "sim_lane_no_answer",
    "charger_connection_replaced",
    "simulated_charger_reconnecting",
    "ocpp_listen_failed",
}


@pytest.mark.timeout(180)
def test_demo_site_lets_every_paying_car_leave(tmp_path, caplog):
    config = demo_config(
        tmp_path, travel_s=0.3, arrivals_per_minute=12, dwell_min_s=2, dwell_max_s=6
    )
    caplog.set_level(logging.ERROR, logger="asyncio")
    with structlog.testing.capture_logs() as logs, running(config, SystemClock()) as gw:  # type: ignore[arg-type]
        simulator = gw.daemon.simulator
        assert simulator is not None
        time.sleep(45)
        gw.call(setattr, simulator, "arriving", False)
        deadline = time.monotonic() + 80
        while simulator.in_flight and time.monotonic() < deadline:
            time.sleep(0.5)
        assert simulator.in_flight == 0, "cars still inside after arrivals stopped"
        outcomes = dict(simulator.outcomes)
        paid, left = set(simulator.paid), set(simulator.left)
        charges = db_query(gw, "SELECT status, energy_kwh FROM charging_sessions")
        # Stop while a charger is metering a charge: nothing may be left failing behind.
        assert gw.daemon.csms is not None
        _start_charge(gw)
        wait_until(lambda: _charging(gw), 15)
    gc.collect()

    assert sum(outcomes.values()) >= 5, outcomes
    assert paid, "no simulated car paid"
    assert paid <= left, f"paid but never left: {sorted(paid - left)} ({outcomes})"
    assert outcomes.get("left", 0) + outcomes.get("turned_away", 0) == sum(outcomes.values())
    assert all(status == "completed" for status, _ in charges), charges
    bad = [e for e in logs if e["event"] in ERRORS or e["log_level"] in ("error", "critical")]
    late = [e for e in logs if e["event"] == "grant_cancelled" and e.get("why") == "late"]
    assert not bad, bad[:5]
    assert not late, late[:5]
    assert "never retrieved" not in caplog.text, caplog.text[:2000]
    connected = [e["charge_point"] for e in logs if e["event"] == "charger_connected"]
    assert sorted(connected) == ["SIM-CP-1", "SIM-CP-2"]


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _charging(gw) -> bool:
    rows = db_query(gw, "SELECT 1 FROM charging_sessions WHERE status = 'charging'")
    return bool(rows)


def _start_charge(gw) -> None:
    """A remote start on the first simulated charger, as ``POST /ev-charging/start`` does."""
    from gateway.services import SYSTEM, charging, sessions

    deps = gw.daemon.deps

    async def start() -> None:
        ctx = deps.ctx_for(SYSTEM)
        entry = await deps.store.write(
            lambda db: sessions.entry(db, ctx, license_plate="EVSTOP1", entry_gate="test")
        )
        vehicle = one(
            deps.store.reader, "SELECT vehicle_id FROM sessions WHERE id = ?", [entry.session_id]
        )
        station = one(deps.store.reader, "SELECT id FROM ev_stations ORDER BY id LIMIT 1")
        assert vehicle is not None and station is not None
        await charging.start_remote(
            deps.store,
            deps.charger,
            ctx,
            station_id=station["id"],
            vehicle_id=vehicle["vehicle_id"],
            parking_session_id=entry.session_id,
            max_power=None,
        )

    assert gw.daemon._loop is not None
    asyncio.run_coroutine_threadsafe(start(), gw.daemon._loop).result(20)
