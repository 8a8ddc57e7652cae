"""Money, input and metrics rules found by trying the API as a customer and an attacker
would: free exit windows, unrounded money, bad UTF-8, lost staff statuses, duplicates,
silent plate-list flips, and requests the metrics did not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from api_kit import (
    VALID_FROM,
    VALID_TO,
    assert_refused,
    db_query,
    enter,
    events_since,
    outbox_mark,
    pay,
    snapshot,
)
from prometheus_client.parser import text_string_to_metric_families

from gateway.domain.fees import PaymentRecord, exit_status

# -- money ---------------------------------------------------------------------------------


def test_a_zero_payment_buys_no_exit_window(gw, admin, operator, alice, anon):
    """5.00/h, 1-minute grace, entered 105 s ago: a 0.00 payment used to be taken (201) and
    22 s later, with 5.00 due, validate-exit said ``can_exit: true``."""
    r = admin.post(
        "/rates",
        json={
            "name": "Hourly",
            "amount": 5.0,
            "grace_period_minutes": 1,
            "effective_from": VALID_FROM,
        },
    )
    assert r.status_code == 201, r.text
    entered = gw.clock.now() - timedelta(seconds=105)
    body = enter(operator, "FREE1", entry_time=entered.isoformat())
    sid, ticket = body["session"]["id"], body["ticket_number"]
    before = snapshot(gw)
    r = alice.post("/payments", json={"session_id": sid, "payment_method": "cash", "amount": 0})
    assert_refused(r, 409)
    assert "nothing to pay" in r.json()["detail"]
    assert snapshot(gw) == before
    gw.clock.advance(seconds=22)
    fee = anon.get(f"/sessions/{sid}/calculate-fee").json()
    assert fee["total"] == 5.0
    v = anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()
    assert (v["can_exit"], v["is_paid"], v["amount_due"]) == (False, False, 5.0)
    assert operator.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 402
    # Paying what is due opens the window, as before.
    assert pay(alice, sid, 5.0).status_code == 201
    assert anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()["can_exit"]


def test_a_window_only_covers_what_was_paid():
    """A payment record that settled 0.00 (an older database, the central system) opens no
    window: the fee that grew after it is owed at once."""
    paid_at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    zero = PaymentRecord(amount=Decimal("0.00"), paid_at=paid_at)
    status = exit_status(
        Decimal("5.00"), [zero], paid_at + timedelta(minutes=1), timedelta(minutes=15)
    )
    assert (status.amount_due, status.in_exit_window, status.is_paid) == (
        Decimal("5.00"),
        False,
        False,
    )
    five = PaymentRecord(amount=Decimal("5.00"), paid_at=paid_at)
    status = exit_status(
        Decimal("10.00"), [zero, five], paid_at + timedelta(minutes=1), timedelta(minutes=15)
    )
    assert (status.amount_due, status.in_exit_window, status.is_paid) == (
        Decimal("0.00"),
        True,
        True,
    )


def test_every_money_value_is_rounded_half_up_to_cents_on_the_way_in(
    gw, site, admin, operator, alice
):
    """A discount value with ten decimals used to be stored as sent."""
    d = admin.post(
        "/discounts",
        json={
            "code": "ODD",
            "name": "Odd",
            "value": 12.3456789012,
            "valid_from": VALID_FROM,
            "valid_to": VALID_TO,
        },
    )
    assert d.status_code == 201, d.text
    assert d.json()["value"] == 12.35
    rate = admin.post(
        "/rates",
        json={"name": "Odd rate", "amount": 2.675, "effective_from": "2025-01-01T00:00:00Z"},
    ).json()
    plan = admin.post(
        "/membership-plans", json={"name": "Odd plan", "duration_months": 1, "price": 9.995}
    ).json()
    assert (rate["amount"], plan["price"]) == (2.68, 10.0)
    changed = admin.put(f"/discounts/{d.json()['id']}", json={"value": 7.005}).json()
    assert changed["value"] == 7.01
    stored = db_query(
        gw,
        "SELECT (SELECT value FROM discounts WHERE code = 'ODD'),"
        " (SELECT amount FROM rates WHERE name = 'Odd rate'),"
        " (SELECT price FROM membership_plans WHERE name = 'Odd plan')",
    )[0]
    assert stored == ("7.01", "2.68", "10.00")
    # A payment's tender too (the odd rate is the most recent: 2.68 for the first hour).
    sid = enter(
        operator, "ROUND1", entry_time=(gw.clock.now() - timedelta(minutes=30)).isoformat()
    )["session"]["id"]
    p = pay(alice, sid, 2.6849)
    assert p.status_code == 201, p.text
    assert p.json()["amount_tendered"] == 2.68
    assert (
        db_query(gw, "SELECT tendered FROM payments WHERE id = ?", (p.json()["id"],))[0][0]
        == "2.68"
    )
    # Below a cent once rounded is not a positive value.
    r = admin.post(
        "/discounts",
        json={
            "code": "TINY",
            "name": "Tiny",
            "value": 0.004,
            "valid_from": VALID_FROM,
            "valid_to": VALID_TO,
        },
    )
    assert_refused(r, 400)


def test_unit_prices_keep_four_decimals(gw, admin, site):
    space = site["spaces"][3]["id"]
    r = admin.post(
        "/ev-stations",
        json={
            "space_id": space,
            "power_kw": 7.2,
            "connector_type": "Type 2",
            "price_per_kwh": 0.123456,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["price_per_kwh"] == 0.1235


# -- input -----------------------------------------------------------------------------------

BAD_UTF8 = b'{"x": "\xff\xfe", "name": "L"}'
DECIMAL_BODIES = [
    ("POST", "/levels"),
    ("PUT", "/levels/1"),
    ("POST", "/rates"),
    ("PUT", "/rates/1"),
    ("POST", "/discounts"),
    ("PUT", "/discounts/1"),
    ("POST", "/membership-plans"),
    ("PUT", "/membership-plans/1"),
    ("POST", "/ev-stations"),
    ("PUT", "/ev-stations/1"),
    ("POST", "/payments"),
    ("POST", "/ev-charging/start"),
]


def test_invalid_utf8_inside_a_json_string_is_400_never_500(gw, site, admin):
    """The 12 operations whose bodies have decimal fields answered 500 (and logged a
    traceback) for a string of invalid UTF-8, even in a field they ignore."""
    before = snapshot(gw)
    for method, path in DECIMAL_BODIES:
        r = admin.request(
            method, path, content=BAD_UTF8, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert "UTF-8" in r.json()["detail"], (method, path, r.text)
    assert snapshot(gw) == before


def test_maintenance_set_while_occupied_survives_the_exit(gw, site, operator, alice):
    """A space put into maintenance under a parked car went back to available at its exit
    and was handed out again."""
    body = enter(operator, "MAINT1")
    space = body["space_assigned"]["id"]
    r = operator.put(f"/spaces/{space}", json={"status": "maintenance"})
    assert r.status_code == 200, r.text
    gw.clock.advance(minutes=5)  # within the grace period: nothing to pay
    assert (
        operator.post("/sessions/exit", json={"ticket_number": body["ticket_number"]}).status_code
        == 200
    )
    assert db_query(gw, "SELECT status FROM spaces WHERE id = ?", (space,))[0][0] == "maintenance"
    for plate in ("NEXT1", "NEXT2", "NEXT3", "NEXT4", "NEXT5", "NEXT6"):
        got = enter(operator, plate)["space_assigned"]
        assert got is None or got["id"] != space, plate


UPDATES = [
    ("/levels/{level}", {"name": "x"}),
    ("/zones/{zone}", {"name": "x"}),
    ("/spaces/{space}", {"row": "R1"}),
    ("/rates/{rate}", {"name": "x"}),
]


def test_an_empty_update_is_400_and_emits_nothing(gw, site, admin):
    """``PUT {}`` used to answer 200 and emit an event with empty changes."""
    ids = {
        "level": site["level"]["id"],
        "zone": site["zone_a"]["id"],
        "space": site["spaces"][0]["id"],
        "rate": site["rate"]["id"],
    }
    for template, good in UPDATES:
        path = template.format(**ids)
        mark = outbox_mark(gw)
        for body in ({}, {"unknown": 1}):
            r = admin.put(path, json=body)
            assert r.status_code == 400, (path, body, r.text)
            assert "nothing to update" in r.json()["detail"]
        assert events_since(gw, mark) == [], path
        assert admin.put(path, json=good).status_code == 200, path


def test_duplicate_names_are_409_ignoring_case(gw, site, admin):
    """Identical levels, zones and rates were accepted twice; D-1 and d-1 coexisted."""
    before = snapshot(gw)
    level = site["level"]
    assert_refused(admin.post("/levels", json={"name": " level 1 ", "floor_number": 3}), 409)
    assert_refused(admin.post("/zones", json={"level_id": level["id"], "name": "ZONE a"}), 409)
    zone = site["zone_a"]["id"]
    assert_refused(admin.post("/spaces", json={"zone_id": zone, "space_number": "s-1"}), 409)
    seed_rate = {
        "name": "standard hourly",
        "rate_type": "hourly",
        "amount": 5.0,
        "grace_period_minutes": 15,
        "effective_from": "2024-01-01T00:00:00Z",
    }
    r = admin.post("/rates", json=seed_rate)
    assert_refused(r, 409)
    assert r.json()["rate_id"] == site["rate"]["id"]
    assert admin.post("/vehicle-types", json={"name": "Van"}).status_code == 201
    assert_refused(admin.post("/vehicle-types", json={"name": "VAN "}), 409)
    after = snapshot(gw)
    assert after["rates"] == before["rates"] and after["spaces"] == before["spaces"]
    # Renaming onto another name is the same clash.
    other = admin.post("/levels", json={"name": "Level 2", "floor_number": 2}).json()
    assert_refused(admin.put(f"/levels/{other['id']}", json={"name": "LEVEL 1"}), 409)
    # The same name elsewhere is fine: another level's zone, another zone's space, a rate
    # that starts later (a scheduled price change), a rate once the old one is gone.
    assert admin.post("/zones", json={"level_id": other["id"], "name": "Zone A"}).status_code == 201
    assert (
        admin.post(
            "/spaces", json={"zone_id": site["zone_b"]["id"], "space_number": "S-1"}
        ).status_code
        == 201
    )
    later = {**seed_rate, "effective_from": "2026-06-01T00:00:00Z"}
    assert admin.post("/rates", json=later).status_code == 201
    assert admin.delete(f"/rates/{site['rate']['id']}").status_code == 200
    assert admin.post("/rates", json=seed_rate).status_code == 201
    assert_refused(admin.put(f"/rates/{site['rate']['id']}", json={"is_active": True}), 409)


def test_plate_list_entries_change_only_by_an_explicit_update(gw, admin):
    """POST for a plate already listed silently turned a deny into an allow."""
    r = admin.post("/plate-lists", json={"plate": "BAD 1", "list": "deny", "reason": "stolen"})
    assert r.status_code == 201, r.text
    entry = r.json()
    mark = outbox_mark(gw)
    r = admin.post("/plate-lists", json={"plate": "bad1", "list": "allow"})
    assert_refused(r, 409)
    assert r.json()["entry_id"] == entry["id"] and r.json()["list"] == "deny"
    assert events_since(gw, mark) == []
    assert admin.get("/plate-lists").json() == [entry]
    r = admin.put(f"/plate-lists/{entry['id']}", json={"list": "allow", "reason": "recovered"})
    assert r.status_code == 200, r.text
    assert (r.json()["plate"], r.json()["list"], r.json()["reason"]) == (
        "BAD1",
        "allow",
        "recovered",
    )
    assert events_since(gw, mark) == ["plate_list_updated"]
    assert_refused(admin.put("/plate-lists/999", json={"list": "deny"}), 404)
    assert_refused(admin.put(f"/plate-lists/{entry['id']}", json={}), 400)


def test_query_datetimes_are_strict(gw, site, operator, anon):
    sid = enter(operator, "QRY1")["session"]["id"]
    for value in ("0.5", "0", "1710061200", "tomorrow", ""):
        r = anon.get(f"/sessions/{sid}/calculate-fee", params={"exit_time": value})
        assert_refused(r, 400)
        r = anon.get(
            "/reservations/availability",
            params={"start_time": value, "end_time": "2026-03-11T10:00:00Z"},
        )
        assert_refused(r, 400)


def test_an_empty_plate_filter_is_no_filter(gw, operator):
    """``plate-reads?plate=`` answered 422; a search form's empty field means "any"."""
    r = operator.get("/plate-reads", params={"plate": ""})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == operator.get("/plate-reads").json()["total"]
    assert operator.get("/plate-reads", params={"plate": "  ", "lane_id": ""}).status_code == 200


# -- metrics ---------------------------------------------------------------------------------


def counts(gw: Any) -> dict[tuple[str, str, str], float]:
    r = httpx.get(gw.base_url + "/metrics")
    assert r.status_code == 200
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "carpark_api_request_duration_seconds_count":
                found[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return found


def test_the_request_metric_counts_401s_404s_and_405s(gw):
    """The metric missed the auth middleware's 401s and unmatched routes: schemathesis saw
    17,176 401s while it counted 150, so credential stuffing did not show."""
    base = gw.base_url
    for _ in range(3):
        assert httpx.get(base + "/api/v1/vehicles").status_code == 401
        assert (
            httpx.get(base + "/api/v1/vehicles", headers={"Authorization": "Basic x"}).status_code
            == 401
        )
    assert httpx.get(base + "/api/v1/no-such-thing").status_code == 404
    assert httpx.get(base + "/wp-login.php").status_code == 404
    assert httpx.delete(base + "/api/v1/levels").status_code == 405
    c = counts(gw)
    assert c[("GET", "/api/v1/vehicles", "401")] == 6
    assert c[("GET", "unmatched", "404")] == 2
    assert c[("DELETE", "unmatched", "405")] == 1  # no route for the method: no template
    assert not any("wp-login" in route or "no-such" in route for _, route, _ in c)


def test_metrics_content_type_names_its_charset_once(gw):
    r = httpx.get(gw.base_url + "/metrics")
    content_type = r.headers["content-type"]
    assert content_type.count("charset") == 1, content_type
    assert content_type.startswith("text/plain; version=")
