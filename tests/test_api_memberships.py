"""Membership plans and memberships over HTTP (field reference sections 9.4, 14 and 15).

Plans: a public list of the plans on offer, admin-only create and update, unique names and
the refusal of bad bodies. Memberships: subscribe (the seed's body as written, terms of
calendar months, the plan price recorded in ``membership_payments``), the listing and its
visibility, cancel and renew, and every refusal leaving the store untouched. Then the
benefit itself, priced by real stays: included hours consumed first, the discount on what
is still charged, and the usage figures those stays produce.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_kit import (
    assert_refused,
    car_type,
    db_query,
    enter,
    events_since,
    fee,
    make_discount,
    outbox_mark,
    pay,
    payloads_since,
)
from conftest import Running, make_config, start_daemon

SEED_PLAN = {
    "name": "Premium Monthly",
    "description": "Unlimited parking with reserved spot",
    "duration_months": 1,
    "price": 150.0,
    "vehicle_limit": 2,
    "included_hours": None,
    "discount_percentage": 20.0,
    "is_active": True,
}
PLAN_FIELDS = {
    "id",
    "name",
    "description",
    "duration_months",
    "price",
    "currency",
    "vehicle_limit",
    "included_hours",
    "discount_percentage",
    "priority_reservation",
    "ev_charging_included",
    "is_active",
    "created_at",
    "updated_at",
}
MEMBERSHIP_FIELDS = {
    "id",
    "user_id",
    "plan_id",
    "vehicle_ids",
    "start_date",
    "end_date",
    "status",
    "auto_renew",
    "payment_method",
    "payment_method_id",
    "used_hours",
    "plan",
    "created_at",
    "updated_at",
}
USAGE_FIELDS = {
    "membership_id",
    "hours_used",
    "hours_remaining",
    "sessions_count",
    "savings_to_date",
    "days_remaining",
}


# -- helpers -----------------------------------------------------------------------------------


def make_plan(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Plan", "duration_months": 1, "price": 50.0, **fields}
    r = admin.post("/membership-plans", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def vehicle(owner: httpx.Client, admin: httpx.Client, plate: str, **fields: Any) -> dict[str, Any]:
    body = {"license_plate": plate, "vehicle_type_id": car_type(admin), **fields}
    r = owner.post("/vehicles", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def subscribe(client: httpx.Client, plan_id: int, vehicle_ids: list[int], **extra: Any):
    return client.post(
        "/memberships", json={"plan_id": plan_id, "vehicle_ids": vehicle_ids, **extra}
    )


def member(client: httpx.Client, plan_id: int, vehicle_ids: list[int], **extra: Any):
    r = subscribe(client, plan_id, vehicle_ids, **extra)
    assert r.status_code == 201, r.text
    return dict(r.json()["membership"])


def usage(client: httpx.Client, membership_id: int) -> dict[str, Any]:
    r = client.get(f"/memberships/{membership_id}/usage")
    assert r.status_code == 200, r.text
    return dict(r.json())


def park(gw, operator, plate: str, minutes: int) -> dict[str, Any]:
    """A whole stay from now: enter, wait, pay what is due, leave. Returns its fee."""
    sid = enter(operator, plate)["session"]["id"]
    gw.clock.advance(minutes=minutes)
    body = fee(operator, sid)
    if body["total"] > 0:
        r = pay(operator, sid, body["total"])
        assert r.status_code == 201, r.text
    r = operator.post("/sessions/exit", json={"license_plate": plate})
    assert r.status_code == 200, r.text
    return body


def lines(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(line["description"], line["amount"]) for line in body["breakdown"]]


def membership_state(gw) -> dict[str, Any]:
    return {
        "outbox": db_query(gw, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM outbox"),
        "plans": db_query(gw, "SELECT * FROM membership_plans ORDER BY id"),
        "memberships": db_query(gw, "SELECT * FROM memberships ORDER BY id"),
        "vehicles": db_query(gw, "SELECT * FROM membership_vehicles ORDER BY 1, 2"),
        "payments": db_query(gw, "SELECT * FROM membership_payments ORDER BY id"),
    }


@pytest.fixture
def premium(admin) -> dict[str, Any]:
    r = admin.post("/membership-plans", json=SEED_PLAN)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def cars(site, admin, alice) -> list[dict[str, Any]]:
    """Alice's two cars."""
    return [vehicle(alice, admin, "ALICE1"), vehicle(alice, admin, "ALICE2")]


# -- plans -------------------------------------------------------------------------------------


def test_create_plan_seed_body(gw, admin):
    mark = outbox_mark(gw)
    r = admin.post("/membership-plans", json=SEED_PLAN)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert set(plan) >= PLAN_FIELDS
    for key, value in SEED_PLAN.items():
        assert plan[key] == value, key
    assert plan["currency"] == "USD"
    assert plan["priority_reservation"] is False and plan["ev_charging_included"] is False
    assert isinstance(plan["id"], int)
    assert events_since(gw, mark) == ["membership_plan_created"]
    assert payloads_since(gw, mark)[0][1]["plan_id"] == plan["id"]


def test_create_plan_defaults_and_all_fields(gw, admin):
    plan = make_plan(admin, name="Basic")
    assert plan["vehicle_limit"] == 1
    assert plan["included_hours"] is None
    assert plan["discount_percentage"] == 0.0
    assert plan["priority_reservation"] is False and plan["ev_charging_included"] is False
    assert plan["is_active"] is True and plan["currency"] == "USD"
    assert plan["description"] is None
    full = make_plan(
        admin,
        name="Commuter Annual",
        description="40 hours a month",
        duration_months=12,
        price=999.99,
        currency="eur",
        vehicle_limit=3,
        included_hours=40,
        discount_percentage=12.5,
        priority_reservation=True,
        ev_charging_included=True,
        is_active=False,
    )
    assert full["duration_months"] == 12 and full["price"] == 999.99
    assert full["currency"] == "EUR" and full["vehicle_limit"] == 3
    assert full["included_hours"] == 40 and full["discount_percentage"] == 12.5
    assert full["priority_reservation"] is True and full["ev_charging_included"] is True
    assert full["is_active"] is False


def test_plan_list_is_public_and_shows_plans_on_offer(gw, admin, anon, alice):
    on_offer = make_plan(admin, name="On offer")
    withdrawn = make_plan(admin, name="Withdrawn", is_active=False)
    for client in (anon, alice, admin):
        r = client.get("/membership-plans")
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()] == [on_offer["id"]]
    assert [p["id"] for p in anon.get("/membership-plans?is_active=true").json()] == [
        on_offer["id"]
    ]
    assert [p["id"] for p in anon.get("/membership-plans?is_active=false").json()] == [
        withdrawn["id"]
    ]
    for bad in ("maybe", "yes"):
        assert_refused(anon.get(f"/membership-plans?is_active={bad}"))


def test_plan_changes_are_admin_only(gw, admin, operator, alice, anon):
    plan = make_plan(admin, name="Guarded")
    before = membership_state(gw)
    for client, code in ((anon, 401), (alice, 403), (operator, 403)):
        r = client.post("/membership-plans", json={**SEED_PLAN, "name": "Sneaky"})
        assert r.status_code == code, r.text
        r = client.put(f"/membership-plans/{plan['id']}", json={"price": 1.0})
        assert r.status_code == code, r.text
    assert membership_state(gw) == before


def test_plan_name_is_unique(gw, admin):
    make_plan(admin, name="Gold")
    other = make_plan(admin, name="Silver")
    before = membership_state(gw)
    for name in ("Gold", "gold", " Gold "):
        assert_refused(admin.post("/membership-plans", json={**SEED_PLAN, "name": name}), 409)
    assert_refused(admin.put(f"/membership-plans/{other['id']}", json={"name": "GOLD"}), 409)
    assert membership_state(gw) == before
    r = admin.put(f"/membership-plans/{other['id']}", json={"name": "Silver"})
    assert r.status_code == 200, r.text


BAD_PLAN_BODIES = [
    {"name": None},
    {"name": ""},
    {"name": "   "},
    {"name": "x" * 101},
    {"name": 5},
    {"duration_months": 0},
    {"duration_months": "1"},
    {"duration_months": 1.5},
    {"price": -1},
    {"price": "150.0"},
    {"price": None},
    {"vehicle_limit": 0},
    {"included_hours": -1},
    {"included_hours": 1.5},
    {"discount_percentage": -1},
    {"discount_percentage": 100.5},
    {"discount_percentage": "20"},
    {"is_active": "yes"},
    {"is_active": 1},
    {"ev_charging_included": "true"},
    {"priority_reservation": 0},
]


@pytest.mark.parametrize("change", BAD_PLAN_BODIES, ids=repr)
def test_create_plan_bad_bodies(gw, admin, change):
    before = membership_state(gw)
    assert_refused(admin.post("/membership-plans", json={**SEED_PLAN, **change}))
    assert membership_state(gw) == before


@pytest.mark.parametrize("missing", ["name", "duration_months", "price"])
def test_create_plan_missing_required_field(gw, admin, missing):
    body = {k: v for k, v in SEED_PLAN.items() if k != missing}
    assert_refused(admin.post("/membership-plans", json=body))
    assert admin.get("/membership-plans").json() == []


def test_create_plan_not_json(gw, admin):
    for content in (b"{not json", b"[]", b'"plan"'):
        r = admin.post(
            "/membership-plans", content=content, headers={"Content-Type": "application/json"}
        )
        assert_refused(r)
    assert admin.get("/membership-plans").json() == []


def test_update_plan(gw, admin, anon):
    plan = make_plan(admin, name="Flexible", included_hours=10, discount_percentage=5)
    mark = outbox_mark(gw)
    gw.clock.advance(minutes=5)
    r = admin.put(
        f"/membership-plans/{plan['id']}",
        json={"price": 75.5, "included_hours": None, "discount_percentage": 15, "unknown": 1},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["price"] == 75.5 and updated["included_hours"] is None
    assert updated["discount_percentage"] == 15.0
    assert updated["name"] == "Flexible" and updated["duration_months"] == 1
    assert updated["updated_at"] != plan["updated_at"]
    assert events_since(gw, mark) == ["membership_plan_updated"]
    # Withdrawing it takes it off the public list.
    r = admin.put(f"/membership-plans/{plan['id']}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert anon.get("/membership-plans").json() == []
    assert [p["id"] for p in anon.get("/membership-plans?is_active=false").json()] == [plan["id"]]


def test_update_plan_refusals(gw, admin):
    plan = make_plan(admin, name="Steady")
    assert_refused(admin.put("/membership-plans/999", json={"price": 1.0}), 404)
    before = membership_state(gw)
    for body in (
        {"price": -5},
        {"duration_months": 0},
        {"discount_percentage": 101},
        {"name": ""},
        {"name": None},
        {"vehicle_limit": "2"},
        {"is_active": "no"},
    ):
        assert_refused(admin.put(f"/membership-plans/{plan['id']}", json=body))
    assert membership_state(gw) == before


# -- subscribing ---------------------------------------------------------------------------


def test_subscribe_seed_body(gw, admin, alice, premium, cars):
    mark = outbox_mark(gw)
    body = {"plan_id": premium["id"], "vehicle_ids": [c["id"] for c in cars], "auto_renew": True}
    r = alice.post("/memberships", json=body)
    assert r.status_code == 201, r.text
    answer = r.json()
    m = answer["membership"]
    assert set(m) >= MEMBERSHIP_FIELDS
    assert m["user_id"] == gw.user_ids["alice@example.com"]
    assert m["plan_id"] == premium["id"] and m["plan"]["id"] == premium["id"]
    assert m["plan"]["name"] == "Premium Monthly"
    assert m["vehicle_ids"] == sorted(c["id"] for c in cars)
    assert m["start_date"] == "2026-03-10" and m["end_date"] == "2026-04-10"
    assert m["status"] == "active" and m["auto_renew"] is True
    assert m["payment_method"] is None and m["payment_method_id"] is None
    assert m["used_hours"] == 0.0
    assert isinstance(answer["payment_id"], int)
    rows = db_query(
        gw,
        "SELECT membership_id, user_id, amount, currency, status, term_start, term_end,"
        " receipt_number FROM membership_payments WHERE id = ?",
        (answer["payment_id"],),
    )
    assert rows[0][:7] == (
        m["id"],
        m["user_id"],
        "150.00",
        "USD",
        "completed",
        "2026-03-10",
        "2026-04-10",
    )
    assert rows[0][7].startswith("RCP-")
    # No parking payment is created for a subscription.
    assert db_query(gw, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sorted(events_since(gw, mark)) == ["membership_payment_completed", "membership_started"]
    started = dict(payloads_since(gw, mark))["membership_started"]
    assert started["membership_id"] == m["id"] and started["vehicle_ids"] == m["vehicle_ids"]
    r = alice.get(f"/memberships/{m['id']}")
    assert r.status_code == 200 and r.json()["end_date"] == "2026-04-10"


def test_subscribe_payment_method_and_defaults(gw, admin, alice, cars):
    plan = make_plan(admin, name="Basic", price=20.0)
    r = alice.post("/memberships", json={"plan_id": plan["id"], "payment_method": "mobile"})
    assert r.status_code == 201, r.text
    m = r.json()["membership"]
    assert m["vehicle_ids"] == [] and m["auto_renew"] is False
    assert m["payment_method"] == "mobile"
    assert db_query(gw, "SELECT amount, payment_method FROM membership_payments") == [
        ("20.00", "mobile")
    ]


def test_subscribe_to_a_free_plan_records_no_payment(gw, admin, alice, cars):
    plan = make_plan(admin, name="Free tier", price=0)
    r = subscribe(alice, plan["id"], [cars[0]["id"]])
    assert r.status_code == 201, r.text
    assert r.json()["payment_id"] is None
    assert db_query(gw, "SELECT COUNT(*) FROM membership_payments") == [(0,)]


@pytest.mark.parametrize(
    ("today", "months", "end"),
    [
        (datetime(2026, 1, 31, 12, tzinfo=UTC), 1, "2026-02-28"),
        (datetime(2028, 1, 31, 12, tzinfo=UTC), 1, "2028-02-29"),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), 1, "2026-04-30"),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 12, "2027-03-10"),
        (datetime(2026, 11, 30, 8, tzinfo=UTC), 3, "2027-02-28"),
    ],
)
def test_term_is_whole_calendar_months(gw, admin, alice, cars, today, months, end):
    gw.clock.set(today)
    plan = make_plan(admin, name="Term", duration_months=months)
    m = member(alice, plan["id"], [cars[0]["id"]])
    assert m["start_date"] == today.date().isoformat()
    assert m["end_date"] == end


def test_duplicate_vehicle_ids_count_once(gw, admin, alice, cars):
    plan = make_plan(admin, name="Single", vehicle_limit=1)
    m = member(alice, plan["id"], [cars[0]["id"], cars[0]["id"]])
    assert m["vehicle_ids"] == [cars[0]["id"]]


def test_subscribe_refusals(gw, site, admin, alice, bob, anon, premium, cars):
    single = make_plan(admin, name="Single", vehicle_limit=1)
    withdrawn = make_plan(admin, name="Withdrawn", is_active=False)
    bobs = vehicle(bob, admin, "BOB1")
    mine = [c["id"] for c in cars]
    before = membership_state(gw)
    assert_refused(subscribe(anon, premium["id"], mine), 401)
    assert_refused(subscribe(alice, 999, mine), 404)
    assert_refused(subscribe(alice, single["id"], mine), 422)  # over the vehicle limit
    assert_refused(subscribe(alice, premium["id"], [mine[0], mine[1], bobs["id"]]), 422)
    assert_refused(subscribe(alice, premium["id"], [mine[0], 999]), 404)
    assert_refused(subscribe(alice, premium["id"], [mine[0], bobs["id"]]), 403)
    assert_refused(subscribe(alice, withdrawn["id"], [mine[0]]), 409)
    assert membership_state(gw) == before
    # One active membership per user.
    member(alice, premium["id"], mine)
    before = membership_state(gw)
    assert_refused(subscribe(alice, single["id"], []), 409)
    assert membership_state(gw) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"plan_id": "1"},
        {"plan_id": 0},
        {"plan_id": None},
        {"plan_id": 1, "vehicle_ids": 1},
        {"plan_id": 1, "vehicle_ids": ["1"]},
        {"plan_id": 1, "vehicle_ids": [0]},
        {"plan_id": 1, "vehicle_ids": None},
        {"plan_id": 1, "auto_renew": "yes"},
        {"plan_id": 1, "auto_renew": 1},
        {"plan_id": 1, "payment_method": "bitcoin"},
        {"plan_id": 1, "payment_method": "CARD"},
    ],
    ids=repr,
)
def test_subscribe_bad_bodies(gw, admin, alice, premium, body):
    before = membership_state(gw)
    assert_refused(alice.post("/memberships", json=body))
    assert membership_state(gw) == before


def test_vehicle_on_another_active_membership_is_409(gw, site, admin, operator, alice, bob):
    """A car Alice removed from her account (after it parked once) stays on her membership;
    Bob, who registers the plate next, cannot put it on a membership of his own."""
    plan = make_plan(admin, name="Shared", vehicle_limit=2)
    car = vehicle(alice, admin, "HANDME")
    member(alice, plan["id"], [car["id"]])
    park(gw, operator, "HANDME", 30)
    r = alice.delete(f"/vehicles/{car['id']}")
    assert r.status_code == 200, r.text
    claimed = vehicle(bob, admin, "HANDME")
    assert claimed["id"] == car["id"]
    before = membership_state(gw)
    assert_refused(subscribe(bob, plan["id"], [claimed["id"]]), 409)
    assert membership_state(gw) == before


# -- reading ------------------------------------------------------------------------------------


def test_list_memberships_visibility_and_filter(gw, admin, operator, alice, bob, anon, premium):
    a = member(alice, premium["id"], [])
    b = member(bob, premium["id"], [])
    assert alice.post(f"/memberships/{b['id']}/cancel").status_code == 403
    assert bob.post(f"/memberships/{b['id']}/cancel").status_code == 200
    r = alice.get("/memberships")
    assert r.status_code == 200, r.text
    page = r.json()
    assert set(page) >= {"memberships", "total", "page", "limit"}
    assert [m["id"] for m in page["memberships"]] == [a["id"]] and page["total"] == 1
    assert [m["id"] for m in bob.get("/memberships").json()["memberships"]] == [b["id"]]
    assert operator.get("/memberships").json()["memberships"] == []
    everything = admin.get("/memberships").json()
    assert [m["id"] for m in everything["memberships"]] == [a["id"], b["id"]]
    assert everything["total"] == 2
    active = admin.get("/memberships", params={"status": "active"}).json()
    assert [m["id"] for m in active["memberships"]] == [a["id"]]
    cancelled = admin.get("/memberships", params={"status": "cancelled"}).json()
    assert [m["id"] for m in cancelled["memberships"]] == [b["id"]]
    assert admin.get("/memberships", params={"status": "expired"}).json()["total"] == 0
    limited = admin.get("/memberships", params={"limit": 1, "page": 2}).json()
    assert [m["id"] for m in limited["memberships"]] == [b["id"]] and limited["total"] == 2
    for params in ({"status": "ACTIVE"}, {"status": "gone"}, {"limit": 0}, {"page": 0}):
        assert_refused(admin.get("/memberships", params=params))
    assert anon.get("/memberships").status_code == 401


def test_get_membership_access(gw, admin, operator, alice, bob, anon, premium):
    m = member(alice, premium["id"], [])
    assert alice.get(f"/memberships/{m['id']}").json()["id"] == m["id"]
    assert admin.get(f"/memberships/{m['id']}").json()["id"] == m["id"]
    assert_refused(bob.get(f"/memberships/{m['id']}"), 403)
    assert_refused(operator.get(f"/memberships/{m['id']}"), 403)
    assert anon.get(f"/memberships/{m['id']}").status_code == 401
    assert_refused(admin.get("/memberships/999"), 404)
    for path in ("usage",):
        assert alice.get(f"/memberships/{m['id']}/{path}").status_code == 200
        assert admin.get(f"/memberships/{m['id']}/{path}").status_code == 200
        assert_refused(bob.get(f"/memberships/{m['id']}/{path}"), 403)
        assert_refused(operator.get(f"/memberships/{m['id']}/{path}"), 403)
        assert anon.get(f"/memberships/{m['id']}/{path}").status_code == 401
        assert_refused(admin.get(f"/memberships/999/{path}"), 404)


# -- cancel and renew -----------------------------------------------------------------------


def test_cancel(gw, admin, operator, alice, bob, anon, premium, cars):
    m = member(alice, premium["id"], [c["id"] for c in cars], auto_renew=True)
    before = membership_state(gw)
    assert anon.post(f"/memberships/{m['id']}/cancel").status_code == 401
    assert_refused(bob.post(f"/memberships/{m['id']}/cancel"), 403)
    assert_refused(operator.post(f"/memberships/{m['id']}/cancel"), 403)
    assert_refused(alice.post("/memberships/999/cancel"), 404)
    assert membership_state(gw) == before
    mark = outbox_mark(gw)
    r = alice.post(f"/memberships/{m['id']}/cancel")
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled" and cancelled["auto_renew"] is False
    assert cancelled["end_date"] == m["end_date"]
    assert events_since(gw, mark) == ["membership_cancelled"]
    before = membership_state(gw)
    assert_refused(alice.post(f"/memberships/{m['id']}/cancel"), 409)
    assert_refused(admin.post(f"/memberships/{m['id']}/cancel"), 409)
    assert membership_state(gw) == before
    # The cars are free again: a new membership may list them.
    again = member(alice, premium["id"], [c["id"] for c in cars])
    assert again["id"] != m["id"]


def test_admin_may_cancel_and_renew_anyones(gw, admin, alice, premium):
    m = member(alice, premium["id"], [])
    r = admin.post(f"/memberships/{m['id']}/renew")
    assert r.status_code == 200, r.text
    assert r.json()["membership"]["end_date"] == "2026-05-10"
    r = admin.post(f"/memberships/{m['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_renew_active_extends_by_one_term(gw, admin, operator, alice, bob, anon, premium):
    m = member(alice, premium["id"], [])
    gw.clock.advance(days=20)
    before = membership_state(gw)
    assert anon.post(f"/memberships/{m['id']}/renew").status_code == 401
    assert_refused(bob.post(f"/memberships/{m['id']}/renew"), 403)
    assert_refused(operator.post(f"/memberships/{m['id']}/renew"), 403)
    assert_refused(alice.post("/memberships/999/renew"), 404)
    assert membership_state(gw) == before
    mark = outbox_mark(gw)
    r = alice.post(f"/memberships/{m['id']}/renew")
    assert r.status_code == 200, r.text
    answer = r.json()
    renewed = answer["membership"]
    assert renewed["start_date"] == "2026-03-10" and renewed["end_date"] == "2026-05-10"
    assert renewed["status"] == "active"
    assert db_query(
        gw,
        "SELECT amount, term_start, term_end FROM membership_payments WHERE id = ?",
        (answer["payment_id"],),
    ) == [("150.00", "2026-04-10", "2026-05-10")]
    assert sorted(events_since(gw, mark)) == ["membership_payment_completed", "membership_renewed"]
    assert usage(alice, m["id"])["days_remaining"] == 41  # 2026-03-30 .. 2026-05-10
    # Renewing again adds another term.
    r = alice.post(f"/memberships/{m['id']}/renew")
    assert r.json()["membership"]["end_date"] == "2026-06-10"


def test_renew_cancelled_restarts_from_today(gw, admin, alice, premium):
    m = member(alice, premium["id"], [])
    alice.post(f"/memberships/{m['id']}/cancel")
    gw.clock.advance(days=5)
    r = alice.post(f"/memberships/{m['id']}/renew")
    assert r.status_code == 200, r.text
    renewed = r.json()["membership"]
    assert renewed["status"] == "active"
    assert renewed["start_date"] == "2026-03-15" and renewed["end_date"] == "2026-04-15"
    assert isinstance(r.json()["payment_id"], int)
    assert db_query(gw, "SELECT COUNT(*) FROM membership_payments") == [(2,)]


def test_renew_expired_restarts_from_today(gw, admin, alice, anon, premium):
    m = member(alice, premium["id"], [], auto_renew=False)
    gw.clock.set(datetime(2026, 4, 11, 8, tzinfo=UTC))  # the day after the term
    r = alice.get(f"/memberships/{m['id']}")
    assert r.json()["status"] == "expired"
    assert usage(alice, m["id"])["days_remaining"] == 0
    expired = alice.get("/memberships", params={"status": "expired"}).json()
    assert [x["id"] for x in expired["memberships"]] == [m["id"]]
    assert alice.get("/memberships", params={"status": "active"}).json()["total"] == 0
    assert_refused(alice.post(f"/memberships/{m['id']}/cancel"), 409)
    r = alice.post(f"/memberships/{m['id']}/renew")
    assert r.status_code == 200, r.text
    renewed = r.json()["membership"]
    assert renewed["status"] == "active"
    assert (renewed["start_date"], renewed["end_date"]) == ("2026-04-11", "2026-05-11")


def test_auto_renew_keeps_a_membership_active_past_its_end_date(gw, admin, alice, premium):
    m = member(alice, premium["id"], [], auto_renew=True)
    gw.clock.set(datetime(2026, 4, 11, 8, tzinfo=UTC))
    assert alice.get(f"/memberships/{m['id']}").json()["status"] == "active"


def test_renew_refused_while_another_membership_is_active(gw, admin, alice, premium, cars):
    first = member(alice, premium["id"], [cars[0]["id"]])
    alice.post(f"/memberships/{first['id']}/cancel")
    member(alice, premium["id"], [cars[0]["id"]])
    before = membership_state(gw)
    assert_refused(alice.post(f"/memberships/{first['id']}/renew"), 409)
    assert membership_state(gw) == before


def test_subscribing_with_an_ended_membership_is_allowed(gw, admin, alice, premium, cars):
    first = member(alice, premium["id"], [cars[0]["id"]])
    gw.clock.set(datetime(2026, 4, 11, 8, tzinfo=UTC))
    second = member(alice, premium["id"], [cars[0]["id"]])
    assert second["id"] != first["id"] and second["start_date"] == "2026-04-11"


# -- the benefit: fees of member stays and usage --------------------------------------------


def test_member_stay_gets_the_discount_seed_plan(
    gw, site, admin, operator, alice, anon, premium, cars
):
    m = member(alice, premium["id"], [c["id"] for c in cars], auto_renew=True)
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=127)
    body = fee(anon, sid)
    assert body["duration_minutes"] == 127
    assert (body["base_fee"], body["discounts"], body["tax"], body["total"]) == (
        15.0,
        3.0,
        0.0,
        12.0,
    )
    assert lines(body) == [
        ("Parking (3 hour(s) @ $5/hr)", 15.0),
        ("Membership discount (20%)", -3.0),
    ]
    # An active stay counts in usage with its current discount.
    u = usage(alice, m["id"])
    assert u["hours_used"] == 2.12 and u["sessions_count"] == 1
    assert u["savings_to_date"] == 3.0
    assert_refused(pay(alice, sid, 11.99), 402)
    r = pay(alice, sid, 12.0)
    assert r.status_code == 201, r.text
    assert r.json()["total_amount"] == 12.0
    r = operator.post("/sessions/exit", json={"license_plate": "ALICE1"})
    assert r.status_code == 200, r.text
    # The second car, 40 minutes: one started hour, 20% off.
    gw.clock.advance(minutes=3)
    second = park(gw, operator, "ALICE2", 40)
    assert (second["base_fee"], second["discounts"], second["total"]) == (5.0, 1.0, 4.0)
    u = usage(alice, m["id"])
    assert set(u) >= USAGE_FIELDS
    assert u["membership_id"] == m["id"]
    assert u["hours_used"] == 2.78  # (127 + 40) / 60
    assert u["hours_remaining"] is None
    assert u["sessions_count"] == 2
    assert u["savings_to_date"] == 4.0
    assert u["days_remaining"] == 31
    assert alice.get(f"/memberships/{m['id']}").json()["used_hours"] == 2.78
    # Recorded at the exit: a later rate change does not rewrite the savings.
    admin.put(f"/rates/{site['rate']['id']}", json={"amount": 50.0})
    assert usage(alice, m["id"])["savings_to_date"] == 4.0


def test_member_discount_then_a_code(gw, site, admin, operator, alice, premium, cars):
    member(alice, premium["id"], [cars[0]["id"]])
    make_discount(admin, "SUMMER20")
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=127)
    assert fee(alice, sid)["total"] == 12.0
    r = pay(alice, sid, 9.6, discount_code="summer20")
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["amount"], p["discount_amount"], p["total_amount"]) == (12.0, 2.4, 9.6)


def test_included_hours_are_consumed_first(gw, site, admin, operator, alice, anon, cars):
    plan = make_plan(
        admin,
        name="Commuter",
        price=30.0,
        vehicle_limit=2,
        included_hours=3,
        discount_percentage=10,
    )
    m = member(alice, plan["id"], [c["id"] for c in cars])
    assert usage(alice, m["id"])["hours_remaining"] == 3.0
    # 2 hours, all within the allowance: free, the barrier opens without a payment.
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=120)
    body = fee(anon, sid)
    assert (body["base_fee"], body["discounts"], body["total"]) == (10.0, 10.0, 0.0)
    assert lines(body) == [
        ("Parking (2 hour(s) @ $5/hr)", 10.0),
        ("Membership included hours (2.00 h)", -10.0),
    ]
    r = operator.post("/sessions/exit", json={"license_plate": "ALICE1"})
    assert r.status_code == 200, r.text
    assert r.json()["payment_due"] == 0.0
    assert db_query(gw, "SELECT COUNT(*) FROM payments") == [(0,)]
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["hours_remaining"], u["sessions_count"]) == (2.0, 1.0, 1)
    assert u["savings_to_date"] == 10.0
    # 2 h 30 min with 1 hour left: 3 started hours ($15); the hour left covers $5, the
    # remaining 90 minutes ($10) get 10% off.
    body = park(gw, operator, "ALICE2", 150)
    assert (body["base_fee"], body["discounts"], body["total"]) == (15.0, 6.0, 9.0)
    assert lines(body) == [
        ("Parking (3 hour(s) @ $5/hr)", 15.0),
        ("Membership included hours (1.00 h)", -5.0),
        ("Membership discount (10%)", -1.0),
    ]
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["hours_remaining"], u["sessions_count"]) == (4.5, 0.0, 2)
    assert u["savings_to_date"] == 16.0
    # Allowance used up: the discount still applies to the whole fee.
    body = park(gw, operator, "ALICE1", 60)
    assert (body["base_fee"], body["discounts"], body["total"]) == (5.0, 0.5, 4.5)
    assert lines(body) == [
        ("Parking (1 hour(s) @ $5/hr)", 5.0),
        ("Membership discount (10%)", -0.5),
    ]
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["hours_remaining"], u["sessions_count"]) == (5.5, 0.0, 3)
    assert u["savings_to_date"] == 16.5


def test_included_hours_without_discount(gw, site, admin, operator, alice, anon, cars):
    plan = make_plan(admin, name="Hours only", included_hours=1)
    member(alice, plan["id"], [cars[0]["id"]])
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=150)
    body = fee(anon, sid)
    # 3 started hours; the included hour leaves 90 minutes = 2 started hours to pay.
    assert (body["base_fee"], body["discounts"], body["total"]) == (15.0, 5.0, 10.0)
    assert lines(body) == [
        ("Parking (3 hour(s) @ $5/hr)", 15.0),
        ("Membership included hours (1.00 h)", -5.0),
    ]


def test_stays_within_the_grace_period_stay_free_and_untouched(
    gw, site, admin, operator, alice, anon, premium, cars
):
    m = member(alice, premium["id"], [cars[0]["id"]])
    body = park(gw, operator, "ALICE1", 10)
    assert (body["base_fee"], body["discounts"], body["total"]) == (0.0, 0.0, 0.0)
    assert usage(alice, m["id"])["savings_to_date"] == 0.0


def test_full_discount_plan_exits_free(gw, site, admin, operator, alice, anon, cars):
    plan = make_plan(admin, name="Staff pass", price=0, discount_percentage=100)
    member(alice, plan["id"], [cars[0]["id"]])
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=600)
    body = fee(anon, sid)
    assert (body["base_fee"], body["discounts"], body["total"]) == (50.0, 50.0, 0.0)
    r = operator.post("/sessions/exit", json={"license_plate": "ALICE1"})
    assert r.status_code == 200, r.text


def test_only_listed_vehicles_benefit(gw, site, admin, operator, alice, bob, anon, premium, cars):
    member(alice, premium["id"], [cars[0]["id"]])
    vehicle(bob, admin, "BOB1")
    for plate in ("ALICE2", "BOB1", "WALKIN"):
        sid = enter(operator, plate)["session"]["id"]
        body = fee(anon, sid, exit_time="2026-03-10T10:00:00Z")
        assert (body["base_fee"], body["discounts"], body["total"]) == (5.0, 0.0, 5.0), plate


def test_cancelled_membership_stops_the_benefit_at_once(
    gw, site, admin, operator, alice, anon, premium, cars
):
    m = member(alice, premium["id"], [cars[0]["id"]])
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=60)
    assert fee(anon, sid)["total"] == 4.0
    alice.post(f"/memberships/{m['id']}/cancel")
    body = fee(anon, sid)
    assert (body["discounts"], body["total"]) == (0.0, 5.0)


def test_expired_membership_gives_no_benefit(gw, site, admin, operator, alice, anon, premium, cars):
    member(alice, premium["id"], [cars[0]["id"]], auto_renew=False)
    gw.clock.set(datetime(2026, 4, 11, 8, tzinfo=UTC))
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=60)
    assert fee(anon, sid)["total"] == 5.0


def test_usage_counts_only_the_current_term(gw, site, admin, operator, alice, premium, cars):
    park(gw, operator, "ALICE1", 60)  # before subscribing: not a member stay
    gw.clock.advance(days=1)
    m = member(alice, premium["id"], [cars[0]["id"]])
    body = park(gw, operator, "ALICE1", 60)
    assert body["total"] == 4.0
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["sessions_count"], u["savings_to_date"]) == (1.0, 1, 1.0)
    assert u["days_remaining"] == 31  # 2026-03-11 .. 2026-04-11
    gw.clock.advance(days=10)
    assert usage(alice, m["id"])["days_remaining"] == 21


@pytest.mark.parametrize(
    ("minutes", "included", "total"),
    [
        (60, 5.0, 0.0),  # exactly the hour included
        (61, 5.0, 5.0),  # one minute past it: a second started hour
        (70, 5.0, 5.0),  # the 10 minutes left are not a stay "within the grace period"
        (135, 5.0, 10.0),  # 3 started hours; the hour included leaves 75 min = 2 hours
    ],
)
def test_what_the_included_time_leaves_is_billed_without_grace(
    gw, site, admin, operator, alice, anon, cars, minutes, included, total
):
    """The stay is past its grace period, so it is billed from entry (9.2); the included
    hour covers its first hour and the rest is billed in started hours, however short."""
    plan = make_plan(admin, name="One hour", included_hours=1)
    member(alice, plan["id"], [cars[0]["id"]])
    sid = enter(operator, "ALICE1")["session"]["id"]
    gw.clock.advance(minutes=minutes)
    body = fee(anon, sid)
    assert (body["discounts"], body["total"]) == (included, total)
    assert lines(body)[1] == ("Membership included hours (1.00 h)", -included)


def test_usage_of_an_ended_term_ignores_later_stays(
    gw, site, admin, operator, alice, premium, cars
):
    m = member(alice, premium["id"], [cars[0]["id"]], auto_renew=False)
    park(gw, operator, "ALICE1", 60)
    gw.clock.set(datetime(2026, 4, 15, 8, tzinfo=UTC))  # expired on 2026-04-10
    body = park(gw, operator, "ALICE1", 120)
    assert body["total"] == 10.0  # no benefit any more
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["sessions_count"], u["savings_to_date"]) == (1.0, 1, 1.0)
    assert u["days_remaining"] == 0


def test_usage_of_a_cancelled_membership_ignores_later_stays(
    gw, site, admin, operator, alice, premium, cars
):
    m = member(alice, premium["id"], [cars[0]["id"]])
    park(gw, operator, "ALICE1", 60)
    alice.post(f"/memberships/{m['id']}/cancel")
    gw.clock.advance(minutes=30)
    assert park(gw, operator, "ALICE1", 120)["total"] == 10.0
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["sessions_count"], u["savings_to_date"]) == (1.0, 1, 1.0)


# -- a site east of UTC: membership dates are UTC calendar dates ---------------------------------


@pytest.fixture
def berlin(tmp_path, clock) -> Iterator[Running]:
    """A daemon whose site is in Berlin (CET, UTC+1, in March 2026)."""
    base = make_config(tmp_path)
    config = replace(base, site=replace(base.site, timezone="Europe/Berlin"))
    daemon, thread = start_daemon(config, clock)
    running = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    running.user("admin@example.com", "admin")
    running.user("operator@example.com", "operator")
    running.user("alice@example.com", "customer")
    try:
        yield running
    finally:
        daemon.request_stop()
        thread.join(15)
        assert not thread.is_alive(), "daemon did not stop"


def test_membership_dates_are_utc_dates_on_a_site_east_of_utc(berlin):
    """Subscribed at 00:30 in Berlin on the 11th, which is 23:30 UTC on the 10th: the term
    starts on the UTC date, and a car entering right away is a member's car."""
    gw = berlin
    gw.clock.set(datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
    with (
        gw.client("admin@example.com") as admin,
        gw.client("operator@example.com") as operator,
        gw.client("alice@example.com") as alice,
    ):
        level = admin.post("/levels", json={"name": "L1", "floor_number": 1}).json()
        zone = admin.post("/zones", json={"level_id": level["id"], "name": "Z"}).json()
        admin.post("/spaces", json={"zone_id": zone["id"], "space_number": "B-1"})
        admin.post(
            "/rates",
            json={"name": "Hourly", "amount": 5.0, "effective_from": "2024-01-01T00:00:00Z"},
        )
        plan = make_plan(admin, name="Berlin", discount_percentage=20)
        car = vehicle(alice, admin, "B-AL-1")
        m = member(alice, plan["id"], [car["id"]])
        assert (m["start_date"], m["end_date"]) == ("2026-03-10", "2026-04-10")
        sid = enter(operator, "B-AL-1")["session"]["id"]
        gw.clock.advance(minutes=60)
        body = fee(operator, sid)
        assert (body["base_fee"], body["discounts"], body["total"]) == (5.0, 1.0, 4.0)
        u = usage(alice, m["id"])
        # Now 00:30 UTC on the 11th: 30 days to the 10th of April.
        assert (u["sessions_count"], u["savings_to_date"], u["days_remaining"]) == (1, 1.0, 30)


def test_included_hours_are_fresh_in_each_term(gw, site, admin, operator, alice, cars):
    """A monthly plan's allowance counts the current term only: renewing gives new hours."""
    plan = admin.post(
        "/membership-plans",
        json={
            "name": "Two hours a month",
            "duration_months": 1,
            "price": 10,
            "included_hours": 2,
            "discount_percentage": 0,
        },
    ).json()
    m = member(alice, plan["id"], [cars[0]["id"]], auto_renew=True)
    assert park(gw, operator, "ALICE1", 120)["total"] == 0.0  # the two hours
    assert park(gw, operator, "ALICE1", 60)["total"] == 5.0  # used up this term
    assert usage(alice, m["id"])["hours_remaining"] == 0.0
    gw.clock.set(datetime(2026, 4, 12, 9, tzinfo=UTC))  # the next term (from 2026-04-10)
    alice.post(f"/memberships/{m['id']}/renew")
    assert park(gw, operator, "ALICE1", 60)["total"] == 0.0  # fresh hours
    u = usage(alice, m["id"])
    assert (u["hours_used"], u["hours_remaining"], u["sessions_count"]) == (1.0, 1.0, 1)
