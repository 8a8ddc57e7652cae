"""The admin dashboard over HTTP (field reference section 18).

A known day is built through the API (entries and exits on two days, payments with and
without a code, reservations in every state, a running and a finished charge, spaces held
back by staff) and the dashboard must count exactly that. "Today" is the site's local day
(``site.timezone``): UTC for the shared fixture, New York for a daemon of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_kit import car_type, enter, fee, make_discount, pay
from conftest import Running, make_config, start_daemon

SEED_FIELDS = {
    "total_spaces": int,
    "occupied_spaces": int,
    "available_spaces": int,
    "reserved_spaces": int,
    "occupancy_rate": float,
    "active_sessions": int,
    "today_entries": int,
    "today_exits": int,
    "today_revenue": float,
    "active_ev_charging": int,
    "pending_reservations": int,
}


def dashboard(admin: httpx.Client) -> dict[str, Any]:
    r = admin.get("/reports/dashboard")
    assert r.status_code == 200, r.text
    body = dict(r.json())
    for name, kind in SEED_FIELDS.items():
        assert name in body, name
        assert isinstance(body[name], int | float) and not isinstance(body[name], bool), name
        if kind is int:
            assert isinstance(body[name], int), name
    return body


def seed_view(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in SEED_FIELDS}


def vehicle(owner: httpx.Client, admin: httpx.Client, plate: str, **fields: Any) -> int:
    body = {"license_plate": plate, "vehicle_type_id": car_type(admin), **fields}
    r = owner.post("/vehicles", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def reserve(client: httpx.Client, vehicle_id: int, zone_id: int, start: str, end: str) -> int:
    r = client.post(
        "/reservations",
        json={"vehicle_id": vehicle_id, "zone_id": zone_id, "start_time": start, "end_time": end},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["reservation"]["id"])


def leave(staff: httpx.Client, plate: str, code: str | None = None) -> None:
    """Pay what the stay costs now (with a code if given) and drive out."""
    active = staff.get("/sessions/active", params={"limit": 100}).json()["sessions"]
    session = next(s for s in active if s["vehicle"]["license_plate"] == plate)
    total = fee(staff, session["id"])["total"]
    extra = {"discount_code": code} if code else {}
    r = pay(staff, session["id"], total, **extra)
    assert r.status_code == 201, r.text
    r = staff.post("/sessions/exit", json={"license_plate": plate})
    assert r.status_code == 200, r.text


def test_empty_site(gw, admin):
    body = dashboard(admin)
    assert seed_view(body) == {
        "total_spaces": 0,
        "occupied_spaces": 0,
        "available_spaces": 0,
        "reserved_spaces": 0,
        "occupancy_rate": 0.0,
        "active_sessions": 0,
        "today_entries": 0,
        "today_exits": 0,
        "today_revenue": 0.0,
        "active_ev_charging": 0,
        "pending_reservations": 0,
    }


def test_dashboard_counts_a_known_day(gw, site, admin, operator, alice, bob):
    spaces = {s["space_number"]: s for s in site["spaces"]}
    zone_a = site["zone_a"]["id"]
    # Day 1, 09:00. Staff hold back two spaces of zone B; a charger on the EV space.
    assert (
        admin.put(f"/spaces/{spaces['S-5']['id']}", json={"status": "reserved"}).status_code == 200
    )
    assert (
        admin.put(f"/spaces/{spaces['S-6']['id']}", json={"status": "maintenance"}).status_code
        == 200
    )
    station = admin.post(
        "/ev-stations",
        json={
            "space_id": spaces["S-4"]["id"],
            "charger_type": "level2",
            "power_kw": 7.2,
            "connector_type": "J1772",
            "price_per_kwh": 0.25,
        },
    ).json()
    tesla = vehicle(alice, admin, "EV1", is_ev=True)
    # Reservations: one still ahead, one cancelled, one that will be a no-show, one checked in.
    reserve(
        alice, vehicle(alice, admin, "RES1"), zone_a, "2026-03-11T14:00:00Z", "2026-03-11T16:00:00Z"
    )
    cancelled = reserve(
        alice, vehicle(alice, admin, "RES2"), zone_a, "2026-03-11T14:00:00Z", "2026-03-11T16:00:00Z"
    )
    assert alice.delete(f"/reservations/{cancelled}").status_code == 200
    reserve(
        alice, vehicle(alice, admin, "RES3"), zone_a, "2026-03-11T06:00:00Z", "2026-03-11T07:00:00Z"
    )
    checked = reserve(
        bob, vehicle(bob, admin, "RES4"), zone_a, "2026-03-11T09:00:00Z", "2026-03-11T11:00:00Z"
    )
    for plate in ("OLD1", "OLD2", "OLD3"):
        enter(operator, plate)
    gw.clock.advance(minutes=60)
    leave(operator, "OLD3")  # $5 on day 1
    charge = alice.post(
        "/ev-charging/start", json={"station_id": station["id"], "vehicle_id": tesla}
    ).json()
    gw.clock.advance(minutes=60)
    assert alice.post(f"/ev-charging/{charge['id']}/stop").status_code == 200
    day1 = dashboard(admin)
    assert seed_view(day1) == {
        "total_spaces": 6,
        "occupied_spaces": 2,
        "available_spaces": 2,
        "reserved_spaces": 1,
        "occupancy_rate": 33.33,
        "active_sessions": 2,
        "today_entries": 3,
        "today_exits": 1,
        "today_revenue": 5.0,
        "active_ev_charging": 0,
        "pending_reservations": 3,
    }
    assert day1["maintenance_spaces"] == 1

    # Day 2, 08:00.
    gw.clock.set(datetime(2026, 3, 11, 8, 0, tzinfo=UTC))
    enter(operator, "LATE1", entry_time="2026-03-10T23:00:00Z")  # recorded late: day 1's
    leave(operator, "OLD2")  # 23 hours: $115 today
    parked = enter(operator, "EV1")
    assert parked["space_assigned"]["id"] == spaces["S-4"]["id"]
    r = alice.post("/ev-charging/start", json={"station_id": station["id"], "vehicle_id": tesla})
    assert r.status_code == 201, r.text
    enter(operator, "NEW2")
    assert enter(operator, "NEW3")["space_assigned"] is None  # every usable space is taken
    gw.clock.advance(minutes=50)
    r = operator.post(f"/reservations/{checked}/check-in")
    assert r.status_code == 201, r.text
    gw.clock.advance(minutes=10)
    make_discount(admin, "TWENTY")
    leave(operator, "NEW3", code="TWENTY")  # $5 less 20%: $4 today
    body = dashboard(admin)
    assert seed_view(body) == {
        "total_spaces": 6,
        "occupied_spaces": 4,  # OLD1, LATE1, EV1, NEW2
        "available_spaces": 0,
        "reserved_spaces": 1,
        "occupancy_rate": 66.67,
        "active_sessions": 5,  # OLD1, LATE1, EV1, NEW2, RES4 (checked in, no space left)
        "today_entries": 4,  # EV1, NEW2, NEW3, RES4
        "today_exits": 2,  # OLD2, NEW3
        "today_revenue": 119.0,
        "active_ev_charging": 1,
        "pending_reservations": 1,  # RES1 only
    }
    assert body["maintenance_spaces"] == 1
    assert body["ev_stations_total"] == 1 and body["ev_stations_available"] == 0
    # Staff may read it any number of times: it changes nothing.
    assert dashboard(admin) == body


def test_occupancy_rate_has_two_decimals(gw, site, admin, operator):
    enter(operator, "ONE1")
    assert dashboard(admin)["occupancy_rate"] == 16.67  # 1 of 6
    for plate in ("TWO2", "THREE3"):
        enter(operator, plate)
    body = dashboard(admin)
    assert (body["occupied_spaces"], body["occupancy_rate"]) == (3, 50.0)


def test_dashboard_is_admin_only(gw, site, admin, operator, alice, anon):
    r = anon.get("/reports/dashboard")
    assert r.status_code == 401, r.text
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert isinstance(r.json()["detail"], str)
    for client in (operator, alice):
        r = client.get("/reports/dashboard")
        assert r.status_code == 403, r.text
        assert isinstance(r.json()["detail"], str)
    for header in ("Bearer not-a-token", "Basic YWRtaW46cGFzc3dvcmQ=", "Bearer"):
        r = httpx.get(gw.base_url + "/api/v1/reports/dashboard", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
    assert admin.get("/reports/dashboard").status_code == 200


# -- the site's local day ----------------------------------------------------------------------


@pytest.fixture
def new_york(tmp_path, clock) -> Iterator[Running]:
    """A daemon whose site is in New York (EDT, UTC-4, on 2026-03-10)."""
    base = make_config(tmp_path)
    config = replace(base, site=replace(base.site, timezone="America/New_York"))
    daemon, thread = start_daemon(config, clock)
    running = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    running.user("admin@example.com", "admin")
    running.user("operator@example.com", "operator")
    try:
        yield running
    finally:
        daemon.request_stop()
        thread.join(15)
        assert not thread.is_alive(), "daemon did not stop"


def test_today_is_the_sites_local_day(new_york):
    gw = new_york
    with gw.client("admin@example.com") as admin, gw.client("operator@example.com") as operator:
        level = admin.post("/levels", json={"name": "L1", "floor_number": 1}).json()
        zone = admin.post("/zones", json={"level_id": level["id"], "name": "Z"}).json()
        for n in range(4):
            r = admin.post("/spaces", json={"zone_id": zone["id"], "space_number": f"N-{n}"})
            assert r.status_code == 201, r.text
        r = admin.post(
            "/rates",
            json={
                "name": "Hourly",
                "amount": 5.0,
                "grace_period_minutes": 15,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text
        # 09:00 UTC is 05:00 in New York.
        enter(operator, "NIGHT1", entry_time="2026-03-10T03:30:00Z")  # 23:30 on the 9th
        enter(operator, "DAWN1", entry_time="2026-03-10T04:30:00Z")  # 00:30 on the 10th
        enter(operator, "NOW1")
        leave(operator, "DAWN1")  # 4 h 30 min: $25
        body = dashboard(admin)
        assert (body["today_entries"], body["today_exits"], body["today_revenue"]) == (2, 1, 25.0)
        assert body["active_sessions"] == 2
        # 03:30 UTC on the 11th is still the 10th in New York.
        gw.clock.set(datetime(2026, 3, 11, 3, 30, tzinfo=UTC))
        body = dashboard(admin)
        assert (body["today_entries"], body["today_exits"], body["today_revenue"]) == (2, 1, 25.0)
        # Local midnight has passed: a new day.
        gw.clock.advance(hours=1)
        body = dashboard(admin)
        assert (body["today_entries"], body["today_exits"], body["today_revenue"]) == (0, 0, 0.0)
        assert body["active_sessions"] == 2
