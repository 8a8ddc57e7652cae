"""Reservations over HTTP (field reference section 13, with 1.2/1.3 and 8.1): create, list,
get, confirmation lookup, update, cancel, check-in, availability; the capacity rule per zone
and for the site at every moment of a window; the entry and exit of reserved vehicles; the
status codes, the check order, bad input and the outbox events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_kit import (
    assert_refused,
    car_type,
    db_query,
    enter,
    events_since,
    outbox_mark,
    payloads_since,
    snapshot,
    space_status,
    when,
)

CONFIRMATION = re.compile(r"RSV-[0-9A-F]{8}")
TICKET = re.compile(r"TKT-[0-9A-F]{12}")
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # the fixture clock's start
DAY = 24  # hours: "tomorrow" windows start this far from T0 (beyond the walk-in horizon)

RESERVATION_FIELDS = {
    "id",
    "user_id",
    "vehicle_id",
    "space_id",
    "zone_id",
    "start_time",
    "end_time",
    "status",
    "confirmation_number",
    "special_requests",
    "reservation_fee",
    "is_paid",
    "cancelled_at",
    "cancellation_reason",
    "vehicle",
    "space",
    "created_at",
    "updated_at",
}


def at(hours: float = 0, minutes: float = 0) -> str:
    return (T0 + timedelta(hours=hours, minutes=minutes)).isoformat()


def dt(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def snap(gw: Any) -> dict[str, Any]:
    """api_kit's snapshot plus the reservations table."""
    state = snapshot(gw)
    state["reservations"] = db_query(gw, "SELECT * FROM reservations ORDER BY id")
    return state


def stored(gw: Any, reservation_id: int) -> dict[str, Any]:
    cols = [r[1] for r in db_query(gw, "PRAGMA table_info(reservations)")]
    row = db_query(gw, "SELECT * FROM reservations WHERE id = ?", (reservation_id,))[0]
    return dict(zip(cols, row, strict=True))


def sid(site: dict[str, Any], n: int) -> int:
    """The id of space S-n (1..4 in zone A: standard, standard, compact, ev; 5..6 in B)."""
    return int(site["spaces"][n - 1]["id"])


def vehicle(client: httpx.Client, admin: httpx.Client, plate: str, **extra: Any) -> int:
    r = client.post(
        "/vehicles", json={"license_plate": plate, "vehicle_type_id": car_type(admin), **extra}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def post(
    client: httpx.Client, vehicle_id: int, start_h: float, end_h: float, **extra: Any
) -> httpx.Response:
    body = {"vehicle_id": vehicle_id, "start_time": at(start_h), "end_time": at(end_h), **extra}
    return client.post("/reservations", json=body)


def reserve(
    client: httpx.Client, vehicle_id: int, start_h: float, end_h: float, **extra: Any
) -> dict[str, Any]:
    r = post(client, vehicle_id, start_h, end_h, **extra)
    assert r.status_code == 201, r.text
    return dict(r.json()["reservation"])


def get(client: httpx.Client, reservation_id: int) -> dict[str, Any]:
    r = client.get(f"/reservations/{reservation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def park(operator: httpx.Client, plate: str, space_id: int) -> dict[str, Any]:
    """A walk-in (no reservation) parked on ``space_id``."""
    body = enter(operator, plate)
    session = body["session"]
    if session["space_id"] != space_id:
        r = operator.post(f"/sessions/{session['id']}/assign-space", json={"space_id": space_id})
        assert r.status_code == 200, r.text
    return dict(session)


def fleet(client: httpx.Client, admin: httpx.Client, prefix: str, n: int) -> list[int]:
    return [vehicle(client, admin, f"{prefix}{i}") for i in range(n)]


@pytest.fixture
def cars(site, admin, alice, bob) -> dict[str, int]:
    return {
        "alice": vehicle(alice, admin, "ALICE1"),
        "alice2": vehicle(alice, admin, "ALICE2"),
        "bob": vehicle(bob, admin, "BOB1"),
    }


# -- create --------------------------------------------------------------------------------


def test_create_seed_example_body_answer_shape_and_event(gw, site, cars, alice):
    mark = outbox_mark(gw)
    zone_a = site["zone_a"]["id"]
    r = alice.post(
        "/reservations",
        json={
            "vehicle_id": cars["alice"],
            "zone_id": zone_a,
            "start_time": "2026-03-11T09:00:00Z",
            "end_time": "2026-03-11T17:00:00Z",
            "special_requests": "Near elevator please",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"reservation", "confirmation_number"}
    rsv = body["reservation"]
    assert set(rsv) >= RESERVATION_FIELDS
    assert CONFIRMATION.fullmatch(body["confirmation_number"])
    assert rsv["confirmation_number"] == body["confirmation_number"]
    assert isinstance(rsv["id"], int) and rsv["id"] > 0
    assert rsv["status"] == "confirmed"
    assert when(rsv["start_time"]) == datetime(2026, 3, 11, 9, tzinfo=UTC)
    assert when(rsv["end_time"]) == datetime(2026, 3, 11, 17, tzinfo=UTC)
    assert rsv["user_id"] == gw.user_ids["alice@example.com"]
    assert rsv["vehicle_id"] == cars["alice"] == rsv["vehicle"]["id"]
    assert rsv["vehicle"]["license_plate"] == "ALICE1"
    assert rsv["zone_id"] == zone_a
    assert rsv["space_id"] is None and rsv["space"] is None
    assert rsv["special_requests"] == "Near elevator please"
    assert rsv["reservation_fee"] == 0.0 and isinstance(rsv["reservation_fee"], float)
    assert rsv["is_paid"] is False
    assert rsv["cancelled_at"] is None and rsv["cancellation_reason"] is None
    assert when(rsv["created_at"]) == T0 and when(rsv["updated_at"]) == T0
    events = payloads_since(gw, mark)
    assert [e for e, _ in events] == ["reservation_created"]
    payload = events[0][1]
    assert payload["reservation_id"] == rsv["id"]
    assert payload["confirmation_number"] == body["confirmation_number"]
    assert payload["vehicle_id"] == cars["alice"] and payload["zone_id"] == zone_a
    assert stored(gw, rsv["id"])["status"] == "confirmed"
    # and it reads back the same
    assert get(alice, rsv["id"]) == rsv


def test_confirmation_numbers_are_unique(site, cars, alice, bob):
    numbers = {
        reserve(alice, cars["alice"], DAY + 2 * i, DAY + 2 * i + 1)["confirmation_number"]
        for i in range(5)
    }
    assert len(numbers) == 5 and all(CONFIRMATION.fullmatch(n) for n in numbers)


def test_create_naming_a_space_takes_its_zone(site, cars, alice):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2, space_id=sid(site, 5))
    assert rsv["space_id"] == sid(site, 5)
    assert rsv["zone_id"] == site["zone_b"]["id"]
    assert rsv["space"]["id"] == sid(site, 5) and rsv["space"]["space_number"] == "S-5"
    both = reserve(
        alice, cars["alice2"], DAY, DAY + 2, space_id=sid(site, 1), zone_id=site["zone_a"]["id"]
    )
    assert both["space_id"] == sid(site, 1) and both["zone_id"] == site["zone_a"]["id"]


def test_create_without_zone_and_without_offset(site, cars, alice):
    r = alice.post(
        "/reservations",
        json={
            "vehicle_id": cars["alice"],
            "start_time": "2026-03-11T09:00:00",  # no offset: taken as UTC
            "end_time": "2026-03-11T11:00:00",
        },
    )
    assert r.status_code == 201, r.text
    rsv = r.json()["reservation"]
    assert rsv["zone_id"] is None and rsv["space_id"] is None
    assert when(rsv["start_time"]) == datetime(2026, 3, 11, 9, tzinfo=UTC)
    # an offset other than UTC is answered in UTC
    r = alice.post(
        "/reservations",
        json={
            "vehicle_id": cars["alice2"],
            "start_time": "2026-03-11T10:00:00+02:00",
            "end_time": "2026-03-11T12:00:00+02:00",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["reservation"]["start_time"].endswith("+00:00")
    assert when(r.json()["reservation"]["start_time"]) == datetime(2026, 3, 11, 8, tzinfo=UTC)


def test_create_may_start_now_and_last_exactly_the_maximum(site, cars, alice):
    reserve(alice, cars["alice"], 0, 72)
    reserve(alice, cars["alice2"], 0, 0.5)


def test_create_needs_a_token(gw, site, cars, anon):
    before = snap(gw)
    assert_refused(post(anon, cars["alice"], DAY, DAY + 1), 401)
    r = post(anon, cars["alice"], DAY, DAY + 1)
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert snap(gw) == before


def test_create_for_someone_elses_vehicle_is_403(gw, site, cars, alice, bob):
    before = snap(gw)
    assert_refused(post(alice, cars["bob"], DAY, DAY + 1), 403)
    assert_refused(post(bob, cars["alice"], DAY, DAY + 1, zone_id=site["zone_a"]["id"]), 403)
    assert snap(gw) == before


def test_staff_reserve_for_a_customers_vehicle_on_their_behalf(gw, site, cars, operator, admin):
    rsv = reserve(operator, cars["alice"], DAY, DAY + 1)
    assert rsv["user_id"] == gw.user_ids["alice@example.com"]
    rsv = reserve(admin, cars["bob"], DAY, DAY + 1)
    assert rsv["user_id"] == gw.user_ids["bob@example.com"]


@pytest.mark.parametrize(
    "extra",
    [
        {"vehicle_id": 999_999},
        {"zone_id": 999_999},
        {"space_id": 999_999},
    ],
    ids=["vehicle", "zone", "space"],
)
def test_create_unknown_ids_are_404(gw, site, cars, alice, extra):
    before = snap(gw)
    body = {"vehicle_id": cars["alice"], "start_time": at(DAY), "end_time": at(DAY + 1), **extra}
    assert_refused(alice.post("/reservations", json=body), 404)
    assert snap(gw) == before


def test_create_check_order(gw, site, cars, alice):
    before = snap(gw)
    # validation (422) before existence (404)
    r = post(alice, 999_999, DAY + 2, DAY + 1)
    assert_refused(r, 422)
    # existence (404) before ownership (403)
    assert_refused(post(alice, cars["bob"], DAY, DAY + 1, zone_id=999_999), 404)
    # ownership (403) before state (409): bob's car on a space that is already reserved
    reserve(alice, cars["alice"], DAY, DAY + 1, space_id=sid(site, 1))
    before = snap(gw)
    assert_refused(post(alice, cars["bob"], DAY, DAY + 1, space_id=sid(site, 1)), 403)
    assert snap(gw) == before


@pytest.mark.parametrize(
    ("start_h", "end_h", "field"),
    [
        (DAY + 2, DAY + 2, "end_time"),  # equal
        (DAY + 2, DAY + 1, "end_time"),  # before
        (-1 / 60, 1, "start_time"),  # a minute ago
        (-DAY, -DAY + 1, "start_time"),  # yesterday
        (DAY, DAY + 72 + 1 / 60, "end_time"),  # a minute longer than the maximum
        (DAY, DAY + 24 * 30, "end_time"),
    ],
    ids=["equal", "end-before-start", "past-minute", "past-day", "too-long", "month"],
)
def test_create_window_rules_are_422(gw, site, cars, alice, start_h, end_h, field):
    before = snap(gw)
    r = post(alice, cars["alice"], start_h, end_h)
    assert_refused(r, 422)
    assert r.json()["errors"][0]["field"] == field
    assert snap(gw) == before


def test_create_space_not_in_the_zone_is_422(gw, site, cars, alice):
    before = snap(gw)
    r = post(
        alice, cars["alice"], DAY, DAY + 1, zone_id=site["zone_a"]["id"], space_id=sid(site, 5)
    )
    assert_refused(r, 422)
    assert r.json()["errors"][0]["field"] == "space_id"
    assert snap(gw) == before


# -- overlaps and capacity (409) ----------------------------------------------------------


def test_space_overlap_is_409_and_half_open(gw, site, cars, alice, bob):
    s1 = sid(site, 1)
    first = reserve(alice, cars["alice"], DAY + 9, DAY + 17, space_id=s1)
    before = snap(gw)
    for start, end in [(DAY + 16, DAY + 18), (DAY + 8, DAY + 10), (DAY + 10, DAY + 11),
                       (DAY + 8, DAY + 18)]:  # fmt: skip
        assert_refused(post(bob, cars["bob"], start, end, space_id=s1), 409)
    assert snap(gw) == before
    # a window may start exactly when another ends (and end when another starts)
    reserve(bob, cars["bob"], DAY + 17, DAY + 18, space_id=s1)
    reserve(alice, cars["alice2"], DAY + 8, DAY + 9, space_id=s1)
    # another space of the same zone is free in that window
    reserve(bob, cars["bob"], DAY + 9, DAY + 17, space_id=sid(site, 2))
    assert get(alice, first["id"])["status"] == "confirmed"


def test_cancelled_reservation_frees_the_space_at_once(site, cars, alice, bob):
    s1 = sid(site, 1)
    first = reserve(alice, cars["alice"], DAY, DAY + 4, space_id=s1)
    assert_refused(post(bob, cars["bob"], DAY + 1, DAY + 2, space_id=s1), 409)
    assert alice.delete(f"/reservations/{first['id']}").status_code == 200
    reserve(bob, cars["bob"], DAY + 1, DAY + 2, space_id=s1)


def test_a_vehicle_cannot_hold_two_overlapping_reservations(gw, site, cars, alice):
    first = reserve(alice, cars["alice"], DAY, DAY + 4, zone_id=site["zone_a"]["id"])
    before = snap(gw)
    r = post(alice, cars["alice"], DAY + 3, DAY + 5, zone_id=site["zone_b"]["id"])
    assert_refused(r, 409)
    assert first["confirmation_number"] in r.json()["detail"]
    assert_refused(post(alice, cars["alice"], DAY + 1, DAY + 2), 409)
    assert snap(gw) == before
    reserve(alice, cars["alice"], DAY + 4, DAY + 5)  # back to back is fine
    reserve(alice, cars["alice2"], DAY, DAY + 4)  # another vehicle of hers is fine


def test_zone_capacity_is_checked_at_every_moment_of_the_window(gw, site, admin, alice):
    zone_b = site["zone_b"]["id"]  # two spaces
    v = fleet(alice, admin, "ZB", 6)
    reserve(alice, v[0], DAY + 9, DAY + 11, zone_id=zone_b)
    reserve(alice, v[1], DAY + 15, DAY + 17, zone_id=zone_b)
    # never more than one of those at a time: a whole-day booking fits next to both
    reserve(alice, v[2], DAY + 9, DAY + 17, zone_id=zone_b)
    before = snap(gw)
    # 12:00-16:00: at its start only the whole-day booking is in force (one free place),
    # but from 15:00 both places are taken; the sweep over the whole window finds that
    r = post(alice, v[3], DAY + 12, DAY + 16, zone_id=zone_b)
    assert_refused(r, 409)
    assert "zone" in r.json()["detail"]
    assert_refused(post(alice, v[3], DAY + 8, DAY + 18, zone_id=zone_b), 409)
    assert snap(gw) == before
    # the gap 11:00-15:00 has one free place; zone A and zone-less bookings are unaffected
    reserve(alice, v[3], DAY + 11, DAY + 15, zone_id=zone_b)
    reserve(alice, v[4], DAY + 9, DAY + 17, zone_id=site["zone_a"]["id"])
    reserve(alice, v[5], DAY + 9, DAY + 17)


def test_a_space_reservation_counts_against_its_zone(site, admin, alice):
    zone_b = site["zone_b"]["id"]
    v = fleet(alice, admin, "SP", 3)
    reserve(alice, v[0], DAY, DAY + 2, space_id=sid(site, 5))
    reserve(alice, v[1], DAY, DAY + 2, zone_id=zone_b)
    assert_refused(post(alice, v[2], DAY + 1, DAY + 3, zone_id=zone_b), 409)
    assert_refused(post(alice, v[2], DAY + 1, DAY + 3, space_id=sid(site, 6)), 409)


def test_spaces_out_of_use_do_not_count(site, admin, operator, alice):
    zone_b = site["zone_b"]["id"]
    r = operator.put(f"/spaces/{sid(site, 6)}", json={"status": "maintenance"})
    assert r.status_code == 200, r.text
    v = fleet(alice, admin, "MT", 2)
    reserve(alice, v[0], DAY, DAY + 2, zone_id=zone_b)
    assert_refused(post(alice, v[1], DAY, DAY + 2, zone_id=zone_b), 409)
    assert operator.put(f"/spaces/{sid(site, 6)}", json={"status": "available"}).status_code == 200
    reserve(alice, v[1], DAY, DAY + 2, zone_id=zone_b)
    # out of service likewise; an occupied space still counts (its car will leave)
    assert (
        operator.put(f"/spaces/{sid(site, 5)}", json={"status": "out_of_service"}).status_code
        == 200
    )
    avail = admin.get(
        "/reservations/availability",
        params={"start_time": at(DAY), "end_time": at(DAY + 1), "zone_id": zone_b},
    ).json()
    assert avail["capacity"] == 1


def test_site_capacity_binds_zone_less_and_zone_reservations(gw, site, admin, alice):
    v = fleet(alice, admin, "ST", 8)
    for i in range(6):  # six usable spaces on the site
        reserve(alice, v[i], DAY, DAY + 3)
    before = snap(gw)
    r = post(alice, v[6], DAY + 1, DAY + 2)
    assert_refused(r, 409)
    assert "car park" in r.json()["detail"]
    # zone A itself has room (nothing is booked in it), but the site has none
    assert_refused(post(alice, v[6], DAY + 1, DAY + 2, zone_id=site["zone_a"]["id"]), 409)
    assert_refused(post(alice, v[6], DAY + 1, DAY + 2, space_id=sid(site, 2)), 409)
    assert snap(gw) == before
    reserve(alice, v[6], DAY + 3, DAY + 4, zone_id=site["zone_a"]["id"])


def test_walk_ins_count_for_windows_starting_within_the_horizon(gw, site, admin, operator, alice):
    zone_b = site["zone_b"]["id"]
    park(operator, "WALK1", sid(site, 5))
    park(operator, "WALK2", sid(site, 6))
    v = fleet(alice, admin, "WK", 3)
    before = snap(gw)
    r = post(alice, v[0], 2, 4, zone_id=zone_b)
    assert_refused(r, 409)
    assert_refused(post(alice, v[0], 23.5, 26, zone_id=zone_b), 409)
    assert snap(gw) == before
    # windows starting after 24 h no longer count the parked cars
    reserve(alice, v[0], 24, 26, zone_id=zone_b)
    reserve(alice, v[1], 24, 26, zone_id=zone_b)
    # zone A is not affected by zone B's walk-ins; the site counts them (6 - 2 = 4)
    for i in range(4):
        reserve(alice, vehicle(alice, admin, f"WA{i}"), 1, 3, zone_id=site["zone_a"]["id"])
    assert_refused(post(alice, v[2], 1, 3), 409)
    # a walk-in that leaves frees its place
    assert operator.post("/sessions/exit", json={"license_plate": "WALK1"}).status_code == 200
    reserve(alice, v[2], 1, 3)


def test_a_car_overstaying_its_reservation_still_takes_a_place(gw, site, admin, operator, alice):
    zone_b = site["zone_b"]["id"]  # two spaces
    v = fleet(alice, admin, "OV", 3)
    early = reserve(alice, v[0], 0, 1, zone_id=zone_b)
    reserve(alice, v[1], 0, 3, zone_id=zone_b)
    assert operator.post(f"/reservations/{early['id']}/check-in").status_code == 201
    assert availability(alice, 1.5, 3, zone_id=zone_b)["walk_ins"] == 0
    gw.clock.set(dt(1, 30))  # its window is over, the car is still inside
    assert get(alice, early["id"])["status"] == "checked_in"
    body = availability(alice, 2, 3, zone_id=zone_b)
    assert (body["capacity"], body["reserved_peak"], body["walk_ins"]) == (2, 1, 1)
    assert body["bookable"] == 0
    before = snap(gw)
    assert_refused(post(alice, v[2], 2, 3, zone_id=zone_b), 409)
    assert snap(gw) == before


# -- get, confirmation, list ---------------------------------------------------------------


def test_get_owner_staff_other_customer_anon_unknown(site, cars, alice, bob, operator, admin, anon):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 1)
    assert get(alice, rsv["id"])["id"] == rsv["id"]
    assert get(operator, rsv["id"])["id"] == rsv["id"]
    assert get(admin, rsv["id"])["id"] == rsv["id"]
    assert_refused(bob.get(f"/reservations/{rsv['id']}"), 403)
    assert_refused(anon.get(f"/reservations/{rsv['id']}"), 401)
    assert_refused(alice.get("/reservations/999999"), 404)
    assert_refused(bob.get("/reservations/999999"), 404)
    assert_refused(alice.get("/reservations/abc"), 400, 404, 422)
    assert_refused(alice.get("/reservations/99999999999999999999999"), 400, 404, 422)


def test_find_by_confirmation_number(site, cars, alice, bob, operator, admin, anon):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 1)
    code = rsv["confirmation_number"]
    for client in (alice, operator, admin):
        r = client.get(f"/reservations/confirmation/{code}")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == rsv["id"] and r.json()["confirmation_number"] == code
    assert alice.get(f"/reservations/confirmation/{code.lower()}").json()["id"] == rsv["id"]
    assert_refused(bob.get(f"/reservations/confirmation/{code}"), 403)
    assert_refused(anon.get(f"/reservations/confirmation/{code}"), 401)
    assert_refused(alice.get("/reservations/confirmation/RSV-00000000"), 404)
    assert_refused(operator.get("/reservations/confirmation/nonsense"), 404)


def test_list_customers_see_their_own_staff_all(gw, site, cars, alice, bob, operator, admin, anon):
    mine = [reserve(alice, cars["alice"], DAY + 2 * i, DAY + 2 * i + 1)["id"] for i in range(3)]
    theirs = reserve(bob, cars["bob"], DAY, DAY + 1)["id"]
    body = alice.get("/reservations").json()
    assert set(body) >= {"reservations", "total", "page", "limit"}
    assert [r["id"] for r in body["reservations"]] == mine and body["total"] == 3
    assert body["page"] == 1 and body["limit"] == 20
    assert [r["id"] for r in bob.get("/reservations").json()["reservations"]] == [theirs]
    for client in (operator, admin):
        body = client.get("/reservations").json()
        assert [r["id"] for r in body["reservations"]] == sorted([*mine, theirs])
        assert body["total"] == 4
    page = operator.get("/reservations", params={"page": 2, "limit": 3}).json()
    assert [r["id"] for r in page["reservations"]] == [max(*mine, theirs)]
    assert page["total"] == 4 and page["page"] == 2 and page["limit"] == 3
    assert set(page["reservations"][0]) >= RESERVATION_FIELDS
    assert_refused(anon.get("/reservations"), 401)


def test_list_filters_by_status_and_day(gw, site, admin, operator, alice):
    v = fleet(alice, admin, "LS", 5)
    day2 = reserve(alice, v[0], DAY, DAY + 8)  # 2026-03-11 09:00-17:00
    midnight = reserve(alice, v[1], DAY + 13, DAY + 17)  # 03-11 22:00 - 03-12 02:00
    day3 = reserve(alice, v[2], 2 * DAY + 1, 2 * DAY + 3)  # 03-12 10:00-12:00
    ends_at_midnight = reserve(alice, v[3], DAY + 14, DAY + 15)  # 03-11 23:00 - 03-12 00:00
    cancelled = reserve(alice, v[4], 3 * DAY, 3 * DAY + 1)  # 03-13
    assert alice.delete(f"/reservations/{cancelled['id']}").status_code == 200

    def ids(client: httpx.Client, **params: Any) -> list[int]:
        r = client.get("/reservations", params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["reservations"]]

    assert ids(alice, date="2026-03-11") == [day2["id"], midnight["id"], ends_at_midnight["id"]]
    assert ids(alice, date="2026-03-12") == [midnight["id"], day3["id"]]
    assert ids(operator, date="2026-03-13") == [cancelled["id"]]
    assert ids(operator, date="2026-03-14") == []
    assert ids(alice, status="cancelled") == [cancelled["id"]]
    assert ids(alice, status="confirmed") == [
        day2["id"], midnight["id"], day3["id"], ends_at_midnight["id"]
    ]  # fmt: skip
    assert ids(alice, status="confirmed", date="2026-03-12") == [midnight["id"], day3["id"]]
    assert ids(operator, status="checked_in") == []
    assert ids(operator, status="no_show") == []
    # once a window has ended without a check-in, it is a no-show
    gw.clock.set(dt(DAY + 8))
    assert ids(alice, status="no_show") == [day2["id"]]
    assert day2["id"] not in ids(alice, status="confirmed")
    assert get(alice, day2["id"])["status"] == "no_show"
    total = alice.get("/reservations", params={"status": "no_show"}).json()["total"]
    assert total == 1


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"status": "CONFIRMED"},
        {"date": "2026-13-01"},
        {"date": "yesterday"},
        {"page": 0},
        {"page": "x"},
        {"limit": 0},
        {"limit": 101},
        {"zone_id": "A"},
    ],
)
def test_list_bad_query_is_refused(site, alice, operator, params):
    assert_refused(alice.get("/reservations", params=params))
    assert_refused(operator.get("/reservations", params=params))


# -- update --------------------------------------------------------------------------------


def test_update_times_and_requests_with_event(gw, site, cars, alice):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2, zone_id=site["zone_a"]["id"])
    gw.clock.advance(minutes=5)
    mark = outbox_mark(gw)
    r = alice.put(
        f"/reservations/{rsv['id']}",
        json={"start_time": at(DAY + 1), "end_time": at(DAY + 4), "special_requests": "Ground"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= RESERVATION_FIELDS
    assert when(body["start_time"]) == dt(DAY + 1) and when(body["end_time"]) == dt(DAY + 4)
    assert body["special_requests"] == "Ground"
    assert body["confirmation_number"] == rsv["confirmation_number"]
    assert body["status"] == "confirmed" and body["zone_id"] == site["zone_a"]["id"]
    assert when(body["updated_at"]) == dt(0, 5) and when(body["created_at"]) == T0
    events = payloads_since(gw, mark)
    assert [e for e, _ in events] == ["reservation_updated"]
    assert events[0][1]["reservation_id"] == rsv["id"]
    assert get(alice, rsv["id"]) == body
    # only the requests: no window checks, still an event
    r = alice.put(f"/reservations/{rsv['id']}", json={"special_requests": None})
    assert r.status_code == 200 and r.json()["special_requests"] is None
    # an empty body is a mistake: 400, nothing changes
    assert alice.put(f"/reservations/{rsv['id']}", json={}).status_code == 400
    assert get(alice, rsv["id"])["special_requests"] is None


def test_update_keeps_itself_out_of_the_overlap_checks(site, admin, alice):
    zone_b = site["zone_b"]["id"]
    v = fleet(alice, admin, "UP", 3)
    own_space = reserve(alice, v[0], DAY, DAY + 2, space_id=sid(site, 5))
    other = reserve(alice, v[1], DAY, DAY + 2, zone_id=zone_b)  # zone B is now full
    # moving within its own (overlapping) window: neither the space, the vehicle nor the
    # zone count it twice
    r = alice.put(
        f"/reservations/{own_space['id']}",
        json={"start_time": at(DAY + 1), "end_time": at(DAY + 3)},
    )
    assert r.status_code == 200, r.text
    r = alice.put(f"/reservations/{other['id']}", json={"end_time": at(DAY + 3)})
    assert r.status_code == 200, r.text


def test_update_rechecks_capacity_and_overlaps(gw, site, admin, alice):
    zone_b = site["zone_b"]["id"]
    v = fleet(alice, admin, "RC", 4)
    reserve(alice, v[0], DAY, DAY + 2, zone_id=zone_b)
    reserve(alice, v[1], DAY, DAY + 2, zone_id=zone_b)
    later = reserve(alice, v[2], DAY + 2, DAY + 4, zone_id=zone_b)
    on_s1 = reserve(alice, v[3], DAY + 5, DAY + 6, space_id=sid(site, 1))
    same_car = reserve(alice, v[2], DAY + 6, DAY + 7)
    before = snap(gw)
    r = alice.put(f"/reservations/{later['id']}", json={"start_time": at(DAY + 1)})
    assert_refused(r, 409)
    assert "zone" in r.json()["detail"]
    # moving the same vehicle onto its other reservation
    assert_refused(alice.put(f"/reservations/{later['id']}", json={"end_time": at(DAY + 7)}), 409)
    # a space already held in that window
    r = alice.put(
        f"/reservations/{same_car['id']}",
        json={"start_time": at(DAY + 5), "space_id": sid(site, 1)},
    )
    assert_refused(r, 409)
    assert snap(gw) == before
    assert on_s1["status"] == "confirmed"


def test_update_space_and_zone(gw, site, cars, alice):
    zone_a, zone_b = site["zone_a"]["id"], site["zone_b"]["id"]
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2, space_id=sid(site, 1))
    url = f"/reservations/{rsv['id']}"
    # another space of the same zone
    body = alice.put(url, json={"space_id": sid(site, 2)}).json()
    assert body["space_id"] == sid(site, 2) and body["zone_id"] == zone_a
    # a space of another zone, named alone: the zone follows the space
    r = alice.put(url, json={"space_id": sid(site, 5)})
    assert r.status_code == 200, r.text
    assert r.json()["space_id"] == sid(site, 5) and r.json()["zone_id"] == zone_b
    # a zone alone: the old zone's space is released
    body = alice.put(url, json={"zone_id": zone_a}).json()
    assert body["zone_id"] == zone_a and body["space_id"] is None
    # both, consistent
    body = alice.put(url, json={"zone_id": zone_b, "space_id": sid(site, 6)}).json()
    assert body["zone_id"] == zone_b and body["space_id"] == sid(site, 6)
    # space released explicitly
    body = alice.put(url, json={"space_id": None}).json()
    assert body["space_id"] is None and body["zone_id"] == zone_b
    before = snap(gw)
    r = alice.put(url, json={"zone_id": zone_a, "space_id": sid(site, 5)})
    assert_refused(r, 422)
    assert_refused(alice.put(url, json={"space_id": 999_999}), 404)
    assert_refused(alice.put(url, json={"zone_id": 999_999}), 404)
    assert snap(gw) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_time": at(DAY)}, "end_time"),
        ({"end_time": at(DAY - 1)}, "end_time"),
        ({"start_time": at(DAY + 2)}, "end_time"),
        ({"start_time": at(-1)}, "start_time"),
        ({"start_time": at(-1), "end_time": at(1)}, "start_time"),
        ({"end_time": at(DAY + 73)}, "end_time"),
        ({"start_time": at(DAY + 5), "end_time": at(DAY + 4)}, "end_time"),
    ],
    ids=["end-at-start", "end-before", "start-at-end", "past", "past-both", "too-long", "both"],
)
def test_update_window_rules_are_422(gw, site, cars, alice, change, field):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    before = snap(gw)
    r = alice.put(f"/reservations/{rsv['id']}", json=change)
    assert_refused(r, 422)
    assert r.json()["errors"][0]["field"] == field
    assert snap(gw) == before


def test_update_a_started_reservation_may_keep_its_start(gw, site, cars, alice):
    rsv = reserve(alice, cars["alice"], 1, 3)
    gw.clock.set(dt(2))
    r = alice.put(f"/reservations/{rsv['id']}", json={"end_time": at(5)})
    assert r.status_code == 200, r.text
    assert when(r.json()["end_time"]) == dt(5)
    # re-sending the same start is fine; moving it (into the past) is not
    r = alice.put(f"/reservations/{rsv['id']}", json={"start_time": at(1), "end_time": at(4)})
    assert r.status_code == 200, r.text
    assert_refused(alice.put(f"/reservations/{rsv['id']}", json={"start_time": at(1.5)}), 422)


def test_update_roles_owner_or_admin(gw, site, cars, alice, bob, operator, admin, anon):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    url = f"/reservations/{rsv['id']}"
    before = snap(gw)
    assert_refused(anon.put(url, json={"special_requests": "x"}), 401)
    assert_refused(bob.put(url, json={"special_requests": "x"}), 403)
    assert_refused(operator.put(url, json={"special_requests": "x"}), 403)
    assert_refused(alice.put("/reservations/999999", json={"special_requests": "x"}), 404)
    assert snap(gw) == before
    r = admin.put(url, json={"special_requests": "by the office"})
    assert r.status_code == 200 and r.json()["special_requests"] == "by the office"
    assert r.json()["user_id"] == gw.user_ids["alice@example.com"]


def test_update_check_order(gw, site, cars, alice, bob):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    bad = {"start_time": at(DAY + 3), "end_time": at(DAY + 1)}
    before = snap(gw)
    # validation (422) before existence (404) and ownership (403)
    assert_refused(alice.put("/reservations/999999", json=bad), 422)
    assert_refused(bob.put(f"/reservations/{rsv['id']}", json=bad), 422)
    # existence before ownership
    assert_refused(bob.put("/reservations/999999", json={"special_requests": "x"}), 404)
    # validation before state
    assert alice.delete(f"/reservations/{rsv['id']}").status_code == 200
    before = snap(gw)
    assert_refused(alice.put(f"/reservations/{rsv['id']}", json=bad), 422)
    assert snap(gw) == before


def test_update_in_a_final_status_is_409(gw, site, admin, operator, alice):
    v = fleet(alice, admin, "FS", 3)
    cancelled = reserve(alice, v[0], DAY, DAY + 1)
    assert alice.delete(f"/reservations/{cancelled['id']}").status_code == 200
    checked = reserve(alice, v[1], 0, 2)
    assert operator.post(f"/reservations/{checked['id']}/check-in").status_code == 201
    missed = reserve(alice, v[2], 0, 1)
    gw.clock.set(dt(1))
    before = snap(gw)
    for rsv in (cancelled, checked, missed):
        r = alice.put(f"/reservations/{rsv['id']}", json={"special_requests": "late"})
        assert_refused(r, 409)
        r = admin.put(f"/reservations/{rsv['id']}", json={"end_time": at(DAY + 5)})
        assert_refused(r, 409)
    assert snap(gw) == before


# -- cancel --------------------------------------------------------------------------------


def test_cancel_with_reason_then_twice_is_409(gw, site, cars, alice):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2, space_id=sid(site, 1))
    gw.clock.advance(minutes=7)
    mark = outbox_mark(gw)
    r = alice.delete(f"/reservations/{rsv['id']}", params={"reason": "plans changed"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"reservation", "refund_amount"}
    assert body["refund_amount"] is None
    cancelled = body["reservation"]
    assert cancelled["status"] == "cancelled"
    assert when(cancelled["cancelled_at"]) == dt(0, 7)
    assert cancelled["cancellation_reason"] == "plans changed"
    events = payloads_since(gw, mark)
    assert [e for e, _ in events] == ["reservation_cancelled"]
    assert events[0][1] == {"reservation_id": rsv["id"], "reason": "plans changed"}
    assert get(alice, rsv["id"])["status"] == "cancelled"
    assert space_status(gw, sid(site, 1)) == "available"
    before = snap(gw)
    assert_refused(alice.delete(f"/reservations/{rsv['id']}"), 409)
    assert snap(gw) == before


def test_cancel_without_reason_and_roles(gw, site, cars, alice, bob, operator, admin, anon):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    url = f"/reservations/{rsv['id']}"
    before = snap(gw)
    assert_refused(anon.delete(url), 401)
    assert_refused(bob.delete(url), 403)
    assert_refused(operator.delete(url), 403)
    assert_refused(alice.delete("/reservations/999999"), 404)
    assert_refused(alice.delete(url, params={"reason": "x" * 501}), 400, 422)
    assert snap(gw) == before
    r = admin.delete(url)
    assert r.status_code == 200, r.text
    assert r.json()["reservation"]["cancellation_reason"] is None
    assert r.json()["reservation"]["status"] == "cancelled"


def test_cancel_a_checked_in_or_no_show_reservation_is_409(gw, site, admin, operator, alice):
    v = fleet(alice, admin, "CX", 2)
    checked = reserve(alice, v[0], 0, 2)
    assert alice.post(f"/reservations/{checked['id']}/check-in").status_code == 201
    missed = reserve(alice, v[1], 0.5, 1)
    gw.clock.set(dt(1))
    before = snap(gw)
    assert_refused(alice.delete(f"/reservations/{checked['id']}"), 409)
    assert_refused(admin.delete(f"/reservations/{missed['id']}"), 409)
    assert snap(gw) == before


# -- check-in ------------------------------------------------------------------------------


def test_check_in_window_answer_and_events(gw, site, cars, alice, operator):
    s2 = sid(site, 2)
    rsv = reserve(alice, cars["alice"], 2, 4, space_id=s2)
    url = f"/reservations/{rsv['id']}/check-in"
    gw.clock.set(dt(1, 29))  # 31 minutes before the start
    before = snap(gw)
    r = operator.post(url)
    assert_refused(r, 409)
    assert "opens" in r.json()["detail"]
    assert snap(gw) == before
    gw.clock.set(dt(1, 30))  # exactly 30 minutes before: open
    mark = outbox_mark(gw)
    r = operator.post(url)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"session_id", "ticket_number", "space_assigned", "reservation"}
    assert TICKET.fullmatch(body["ticket_number"])
    assert body["space_assigned"]["id"] == s2
    assert body["reservation"]["status"] == "checked_in"
    assert body["reservation"]["id"] == rsv["id"]
    session = operator.get(f"/sessions/{body['session_id']}").json()
    assert session["reservation_id"] == rsv["id"]
    assert session["ticket_number"] == body["ticket_number"]
    assert session["status"] == "active" and session["space_id"] == s2
    assert when(session["entry_time"]) == dt(1, 30)
    assert session["vehicle_id"] == cars["alice"]
    assert space_status(gw, s2) == "occupied"
    assert sorted(events_since(gw, mark)) == ["reservation_checked_in", "session_started"]
    payload = dict(payloads_since(gw, mark))["reservation_checked_in"]
    assert payload["reservation_id"] == rsv["id"] and payload["session_id"] == body["session_id"]
    assert get(alice, rsv["id"])["status"] == "checked_in"
    before = snap(gw)
    assert_refused(operator.post(url), 409)  # twice
    assert_refused(alice.post(url), 409)
    assert snap(gw) == before
    # checked-in reservations show in the list filter
    ids = [
        x["id"]
        for x in operator.get("/reservations", params={"status": "checked_in"}).json()[
            "reservations"
        ]
    ]
    assert ids == [rsv["id"]]


def test_check_in_roles(gw, site, cars, alice, bob, operator, admin, anon):
    rsv = reserve(alice, cars["alice"], 0, 2)
    url = f"/reservations/{rsv['id']}/check-in"
    before = snap(gw)
    assert_refused(anon.post(url), 401)
    assert_refused(bob.post(url), 403)
    assert_refused(alice.post("/reservations/999999/check-in"), 404)
    assert_refused(operator.post("/reservations/999999/check-in"), 404)
    assert snap(gw) == before
    r = alice.post(url)  # the owner may check in (e.g. at a kiosk)
    assert r.status_code == 201, r.text
    other = reserve(alice, cars["alice2"], 0, 2)
    assert admin.post(f"/reservations/{other['id']}/check-in").status_code == 201


def test_check_in_space_falls_back_to_zone_then_anywhere(gw, site, admin, operator, alice):
    zone_a = site["zone_a"]["id"]
    v = fleet(alice, admin, "FB", 2)
    held = reserve(alice, v[0], 1, 3, space_id=sid(site, 1))
    zone_only = reserve(alice, v[1], 1, 3, zone_id=zone_a)
    # before its window a walk-in may take the reserved space (the window has not begun)
    assert enter(operator, "EARLYBIRD")["space_assigned"]["id"] == sid(site, 1)
    gw.clock.set(dt(0, 45))
    r = operator.post(f"/reservations/{held['id']}/check-in")
    assert r.status_code == 201, r.text
    assert r.json()["space_assigned"]["id"] == sid(site, 2)  # the first free space of zone A
    # zone A full: a zone reservation gets a free space elsewhere
    park(operator, "FILL3", sid(site, 3))
    park(operator, "FILL4", sid(site, 4))
    r = operator.post(f"/reservations/{zone_only['id']}/check-in")
    assert r.status_code == 201, r.text
    assert r.json()["space_assigned"]["id"] == sid(site, 5)
    assert r.json()["space_assigned"]["zone_id"] == site["zone_b"]["id"]


def test_check_in_zone_reservation_gets_a_space_of_its_zone(site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 0, 2, zone_id=site["zone_b"]["id"])
    r = operator.post(f"/reservations/{rsv['id']}/check-in")
    assert r.status_code == 201, r.text
    assert r.json()["space_assigned"]["id"] == sid(site, 5)
    assert r.json()["space_assigned"]["zone_id"] == site["zone_b"]["id"]


def test_check_in_with_no_free_space_admits_without_one(gw, site, admin, operator, alice):
    rsv = reserve(alice, vehicle(alice, admin, "LATE1"), 0, 2)
    for n in range(1, 7):
        operator.put(f"/spaces/{sid(site, n)}", json={"status": "maintenance"})
    r = operator.post(f"/reservations/{rsv['id']}/check-in")
    assert r.status_code == 201, r.text
    assert r.json()["space_assigned"] is None
    assert r.json()["reservation"]["status"] == "checked_in"


def test_check_in_links_a_vehicle_already_inside(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 2, 4, zone_id=site["zone_b"]["id"])
    # the car arrived early, before check-in opened: an ordinary walk-in
    walk = enter(operator, "ALICE1")
    assert walk["session"]["reservation_id"] is None
    assert get(alice, rsv["id"])["status"] == "confirmed"
    gw.clock.set(dt(1, 45))
    mark = outbox_mark(gw)
    r = operator.post(f"/reservations/{rsv['id']}/check-in")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["session_id"] == walk["session"]["id"]
    assert body["ticket_number"] == walk["ticket_number"]
    assert body["space_assigned"]["id"] == walk["session"]["space_id"]
    assert body["reservation"]["status"] == "checked_in"
    assert operator.get(f"/sessions/{walk['session']['id']}").json()["reservation_id"] == rsv["id"]
    assert events_since(gw, mark) == ["reservation_checked_in"]
    assert len(db_query(gw, "SELECT id FROM sessions WHERE status = 'active'")) == 1


def test_check_in_while_inside_on_another_reservation_is_409(gw, site, cars, alice, operator):
    first = reserve(alice, cars["alice"], 0, 1)
    second = reserve(alice, cars["alice"], 1, 2)
    assert operator.post(f"/reservations/{first['id']}/check-in").status_code == 201
    gw.clock.set(dt(0, 40))
    before = snap(gw)
    r = operator.post(f"/reservations/{second['id']}/check-in")
    assert_refused(r, 409)
    assert snap(gw) == before


def test_cancelled_reservation_cannot_be_checked_in(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 0, 2)
    assert alice.delete(f"/reservations/{rsv['id']}").status_code == 200
    before = snap(gw)
    assert_refused(operator.post(f"/reservations/{rsv['id']}/check-in"), 409)
    assert snap(gw) == before


def test_no_show_after_the_end_of_the_window(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 1, 3, space_id=sid(site, 1))
    gw.clock.set(dt(2, 59))
    assert get(alice, rsv["id"])["status"] == "confirmed"  # still checkable until the end
    gw.clock.set(dt(3))
    assert get(alice, rsv["id"])["status"] == "no_show"
    assert get(operator, rsv["id"])["status"] == "no_show"
    code = rsv["confirmation_number"]
    assert operator.get(f"/reservations/confirmation/{code}").json()["status"] == "no_show"
    before = snap(gw)
    r = operator.post(f"/reservations/{rsv['id']}/check-in")
    assert_refused(r, 409)
    assert "no_show" in r.json()["detail"]
    assert_refused(alice.put(f"/reservations/{rsv['id']}", json={"end_time": at(5)}), 409)
    assert_refused(alice.delete(f"/reservations/{rsv['id']}"), 409)
    assert snap(gw) == before
    # entering afterwards is an ordinary walk-in
    body = enter(operator, "ALICE1")
    assert body["session"]["reservation_id"] is None


def test_the_housekeeping_sweep_records_no_shows(gw, site, cars, alice, operator):
    from gateway.config import ParkingConfig
    from gateway.services import SYSTEM, Ctx, reservations

    missed = reserve(alice, cars["alice"], 1, 2)
    kept = reserve(alice, cars["alice2"], 1, 5)

    def sweep() -> int:
        ctx = Ctx(now=gw.clock.now(), actor=SYSTEM, parking=ParkingConfig())
        return int(gw.store.write_sync(lambda db: reservations.mark_no_shows(db, ctx)))

    assert sweep() == 0
    gw.clock.set(dt(2))
    mark = outbox_mark(gw)
    assert sweep() == 1
    assert stored(gw, missed["id"])["status"] == "no_show"
    assert stored(gw, kept["id"])["status"] == "confirmed"
    events = payloads_since(gw, mark)
    assert events == [
        (
            "reservation_no_show",
            {"reservation_id": missed["id"], "confirmation_number": missed["confirmation_number"]},
        )
    ]
    assert sweep() == 0
    assert get(alice, missed["id"])["status"] == "no_show"
    ids = [
        x["id"]
        for x in operator.get("/reservations", params={"status": "no_show"}).json()["reservations"]
    ]
    assert ids == [missed["id"]]


# -- entry and exit of reserved vehicles ---------------------------------------------------


def test_entry_of_a_reserved_vehicle_checks_it_in(gw, site, cars, alice, operator):
    s5 = sid(site, 5)
    rsv = reserve(alice, cars["alice"], 1, 3, space_id=s5)
    gw.clock.set(dt(0, 40))
    mark = outbox_mark(gw)
    body = enter(operator, "alice1")
    assert body["session"]["reservation_id"] == rsv["id"]
    assert body["space_assigned"]["id"] == s5
    assert get(alice, rsv["id"])["status"] == "checked_in"
    assert sorted(events_since(gw, mark)) == ["reservation_checked_in", "session_started"]
    assert stored(gw, rsv["id"])["session_id"] == body["session"]["id"]


def test_entry_before_check_in_opens_is_a_walk_in(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 1, 3, space_id=sid(site, 5))
    gw.clock.set(dt(0, 29))
    body = enter(operator, "ALICE1")
    assert body["session"]["reservation_id"] is None
    assert get(alice, rsv["id"])["status"] == "confirmed"


def test_entry_of_a_zone_reservation_gets_a_space_of_its_zone(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 0, 3, zone_id=site["zone_b"]["id"])
    body = enter(operator, "ALICE1")
    assert body["session"]["reservation_id"] == rsv["id"]
    assert body["space_assigned"]["zone_id"] == site["zone_b"]["id"]


def test_reserved_space_is_held_from_other_vehicles_during_its_window(
    gw, site, cars, alice, operator
):
    s1 = sid(site, 1)
    rsv = reserve(alice, cars["alice"], 0, 2, space_id=s1)
    first = enter(operator, "OTHER1")
    assert first["space_assigned"]["id"] != s1
    # fill every other space: the next car gets no space rather than the held one
    for n in range(2, 7):
        if space_status(gw, sid(site, n)) == "available":
            operator.put(f"/spaces/{sid(site, n)}", json={"status": "maintenance"})
    second = enter(operator, "OTHER2")
    assert second["space_assigned"] is None
    assert space_status(gw, s1) == "available"
    # the reserved car still gets its space
    body = enter(operator, "ALICE1")
    assert body["space_assigned"]["id"] == s1
    assert body["session"]["reservation_id"] == rsv["id"]


def test_reserved_space_is_given_out_outside_its_window(gw, site, cars, alice, operator):
    s1 = sid(site, 1)
    reserve(alice, cars["alice"], 1, 2, space_id=s1)
    assert enter(operator, "BEFORE1")["space_assigned"]["id"] == s1
    other = reserve(alice, cars["alice2"], 3, 4, space_id=sid(site, 2))
    gw.clock.set(dt(4))  # its window is over (a no-show)
    assert get(alice, other["id"])["status"] == "no_show"
    assert enter(operator, "AFTER1")["space_assigned"]["id"] == sid(site, 2)


def test_exit_completes_the_reservation(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 0, 2, space_id=sid(site, 1))
    checked = operator.post(f"/reservations/{rsv['id']}/check-in").json()
    gw.clock.advance(minutes=10)  # within the grace period: nothing to pay
    r = operator.post("/sessions/exit", json={"ticket_number": checked["ticket_number"]})
    assert r.status_code == 200, r.text
    assert r.json()["session"]["status"] == "completed"
    assert get(alice, rsv["id"])["status"] == "completed"
    assert space_status(gw, sid(site, 1)) == "available"
    ids = [
        x["id"]
        for x in alice.get("/reservations", params={"status": "completed"}).json()["reservations"]
    ]
    assert ids == [rsv["id"]]
    before = snap(gw)
    assert_refused(alice.delete(f"/reservations/{rsv['id']}"), 409)
    assert_refused(operator.post(f"/reservations/{rsv['id']}/check-in"), 409)
    assert snap(gw) == before
    # a completed reservation no longer blocks its window
    reserve(alice, cars["alice"], 1, 2, space_id=sid(site, 1))


def test_paid_exit_completes_a_linked_reservation(gw, site, cars, alice, operator):
    rsv = reserve(alice, cars["alice"], 1, 3)
    walk = enter(operator, "ALICE1")
    gw.clock.set(dt(0, 50))
    assert operator.post(f"/reservations/{rsv['id']}/check-in").status_code == 201
    gw.clock.set(dt(2))
    fee = operator.get(f"/sessions/{walk['session']['id']}/calculate-fee").json()["total"]
    r = alice.post(
        "/payments",
        json={"session_id": walk["session"]["id"], "payment_method": "card", "amount": fee},
    )
    assert r.status_code == 201, r.text
    r = operator.post("/sessions/exit", json={"ticket_number": walk["ticket_number"]})
    assert r.status_code == 200, r.text
    assert get(alice, rsv["id"])["status"] == "completed"


# -- availability --------------------------------------------------------------------------


def availability(client: httpx.Client, start_h: float, end_h: float, **params: Any) -> Any:
    r = client.get(
        "/reservations/availability",
        params={"start_time": at(start_h), "end_time": at(end_h), **params},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_availability_is_public_and_counts(gw, site, admin, operator, alice, anon):
    zone_a, zone_b = site["zone_a"]["id"], site["zone_b"]["id"]
    body = availability(anon, DAY, DAY + 8, zone_id=zone_a)
    assert set(body) >= {"available_spaces", "total_available"}
    assert [s["id"] for s in body["available_spaces"]] == [sid(site, n) for n in (1, 2, 3, 4)]
    assert body["total_available"] == 4
    assert (body["capacity"], body["reserved_peak"], body["walk_ins"], body["bookable"]) == (
        4, 0, 0, 4
    )  # fmt: skip
    assert body["available_spaces"][0]["space_number"] == "S-1"
    whole = availability(alice, DAY, DAY + 8)  # a token is accepted too
    assert whole["total_available"] == 6 and whole["capacity"] == 6 and whole["bookable"] == 6

    v = fleet(alice, admin, "AV", 5)
    reserve(alice, v[0], DAY + 1, DAY + 3, space_id=sid(site, 1))
    reserve(alice, v[1], DAY + 2, DAY + 4, zone_id=zone_a)
    reserve(alice, v[2], DAY + 6, DAY + 7, zone_id=zone_a)
    reserve(alice, v[3], DAY + 2, DAY + 5)  # zone-less
    cancelled = reserve(alice, v[4], DAY, DAY + 8, space_id=sid(site, 2))
    assert alice.delete(f"/reservations/{cancelled['id']}").status_code == 200

    body = availability(anon, DAY, DAY + 8, zone_id=zone_a)
    assert [s["id"] for s in body["available_spaces"]] == [sid(site, n) for n in (2, 3, 4)]
    assert body["total_available"] == 3
    assert (body["capacity"], body["reserved_peak"], body["bookable"]) == (4, 2, 2)
    body = availability(anon, DAY, DAY + 8)
    assert body["total_available"] == 5
    assert (body["capacity"], body["reserved_peak"], body["bookable"]) == (6, 3, 3)
    # half-open: a window ending when the space reservation starts lists the space
    body = availability(anon, DAY, DAY + 1, zone_id=zone_a)
    assert sid(site, 1) in [s["id"] for s in body["available_spaces"]]
    assert body["reserved_peak"] == 0 and body["bookable"] == 4
    body = availability(anon, DAY + 5, DAY + 6, zone_id=zone_b)
    assert body["total_available"] == 2 and body["bookable"] == 2


def test_availability_counts_walk_ins_and_spaces_out_of_use(gw, site, operator, anon):
    zone_b = site["zone_b"]["id"]
    park(operator, "WALK1", sid(site, 5))
    operator.put(f"/spaces/{sid(site, 6)}", json={"status": "maintenance"})
    soon = availability(anon, 1, 3, zone_id=zone_b)
    assert soon["available_spaces"] == [] and soon["total_available"] == 0
    assert (soon["capacity"], soon["walk_ins"], soon["bookable"]) == (1, 1, 0)
    site_soon = availability(anon, 1, 3)
    assert (site_soon["capacity"], site_soon["walk_ins"], site_soon["bookable"]) == (5, 1, 4)
    later = availability(anon, DAY + 1, DAY + 3, zone_id=zone_b)
    assert (later["capacity"], later["walk_ins"], later["bookable"]) == (1, 0, 1)


def test_availability_matches_what_can_be_booked(site, admin, alice, anon):
    zone_b = site["zone_b"]["id"]
    v = fleet(alice, admin, "MB", 3)
    reserve(alice, v[0], DAY, DAY + 4, zone_id=zone_b)
    assert availability(anon, DAY + 1, DAY + 2, zone_id=zone_b)["bookable"] == 1
    reserve(alice, v[1], DAY + 1, DAY + 2, zone_id=zone_b)
    assert availability(anon, DAY + 1, DAY + 2, zone_id=zone_b)["bookable"] == 0
    assert_refused(post(alice, v[2], DAY + 1, DAY + 2, zone_id=zone_b), 409)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start_time": at(DAY)},
        {"end_time": at(DAY)},
        {"start_time": at(DAY), "end_time": at(DAY)},
        {"start_time": at(DAY + 1), "end_time": at(DAY)},
        {"start_time": "tomorrow", "end_time": at(DAY)},
        {"start_time": at(DAY), "end_time": "2026-02-30T10:00:00Z"},
        {"start_time": at(DAY), "end_time": at(DAY + 1), "zone_id": "A"},
        {"start_time": at(DAY), "end_time": at(DAY + 1), "zone_id": "99999999999999999999999"},
        {"start_time": "0001-01-01T00:00:00+01:00", "end_time": at(DAY)},
        {"start_time": at(DAY), "end_time": "9999-12-31T23:59:59-01:00"},
    ],
)
def test_availability_bad_query_is_refused(gw, site, anon, params):
    before = snap(gw)
    r = anon.get("/reservations/availability", params=params)
    assert_refused(r, 400, 422)
    assert snap(gw) == before


def test_availability_unknown_zone_is_404(site, anon):
    r = anon.get(
        "/reservations/availability",
        params={"start_time": at(DAY), "end_time": at(DAY + 1), "zone_id": 999_999},
    )
    assert_refused(r, 404)


# -- bad input: never a 500, nothing changes -------------------------------------------------


def _create_bodies(v: int) -> list[Any]:
    ok = {"vehicle_id": v, "start_time": at(DAY), "end_time": at(DAY + 1)}
    return [
        {},
        [],
        [ok],
        "a string",
        42,
        None,
        {k: x for k, x in ok.items() if k != "vehicle_id"},
        {k: x for k, x in ok.items() if k != "start_time"},
        {k: x for k, x in ok.items() if k != "end_time"},
        {**ok, "vehicle_id": str(v)},
        {**ok, "vehicle_id": True},
        {**ok, "vehicle_id": 1.5},
        {**ok, "vehicle_id": 0},
        {**ok, "vehicle_id": -1},
        {**ok, "vehicle_id": None},
        {**ok, "vehicle_id": 2**63},
        {**ok, "vehicle_id": 10**30},
        {**ok, "zone_id": "1"},
        {**ok, "zone_id": 0},
        {**ok, "zone_id": []},
        {**ok, "space_id": {}},
        {**ok, "space_id": -5},
        {**ok, "start_time": 1773133200},
        {**ok, "start_time": "tomorrow"},
        {**ok, "start_time": ""},
        {**ok, "start_time": None},
        {**ok, "end_time": "2026-02-30T10:00:00Z"},
        {**ok, "end_time": "2026-03-11T25:00:00Z"},
        {**ok, "start_time": "0001-01-01T00:00:00+01:00"},
        {**ok, "end_time": "9999-12-31T23:59:59-01:00"},
        {**ok, "special_requests": "x" * 501},
        {**ok, "special_requests": 5},
        {**ok, "special_requests": ["a"]},
    ]


def test_create_bad_bodies_are_refused(gw, site, cars, alice, operator):
    before = snap(gw)
    for body in _create_bodies(cars["alice"]):
        for client in (alice, operator):
            r = client.post("/reservations", json=body)
            assert_refused(r, 400, 422)
    for raw in (b"not json", b"{", b'{"vehicle_id": 1,}', b"\xff\xfe"):
        r = alice.post("/reservations", content=raw, headers={"Content-Type": "application/json"})
        assert_refused(r, 400, 422)
    assert snap(gw) == before


def test_create_ignores_unknown_fields_and_accepts_the_maximum_text(site, cars, alice):
    rsv = reserve(
        alice, cars["alice"], DAY, DAY + 1, special_requests="x" * 500, colour="blue", status="paid"
    )
    assert rsv["status"] == "confirmed" and len(rsv["special_requests"]) == 500


def test_update_bad_bodies_are_refused(gw, site, cars, alice, admin):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    url = f"/reservations/{rsv['id']}"
    bodies: list[Any] = [
        [],
        "x",
        None,
        {"start_time": "soon"},
        {"start_time": None},
        {"end_time": 5},
        {"end_time": "2026-03-11T09:00:00+25:00"},
        {"zone_id": None},
        {"zone_id": "1"},
        {"zone_id": 0},
        {"space_id": "S-1"},
        {"space_id": 0},
        {"space_id": 2**63},
        {"special_requests": "y" * 501},
        {"special_requests": {"a": 1}},
        {"start_time": "0001-01-01T00:00:00+01:00"},
        {"end_time": "9999-12-31T23:59:59-01:00"},
    ]
    before = snap(gw)
    for body in bodies:
        for client in (alice, admin):
            assert_refused(client.put(url, json=body), 400, 422)
    r = alice.put(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_refused(r, 400, 422)
    assert_refused(alice.put("/reservations/abc", json={}), 400, 404, 422)
    assert_refused(alice.put("/reservations/99999999999999999999999", json={}), 400, 404, 422)
    assert snap(gw) == before


def test_bad_paths_for_cancel_and_check_in(gw, site, alice, operator):
    before = snap(gw)
    for path in ("abc", "0", "-1", "99999999999999999999999"):
        assert_refused(alice.delete(f"/reservations/{path}"), 400, 404, 422)
        assert_refused(operator.post(f"/reservations/{path}/check-in"), 400, 404, 422)
        assert_refused(operator.get(f"/reservations/{path}"), 400, 404, 422)
    assert snap(gw) == before


# -- vehicles with reservations ------------------------------------------------------------


def test_a_vehicle_with_a_live_reservation_cannot_be_removed(gw, site, cars, alice):
    rsv = reserve(alice, cars["alice"], DAY, DAY + 2)
    before = snap(gw)
    r = alice.delete(f"/vehicles/{cars['alice']}")
    assert_refused(r, 409)
    assert rsv["confirmation_number"] in r.json()["detail"]
    assert snap(gw) == before


@pytest.mark.parametrize("ending", ["cancelled", "no_show"])
def test_a_vehicle_with_past_reservations_can_be_removed(gw, site, cars, alice, ending):
    rsv = reserve(alice, cars["alice"], 0, 2)
    if ending == "cancelled":
        assert alice.delete(f"/reservations/{rsv['id']}").status_code == 200
    else:
        gw.clock.set(dt(2))
    r = alice.delete(f"/vehicles/{cars['alice']}")
    assert r.status_code == 200, r.text
    plates = [x["license_plate"] for x in alice.get("/vehicles").json()["vehicles"]]
    assert "ALICE1" not in plates
    # the reservation stays readable, history intact
    assert get(alice, rsv["id"])["vehicle"]["license_plate"] == "ALICE1"
    assert get(alice, rsv["id"])["status"] == ending


# -- the journey ---------------------------------------------------------------------------


def test_reservation_journey(gw, site, admin, operator, alice, anon):
    """Seed journey 2: availability, book, arrive, check in by confirmation number, exit."""
    zone_a = site["zone_a"]["id"]
    assert availability(anon, 2, 4, zone_id=zone_a)["bookable"] == 4
    car = vehicle(alice, admin, "JRN-42")
    booked = alice.post(
        "/reservations",
        json={"vehicle_id": car, "zone_id": zone_a, "start_time": at(2), "end_time": at(4)},
    ).json()
    assert availability(anon, 2, 4, zone_id=zone_a)["bookable"] == 3
    gw.clock.set(dt(1, 50))
    found = operator.get(f"/reservations/confirmation/{booked['confirmation_number']}").json()
    r = operator.post(f"/reservations/{found['id']}/check-in")
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket_number"]
    assert r.json()["space_assigned"]["zone_id"] == zone_a
    gw.clock.set(dt(4, 30))
    due = operator.get(f"/sessions/{r.json()['session_id']}/calculate-fee").json()["total"]
    assert due == 15.0  # 2 h 40 min at $5/h, started hours
    assert operator.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 402
    pay = alice.post(
        "/payments",
        json={"session_id": r.json()["session_id"], "payment_method": "card", "amount": due},
    )
    assert pay.status_code == 201, pay.text
    assert operator.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 200
    assert get(alice, found["id"])["status"] == "completed"
