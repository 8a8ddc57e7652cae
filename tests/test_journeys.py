"""The seed's four user journeys, end to end, over HTTP only (seed "User Journeys").

Each journey is driven the way real clients would drive it: the customer registers through
``/auth/register``, logs in with the OAuth2 form at ``/auth/login`` and uses the token it
gets back; the operator works the gates; the exit kiosk calls validate-exit without a
token. The site itself (levels, zones, spaces, the $5/h rate with 15 minutes' grace, a
vehicle type) is the admin's set-up from the ``site`` fixture, also made over HTTP. Money
figures are exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from api_kit import when

TICKET = re.compile(r"TKT-[0-9A-F]{12}")
CONFIRMATION = re.compile(r"RSV-[0-9A-F]{8}")
RECEIPT = re.compile(r"RCP-[0-9A-F]{12}")


@contextmanager
def customer(gw, anon: httpx.Client, email: str, name: str) -> Iterator[httpx.Client]:
    """Register, log in with the form, and act with the token the login returned."""
    password = "securepassword"
    r = anon.post(
        "/auth/register",
        json={"email": email, "password": password, "full_name": name, "phone": "+1234567890"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["user"]["role"] == "customer" and r.json()["access_token"]
    r = anon.post("/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"].lower() == "bearer"
    token = r.json()["access_token"]
    with httpx.Client(
        base_url=gw.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        me = client.get("/auth/me")
        assert me.status_code == 200 and me.json()["email"] == email, me.text
        yield client


def vehicle_type_id(anon: httpx.Client, admin: httpx.Client, name: str = "Car") -> int:
    """The customer picks the type from the public list (the admin created it)."""
    found = [t for t in anon.get("/vehicle-types").json() if t["name"] == name]
    if not found:
        r = admin.post("/vehicle-types", json={"name": name, "size_category": "medium"})
        assert r.status_code == 201, r.text
        found = [t for t in anon.get("/vehicle-types").json() if t["name"] == name]
    return int(found[0]["id"])


def register_vehicle(client: httpx.Client, body: dict) -> dict:
    r = client.post("/vehicles", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def space_of(anon: httpx.Client, space_id: int) -> dict:
    spaces = anon.get("/spaces", params={"limit": 100}).json()["spaces"]
    return next(s for s in spaces if s["id"] == space_id)


def check_exit(anon: httpx.Client, ticket: str) -> dict:
    r = anon.post("/payments/validate-exit", json={"ticket_number": ticket})
    assert r.status_code == 200, r.text
    return dict(r.json())


def lines(body: dict) -> list[tuple[str, float]]:
    return [(line["description"], line["amount"]) for line in body["breakdown"]]


# -- Journey 1: regular customer parking -------------------------------------------------------


def test_journey_regular_customer_parking(gw, site, admin, operator, anon):
    r = admin.post(
        "/discounts",
        json={
            "code": "WELCOME10",
            "name": "Welcome 10% off",
            "discount_type": "percentage",
            "value": 10.0,
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2026-12-31T23:59:59Z",
        },
    )
    assert r.status_code == 201, r.text
    type_id = vehicle_type_id(anon, admin)
    # 1. Register an account.
    with customer(gw, anon, "user@example.com", "John Doe") as john:
        # 2. Register the vehicle (the seed's body).
        car = register_vehicle(
            john,
            {
                "license_plate": "ABC123",
                "vehicle_type_id": type_id,
                "make": "Toyota",
                "model": "Camry",
                "color": "Silver",
                "is_ev": False,
            },
        )
        assert [v["id"] for v in john.get("/vehicles").json()["vehicles"]] == [car["id"]]
        # 3. Arrive: the operator processes the entry (the seed's body).
        r = operator.post(
            "/sessions/entry", json={"license_plate": "ABC123", "entry_gate": "Main Entrance"}
        )
        assert r.status_code == 201, r.text
        entry = r.json()
        ticket = entry["ticket_number"]
        assert TICKET.fullmatch(ticket)
        session = entry["session"]
        assert session["vehicle_id"] == car["id"] and session["status"] == "active"
        assert when(session["entry_time"]) == gw.clock.now()
        # 4. Park in the assigned space.
        space = entry["space_assigned"]
        assert space["zone"]["name"] == "Zone A" and space["zone"]["level"]["name"] == "Level 1"
        assert space_of(anon, space["id"])["status"] == "occupied"
        # 5. Check the fee before leaving: the seed's example, 127 minutes.
        gw.clock.advance(minutes=127)
        by_ticket = anon.get(f"/sessions/ticket/{ticket}")
        assert by_ticket.status_code == 200 and by_ticket.json()["id"] == session["id"]
        r = john.get(f"/sessions/{session['id']}/calculate-fee")
        assert r.status_code == 200, r.text
        quote = r.json()
        assert quote["session_id"] == session["id"] and quote["duration_minutes"] == 127
        assert (quote["base_fee"], quote["discounts"], quote["tax"], quote["total"]) == (
            15.0,
            0.0,
            0.0,
            15.0,
        )
        assert lines(quote) == [("Parking (3 hour(s) @ $5/hr)", 15.0)]
        check = check_exit(anon, ticket)
        assert (check["is_paid"], check["can_exit"], check["amount_due"]) == (False, False, 15.0)
        # 6. Pay in the app (the seed's body, with its code).
        r = john.post(
            "/payments",
            json={
                "session_id": session["id"],
                "payment_method": "card",
                "amount": 15.0,
                "discount_code": "WELCOME10",
            },
        )
        assert r.status_code == 201, r.text
        payment = r.json()
        assert (payment["amount"], payment["discount_amount"], payment["total_amount"]) == (
            15.0,
            1.5,
            13.5,
        )
        assert payment["status"] == "completed" and RECEIPT.fullmatch(payment["receipt_number"])
        r = john.get(f"/payments/{payment['id']}")
        assert r.status_code == 200 and r.json()["total_amount"] == 13.5
        # 7. Exit: the kiosk validates, the operator lets the car out.
        gw.clock.advance(minutes=3)
        check = check_exit(anon, ticket)
        assert check == {
            **check,
            "is_paid": True,
            "can_exit": True,
            "time_remaining_minutes": 12,
            "amount_due": 0.0,
        }
        r = operator.post("/sessions/exit", json={"ticket_number": ticket, "exit_gate": "Exit A"})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["session"]["status"] == "completed"
        assert done["session"]["exit_gate"] == "Exit A"
        assert done["payment_due"] == 0.0 and done["duration_minutes"] == 130
        assert space_of(anon, space["id"])["status"] == "available"
        assert check_exit(anon, ticket)["can_exit"] is False
        # The car may come again another day.
        r = operator.post("/sessions/entry", json={"license_plate": "abc123"})
        assert r.status_code == 201 and r.json()["session"]["vehicle_id"] == car["id"]


# -- Journey 2: reservation flow ---------------------------------------------------------------


def test_journey_reservation(gw, site, admin, operator, anon):
    type_id = vehicle_type_id(anon, admin)
    zone_a = site["zone_a"]
    with customer(gw, anon, "jane@example.com", "Jane Planner") as jane:
        car = register_vehicle(jane, {"license_plate": "RSV001", "vehicle_type_id": type_id})
        # 1. Check availability for the wanted window.
        window = {
            "start_time": "2026-03-10T10:00:00Z",
            "end_time": "2026-03-10T12:00:00Z",
            "zone_id": zone_a["id"],
        }
        r = jane.get("/reservations/availability", params=window)
        assert r.status_code == 200, r.text
        free = r.json()
        zone_a_spaces = [s["id"] for s in site["spaces"] if s["zone_id"] == zone_a["id"]]
        assert [s["id"] for s in free["available_spaces"]] == zone_a_spaces
        assert free["total_available"] == 4
        # 2. Create the reservation (the seed's body) and get its confirmation number.
        r = jane.post(
            "/reservations",
            json={
                "vehicle_id": car["id"],
                "zone_id": zone_a["id"],
                "start_time": "2026-03-10T10:00:00Z",
                "end_time": "2026-03-10T12:00:00Z",
                "special_requests": "Near elevator please",
            },
        )
        assert r.status_code == 201, r.text
        booked = r.json()
        code = booked["confirmation_number"]
        assert CONFIRMATION.fullmatch(code)
        reservation = booked["reservation"]
        assert reservation["status"] == "confirmed"
        assert when(reservation["start_time"]) == when("2026-03-10T10:00:00Z")
        assert when(reservation["end_time"]) == when("2026-03-10T12:00:00Z")
        assert reservation["confirmation_number"] == code
        mine = jane.get("/reservations").json()
        assert [x["id"] for x in mine["reservations"]] == [reservation["id"]]
        # 3. Arrive at the scheduled time (a quarter of an hour early).
        gw.clock.advance(minutes=45)
        # 4. Check in with the confirmation number.
        r = operator.get(f"/reservations/confirmation/{code}")
        assert r.status_code == 200 and r.json()["id"] == reservation["id"], r.text
        r = operator.post(f"/reservations/{reservation['id']}/check-in")
        assert r.status_code == 201, r.text
        checked = r.json()
        ticket = checked["ticket_number"]
        assert TICKET.fullmatch(ticket)
        # 5. Park in a space of the reserved zone.
        assert checked["space_assigned"]["zone_id"] == zone_a["id"]
        session = anon.get(f"/sessions/ticket/{ticket}").json()
        assert session["id"] == checked["session_id"]
        assert session["reservation_id"] == reservation["id"]
        assert session["vehicle_id"] == car["id"] and session["status"] == "active"
        assert jane.get(f"/reservations/{reservation['id']}").json()["status"] == "checked_in"
        # 6. Pay and exit as normal: 2 hours from check-in is $10.
        gw.clock.advance(minutes=120)
        quote = jane.get(f"/sessions/{session['id']}/calculate-fee").json()
        assert (quote["duration_minutes"], quote["total"]) == (120, 10.0)
        r = jane.post(
            "/payments",
            json={"session_id": session["id"], "payment_method": "mobile", "amount": 10.0},
        )
        assert r.status_code == 201, r.text
        assert r.json()["total_amount"] == 10.0
        check = check_exit(anon, ticket)
        assert (check["is_paid"], check["can_exit"], check["amount_due"]) == (True, True, 0.0)
        r = operator.post("/sessions/exit", json={"ticket_number": ticket})
        assert r.status_code == 200, r.text
        assert r.json()["payment_due"] == 0.0 and r.json()["duration_minutes"] == 120
        assert jane.get(f"/reservations/{reservation['id']}").json()["status"] == "completed"
        assert space_of(anon, checked["space_assigned"]["id"])["status"] == "available"


# -- Journey 3: EV charging --------------------------------------------------------------------


def test_journey_ev_charging(gw, site, admin, operator, anon):
    ev_space = next(s for s in site["spaces"] if s["space_type"] == "ev_charging")
    r = admin.post(
        "/ev-stations",
        json={
            "space_id": ev_space["id"],
            "charger_type": "level2",
            "power_kw": 7.2,
            "connector_type": "J1772",
            "price_per_kwh": 0.25,
        },
    )
    assert r.status_code == 201, r.text
    station = r.json()
    type_id = vehicle_type_id(anon, admin)
    with customer(gw, anon, "eve@example.com", "Eve Volt") as eve:
        car = register_vehicle(
            eve,
            {
                "license_plate": "EV0001",
                "vehicle_type_id": type_id,
                "make": "Nissan",
                "is_ev": True,
            },
        )
        free = eve.get("/ev-stations", params={"available_only": "true"}).json()
        assert [s["id"] for s in free] == [station["id"]]
        # 1. Enter and get the EV space.
        r = operator.post("/sessions/entry", json={"license_plate": "EV0001"})
        assert r.status_code == 201, r.text
        ticket = r.json()["ticket_number"]
        assert r.json()["space_assigned"]["id"] == ev_space["id"]
        assert r.json()["space_assigned"]["is_ev_charging"] is True
        session = anon.get(f"/sessions/ticket/{ticket}").json()
        # 2. Start charging (the seed's body).
        r = eve.post(
            "/ev-charging/start",
            json={
                "station_id": station["id"],
                "vehicle_id": car["id"],
                "parking_session_id": session["id"],
                "max_power_requested": 7.2,
            },
        )
        assert r.status_code == 201, r.text
        charge = r.json()
        assert charge["status"] == "charging" and charge["parking_session_id"] == session["id"]
        # 3. Monitor it.
        gw.clock.advance(seconds=3125)
        mine = eve.get("/ev-charging/sessions").json()
        assert [(c["id"], c["status"]) for c in mine["sessions"]] == [(charge["id"], "charging")]
        stations = anon.get("/ev-stations").json()
        assert [s["status"] for s in stations] == ["in_use"]
        # Still plugged in: the kiosk will not let it out yet.
        assert check_exit(anon, ticket)["can_exit"] is False
        # 4. Stop charging: 104 min 10 s at 7.2 kW = 12.5 kWh at $0.25 = $3.13 (the seed's).
        gw.clock.advance(seconds=3125)
        r = eve.post(f"/ev-charging/{charge['id']}/stop")
        assert r.status_code == 200, r.text
        stopped = r.json()
        assert stopped["session"]["status"] == "completed"
        assert stopped["session"]["energy_kwh"] == 12.5 and stopped["session"]["cost"] == 3.13
        assert (stopped["energy_used"], stopped["cost"], stopped["duration_minutes"]) == (
            12.5,
            3.13,
            104,
        )
        assert [s["status"] for s in anon.get("/ev-stations").json()] == ["available"]
        # 5. Pay parking and charging in one payment.
        quote = eve.get(f"/sessions/{session['id']}/calculate-fee").json()
        assert (quote["base_fee"], quote["ev_charging"], quote["total"]) == (10.0, 3.13, 13.13)
        assert lines(quote) == [
            ("Parking (2 hour(s) @ $5/hr)", 10.0),
            ("EV charging (12.5 kWh)", 3.13),
        ]
        assert check_exit(anon, ticket)["amount_due"] == 13.13
        r = eve.post(
            "/payments",
            json={"session_id": session["id"], "payment_method": "card", "amount": 13.13},
        )
        assert r.status_code == 201, r.text
        assert r.json()["total_amount"] == 13.13
        # 6. Exit.
        check = check_exit(anon, ticket)
        assert (check["is_paid"], check["can_exit"], check["amount_due"]) == (True, True, 0.0)
        r = operator.post("/sessions/exit", json={"ticket_number": ticket})
        assert r.status_code == 200, r.text
        assert r.json()["payment_due"] == 0.0
        assert space_of(anon, ev_space["id"])["status"] == "available"
        paid = admin.get("/payments").json()
        assert [p["session_id"] for p in paid["payments"]] == [session["id"]]
        assert paid["total_amount"] == 13.13


# -- Journey 4: membership ---------------------------------------------------------------------


def test_journey_membership(gw, site, admin, operator, anon):
    r = admin.post(
        "/membership-plans",
        json={
            "name": "Premium Monthly",
            "description": "Unlimited parking with reserved spot",
            "duration_months": 1,
            "price": 150.0,
            "vehicle_limit": 2,
            "included_hours": None,
            "discount_percentage": 20.0,
            "is_active": True,
        },
    )
    assert r.status_code == 201, r.text
    premium = r.json()
    r = admin.post(
        "/membership-plans",
        json={"name": "Old Saver", "duration_months": 1, "price": 10.0, "is_active": False},
    )
    assert r.status_code == 201, r.text
    type_id = vehicle_type_id(anon, admin)
    with customer(gw, anon, "max@example.com", "Max Member") as max_:
        cars = [
            register_vehicle(max_, {"license_plate": plate, "vehicle_type_id": type_id})
            for plate in ("MEM001", "MEM002")
        ]
        # 1. View the plans on offer.
        plans = anon.get("/membership-plans").json()
        assert [p["name"] for p in plans] == ["Premium Monthly"]
        # 2. Subscribe and 3. register both cars to it (the seed's body).
        r = max_.post(
            "/memberships",
            json={
                "plan_id": premium["id"],
                "vehicle_ids": [c["id"] for c in cars],
                "auto_renew": True,
            },
        )
        assert r.status_code == 201, r.text
        membership = r.json()["membership"]
        assert isinstance(r.json()["payment_id"], int)
        assert membership["status"] == "active"
        assert (membership["start_date"], membership["end_date"]) == ("2026-03-10", "2026-04-10")
        assert membership["vehicle_ids"] == [c["id"] for c in cars]
        listed = max_.get("/memberships").json()
        assert [m["id"] for m in listed["memberships"]] == [membership["id"]]
        # 4. Park with the automatic discount: 127 minutes, $15 less 20%.
        r = operator.post("/sessions/entry", json={"license_plate": "MEM001"})
        assert r.status_code == 201, r.text
        ticket = r.json()["ticket_number"]
        sid = r.json()["session"]["id"]
        gw.clock.advance(minutes=127)
        quote = max_.get(f"/sessions/{sid}/calculate-fee").json()
        assert (quote["base_fee"], quote["discounts"], quote["total"]) == (15.0, 3.0, 12.0)
        assert lines(quote) == [
            ("Parking (3 hour(s) @ $5/hr)", 15.0),
            ("Membership discount (20%)", -3.0),
        ]
        r = max_.post(
            "/payments", json={"session_id": sid, "payment_method": "card", "amount": 12.0}
        )
        assert r.status_code == 201 and r.json()["total_amount"] == 12.0, r.text
        r = operator.post("/sessions/exit", json={"ticket_number": ticket})
        assert r.status_code == 200, r.text
        # The second car, 40 minutes: $5 less 20%.
        r = operator.post("/sessions/entry", json={"license_plate": "MEM002"})
        sid2, ticket2 = r.json()["session"]["id"], r.json()["ticket_number"]
        gw.clock.advance(minutes=40)
        assert max_.get(f"/sessions/{sid2}/calculate-fee").json()["total"] == 4.0
        r = max_.post(
            "/payments", json={"session_id": sid2, "payment_method": "mobile", "amount": 4.0}
        )
        assert r.status_code == 201, r.text
        assert operator.post("/sessions/exit", json={"ticket_number": ticket2}).status_code == 200
        # 5. Track usage and savings.
        r = max_.get(f"/memberships/{membership['id']}/usage")
        assert r.status_code == 200, r.text
        assert r.json() == {
            **r.json(),
            "membership_id": membership["id"],
            "hours_used": 2.78,
            "hours_remaining": None,
            "sessions_count": 2,
            "savings_to_date": 4.0,
            "days_remaining": 31,
        }
        # 6. Renew (one more month), then cancel: benefits stop at once.
        r = max_.post(f"/memberships/{membership['id']}/renew")
        assert r.status_code == 200, r.text
        assert r.json()["membership"]["end_date"] == "2026-05-10"
        assert isinstance(r.json()["payment_id"], int)
        assert max_.get(f"/memberships/{membership['id']}/usage").json()["days_remaining"] == 61
        r = max_.post(f"/memberships/{membership['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        r = operator.post("/sessions/entry", json={"license_plate": "MEM001"})
        sid3 = r.json()["session"]["id"]
        gw.clock.advance(minutes=60)
        quote = max_.get(f"/sessions/{sid3}/calculate-fee").json()
        assert (quote["discounts"], quote["total"]) == (0.0, 5.0)
