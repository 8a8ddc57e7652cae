"""Payments over HTTP (field reference section 11): paying a session, discount codes at the
pay station, the listing and its visibility, and the exit kiosk's validate-exit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from api_kit import (
    assert_refused,
    db_query,
    enter,
    events_since,
    make_discount,
    outbox_mark,
    pay,
    payloads_since,
    snapshot,
    when,
)

RECEIPT = re.compile(r"RCP-[0-9A-F]{12}")


def stay(gw, operator, plate, minutes):
    """A session parked for ``minutes`` until now (back-dated entry); returns (id, ticket)."""
    body = enter(
        operator, plate, entry_time=(gw.clock.now() - timedelta(minutes=minutes)).isoformat()
    )
    return body["session"]["id"], body["ticket_number"]


def uses(admin, code):
    found = [
        d for d in admin.get("/discounts", params={"is_active": "true"}).json() if d["code"] == code
    ]
    found += [
        d
        for d in admin.get("/discounts", params={"is_active": "false"}).json()
        if d["code"] == code
    ]
    return found[0]["current_uses"]


# -- paying ------------------------------------------------------------------------------------


def test_exact_payment(gw, site, operator, alice):
    sid, _ = stay(gw, operator, "PAY1", 60)
    mark = outbox_mark(gw)
    r = pay(alice, sid, 5.0)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["session_id"] == sid
    assert p["user_id"] == gw.user_ids["alice@example.com"]
    assert p["amount"] == 5.0 and p["amount_tendered"] == 5.0
    assert p["currency"] == "USD"
    assert p["payment_method"] == "card"
    assert p["status"] == "completed"
    assert p["transaction_id"] is None
    assert p["discount_id"] is None and p["discount_amount"] == 0.0
    assert p["tax_amount"] == 0.0
    assert p["total_amount"] == 5.0
    assert RECEIPT.fullmatch(p["receipt_number"])
    assert when(p["paid_at"]) == gw.clock.now()
    assert isinstance(p["id"], int) and p["created_at"] and p["updated_at"]
    assert events_since(gw, mark) == ["payment_completed"]
    event = payloads_since(gw, mark)[0][1]
    assert event["payment_id"] == p["id"] and event["session_id"] == sid


def test_insufficient_payment_is_402_and_records_nothing(gw, site, operator, alice):
    sid, _ = stay(gw, operator, "PAY2", 60)
    before = snapshot(gw)
    r = pay(alice, sid, 4.0)
    assert r.status_code == 402, r.text
    assert r.json()["amount_due"] == 5.0
    assert isinstance(r.json()["detail"], str)
    r = pay(alice, sid, 4.99)
    assert r.status_code == 402 and r.json()["amount_due"] == 5.0
    assert snapshot(gw) == before


def test_overpayment_is_accepted_and_reports_the_charge(gw, site, operator, alice):
    sid, _ = stay(gw, operator, "PAY3", 60)
    r = alice.post("/payments", json={"session_id": sid, "payment_method": "cash", "amount": 20.0})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["total_amount"] == 5.0 and p["amount"] == 5.0
    assert p["amount_tendered"] == 20.0 and p["payment_method"] == "cash"


def test_already_paid_is_409(gw, site, operator, alice, bob):
    sid, _ = stay(gw, operator, "PAY4", 60)
    assert pay(alice, sid, 5.0).status_code == 201
    before = snapshot(gw)
    for client, amount in ((alice, 5.0), (bob, 0.0), (operator, 100.0)):
        assert_refused(pay(client, sid, amount), 409)
    assert snapshot(gw) == before


def test_nothing_due_is_nothing_to_pay(gw, site, operator, alice):
    """A payment settles a positive amount due; a 0.00 one used to open an exit window."""
    sid, _ = stay(gw, operator, "PAY5", 10)  # within the grace period: fee 0
    before = snapshot(gw)
    for amount in (0.0, 5.0):
        r = pay(alice, sid, amount)
        assert_refused(r, 409)
        assert "nothing to pay" in r.json()["detail"]
    assert snapshot(gw) == before


def test_anyone_logged_in_may_pay_for_any_session(gw, site, operator, admin, anon):
    sid, _ = stay(gw, operator, "PAY6", 60)
    before = snapshot(gw)
    assert (
        anon.post(
            "/payments", json={"session_id": sid, "payment_method": "card", "amount": 5}
        ).status_code
        == 401
    )
    assert snapshot(gw) == before
    r = operator.post(
        "/payments", json={"session_id": sid, "payment_method": "mobile", "amount": 5}
    )
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == gw.user_ids["operator@example.com"]
    assert r.json()["payment_method"] == "mobile"


def test_payment_for_unknown_or_completed_session(gw, site, operator, alice):
    before = snapshot(gw)
    assert_refused(pay(alice, 999999, 5.0), 404)
    assert snapshot(gw) == before
    body = enter(operator, "GONE1")
    gw.clock.advance(minutes=5)
    assert (
        operator.post("/sessions/exit", json={"ticket_number": body["ticket_number"]}).status_code
        == 200
    )
    before = snapshot(gw)
    assert_refused(pay(alice, body["session"]["id"], 5.0), 409)
    assert snapshot(gw) == before


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": None},
        {"session_id": "1"},
        {"session_id": 0},
        {"session_id": 1.5},
        {"session_id": True},
        {"payment_method": None},
        {"payment_method": "bitcoin"},
        {"payment_method": "CARD"},
        {"payment_method": 1},
        {"amount": None},
        {"amount": -5},
        {"amount": -0.01},
        {"amount": "NaN"},
        {"amount": "nan"},
        {"amount": "-Infinity"},
        {"amount": "5.00"},
        {"amount": "five"},
        {"amount": True},
        {"amount": {"value": 5}},
        {"discount_code": 20},
        {"discount_code": "X" * 51},
    ],
)
def test_payment_bad_bodies(gw, site, operator, alice, change):
    sid, _ = stay(gw, operator, "BADPAY", 60)
    body = {"session_id": sid, "payment_method": "card", "amount": 5.0, **change}
    before = snapshot(gw)
    assert_refused(alice.post("/payments", json=body))
    assert snapshot(gw) == before


@pytest.mark.parametrize("missing", ["session_id", "payment_method", "amount"])
def test_payment_missing_fields(gw, site, operator, alice, missing):
    sid, _ = stay(gw, operator, "MISS1", 60)
    body = {"session_id": sid, "payment_method": "card", "amount": 5.0}
    del body[missing]
    before = snapshot(gw)
    assert_refused(alice.post("/payments", json=body))
    assert snapshot(gw) == before


def test_payment_not_json(gw, site, operator, alice):
    stay(gw, operator, "NJ1", 60)
    before = snapshot(gw)
    assert_refused(
        alice.post(
            "/payments", content=b"session_id=1", headers={"Content-Type": "application/json"}
        )
    )
    assert_refused(alice.post("/payments", json=[1, "card", 5]))
    assert_refused(alice.post("/payments", content=b""))
    assert snapshot(gw) == before


# -- discount codes at payment -----------------------------------------------------------------


def test_percentage_code(gw, site, operator, admin, alice):
    d = make_discount(admin, "TWENTY", value=20)
    sid, _ = stay(gw, operator, "PCT1", 60)
    mark = outbox_mark(gw)
    r = pay(alice, sid, 4.0, discount_code="twenty")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["amount"] == 5.0 and p["discount_amount"] == 1.0 and p["total_amount"] == 4.0
    assert p["discount_id"] == d["id"]
    assert events_since(gw, mark) == ["payment_completed"]
    assert uses(admin, "TWENTY") == 1


def test_fixed_amount_code_never_takes_more_than_due(gw, site, operator, admin, alice):
    make_discount(admin, "FIFTY", discount_type="fixed_amount", value=50.0)
    sid, _ = stay(gw, operator, "FIX1", 60)
    r = pay(alice, sid, 0.0, discount_code="FIFTY")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["discount_amount"] == 5.0 and p["total_amount"] == 0.0 and p["amount"] == 5.0


def test_fixed_amount_code_partial(gw, site, operator, admin, alice):
    make_discount(admin, "TWO", discount_type="fixed_amount", value=2.5)
    sid, _ = stay(gw, operator, "FIX2", 127)
    r = pay(alice, sid, 12.49, discount_code="TWO")
    assert r.status_code == 402 and r.json()["amount_due"] == 12.5
    r = pay(alice, sid, 12.5, discount_code="TWO")
    assert r.status_code == 201 and r.json()["discount_amount"] == 2.5


def test_free_hours_code(gw, site, operator, admin, alice, bob):
    make_discount(admin, "HOUR", discount_type="free_hours", value=1)
    one_hour, _ = stay(gw, operator, "FH1", 60)
    r = pay(alice, one_hour, 0.0, discount_code="HOUR")
    assert r.status_code == 201, r.text
    assert r.json()["discount_amount"] == 5.0 and r.json()["total_amount"] == 0.0
    two_hours, _ = stay(gw, operator, "FH2", 120)
    r = pay(bob, two_hours, 5.0, discount_code="HOUR")
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == 10.0
    assert r.json()["discount_amount"] == 5.0 and r.json()["total_amount"] == 5.0


def test_seed_example_15_with_20_percent(gw, site, operator, admin, alice):
    make_discount(
        admin,
        "SUMMER20",
        name="Summer Sale 20% Off",
        value=20.0,
        max_uses=1000,
    )
    sid, _ = stay(gw, operator, "SEED1", 127)
    before = snapshot(gw)
    r = alice.post(
        "/payments",
        json={
            "session_id": sid,
            "payment_method": "card",
            "amount": 11.99,
            "discount_code": "SUMMER20",
        },
    )
    assert r.status_code == 402, r.text
    assert r.json()["amount_due"] == 12.0
    assert snapshot(gw) == before  # the code is not used up by a refused payment
    r = alice.post(
        "/payments",
        json={
            "session_id": sid,
            "payment_method": "card",
            "amount": 12.0,
            "discount_code": "SUMMER20",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["discount_amount"] == 3.0 and r.json()["total_amount"] == 12.0
    assert r.json()["amount"] == 15.0
    assert uses(admin, "SUMMER20") == 1


def test_max_uses_counted_on_use(gw, site, operator, admin, alice, bob):
    make_discount(admin, "ONCE", max_uses=1, max_uses_per_user=5)
    first, _ = stay(gw, operator, "MU1", 60)
    second, _ = stay(gw, operator, "MU2", 60)
    # A refused (402) payment does not count.
    assert pay(alice, first, 1.0, discount_code="ONCE").status_code == 402
    assert uses(admin, "ONCE") == 0
    assert pay(alice, first, 4.0, discount_code="ONCE").status_code == 201
    assert uses(admin, "ONCE") == 1
    before = snapshot(gw)
    r = pay(bob, second, 4.0, discount_code="ONCE")
    assert_refused(r, 422)
    assert "usage limit reached" in r.json()["detail"].lower()
    assert snapshot(gw) == before
    # Without the code the payment goes through.
    assert pay(bob, second, 5.0).status_code == 201


def test_per_user_limit_applies_to_customers_only(gw, site, operator, admin, alice, bob):
    make_discount(admin, "PERUSER")  # max_uses_per_user defaults to 1
    s1, _ = stay(gw, operator, "PU1", 60)
    s2, _ = stay(gw, operator, "PU2", 60)
    s3, _ = stay(gw, operator, "PU3", 60)
    s4, _ = stay(gw, operator, "PU4", 60)
    assert pay(alice, s1, 4.0, discount_code="PERUSER").status_code == 201
    before = snapshot(gw)
    r = pay(alice, s2, 4.0, discount_code="peruser")
    assert_refused(r, 422)
    assert "usage limit reached for this user" in r.json()["detail"].lower()
    assert snapshot(gw) == before
    assert pay(bob, s2, 4.0, discount_code="PERUSER").status_code == 201
    # Staff paying at the booth are not limited per user.
    assert pay(operator, s3, 4.0, discount_code="PERUSER").status_code == 201
    assert pay(operator, s4, 4.0, discount_code="PERUSER").status_code == 201
    assert uses(admin, "PERUSER") == 4


def test_per_user_limit_above_one(gw, site, operator, admin, alice):
    make_discount(admin, "TWICE", max_uses_per_user=2)
    sessions = [stay(gw, operator, f"TW{n}", 60)[0] for n in range(3)]
    assert pay(alice, sessions[0], 4.0, discount_code="TWICE").status_code == 201
    assert pay(alice, sessions[1], 4.0, discount_code="TWICE").status_code == 201
    assert_refused(pay(alice, sessions[2], 4.0, discount_code="TWICE"), 422)


def test_unusable_codes_are_422_and_record_nothing(gw, site, operator, admin, alice):
    make_discount(admin, "OFF")
    admin.delete(f"/discounts/{make_discount(admin, 'DEAD')['id']}")
    make_discount(admin, "OLD", valid_from="2025-01-01T00:00:00Z", valid_to="2025-12-31T00:00:00Z")
    make_discount(
        admin, "LATER", valid_from="2027-01-01T00:00:00Z", valid_to="2027-12-31T00:00:00Z"
    )
    make_discount(admin, "LONG", min_duration_hours=2)
    sid, _ = stay(gw, operator, "CODE1", 60)
    before = snapshot(gw)
    for code, words in (
        ("NOSUCHCODE", "invalid discount code"),
        ("DEAD", "not active"),
        ("OLD", "expired"),
        ("LATER", "not yet valid"),
        ("LONG", "minimum parking duration"),
        ("   ", "invalid discount code"),
    ):
        r = pay(alice, sid, 100.0, discount_code=code)
        assert_refused(r, 422)
        assert words in r.json()["detail"].lower(), (code, r.json())
    assert snapshot(gw) == before
    # The session can still be paid without a code.
    assert pay(alice, sid, 5.0).status_code == 201


def test_code_on_a_free_stay(gw, site, operator, admin, alice):
    make_discount(admin, "FREEBIE")
    sid, _ = stay(gw, operator, "FREE9", 5)
    before = snapshot(gw)
    r = pay(alice, sid, 0.0, discount_code="FREEBIE")
    assert_refused(r, 409)
    assert "nothing to pay" in r.json()["detail"]
    assert snapshot(gw) == before and uses(admin, "FREEBIE") == 0


# -- listing and reading ---------------------------------------------------------------------


def test_list_payments_visibility_and_total(gw, site, operator, admin, alice, bob, anon):
    s1, _ = stay(gw, operator, "LP1", 60)
    s2, _ = stay(gw, operator, "LP2", 127)
    s3, _ = stay(gw, operator, "LP3", 90)
    p1 = pay(alice, s1, 5.0).json()
    p2 = pay(bob, s2, 20.0).json()
    p3 = pay(operator, s3, 10.0).json()
    everything = admin.get("/payments").json()
    assert set(everything) >= {"payments", "total", "page", "limit", "total_amount"}
    assert [p["id"] for p in everything["payments"]] == [p1["id"], p2["id"], p3["id"]]
    assert everything["total"] == 3 and everything["page"] == 1 and everything["limit"] == 20
    assert everything["total_amount"] == 30.0
    mine = alice.get("/payments").json()
    assert [p["id"] for p in mine["payments"]] == [p1["id"]]
    assert mine["total"] == 1 and mine["total_amount"] == 5.0
    bobs = bob.get("/payments").json()
    assert [p["id"] for p in bobs["payments"]] == [p2["id"]] and bobs["total_amount"] == 15.0
    ops = operator.get("/payments").json()
    assert [p["id"] for p in ops["payments"]] == [p3["id"]] and ops["total_amount"] == 10.0
    # Filters and paging.
    completed = admin.get("/payments", params={"status": "completed"}).json()
    assert completed["total"] == 3
    pending = admin.get("/payments", params={"status": "pending"}).json()
    assert pending["payments"] == [] and pending["total"] == 0 and pending["total_amount"] == 0.0
    paged = admin.get("/payments", params={"limit": 2, "page": 2}).json()
    assert [p["id"] for p in paged["payments"]] == [p3["id"]]
    assert paged["total"] == 3 and paged["total_amount"] == 30.0
    for params in ({"status": "paid"}, {"limit": 0}, {"page": "one"}):
        assert_refused(admin.get("/payments", params=params))
    assert anon.get("/payments").status_code == 401


def test_get_payment_own_or_admin(gw, site, operator, admin, alice, bob, anon):
    sid, _ = stay(gw, operator, "GP1", 60)
    p = pay(alice, sid, 5.0).json()
    mine = alice.get(f"/payments/{p['id']}")
    assert mine.status_code == 200 and mine.json() == p
    assert admin.get(f"/payments/{p['id']}").status_code == 200
    assert_refused(bob.get(f"/payments/{p['id']}"), 403)
    assert_refused(operator.get(f"/payments/{p['id']}"), 403)
    assert anon.get(f"/payments/{p['id']}").status_code == 401
    assert_refused(alice.get("/payments/999999"), 404)
    assert_refused(admin.get("/payments/999999"), 404)


# -- validate-exit ---------------------------------------------------------------------------


def validate(client, ticket):
    r = client.post("/payments/validate-exit", json={"ticket_number": ticket})
    assert r.status_code == 200, r.text
    return r.json()


def test_validate_exit_unpaid_and_grace(gw, site, operator, anon):
    body = enter(operator, "VE1")
    ticket = body["ticket_number"]
    gw.clock.advance(minutes=5)
    v = validate(anon, ticket)
    assert v == {
        **v,
        "is_paid": False,
        "can_exit": True,
        "time_remaining_minutes": 10,
        "amount_due": 0,
    }
    gw.clock.advance(minutes=10)
    v = validate(anon, ticket)
    assert v["can_exit"] is True and v["time_remaining_minutes"] == 0 and v["amount_due"] == 0
    gw.clock.advance(minutes=1)
    v = validate(anon, ticket)
    assert v["is_paid"] is False and v["can_exit"] is False
    assert v["time_remaining_minutes"] is None and v["amount_due"] == 5.0


def test_validate_exit_after_paying_counts_down(gw, site, operator, alice, anon):
    body = enter(operator, "VE2")
    ticket, sid = body["ticket_number"], body["session"]["id"]
    gw.clock.advance(minutes=60)
    assert pay(alice, sid, 5.0).status_code == 201
    v = validate(anon, ticket)
    assert v["is_paid"] is True and v["can_exit"] is True
    assert v["time_remaining_minutes"] == 15 and v["amount_due"] == 0
    gw.clock.advance(minutes=1)
    assert validate(anon, ticket)["time_remaining_minutes"] == 14
    gw.clock.advance(seconds=30)
    assert validate(anon, ticket)["time_remaining_minutes"] == 14  # rounded up
    gw.clock.advance(minutes=13, seconds=30)
    v = validate(anon, ticket)
    assert v["time_remaining_minutes"] == 0 and v["can_exit"] is True
    gw.clock.advance(minutes=1)  # window over; the stay is in its second hour
    v = validate(anon, ticket)
    assert v["is_paid"] is True and v["can_exit"] is False
    assert v["time_remaining_minutes"] == 0 and v["amount_due"] == 5.0
    # Paying the difference opens a new window.
    r = pay(alice, sid, 5.0)
    assert r.status_code == 201 and r.json()["amount"] == 5.0 and r.json()["total_amount"] == 5.0
    v = validate(anon, ticket)
    assert v["can_exit"] is True and v["time_remaining_minutes"] == 15 and v["amount_due"] == 0


def test_validate_exit_after_leaving_and_lookups(gw, site, operator, alice, anon):
    body = enter(operator, "VE3")
    ticket = body["ticket_number"]
    gw.clock.advance(minutes=60)
    assert pay(alice, body["session"]["id"], 5.0).status_code == 201
    assert validate(alice, ticket.lower())["can_exit"] is True  # token accepted; ticket any case
    assert operator.post("/sessions/exit", json={"ticket_number": ticket}).status_code == 200
    v = validate(anon, ticket)
    assert v["can_exit"] is False and v["amount_due"] == 0 and v["is_paid"] is True
    assert_refused(
        anon.post("/payments/validate-exit", json={"ticket_number": "TKT-000000000000"}), 404
    )
    before = snapshot(gw)
    for bad in ({}, {"ticket_number": ""}, {"ticket_number": "  "}, {"ticket_number": 5}, [ticket]):
        assert_refused(anon.post("/payments/validate-exit", json=bad))
    assert_refused(
        anon.post(
            "/payments/validate-exit", content=b"TKT", headers={"Content-Type": "application/json"}
        )
    )
    assert snapshot(gw) == before


def test_payment_rows_match_responses(gw, site, operator, alice):
    sid, _ = stay(gw, operator, "ROW1", 127)
    p = pay(alice, sid, 20.0).json()
    rows = db_query(
        gw, "SELECT amount, tendered, total_amount, status FROM payments WHERE id = ?", (p["id"],)
    )
    assert [(float(a), float(t), float(tot), s) for a, t, tot, s in rows] == [
        (15.0, 20.0, 15.0, "completed")
    ]


def test_discounts_round_half_up_to_cents(gw, site, operator, admin, alice, bob):
    make_discount(admin, "EIGHTH", value=12.5)
    sid, _ = stay(gw, operator, "RND1", 60)  # $5: 12.5% is 0.625
    r = pay(alice, sid, 4.37, discount_code="EIGHTH")
    assert r.status_code == 201, r.text
    assert r.json()["discount_amount"] == 0.63 and r.json()["total_amount"] == 4.37
    make_discount(admin, "THIRD", value=33.333)
    sid, _ = stay(gw, operator, "RND2", 60)  # 1.66665 -> 1.67
    r = pay(bob, sid, 3.33, discount_code="THIRD")
    assert r.status_code == 201, r.text
    assert r.json()["discount_amount"] == 1.67 and r.json()["total_amount"] == 3.33
