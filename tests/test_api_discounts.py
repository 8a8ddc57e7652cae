"""Discount codes over HTTP (field reference section 12): CRUD by the admin, and the public
validate endpoint with its messages in their order."""

from __future__ import annotations

import pytest
from api_kit import (
    VALID_FROM,
    VALID_TO,
    assert_refused,
    enter,
    events_since,
    make_discount,
    outbox_mark,
    pay,
    payloads_since,
    snapshot,
    when,
)

SEED_DISCOUNT = {
    "code": "SUMMER20",
    "name": "Summer Sale 20% Off",
    "discount_type": "percentage",
    "value": 20.0,
    "valid_from": "2024-06-01T00:00:00Z",
    "valid_to": "2024-08-31T23:59:59Z",
    "max_uses": 1000,
}


def validate(client, code, session_id=None):
    body = {"code": code} if session_id is None else {"code": code, "session_id": session_id}
    r = client.post("/discounts/validate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- CRUD ---------------------------------------------------------------------------------------


def test_create_discount_seed_body(gw, site, admin):
    mark = outbox_mark(gw)
    r = admin.post("/discounts", json=SEED_DISCOUNT)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["code"] == "SUMMER20" and d["name"] == "Summer Sale 20% Off"
    assert d["discount_type"] == "percentage" and d["value"] == 20.0
    assert when(d["valid_from"]) == when("2024-06-01T00:00:00+00:00")
    assert when(d["valid_to"]) == when("2024-08-31T23:59:59+00:00")
    assert d["max_uses"] == 1000 and d["max_uses_per_user"] == 1
    assert d["min_duration_hours"] is None and d["partner_name"] is None
    assert d["current_uses"] == 0 and d["is_active"] is True
    assert isinstance(d["id"], int) and d["created_at"] and d["updated_at"]
    assert events_since(gw, mark) == ["discount_created"]
    assert payloads_since(gw, mark)[0][1]["discount_id"] == d["id"]


def test_create_discount_defaults_and_upper_case(gw, site, admin):
    r = admin.post(
        "/discounts",
        json={
            "code": " welcome10 ",
            "name": "Welcome",
            "value": 10,
            "valid_from": VALID_FROM,
            "valid_to": VALID_TO,
        },
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["code"] == "WELCOME10"
    assert d["discount_type"] == "percentage"
    assert d["max_uses"] is None and d["max_uses_per_user"] == 1
    full = make_discount(
        admin,
        "Shop-5",
        discount_type="fixed_amount",
        value=150.0,  # money off: not limited to 100
        max_uses=10,
        max_uses_per_user=3,
        min_duration_hours=2,
        partner_name="Corner Shop",
    )
    assert full["code"] == "SHOP-5" and full["discount_type"] == "fixed_amount"
    assert full["value"] == 150.0 and full["max_uses"] == 10 and full["max_uses_per_user"] == 3
    assert full["min_duration_hours"] == 2 and full["partner_name"] == "Corner Shop"
    hours = make_discount(admin, "HOURS2", discount_type="free_hours", value=2)
    assert hours["discount_type"] == "free_hours" and hours["value"] == 2.0
    assert make_discount(admin, "ALL", value=100)["value"] == 100.0


def test_discounts_are_admin_only(gw, site, operator, alice, anon, admin):
    d = make_discount(admin, "ADMINONLY")
    before = snapshot(gw)
    for client, code in ((operator, 403), (alice, 403), (anon, 401)):
        assert client.get("/discounts").status_code == code
        assert client.post("/discounts", json={**SEED_DISCOUNT, "code": "X1"}).status_code == code
        assert client.put(f"/discounts/{d['id']}", json={"name": "x"}).status_code == code
        assert client.delete(f"/discounts/{d['id']}").status_code == code
    assert snapshot(gw) == before


def test_duplicate_code_is_409(gw, site, admin):
    make_discount(admin, "DUP10")
    before = snapshot(gw)
    assert_refused(admin.post("/discounts", json={**SEED_DISCOUNT, "code": "dup10"}), 409)
    assert_refused(admin.post("/discounts", json={**SEED_DISCOUNT, "code": " Dup10"}), 409)
    # Request validation (422) comes before the state check (409): field reference 1.2.
    bad_dates = {**SEED_DISCOUNT, "code": "DUP10", "valid_to": "2024-01-01T00:00:00Z"}
    assert_refused(admin.post("/discounts", json=bad_dates), 422)
    too_much = {**SEED_DISCOUNT, "code": "DUP10", "value": 120}
    assert_refused(admin.post("/discounts", json=too_much), 422)
    assert snapshot(gw) == before


def test_discount_422_rules(gw, site, admin):
    before = snapshot(gw)
    for change in (
        {"valid_to": "2024-05-31T00:00:00Z"},
        {"valid_to": SEED_DISCOUNT["valid_from"]},
        {"value": 100.01},
        {"value": 150},
    ):
        assert_refused(admin.post("/discounts", json={**SEED_DISCOUNT, **change}), 422)
    assert snapshot(gw) == before


@pytest.mark.parametrize(
    "change",
    [
        {"code": None},
        {"code": ""},
        {"code": "   "},
        {"code": "C" * 51},
        {"code": 20},
        {"name": None},
        {"name": ""},
        {"name": "  "},
        {"name": "N" * 101},
        {"value": None},
        {"value": 0},
        {"value": -5},
        {"value": "NaN"},
        {"value": "Infinity"},
        {"value": "20"},
        {"value": True},
        {"discount_type": "bogus"},
        {"discount_type": "PERCENTAGE"},
        {"discount_type": None},
        {"valid_from": None},
        {"valid_from": "tomorrow"},
        {"valid_to": 1718000000},
        {"max_uses": 0},
        {"max_uses": "10"},
        {"max_uses": 2.5},
        {"max_uses_per_user": 0},
        {"max_uses_per_user": None},
        {"min_duration_hours": -1},
        {"partner_name": "P" * 101},
        {"partner_name": 7},
    ],
)
def test_create_discount_bad_bodies(gw, site, admin, change):
    before = snapshot(gw)
    assert_refused(admin.post("/discounts", json={**SEED_DISCOUNT, **change}))
    assert snapshot(gw) == before


@pytest.mark.parametrize("missing", ["code", "name", "value", "valid_from", "valid_to"])
def test_create_discount_missing_fields(gw, site, admin, missing):
    body = {k: v for k, v in SEED_DISCOUNT.items() if k != missing}
    before = snapshot(gw)
    assert_refused(admin.post("/discounts", json=body))
    assert snapshot(gw) == before


def test_create_discount_not_json(gw, site, admin):
    before = snapshot(gw)
    assert_refused(
        admin.post("/discounts", content=b"code=X", headers={"Content-Type": "application/json"})
    )
    assert_refused(admin.post("/discounts", json=[SEED_DISCOUNT]))
    assert snapshot(gw) == before


def test_list_discounts_filters(gw, site, admin):
    a = make_discount(admin, "AAA", partner_name="Corner Shop")
    b = make_discount(admin, "BBB", partner_name="Cinema Palace")
    c = make_discount(admin, "CCC")
    admin.delete(f"/discounts/{c['id']}")
    listed = admin.get("/discounts").json()
    assert [d["id"] for d in listed] == [a["id"], b["id"]]
    inactive = admin.get("/discounts", params={"is_active": "false"}).json()
    assert [d["id"] for d in inactive] == [c["id"]] and inactive[0]["is_active"] is False
    shop = admin.get("/discounts", params={"partner_name": "shop"}).json()
    assert [d["id"] for d in shop] == [a["id"]]
    assert admin.get("/discounts", params={"partner_name": "C"}).json() == listed
    assert admin.get("/discounts", params={"partner_name": "%"}).json() == []
    assert_refused(admin.get("/discounts", params={"is_active": "maybe"}))


def test_update_discount(gw, site, admin):
    d = make_discount(admin, "UPD")
    mark = outbox_mark(gw)
    r = admin.put(
        f"/discounts/{d['id']}",
        json={
            "name": "Updated",
            "value": 30,
            "valid_from": "2026-02-01T00:00:00Z",
            "valid_to": "2026-11-30T00:00:00Z",
            "max_uses": 5,
            "code": "RENAMED",  # the code cannot be changed
            "discount_type": "fixed_amount",  # nor the type
        },
    )
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["name"] == "Updated" and u["value"] == 30.0 and u["max_uses"] == 5
    assert when(u["valid_from"]) == when("2026-02-01T00:00:00+00:00")
    assert when(u["valid_to"]) == when("2026-11-30T00:00:00+00:00")
    assert u["code"] == "UPD" and u["discount_type"] == "percentage"
    assert events_since(gw, mark) == ["discount_updated"]
    r = admin.put(f"/discounts/{d['id']}", json={"max_uses": None, "is_active": False})
    assert r.status_code == 200 and r.json()["max_uses"] is None and r.json()["is_active"] is False
    assert r.json()["name"] == "Updated"


def test_update_discount_refusals(gw, site, admin):
    d = make_discount(admin, "UPDBAD")
    before = snapshot(gw)
    assert_refused(admin.put("/discounts/99999", json={"name": "x"}), 404)
    assert_refused(
        admin.put(f"/discounts/{d['id']}", json={"valid_to": "2025-01-01T00:00:00Z"}), 422
    )
    assert_refused(
        admin.put(f"/discounts/{d['id']}", json={"valid_from": "2027-01-01T00:00:00Z"}), 422
    )
    assert_refused(admin.put(f"/discounts/{d['id']}", json={"value": 101}), 422)
    for body in (
        {"value": 0},
        {"value": "NaN"},
        {"value": "30"},
        {"max_uses": 0},
        {"is_active": 1},
        {"is_active": "true"},
        {"name": ""},
        {"valid_to": "never"},
        "name",
    ):
        assert_refused(admin.put(f"/discounts/{d['id']}", json=body))
    assert snapshot(gw) == before


def test_delete_discount_deactivates(gw, site, admin, anon):
    d = make_discount(admin, "BYE")
    mark = outbox_mark(gw)
    r = admin.delete(f"/discounts/{d['id']}")
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert events_since(gw, mark) == ["discount_deactivated"]
    assert admin.get("/discounts").json() == []
    assert admin.get("/discounts", params={"is_active": "false"}).json()[0]["code"] == "BYE"
    assert validate(anon, "BYE")["message"] == "Discount is not active"
    assert_refused(admin.delete("/discounts/99999"), 404)


# -- validate ------------------------------------------------------------------------------------


def test_validate_is_public_and_case_insensitive(gw, site, admin, alice, anon):
    d = make_discount(admin, "SUMMER20", max_uses=1000)
    for client in (anon, alice):
        v = validate(client, "summer20")
        assert v["is_valid"] is True and v["message"] is None
        assert v["discount"]["id"] == d["id"] and v["discount"]["code"] == "SUMMER20"
        assert v["discount_amount"] is None


def test_validate_messages_in_order(gw, site, admin, operator, alice, anon):
    v = validate(anon, "NOPE")
    assert v == {**v, "is_valid": False, "discount": None, "message": "Invalid discount code"}
    d = make_discount(admin, "ORDER", max_uses=1, max_uses_per_user=1, min_duration_hours=1)
    did = d["id"]
    # Used up once (a paid one-hour stay), the usage limit is reached.
    sid = enter(operator, "ORD1")["session"]["id"]
    gw.clock.advance(minutes=60)
    assert pay(alice, sid, 4.0, discount_code="ORDER").status_code == 201
    assert validate(anon, "ORDER")["message"] == "Discount usage limit reached"
    # Expired comes before the usage limit...
    admin.put(
        f"/discounts/{did}",
        json={"valid_from": "2025-01-01T00:00:00Z", "valid_to": "2025-12-31T00:00:00Z"},
    )
    assert validate(anon, "ORDER")["message"] == "Discount has expired"
    # ...not yet valid before that...
    admin.put(
        f"/discounts/{did}",
        json={"valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-12-31T00:00:00Z"},
    )
    assert validate(anon, "ORDER")["message"] == "Discount is not yet valid"
    # ...and inactive before everything.
    admin.put(
        f"/discounts/{did}",
        json={
            "is_active": False,
            "valid_from": "2025-01-01T00:00:00Z",
            "valid_to": "2025-12-31T00:00:00Z",
        },
    )
    assert validate(anon, "ORDER")["message"] == "Discount is not active"
    for v in (validate(anon, "ORDER"), validate(anon, "NOPE")):
        assert v["is_valid"] is False and v["discount"] is None and v["discount_amount"] is None


def test_validate_minimum_duration_needs_a_session(gw, site, admin, operator, anon):
    make_discount(admin, "LONGSTAY", min_duration_hours=2)
    sid = enter(operator, "MIN1")["session"]["id"]
    gw.clock.advance(minutes=119)
    assert validate(anon, "LONGSTAY")["is_valid"] is True  # no session: not checked
    v = validate(anon, "LONGSTAY", sid)
    assert v["is_valid"] is False and v["message"] == "Minimum parking duration not reached"
    assert v["discount_amount"] is None
    gw.clock.advance(minutes=1)
    v = validate(anon, "LONGSTAY", sid)
    assert v["is_valid"] is True and v["discount_amount"] == 2.0  # 20% of 10.00


def test_validate_discount_amount_with_a_session(gw, site, admin, operator, alice, anon):
    make_discount(admin, "PCT20")
    make_discount(admin, "FIXED50", discount_type="fixed_amount", value=50)
    make_discount(admin, "FREEHOUR", discount_type="free_hours", value=1)
    sid = enter(operator, "AMT1")["session"]["id"]
    gw.clock.advance(minutes=127)  # $15
    assert validate(anon, "PCT20", sid)["discount_amount"] == 3.0
    assert validate(anon, "fixed50", sid)["discount_amount"] == 15.0
    assert validate(anon, "FREEHOUR", sid)["discount_amount"] == 5.0
    # Within the exit window after paying nothing is due: the code would take nothing off.
    assert pay(alice, sid, 15.0).status_code == 201
    assert validate(anon, "PCT20", sid)["discount_amount"] == 0.0
    # Per-user limits are a payment rule: validate does not apply them.
    assert validate(alice, "PCT20")["is_valid"] is True


def test_validate_unknown_session_and_bad_bodies(gw, site, admin, anon):
    make_discount(admin, "REAL")
    assert_refused(
        anon.post("/discounts/validate", json={"code": "REAL", "session_id": 999999}), 404
    )
    before = snapshot(gw)
    for bad in (
        {},
        {"code": None},
        {"code": ""},
        {"code": 12},
        {"code": "REAL", "session_id": "1"},
        {"code": "REAL", "session_id": 0},
        {"code": "REAL", "session_id": True},
        ["REAL"],
    ):
        assert_refused(anon.post("/discounts/validate", json=bad))
    assert_refused(
        anon.post(
            "/discounts/validate",
            content=b"code=REAL",
            headers={"Content-Type": "application/json"},
        )
    )
    assert snapshot(gw) == before


def test_validity_windows_keep_to_the_years_2000_2099(gw, site, admin, anon):
    """Windows "from year 1 to 9999" used to be stored; they are refused, nothing stored."""
    before = snapshot(gw)
    for bounds in (
        {"valid_from": "0001-01-01T00:00:00Z"},
        {"valid_to": "9999-12-31T23:59:59Z"},
        {"valid_from": "1999-12-31T23:59:59Z"},
        {"valid_to": "2100-01-01T00:00:00Z"},
    ):
        body = {
            "code": "FOREVER",
            "name": "Forever",
            "value": 10,
            "valid_from": VALID_FROM,
            "valid_to": VALID_TO,
            **bounds,
        }
        r = admin.post("/discounts", json=body)
        assert_refused(r, 422)
        assert r.json()["errors"][0]["field"] == next(iter(bounds))
    assert snapshot(gw) == before
    make_discount(admin, "LONG", valid_from="2000-01-01T00:00:00Z", valid_to="2099-12-31T23:59:59Z")
    v = validate(anon, "LONG")
    assert v["is_valid"] is True
    assert v["discount"]["valid_from"].startswith("2000-01-01")
