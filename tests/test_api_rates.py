"""Rates over HTTP (field reference section 10) and how they price a stay (section 9):
CRUD, validation, scoping and precedence, grace, daily caps, flat rates, peak windows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_kit import (
    assert_refused,
    car_type,
    enter,
    events_since,
    fee,
    make_rate,
    outbox_mark,
    payloads_since,
    snapshot,
    when,
)

VALID = "2024-01-01T00:00:00Z"

SEED_RATE = {
    "name": "Standard Hourly",
    "rate_type": "hourly",
    "amount": 5.0,
    "grace_period_minutes": 15,
    "effective_from": "2024-01-01T00:00:00Z",
}


# -- CRUD -------------------------------------------------------------------------------------


def test_create_rate_seed_body_and_defaults(gw, admin):
    mark = outbox_mark(gw)
    r = admin.post("/rates", json=SEED_RATE)
    assert r.status_code == 201, r.text
    rate = r.json()
    assert rate["name"] == "Standard Hourly"
    assert rate["rate_type"] == "hourly"
    assert rate["amount"] == 5.0
    assert rate["currency"] == "USD"
    assert rate["grace_period_minutes"] == 15
    assert when(rate["effective_from"]) == when("2024-01-01T00:00:00+00:00")
    assert rate["effective_to"] is None
    assert rate["vehicle_type_id"] is None and rate["zone_id"] is None
    assert rate["peak_multiplier"] == 1.0
    assert rate["peak_start_time"] is None and rate["peak_end_time"] is None
    assert rate["min_duration_minutes"] is None and rate["max_duration_minutes"] is None
    assert rate["is_active"] is True
    assert isinstance(rate["id"], int) and rate["created_at"] and rate["updated_at"]
    assert events_since(gw, mark) == ["rate_created"]
    assert payloads_since(gw, mark)[0][1]["rate_id"] == rate["id"]
    minimal = admin.post(
        "/rates", json={"name": "Min", "amount": 3, "effective_from": "2024-01-01T00:00:00Z"}
    ).json()
    assert minimal["rate_type"] == "hourly" and minimal["grace_period_minutes"] == 15


def test_create_rate_all_fields(gw, site, admin):
    vt = car_type(admin)
    r = admin.post(
        "/rates",
        json={
            "name": "Car peak in B",
            "rate_type": "hourly",
            "amount": 4.5,
            "currency": "usd",
            "vehicle_type_id": vt,
            "zone_id": site["zone_b"]["id"],
            "grace_period_minutes": 0,
            "effective_from": "2026-01-01T00:00:00",
            "effective_to": "2026-12-31T23:59:59+00:00",
            "peak_multiplier": 1.5,
            "peak_start_time": "07:00",
            "peak_end_time": "09:30:00",
            "min_duration_minutes": 30,
            "max_duration_minutes": 600,
            "is_active": False,  # not a create field: ignored
        },
    )
    assert r.status_code == 201, r.text
    rate = r.json()
    assert rate["amount"] == 4.5 and rate["currency"] == "USD"
    assert rate["vehicle_type_id"] == vt and rate["zone_id"] == site["zone_b"]["id"]
    assert rate["grace_period_minutes"] == 0
    assert when(rate["effective_from"]) == when("2026-01-01T00:00:00+00:00")
    assert when(rate["effective_to"]) == when("2026-12-31T23:59:59+00:00")
    assert rate["peak_multiplier"] == 1.5
    assert rate["peak_start_time"].startswith("07:00")
    assert rate["peak_end_time"].startswith("09:30")
    assert rate["min_duration_minutes"] == 30 and rate["max_duration_minutes"] == 600
    assert rate["is_active"] is True


def test_rates_are_admin_only_to_change_and_public_to_read(gw, site, operator, alice, anon):
    rid = site["rate"]["id"]
    before = snapshot(gw)
    for client, code in ((operator, 403), (alice, 403), (anon, 401)):
        assert client.post("/rates", json=SEED_RATE).status_code == code
        assert client.put(f"/rates/{rid}", json={"amount": 1}).status_code == code
        assert client.delete(f"/rates/{rid}").status_code == code
    assert snapshot(gw) == before
    for client in (anon, alice):
        listed = client.get("/rates")
        assert listed.status_code == 200
        assert [r["id"] for r in listed.json()] == [rid]


def test_rate_422_rules(gw, site, admin):
    before = snapshot(gw)
    for extra in (
        {"effective_to": "2023-12-31T00:00:00Z"},
        {"effective_to": "2024-01-01T00:00:00Z"},  # equal is not after
        {"peak_start_time": "07:00"},
        {"peak_end_time": "09:00"},
        {"peak_start_time": "07:00", "peak_end_time": None},
    ):
        assert_refused(admin.post("/rates", json={**SEED_RATE, **extra}), 422)
    assert snapshot(gw) == before


def test_rate_scope_must_exist(gw, site, admin):
    before = snapshot(gw)
    assert_refused(admin.post("/rates", json={**SEED_RATE, "vehicle_type_id": 9999}), 404)
    assert_refused(admin.post("/rates", json={**SEED_RATE, "zone_id": 9999}), 404)
    # Request validation (422) comes before existence (404): field reference 1.2.
    bad_window = {**SEED_RATE, "zone_id": 9999, "effective_to": "2023-01-01T00:00:00Z"}
    assert_refused(admin.post("/rates", json=bad_window), 422)
    bad_peak = {**SEED_RATE, "vehicle_type_id": 9999, "peak_start_time": "07:00"}
    assert_refused(admin.post("/rates", json=bad_peak), 422)
    assert snapshot(gw) == before


@pytest.mark.parametrize(
    "change",
    [
        {"name": None},
        {"name": ""},
        {"name": "   "},
        {"name": "N" * 101},
        {"amount": None},
        {"amount": -1},
        {"amount": -0.01},
        {"amount": "NaN"},
        {"amount": "Infinity"},
        {"amount": "5.0"},
        {"amount": True},
        {"amount": [5]},
        {"rate_type": "weekly"},
        {"rate_type": "HOURLY"},
        {"rate_type": None},
        {"currency": "US"},
        {"currency": "EURO"},
        {"currency": 840},
        {"vehicle_type_id": "1"},
        {"vehicle_type_id": 0},
        {"zone_id": -3},
        {"grace_period_minutes": -1},
        {"grace_period_minutes": "15"},
        {"grace_period_minutes": 15.5},
        {"effective_from": None},
        {"effective_from": "soon"},
        {"effective_from": 20240101},
        {"effective_to": "2025-13-01T00:00:00Z"},
        {"peak_multiplier": 0},
        {"peak_multiplier": -1},
        {"peak_multiplier": "NaN"},
        {"peak_start_time": "25:00", "peak_end_time": "09:00"},
        {"peak_start_time": "7am", "peak_end_time": "09:00"},
        {"peak_start_time": 700, "peak_end_time": "09:00"},
        {"min_duration_minutes": -1},
        {"max_duration_minutes": "60"},
    ],
)
def test_create_rate_bad_bodies(gw, site, admin, change):
    body = {**SEED_RATE, **change}
    before = snapshot(gw)
    assert_refused(admin.post("/rates", json=body))
    assert snapshot(gw) == before


@pytest.mark.parametrize("missing", ["name", "amount", "effective_from"])
def test_create_rate_missing_required_field(gw, site, admin, missing):
    body = {k: v for k, v in SEED_RATE.items() if k != missing}
    before = snapshot(gw)
    assert_refused(admin.post("/rates", json=body))
    assert snapshot(gw) == before


def test_create_rate_not_json(gw, site, admin):
    before = snapshot(gw)
    huge = b'{"name": "x", "amount": 1e400, "effective_from": "2024-01-01T00:00:00Z"}'
    assert_refused(admin.post("/rates", content=huge, headers={"Content-Type": "application/json"}))
    assert_refused(
        admin.post("/rates", content=b"{name: x}", headers={"Content-Type": "application/json"})
    )
    assert_refused(admin.post("/rates", json=[SEED_RATE]))
    assert snapshot(gw) == before


def test_update_rate(gw, site, admin, operator, anon):
    rid = site["rate"]["id"]
    sid = enter(operator, "UPD1")["session"]["id"]
    gw.clock.advance(minutes=127)
    assert fee(anon, sid)["total"] == 15.0
    mark = outbox_mark(gw)
    r = admin.put(
        f"/rates/{rid}",
        json={
            "name": "Standard (new)",
            "amount": 6.0,
            "grace_period_minutes": 5,
            "effective_to": "2030-01-01T00:00:00Z",
            "peak_multiplier": 2,
            "peak_start_time": "22:00",
            "peak_end_time": "06:00",
        },
    )
    assert r.status_code == 200, r.text
    rate = r.json()
    assert rate["name"] == "Standard (new)" and rate["amount"] == 6.0
    assert rate["grace_period_minutes"] == 5 and rate["peak_multiplier"] == 2.0
    assert rate["peak_start_time"].startswith("22:00") and rate["peak_end_time"].startswith("06:00")
    assert when(rate["effective_to"]) == when("2030-01-01T00:00:00+00:00")
    assert rate["rate_type"] == "hourly" and rate["is_active"] is True
    assert events_since(gw, mark) == ["rate_updated"]
    # Running sessions are priced with the rate as it is now.
    assert fee(anon, sid)["total"] == 18.0
    # The new peak window wraps midnight: a stay ending at 23:00 pays double for every hour.
    assert fee(anon, sid, exit_time="2026-03-10T23:00:00Z")["total"] == 14 * 12.0
    assert fee(anon, sid, exit_time="2026-03-11T06:00:00Z")["total"] == 21 * 6.0
    # Only given fields change; effective_to can be cleared.
    r = admin.put(f"/rates/{rid}", json={"effective_to": None})
    assert r.status_code == 200 and r.json()["effective_to"] is None
    assert r.json()["amount"] == 6.0


def test_update_rate_refusals(gw, site, admin):
    rid = site["rate"]["id"]
    before = snapshot(gw)
    assert_refused(admin.put("/rates/99999", json={"amount": 1}), 404)
    assert_refused(admin.put(f"/rates/{rid}", json={"effective_to": "2023-01-01T00:00:00Z"}), 422)
    assert_refused(admin.put(f"/rates/{rid}", json={"peak_start_time": "07:00"}), 422)
    for body in (
        {"amount": -1},
        {"amount": "NaN"},
        {"amount": "6"},
        {"is_active": 1},
        {"is_active": "false"},
        {"grace_period_minutes": -5},
        {"peak_multiplier": 0},
        {"peak_end_time": "24:00"},
        {"name": ""},
        [],
    ):
        assert_refused(admin.put(f"/rates/{rid}", json=body))
    assert snapshot(gw) == before


def test_delete_deactivates_and_is_active_filter(gw, site, admin, operator, anon):
    rid = site["rate"]["id"]
    other = make_rate(admin, name="Other", amount=2.0, zone_id=site["zone_b"]["id"])
    sid = enter(operator, "DEL1")["session"]["id"]
    gw.clock.advance(minutes=127)
    assert fee(anon, sid)["total"] == 15.0
    mark = outbox_mark(gw)
    r = admin.delete(f"/rates/{rid}")
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert events_since(gw, mark) == ["rate_deactivated"]
    assert [x["id"] for x in anon.get("/rates").json()] == [other["id"]]
    assert [x["id"] for x in anon.get("/rates", params={"is_active": "true"}).json()] == [
        other["id"]
    ]
    inactive = anon.get("/rates", params={"is_active": "false"}).json()
    assert [x["id"] for x in inactive] == [rid]
    assert inactive[0]["is_active"] is False
    # The deactivated rate no longer prices anything.
    priced = fee(anon, sid)
    assert priced["total"] == 0 and priced["base_fee"] == 0
    assert "no applicable rate" in priced["breakdown"][0]["description"].lower()
    assert_refused(admin.delete("/rates/99999"), 404)
    # Reactivating through PUT brings it back.
    assert admin.put(f"/rates/{rid}", json={"is_active": True}).json()["is_active"] is True
    assert fee(anon, sid)["total"] == 15.0


def test_list_filters(gw, site, admin, anon):
    vt = car_type(admin)
    by_type = make_rate(admin, name="Cars", vehicle_type_id=vt)
    by_zone = make_rate(admin, name="Zone B", zone_id=site["zone_b"]["id"])
    everything = [r["id"] for r in anon.get("/rates").json()]
    assert everything == [site["rate"]["id"], by_type["id"], by_zone["id"]]
    assert [r["id"] for r in anon.get("/rates", params={"vehicle_type_id": vt}).json()] == [
        by_type["id"]
    ]
    zone = anon.get("/rates", params={"zone_id": site["zone_b"]["id"]}).json()
    assert [r["id"] for r in zone] == [by_zone["id"]]
    for params in ({"is_active": "yes"}, {"zone_id": "b"}, {"vehicle_type_id": "car"}):
        assert_refused(anon.get("/rates", params=params))


# -- which rate prices a stay ------------------------------------------------------------------


def price(gw, operator, anon, plate, minutes, **entry):
    """Fee of a stay of ``minutes`` that started now (priced through exit_time)."""
    body = enter(operator, plate, **entry)
    start = when(body["session"]["entry_time"])
    return fee(
        anon, body["session"]["id"], exit_time=(start + timedelta(minutes=minutes)).isoformat()
    )


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (210, 20.0),  # 3 h 30 min
        (600, 25.0),  # 10 h, capped
        (72 * 60, 75.0),
        (51 * 60, 65.0),  # 2 days + 3 h
        (58 * 60, 75.0),  # 2 days + a capped 10 h
        (24 * 60, 25.0),
    ],
)
def test_daily_maximum(gw, site, admin, operator, anon, minutes, expected):
    make_rate(admin, name="Daily max", rate_type="daily", amount=25.0)
    body = price(gw, operator, anon, "DAY1", minutes)
    assert body["base_fee"] == expected and body["total"] == expected


def test_only_a_daily_rate(gw, site, admin, operator, anon):
    admin.delete(f"/rates/{site['rate']['id']}")
    make_rate(admin, name="Daily", rate_type="daily", amount=20.0, grace_period_minutes=10)
    assert price(gw, operator, anon, "D1", 10)["total"] == 0
    assert price(gw, operator, anon, "D2", 11)["total"] == 20.0
    assert price(gw, operator, anon, "D3", 24 * 60)["total"] == 20.0
    two = price(gw, operator, anon, "D4", 24 * 60 + 1)
    assert two["total"] == 40.0 and "2 day(s)" in two["breakdown"][0]["description"]


def test_flat_rate_precedence(gw, site, admin, operator, anon):
    make_rate(admin, name="Event", rate_type="flat", amount=12.0)
    # A generic flat rate is as specific as the generic hourly rate: it wins, whatever the stay.
    sid = enter(operator, "FL1")["session"]["id"]  # S-1, zone A
    start = gw.clock.now()

    def at(minutes):
        return fee(anon, sid, exit_time=(start + timedelta(minutes=minutes)).isoformat())

    short = at(20)
    assert short["total"] == 12.0 and "flat" in short["breakdown"][0]["description"].lower()
    assert at(600)["total"] == 12.0
    assert at(3 * 24 * 60)["total"] == 12.0
    # ...and its grace period applies.
    assert at(15)["total"] == 0
    # A zone-scoped hourly rate is more specific than the generic flat rate.
    make_rate(admin, name="Zone A hourly", amount=3.0, zone_id=site["zone_a"]["id"])
    assert at(127)["total"] == 9.0
    # A zone-scoped flat rate is at least as specific again.
    make_rate(admin, name="Zone A flat", rate_type="flat", amount=4.0, zone_id=site["zone_a"]["id"])
    assert at(127)["total"] == 4.0


def test_zone_scoped_rate(gw, site, admin, operator, anon):
    make_rate(admin, name="Zone B", amount=8.0, zone_id=site["zone_b"]["id"])
    in_a = price(gw, operator, anon, "ZA1", 127)  # S-1, zone A
    assert in_a["total"] == 15.0
    enter(operator, "ZA2")  # S-2
    in_b = price(gw, operator, anon, "ZB1", 127)  # S-5, zone B
    assert in_b["total"] == 24.0


def test_vehicle_type_scoped_rates(gw, site, admin, operator, alice, anon):
    moto = admin.post(
        "/vehicle-types", json={"name": "Motorcycle", "size_category": "small"}
    ).json()
    alice.post("/vehicles", json={"license_plate": "MOTO1", "vehicle_type_id": moto["id"]})
    make_rate(admin, name="Motorcycles", amount=2.0, vehicle_type_id=moto["id"])
    make_rate(admin, name="Zone B", amount=8.0, zone_id=site["zone_b"]["id"])
    # The motorcycle parks on the motorcycle space (zone B): the vehicle-type rate beats the zone rate.
    body = enter(operator, "MOTO1")
    assert body["space_assigned"]["id"] == site["spaces"][5]["id"]
    sid, start = body["session"]["id"], gw.clock.now()
    end = (start + timedelta(minutes=127)).isoformat()
    assert fee(anon, sid, exit_time=end)["total"] == 6.0
    # Vehicle type and zone together are the most specific.
    make_rate(
        admin,
        name="Motorcycles in B",
        amount=1.0,
        vehicle_type_id=moto["id"],
        zone_id=site["zone_b"]["id"],
    )
    assert fee(anon, sid, exit_time=end)["total"] == 3.0
    # A car is priced with the generic rate (zone A) or the zone rate (zone B).
    assert price(gw, operator, anon, "CAR9", 127)["total"] == 15.0


def test_ties_go_to_the_latest_effective_from_then_the_highest_id(gw, site, admin, operator, anon):
    make_rate(admin, name="Newer", amount=6.0, effective_from="2025-01-01T00:00:00Z")
    assert price(gw, operator, anon, "TIE1", 60)["total"] == 6.0
    make_rate(admin, name="Same day, later id", amount=7.0, effective_from="2025-01-01T00:00:00Z")
    assert price(gw, operator, anon, "TIE2", 60)["total"] == 7.0


def test_effective_window(gw, site, admin, operator, anon):
    zone_a = site["zone_a"]["id"]
    make_rate(
        admin,
        name="Spring offer",
        amount=1.0,
        zone_id=zone_a,
        effective_from="2026-03-01T00:00:00Z",
        effective_to="2026-03-10T12:00:00Z",
    )
    make_rate(
        admin, name="Not yet", amount=50.0, zone_id=zone_a, effective_from="2026-03-11T00:00:00Z"
    )
    sid = enter(operator, "EFF1")["session"]["id"]  # S-1, zone A, entered 09:00
    # Ends before effective_to (and exactly at it): the offer prices the stay.
    assert fee(anon, sid, exit_time="2026-03-10T11:00:00Z")["total"] == 2.0
    assert fee(anon, sid, exit_time="2026-03-10T12:00:00Z")["total"] == 3.0
    # Ends after it: back to the generic rate.
    assert fee(anon, sid, exit_time="2026-03-10T12:01:00Z")["total"] == 20.0
    # A rate effective from a later day applies to stays ending then.
    assert fee(anon, sid, exit_time="2026-03-11T01:00:00Z")["total"] == 50.0 * 16


def test_peak_window(gw, site, admin, operator, anon):
    admin.put(
        f"/rates/{site['rate']['id']}",
        json={"peak_multiplier": 2, "peak_start_time": "10:00", "peak_end_time": "12:00"},
    )
    sid = enter(operator, "PEAK1")["session"]["id"]  # 09:00
    assert fee(anon, sid, exit_time="2026-03-10T09:50:00Z")["total"] == 5.0
    in_peak = fee(anon, sid, exit_time="2026-03-10T10:30:00Z")
    assert in_peak["total"] == 20.0 and "$10/hr" in in_peak["breakdown"][0]["description"]
    assert fee(anon, sid, exit_time="2026-03-10T12:30:00Z")["total"] == 20.0


def test_no_rate_at_all(gw, site, admin, operator, anon):
    admin.delete(f"/rates/{site['rate']['id']}")
    body = price(gw, operator, anon, "NORATE", 300)
    assert body["base_fee"] == 0 and body["total"] == 0
    assert "no applicable rate" in body["breakdown"][0]["description"].lower()
    # Nothing is due: the car leaves without paying.
    r = operator.post("/sessions/exit", json={"license_plate": "NORATE"})
    assert r.status_code == 200, r.text


def test_rate_events_payloads(gw, site, admin):
    mark = outbox_mark(gw)
    rate = make_rate(admin, name="Evented", amount=1.25)
    admin.put(f"/rates/{rate['id']}", json={"amount": 1.5})
    admin.delete(f"/rates/{rate['id']}")
    events = payloads_since(gw, mark)
    assert [e[0] for e in events] == ["rate_created", "rate_updated", "rate_deactivated"]
    assert all(e[1]["rate_id"] == rate["id"] for e in events)


def test_effective_windows_keep_to_the_years_2000_2099(gw, site, admin, operator, anon):
    """A rate effective from year 1 was accepted; validity windows keep to 2000..2099."""
    for bounds in (
        {"effective_from": "0001-01-01T00:00:00Z"},
        {"effective_from": "1999-12-31T23:59:59Z"},
        {"effective_to": "9999-12-31T23:59:59Z"},
    ):
        r = admin.post(
            "/rates", json={"name": "Since ever", "amount": 7.0, "effective_from": VALID, **bounds}
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == next(iter(bounds))
    make_rate(admin, name="Since 2000", amount=7.0, effective_from="2000-01-01T00:00:00Z")
    # The older rate loses the tie on effective_from to the site's 2024 rate.
    assert price(gw, operator, anon, "ANC1", 60)["total"] == 5.0


def test_session_without_space_matches_only_rates_without_zone(gw, site, admin, operator, anon):
    make_rate(admin, name="Zone A", amount=1.0, zone_id=site["zone_a"]["id"])
    for space in site["spaces"]:
        operator.put(f"/spaces/{space['id']}", json={"status": "maintenance"})
    body = price(gw, operator, anon, "NOSPACE", 127)
    assert body["total"] == 15.0
