"""Parking sessions over HTTP (field reference sections 8 and 9): entry, exit, the lookups,
fee calculation and space assignment, with their status codes and outbox events."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from api_kit import (
    assert_refused,
    car_type,
    db_query,
    enter,
    events_since,
    fee,
    make_rate,
    outbox_mark,
    pay,
    payloads_since,
    snapshot,
    space_status,
    when,
)

TICKET = re.compile(r"TKT-[0-9A-F]{12}")


def space_ids(site):
    return [s["id"] for s in site["spaces"]]


# -- entry ---------------------------------------------------------------------------------


def test_entry_answer_shape_ticket_and_events(gw, site, operator):
    mark = outbox_mark(gw)
    r = operator.post(
        "/sessions/entry",
        json={
            "license_plate": " abc-123 ",
            "entry_gate": "Main Entrance",
            "lpr_image": "cam1/0001.jpg",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert TICKET.fullmatch(body["ticket_number"])
    session = body["session"]
    assert session["ticket_number"] == body["ticket_number"]
    assert session["status"] == "active"
    assert isinstance(session["id"], int) and session["id"] > 0
    assert when(session["entry_time"]) == gw.clock.now()
    assert session["exit_time"] is None and session["exit_gate"] is None
    assert session["entry_gate"] == "Main Entrance"
    assert session["reservation_id"] is None
    assert "lpr_image" not in session  # stored, not echoed
    assert session["created_at"] and session["updated_at"]
    assert session["vehicle"]["license_plate"] == "ABC123"
    assert session["vehicle_id"] == session["vehicle"]["id"]
    space = body["space_assigned"]
    assert space["id"] == session["space_id"] == site["spaces"][0]["id"]
    assert space["space_number"] == "S-1"
    assert space["status"] == "occupied"
    assert space["zone"]["name"] == "Zone A"
    assert space["zone"]["level"]["name"] == "Level 1"
    assert session["space"]["id"] == space["id"]
    assert space_status(gw, space["id"]) == "occupied"
    stored = db_query(gw, "SELECT lpr_image FROM sessions WHERE id = ?", (session["id"],))
    assert stored == [("cam1/0001.jpg",)]
    # First vehicle seen at a gate: the default type, the vehicle, then the session.
    assert events_since(gw, mark) == [
        "vehicle_type_created",
        "vehicle_registered",
        "session_started",
    ]
    started = payloads_since(gw, mark)[-1][1]
    assert started["session_id"] == session["id"]
    assert started["ticket_number"] == body["ticket_number"]


def test_tickets_are_unique(gw, site, operator):
    tickets = {enter(operator, f"UNQ{n}")["ticket_number"] for n in range(5)}
    assert len(tickets) == 5
    assert all(TICKET.fullmatch(t) for t in tickets)


def test_unknown_plate_creates_ownerless_car(gw, site, operator, admin, anon):
    enter(operator, "new-1")
    vehicle = admin.get("/vehicles/plate/NEW1").json()
    assert vehicle["user_id"] is None
    assert vehicle["is_ev"] is False
    assert vehicle["vehicle_type"]["name"] == "Car"
    assert vehicle["vehicle_type"]["size_category"] == "medium"
    # The next unknown plate reuses that type: one vehicle and one session event.
    mark = outbox_mark(gw)
    enter(operator, "NEW2")
    assert events_since(gw, mark) == ["vehicle_registered", "session_started"]
    cars = [t for t in anon.get("/vehicle-types").json() if t["name"] == "Car"]
    assert len(cars) == 1


def test_known_plate_uses_the_registered_vehicle(gw, site, operator, admin, alice):
    vt = car_type(admin)
    mine = alice.post("/vehicles", json={"license_plate": "ALI1", "vehicle_type_id": vt})
    assert mine.status_code == 201, mine.text
    mark = outbox_mark(gw)
    body = enter(operator, "ali1")
    assert body["session"]["vehicle_id"] == mine.json()["id"]
    assert body["session"]["vehicle"]["user_id"] == gw.user_ids["alice@example.com"]
    assert events_since(gw, mark) == ["session_started"]


def test_vehicle_already_inside_is_409_naming_its_ticket(gw, site, operator):
    first = enter(operator, "DUP1")
    before = snapshot(gw)
    r = operator.post("/sessions/entry", json={"license_plate": "dup-1"})
    assert r.status_code == 409, r.text
    assert first["ticket_number"] in r.json()["detail"]
    assert snapshot(gw) == before


def test_entry_is_staff_only(gw, site, admin, alice, anon):
    before = snapshot(gw)
    r = anon.post("/sessions/entry", json={"license_plate": "NOPE1"})
    assert r.status_code == 401
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert alice.post("/sessions/entry", json={"license_plate": "NOPE1"}).status_code == 403
    # Role is checked before the body: a bad body from a customer is still 403.
    assert alice.post("/sessions/entry", json={"license_plate": 5}).status_code == 403
    assert snapshot(gw) == before
    assert admin.post("/sessions/entry", json={"license_plate": "ADM1"}).status_code == 201


def test_space_assignment_prefers_fitting_spaces_and_ev_spaces_for_evs(
    gw, site, operator, admin, alice
):
    s1, s2, s3, s4, s5, _s6 = space_ids(site)
    vt = car_type(admin)
    ev = alice.post(
        "/vehicles", json={"license_plate": "EV1", "vehicle_type_id": vt, "is_ev": True}
    )
    assert ev.status_code == 201, ev.text
    # A car that is not an EV is kept off the charging space.
    assert enter(operator, "CAR1")["space_assigned"]["id"] == s1
    assert enter(operator, "EV1")["space_assigned"]["id"] == s4
    assert enter(operator, "CAR2")["space_assigned"]["id"] == s2
    assert enter(operator, "CAR3")["space_assigned"]["id"] == s5
    # Standard spaces are full; a free space of another type is still given out.
    body = enter(operator, "CAR4")
    assert body["space_assigned"]["id"] == s3
    assert body["session"]["space_id"] == s3


def test_ev_gets_space_flagged_as_charging(gw, site, operator, admin, alice):
    vt = car_type(admin)
    flagged = admin.post(
        "/spaces",
        json={"zone_id": site["zone_b"]["id"], "space_number": "EV-9", "is_ev_charging": True},
    ).json()
    # The ev_charging space of zone A is out of use: the flagged one is the EV's.
    operator.put(f"/spaces/{site['spaces'][3]['id']}", json={"status": "maintenance"})
    alice.post("/vehicles", json={"license_plate": "EV2", "vehicle_type_id": vt, "is_ev": True})
    assert enter(operator, "EV2")["space_assigned"]["id"] == flagged["id"]


def test_non_ev_gets_charging_space_only_when_nothing_else_is_free(gw, site, operator):
    s4 = site["spaces"][3]["id"]
    got = [enter(operator, f"FULL{n}")["space_assigned"]["id"] for n in range(6)]
    assert got[-1] == s4
    assert sorted(got) == sorted(space_ids(site))


def test_no_free_space_entry_succeeds_without_space(gw, site, operator):
    s1, *others = space_ids(site)
    for sid in others:
        r = operator.put(f"/spaces/{sid}", json={"status": "maintenance"})
        assert r.status_code == 200, r.text
    assert enter(operator, "LAST1")["space_assigned"]["id"] == s1
    mark = outbox_mark(gw)
    body = enter(operator, "NONE1")
    assert body["space_assigned"] is None
    assert body["session"]["space_id"] is None and body["session"]["space"] is None
    assert events_since(gw, mark) == ["vehicle_registered", "session_started"]
    assert all(space_status(gw, sid) == "maintenance" for sid in others)


def test_back_dated_entry(gw, site, operator, anon):
    now = gw.clock.now()
    entered = now - timedelta(hours=2, minutes=7)
    body = enter(operator, "LATE1", entry_time=entered.isoformat())
    assert when(body["session"]["entry_time"]) == entered
    priced = fee(anon, body["session"]["id"])
    assert priced["duration_minutes"] == 127 and priced["total"] == 15.0
    # Without an offset the time is UTC; with one it is converted.
    naive = enter(operator, "LATE2", entry_time="2026-03-10T08:00:00")
    assert when(naive["session"]["entry_time"]) == now - timedelta(hours=1)
    offset = enter(operator, "LATE3", entry_time="2026-03-10T10:00:00+02:00")
    assert when(offset["session"]["entry_time"]) == now - timedelta(hours=1)
    # Exactly now is not in the future.
    exact = enter(operator, "LATE4", entry_time=now.isoformat())
    assert when(exact["session"]["entry_time"]) == now


def test_future_entry_time_is_422_and_changes_nothing(gw, site, operator):
    before = snapshot(gw)
    later = gw.clock.now() + timedelta(minutes=1)
    r = operator.post(
        "/sessions/entry", json={"license_plate": "SOON1", "entry_time": later.isoformat()}
    )
    assert_refused(r, 422)
    assert snapshot(gw) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"license_plate": None},
        {"license_plate": ""},
        {"license_plate": "   "},
        {"license_plate": "A" * 21},
        {"license_plate": "AB$%12"},
        {"license_plate": 123},
        {"license_plate": ["ABC"]},
        {"license_plate": "ABC1", "entry_gate": 5},
        {"license_plate": "ABC1", "entry_gate": "G" * 51},
        {"license_plate": "ABC1", "lpr_image": "x" * 256},
        {"license_plate": "ABC1", "entry_time": "yesterday"},
        {"license_plate": "ABC1", "entry_time": 1700000000},
        ["ABC1"],
        "ABC1",
        None,
    ],
)
def test_entry_bad_bodies(gw, site, operator, body):
    before = snapshot(gw)
    assert_refused(operator.post("/sessions/entry", json=body))
    assert snapshot(gw) == before


def test_entry_non_json_body(gw, site, operator):
    before = snapshot(gw)
    r = operator.post(
        "/sessions/entry",
        content=b"license_plate=ABC",
        headers={"Content-Type": "application/json"},
    )
    assert_refused(r)
    assert_refused(operator.post("/sessions/entry", content=b""))
    assert snapshot(gw) == before


# -- exit ----------------------------------------------------------------------------------


def test_exit_within_grace_is_free_and_frees_the_space(gw, site, operator, anon):
    body = enter(operator, "FREE1")
    ticket, sid, space_id = (
        body["ticket_number"],
        body["session"]["id"],
        body["space_assigned"]["id"],
    )
    gw.clock.advance(minutes=15)
    mark = outbox_mark(gw)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket, "exit_gate": "Exit A"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["payment_due"] == 0.0
    assert out["duration_minutes"] == 15
    session = out["session"]
    assert session["id"] == sid and session["status"] == "completed"
    assert when(session["exit_time"]) == gw.clock.now()
    assert session["exit_gate"] == "Exit A"
    assert space_status(gw, space_id) == "available"
    assert events_since(gw, mark) == ["session_completed"]
    assert payloads_since(gw, mark)[0][1]["session_id"] == sid
    # The ticket still finds the (completed) session; it cannot leave twice.
    found = anon.get(f"/sessions/ticket/{ticket}")
    assert found.status_code == 200 and found.json()["status"] == "completed"
    before = snapshot(gw)
    assert_refused(operator.post("/sessions/exit", json={"ticket_number": ticket}), 404)
    assert snapshot(gw) == before
    # The vehicle can come in again with a new ticket.
    again = enter(operator, "FREE1")
    assert again["ticket_number"] != ticket
    assert again["session"]["vehicle_id"] == session["vehicle_id"]


def test_exit_unpaid_is_402_and_changes_nothing(gw, site, operator):
    body = enter(operator, "OWE1")
    ticket, sid, space_id = (
        body["ticket_number"],
        body["session"]["id"],
        body["space_assigned"]["id"],
    )
    gw.clock.advance(minutes=16)
    before = snapshot(gw)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 402, r.text
    err = r.json()
    assert err["amount_due"] == 5.0
    assert err["session_id"] == sid
    assert err["ticket_number"] == ticket
    assert isinstance(err["detail"], str)
    r = operator.post("/sessions/exit", json={"license_plate": "owe-1"})
    assert r.status_code == 402 and r.json()["amount_due"] == 5.0
    assert snapshot(gw) == before
    assert operator.get(f"/sessions/{sid}").json()["status"] == "active"
    assert space_status(gw, space_id) == "occupied"


def test_paid_exit_by_plate(gw, site, operator, alice):
    body = enter(operator, "LOST1")
    sid = body["session"]["id"]
    gw.clock.advance(minutes=127)
    assert pay(alice, sid, 15.0).status_code == 201
    gw.clock.advance(minutes=3)
    r = operator.post("/sessions/exit", json={"license_plate": "lost 1", "exit_gate": "Exit B"})
    assert r.status_code == 200, r.text
    assert r.json()["session"]["id"] == sid
    assert r.json()["session"]["status"] == "completed"
    assert r.json()["payment_due"] == 0.0
    assert r.json()["duration_minutes"] == 130


def test_exit_after_the_exit_window_owes_the_extra_hours(gw, site, operator, alice):
    body = enter(operator, "WIN1")
    ticket, sid = body["ticket_number"], body["session"]["id"]
    gw.clock.advance(minutes=60)
    assert pay(alice, sid, 5.0).status_code == 201
    gw.clock.advance(minutes=16)  # window over, and the stay is now in its second hour
    before = snapshot(gw)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 402, r.text
    assert r.json()["amount_due"] == 5.0
    assert snapshot(gw) == before
    assert pay(alice, sid, 5.0).status_code == 201
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 200, r.text


def test_exit_after_the_window_with_no_fee_growth_is_free(gw, site, operator, alice):
    body = enter(operator, "WIN2")
    gw.clock.advance(minutes=20)
    assert pay(alice, body["session"]["id"], 5.0).status_code == 201
    gw.clock.advance(minutes=30)  # 50 minutes in all: still the first hour
    r = operator.post("/sessions/exit", json={"ticket_number": body["ticket_number"]})
    assert r.status_code == 200, r.text


def test_exit_unknown_ticket_or_plate_is_404(gw, site, operator):
    enter(operator, "HERE1")
    before = snapshot(gw)
    assert_refused(operator.post("/sessions/exit", json={"ticket_number": "TKT-000000000000"}), 404)
    assert_refused(operator.post("/sessions/exit", json={"license_plate": "NOTHERE"}), 404)
    assert snapshot(gw) == before


def test_exit_is_staff_only(gw, site, operator, alice, anon):
    ticket = enter(operator, "STAFF1")["ticket_number"]
    assert anon.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 401
    assert alice.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"exit_gate": "Exit A"},
        {"ticket_number": None, "license_plate": None},
        {"ticket_number": ""},
        {"ticket_number": "   "},
        {"license_plate": "   "},
        {"ticket_number": 12345},
        {"license_plate": True},
        {"ticket_number": "TKT-000000000000", "exit_gate": "X" * 51},
        [],
    ],
)
def test_exit_bad_bodies(gw, site, operator, body):
    enter(operator, "BAD1")
    before = snapshot(gw)
    assert_refused(operator.post("/sessions/exit", json=body))
    assert snapshot(gw) == before


# -- listing and lookups ---------------------------------------------------------------------


def test_active_sessions_page_and_zone_filter(gw, site, operator, admin, alice, anon):
    a = enter(operator, "ACT1")  # S-1, zone A
    b = enter(operator, "ACT2")  # S-2, zone A
    c = enter(operator, "ACT3")  # S-5, zone B
    gone = enter(operator, "ACT4")
    assert (
        operator.post("/sessions/exit", json={"ticket_number": gone["ticket_number"]}).status_code
        == 200
    )
    page = operator.get("/sessions/active").json()
    assert set(page) >= {"sessions", "total", "page", "limit"}
    assert page["total"] == 3 and page["page"] == 1 and page["limit"] == 20
    ids = [s["id"] for s in page["sessions"]]
    assert ids == [a["session"]["id"], b["session"]["id"], c["session"]["id"]]
    assert all(s["status"] == "active" for s in page["sessions"])
    zone_b = admin.get("/sessions/active", params={"zone_id": site["zone_b"]["id"]}).json()
    assert [s["id"] for s in zone_b["sessions"]] == [c["session"]["id"]] and zone_b["total"] == 1
    first = operator.get("/sessions/active", params={"limit": 2}).json()
    assert len(first["sessions"]) == 2 and first["total"] == 3 and first["limit"] == 2
    second = operator.get("/sessions/active", params={"limit": 2, "page": 2}).json()
    assert [s["id"] for s in second["sessions"]] == [c["session"]["id"]] and second["page"] == 2
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"limit": "x"}, {"zone_id": "a"}):
        assert_refused(operator.get("/sessions/active", params=params))
    assert alice.get("/sessions/active").status_code == 403
    assert anon.get("/sessions/active").status_code == 401


def test_get_session_by_id_is_staff_only(gw, site, operator, admin, alice, anon):
    body = enter(operator, "GET1")
    sid = body["session"]["id"]
    for client in (operator, admin):
        r = client.get(f"/sessions/{sid}")
        assert r.status_code == 200
        assert r.json()["ticket_number"] == body["ticket_number"]
        assert r.json()["vehicle"]["license_plate"] == "GET1"
    assert alice.get(f"/sessions/{sid}").status_code == 403
    assert anon.get(f"/sessions/{sid}").status_code == 401
    assert_refused(operator.get("/sessions/999999"), 404)


def test_get_session_by_ticket_is_public(gw, site, operator, alice, anon):
    body = enter(operator, "TIX1")
    ticket = body["ticket_number"]
    for client in (anon, alice):
        r = client.get(f"/sessions/ticket/{ticket}")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == body["session"]["id"]
    assert anon.get(f"/sessions/ticket/{ticket.lower()}").status_code == 200
    assert_refused(anon.get("/sessions/ticket/TKT-000000000000"), 404)


# -- fee calculation -------------------------------------------------------------------------


def test_calculate_fee_seed_example(gw, site, operator, anon, alice):
    sid = enter(operator, "FEE1")["session"]["id"]
    gw.clock.advance(minutes=127)
    for client in (anon, alice):
        body = fee(client, sid)
        assert body["session_id"] == sid
        assert body["duration_minutes"] == 127
        assert body["base_fee"] == 15.0
        assert body["discounts"] == 0
        assert body["tax"] == 0
        assert body["total"] == 15.0
        assert body["breakdown"] == [{"description": "Parking (3 hour(s) @ $5/hr)", "amount": 15.0}]


def test_calculate_fee_exit_time_query(gw, site, operator, anon):
    body = enter(operator, "FEE2")
    sid, entered = body["session"]["id"], when(body["session"]["entry_time"])
    at = fee(anon, sid, exit_time=(entered + timedelta(minutes=61)).isoformat())
    assert at["duration_minutes"] == 61 and at["base_fee"] == 10.0
    assert "2 hour(s)" in at["breakdown"][0]["description"]
    naive = fee(anon, sid, exit_time="2026-03-10T12:00:00")
    assert naive["duration_minutes"] == 180 and naive["total"] == 15.0
    # An end before the entry is refused: priced as 0 minutes it read "within grace".
    r = anon.get(f"/sessions/{sid}/calculate-fee", params={"exit_time": "2026-03-10T08:00:00Z"})
    assert_refused(r, 422)
    assert fee(anon, sid, exit_time=entered.isoformat())["duration_minutes"] == 0
    assert_refused(anon.get(f"/sessions/{sid}/calculate-fee", params={"exit_time": "later"}))


@pytest.mark.parametrize(
    ("minutes", "total", "hours"),
    [(0, 0.0, None), (15, 0.0, None), (16, 5.0, 1), (59, 5.0, 1), (60, 5.0, 1), (61, 10.0, 2)],
)
def test_calculate_fee_grace_and_started_hours(gw, site, operator, anon, minutes, total, hours):
    sid = enter(operator, "GRACE1")["session"]["id"]
    gw.clock.advance(minutes=minutes)
    body = fee(anon, sid)
    assert body["duration_minutes"] == minutes
    assert body["base_fee"] == total and body["total"] == total
    if hours is None:
        assert "grace" in body["breakdown"][0]["description"].lower()
    else:
        assert f"{hours} hour(s)" in body["breakdown"][0]["description"]


def test_calculate_fee_of_a_completed_stay_is_frozen(gw, site, operator, alice, anon):
    body = enter(operator, "DONE1")
    sid = body["session"]["id"]
    gw.clock.advance(minutes=90)
    assert pay(alice, sid, 10.0).status_code == 201
    assert (
        operator.post("/sessions/exit", json={"ticket_number": body["ticket_number"]}).status_code
        == 200
    )
    gw.clock.advance(hours=5)
    priced = fee(anon, sid)
    assert priced["duration_minutes"] == 90 and priced["total"] == 10.0


def test_calculate_fee_unknown_session(gw, site, anon):
    assert_refused(anon.get("/sessions/999999/calculate-fee"), 404)


# -- assign space ---------------------------------------------------------------------------


def test_assign_space_moves_the_session(gw, site, operator, admin, anon):
    s1, s2, _s3, _s4, s5, s6 = space_ids(site)
    make_rate(admin, name="Zone B", amount=8.0, zone_id=site["zone_b"]["id"])
    body = enter(operator, "MOVE1")
    sid = body["session"]["id"]
    assert body["space_assigned"]["id"] == s1
    gw.clock.advance(minutes=30)
    assert fee(anon, sid)["total"] == 5.0
    mark = outbox_mark(gw)
    r = operator.post(f"/sessions/{sid}/assign-space", json={"space_id": s6})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == sid and r.json()["space_id"] == s6
    assert r.json()["space"]["id"] == s6
    assert space_status(gw, s1) == "available"
    assert space_status(gw, s6) == "occupied"
    assert events_since(gw, mark) == ["session_space_assigned"]
    # Priced with the new space's zone.
    assert fee(anon, sid)["total"] == 8.0
    # Naming the space it already has changes nothing.
    before = snapshot(gw)
    r = admin.post(f"/sessions/{sid}/assign-space", json={"space_id": s6})
    assert r.status_code == 200 and r.json()["space_id"] == s6
    assert snapshot(gw) == before
    # A session without a space gets one.
    for sid_ in (s2, s5):
        operator.put(f"/spaces/{sid_}", json={"status": "maintenance"})
    operator.put(f"/spaces/{site['spaces'][2]['id']}", json={"status": "maintenance"})
    operator.put(f"/spaces/{site['spaces'][3]['id']}", json={"status": "maintenance"})
    operator.put(f"/spaces/{s1}", json={"status": "maintenance"})
    spaceless = enter(operator, "MOVE2")
    assert spaceless["space_assigned"] is None
    operator.put(f"/spaces/{s1}", json={"status": "available"})
    r = operator.post(f"/sessions/{spaceless['session']['id']}/assign-space", json={"space_id": s1})
    assert r.status_code == 200 and r.json()["space_id"] == s1
    assert space_status(gw, s1) == "occupied"


def test_assign_space_refusals(gw, site, operator, alice, anon):
    s1, s2, s3, *_ = space_ids(site)
    a = enter(operator, "ASG1")  # S-1
    b = enter(operator, "ASG2")  # S-2
    done = enter(operator, "ASG3")  # S-5
    assert (
        operator.post("/sessions/exit", json={"ticket_number": done["ticket_number"]}).status_code
        == 200
    )
    operator.put(f"/spaces/{s3}", json={"status": "maintenance"})
    sid = a["session"]["id"]
    before = snapshot(gw)
    assert_refused(operator.post("/sessions/999999/assign-space", json={"space_id": s2}), 404)
    assert_refused(operator.post(f"/sessions/{sid}/assign-space", json={"space_id": 999999}), 404)
    assert_refused(operator.post(f"/sessions/{sid}/assign-space", json={"space_id": s2}), 409)
    assert_refused(operator.post(f"/sessions/{sid}/assign-space", json={"space_id": s3}), 409)
    r = operator.post(f"/sessions/{done['session']['id']}/assign-space", json={"space_id": s1})
    assert_refused(r, 409)
    for body in ({}, {"space_id": "x"}, {"space_id": 0}, {"space_id": -1}, {"space_id": 1.5}, [1]):
        assert_refused(operator.post(f"/sessions/{sid}/assign-space", json=body))
    assert alice.post(f"/sessions/{sid}/assign-space", json={"space_id": s2}).status_code == 403
    assert anon.post(f"/sessions/{sid}/assign-space", json={"space_id": s2}).status_code == 401
    assert snapshot(gw) == before
    assert b["space_assigned"]["id"] == s2


@pytest.mark.parametrize(
    "entry_time",
    [
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "1999-12-31T23:59:59+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_entry_times_outside_the_years_2000_2099_are_refused(gw, site, operator, entry_time):
    """Year 1 used to be accepted (and read back wrongly); 9999 with an offset overflowed."""
    before = snapshot(gw)
    r = operator.post("/sessions/entry", json={"license_plate": "OLD1", "entry_time": entry_time})
    assert_refused(r, 422)
    assert r.json()["errors"][0]["field"] == "entry_time"
    assert snapshot(gw) == before


def test_back_dated_entry_in_2000_is_stored_readably(gw, site, operator, alice, anon):
    body = enter(operator, "OLD2", entry_time="2000-01-01T00:00:00Z")
    sid, ticket = body["session"]["id"], body["ticket_number"]
    assert when(operator.get(f"/sessions/{sid}").json()["entry_time"]).year == 2000
    assert fee(anon, sid)["total"] > 0
    assert operator.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 402
    stored = db_query(gw, "SELECT entry_time FROM sessions WHERE id = ?", (sid,))[0][0]
    assert stored == "2000-01-01T00:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("exit_time", "code"),
    [
        ("9999-12-31T23:59:59Z", 422),
        ("0001-01-01T00:00:00+05:00", 422),
        ("2100-01-01T00:00:00Z", 422),
        ("0.5", 400),
        ("1", 400),
        ("2026-03-10", 400),
    ],
)
def test_calculate_fee_exit_time_must_be_a_datetime_of_this_century(
    gw, site, operator, anon, exit_time, code
):
    """``exit_time=0.5`` used to be read as the epoch, and years 1 and 9999 were priced."""
    sid = enter(operator, "EXT1")["session"]["id"]
    r = anon.get(f"/sessions/{sid}/calculate-fee", params={"exit_time": exit_time})
    assert_refused(r, code)
    assert r.json()["errors"][0]["field"] == "exit_time"
    assert fee(anon, sid, exit_time="2099-12-31T23:59:59Z")["total"] > 0
