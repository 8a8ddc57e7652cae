"""EV charging over HTTP (field reference sections 16, 17 and 17.2).

Stations: the seed's body, one station per space, the space flagged as a charging space,
the public listing and its filters, admin updates. Charging: start and stop with the seed's
numbers (12.5 kWh x $0.25 = $3.13 in 104 minutes, metered by the simulated charger as
charging time x min(power_kw, max_power_requested)), who may start and stop what, the
station and vehicle rules, the listing's visibility. Billing: a completed charge linked to
the parking stay is part of its fee and is paid with it, also when it ends after the
parking was paid; discount codes never reduce it; plans with EV charging included zero it.
"""

from __future__ import annotations

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
    space_status,
    when,
)

STATION_FIELDS = {
    "id",
    "space_id",
    "charger_type",
    "power_kw",
    "connector_type",
    "price_per_kwh",
    "installed_at",
    "manufacturer",
    "serial_number",
    "status",
    "last_maintenance",
    "space",
    "created_at",
    "updated_at",
}
CHARGE_FIELDS = {
    "id",
    "station_id",
    "vehicle_id",
    "parking_session_id",
    "start_time",
    "end_time",
    "energy_kwh",
    "cost",
    "status",
    "max_power_requested",
    "created_at",
    "updated_at",
}
SEED_SECONDS = 6250  # 7.2 kW for 104 min 10 s = 12.5 kWh


def seed_station(space_id: int) -> dict[str, Any]:
    return {
        "space_id": space_id,
        "charger_type": "level2",
        "power_kw": 7.2,
        "connector_type": "J1772",
        "price_per_kwh": 0.25,
    }


def make_station(admin: httpx.Client, space_id: int, **fields: Any) -> dict[str, Any]:
    r = admin.post("/ev-stations", json={**seed_station(space_id), **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def ev(owner: httpx.Client, admin: httpx.Client, plate: str, is_ev: bool = True) -> dict[str, Any]:
    body = {"license_plate": plate, "vehicle_type_id": car_type(admin), "is_ev": is_ev}
    r = owner.post("/vehicles", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def start(client: httpx.Client, station_id: int, vehicle_id: int, **extra: Any):
    return client.post(
        "/ev-charging/start", json={"station_id": station_id, "vehicle_id": vehicle_id, **extra}
    )


def started(client: httpx.Client, station_id: int, vehicle_id: int, **extra: Any):
    r = start(client, station_id, vehicle_id, **extra)
    assert r.status_code == 201, r.text
    return dict(r.json())


def stop(client: httpx.Client, charge_id: int) -> dict[str, Any]:
    r = client.post(f"/ev-charging/{charge_id}/stop")
    assert r.status_code == 200, r.text
    return dict(r.json())


def station_status(gw, station_id: int) -> str:
    return str(db_query(gw, "SELECT status FROM ev_stations WHERE id = ?", (station_id,))[0][0])


def charging_state(gw) -> dict[str, Any]:
    return {
        "outbox": db_query(gw, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM outbox"),
        "stations": db_query(gw, "SELECT * FROM ev_stations ORDER BY id"),
        "charges": db_query(gw, "SELECT * FROM charging_sessions ORDER BY id"),
        "spaces": db_query(gw, "SELECT * FROM spaces ORDER BY id"),
        "sessions": db_query(gw, "SELECT * FROM sessions ORDER BY id"),
        "payments": db_query(gw, "SELECT * FROM payments ORDER BY id"),
    }


def lines(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(line["description"], line["amount"]) for line in body["breakdown"]]


@pytest.fixture
def ev_space(site) -> dict[str, Any]:
    return dict(site["spaces"][3])  # S-4, the site's ev_charging space


@pytest.fixture
def station(admin, ev_space) -> dict[str, Any]:
    return make_station(admin, ev_space["id"])


@pytest.fixture
def tesla(site, admin, alice) -> dict[str, Any]:
    """Alice's EV."""
    return ev(alice, admin, "EV1")


# -- stations ----------------------------------------------------------------------------------


def test_create_station_seed_body(gw, admin, ev_space):
    mark = outbox_mark(gw)
    r = admin.post("/ev-stations", json=seed_station(ev_space["id"]))
    assert r.status_code == 201, r.text
    s = r.json()
    assert set(s) >= STATION_FIELDS
    assert s["space_id"] == ev_space["id"] and s["space"]["id"] == ev_space["id"]
    assert s["charger_type"] == "level2" and s["power_kw"] == 7.2
    assert s["connector_type"] == "J1772" and s["price_per_kwh"] == 0.25
    assert s["status"] == "available"
    assert s["installed_at"] == "2026-03-10"
    assert s["last_maintenance"] is None
    assert s["manufacturer"] is None and s["serial_number"] is None
    assert s["space"]["is_ev_charging"] is True
    assert events_since(gw, mark) == ["ev_station_created"]
    assert payloads_since(gw, mark)[0][1]["station_id"] == s["id"]


def test_station_makes_its_space_a_charging_space(gw, site, admin, anon):
    plain = site["spaces"][0]
    assert plain["is_ev_charging"] is False
    s = make_station(admin, plain["id"], charger_type="dc_fast", power_kw=50, connector_type="CCS")
    assert s["space"]["is_ev_charging"] is True
    listed = anon.get("/spaces", params={"limit": 100}).json()["spaces"]
    assert next(x for x in listed if x["id"] == plain["id"])["is_ev_charging"] is True


def test_station_all_fields(gw, site, admin):
    s = make_station(
        admin,
        site["spaces"][4]["id"],
        charger_type="dc_fast",
        power_kw=150,
        connector_type="CHAdeMO",
        price_per_kwh=0.4321,
        installed_at="2025-12-01",
        manufacturer="ABB",
        serial_number="SN-0001",
    )
    assert s["charger_type"] == "dc_fast" and s["power_kw"] == 150.0
    assert s["price_per_kwh"] == 0.4321 and s["connector_type"] == "CHAdeMO"
    assert s["installed_at"] == "2025-12-01"
    assert s["manufacturer"] == "ABB" and s["serial_number"] == "SN-0001"
    level1 = make_station(admin, site["spaces"][5]["id"], charger_type="level1", power_kw=1.4)
    assert level1["charger_type"] == "level1"
    default = admin.post(
        "/ev-stations",
        json={
            "space_id": site["spaces"][0]["id"],
            "power_kw": 11,
            "connector_type": "Type2",
            "price_per_kwh": 0,
        },
    )
    assert default.status_code == 201, default.text
    assert default.json()["charger_type"] == "level2" and default.json()["price_per_kwh"] == 0.0


def test_one_station_per_space(gw, admin, station, ev_space, site):
    before = charging_state(gw)
    assert_refused(admin.post("/ev-stations", json=seed_station(ev_space["id"])), 409)
    assert_refused(admin.post("/ev-stations", json=seed_station(999)), 404)
    assert charging_state(gw) == before


def test_station_changes_are_admin_only(gw, admin, operator, alice, anon, station, site):
    before = charging_state(gw)
    for client, code in ((anon, 401), (alice, 403), (operator, 403)):
        r = client.post("/ev-stations", json=seed_station(site["spaces"][0]["id"]))
        assert r.status_code == code, r.text
        r = client.put(f"/ev-stations/{station['id']}", json={"status": "offline"})
        assert r.status_code == code, r.text
    assert charging_state(gw) == before


@pytest.mark.parametrize(
    "change",
    [
        {"space_id": 0},
        {"space_id": "1"},
        {"space_id": None},
        {"power_kw": 0},
        {"power_kw": -7.2},
        {"power_kw": "7.2"},
        {"power_kw": None},
        {"price_per_kwh": -0.01},
        {"price_per_kwh": 1000.01},
        {"price_per_kwh": "0.25"},
        {"charger_type": "LEVEL2"},
        {"charger_type": "tesla"},
        {"charger_type": None},
        {"connector_type": ""},
        {"connector_type": "   "},
        {"connector_type": "x" * 51},
        {"connector_type": 5},
        {"manufacturer": "x" * 101},
        {"serial_number": "x" * 101},
        {"installed_at": "last week"},
        {"installed_at": 20250101},
    ],
    ids=repr,
)
def test_create_station_bad_bodies(gw, admin, ev_space, change):
    before = charging_state(gw)
    assert_refused(admin.post("/ev-stations", json={**seed_station(ev_space["id"]), **change}))
    assert charging_state(gw) == before


@pytest.mark.parametrize("missing", ["space_id", "power_kw", "connector_type", "price_per_kwh"])
def test_create_station_missing_field(gw, admin, ev_space, missing):
    body = {k: v for k, v in seed_station(ev_space["id"]).items() if k != missing}
    before = charging_state(gw)
    assert_refused(admin.post("/ev-stations", json=body))
    r = admin.post(
        "/ev-stations", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_refused(r)
    assert charging_state(gw) == before


def test_list_stations_is_public_with_filters(gw, site, admin, anon, alice):
    a = make_station(admin, site["spaces"][3]["id"])
    b = make_station(admin, site["spaces"][0]["id"], charger_type="dc_fast", power_kw=50)
    c = make_station(admin, site["spaces"][1]["id"], charger_type="level1", power_kw=1.4)
    admin.put(f"/ev-stations/{b['id']}", json={"status": "maintenance"})
    admin.put(f"/ev-stations/{c['id']}", json={"status": "offline"})

    def ids(**params: Any) -> list[int]:
        r = anon.get("/ev-stations", params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert [s["id"] for s in alice.get("/ev-stations").json()] == [a["id"], b["id"], c["id"]]
    assert ids(status="available") == [a["id"]]
    assert ids(status="maintenance") == [b["id"]]
    assert ids(status="in_use") == []
    assert ids(available_only="true") == [a["id"]]
    assert ids(available_only="false") == [a["id"], b["id"], c["id"]]
    assert ids(charger_type="dc_fast") == [b["id"]]
    assert ids(charger_type="level1", status="offline") == [c["id"]]
    for params in (
        {"status": "broken"},
        {"status": "AVAILABLE"},
        {"charger_type": "LEVEL2"},
        {"available_only": "maybe"},
    ):
        assert_refused(anon.get("/ev-stations", params=params))


def test_update_station(gw, admin, station):
    mark = outbox_mark(gw)
    gw.clock.advance(minutes=1)
    r = admin.put(
        f"/ev-stations/{station['id']}",
        json={
            "status": "maintenance",
            "price_per_kwh": 0.3,
            "power_kw": 11,
            "last_maintenance": "2026-03-01",
        },
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["status"] == "maintenance" and s["price_per_kwh"] == 0.3
    assert s["power_kw"] == 11.0 and s["last_maintenance"] == "2026-03-01"
    assert s["connector_type"] == "J1772" and s["updated_at"] != station["updated_at"]
    assert events_since(gw, mark) == ["ev_station_updated", "ev_station_status_changed"]
    changed = payloads_since(gw, mark)[1][1]
    assert (changed["from"], changed["to"]) == ("available", "maintenance")
    for status in ("available", "in_use", "occupied", "charging", "faulted", "offline"):
        r = admin.put(f"/ev-stations/{station['id']}", json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status, r.text


def test_update_station_refusals(gw, admin, station):
    assert_refused(admin.put("/ev-stations/999", json={"status": "offline"}), 404)
    before = charging_state(gw)
    for body in (
        {"status": "broken"},
        {"status": None},
        {"power_kw": 0},
        {"price_per_kwh": "1"},
        {"price_per_kwh": -0.00001},
        {"last_maintenance": "soon"},
    ):
        assert_refused(admin.put(f"/ev-stations/{station['id']}", json=body))
    assert charging_state(gw) == before


# -- charging ----------------------------------------------------------------------------------


def test_seed_example_start_and_stop(gw, admin, operator, alice, station, tesla, ev_space):
    parked = enter(operator, "EV1")
    assert parked["space_assigned"]["id"] == ev_space["id"]  # EVs get the charging space
    sid = parked["session"]["id"]
    mark = outbox_mark(gw)
    body = {
        "station_id": station["id"],
        "vehicle_id": tesla["id"],
        "parking_session_id": sid,
        "max_power_requested": 7.2,
    }
    r = alice.post("/ev-charging/start", json=body)
    assert r.status_code == 201, r.text
    charge = r.json()
    assert set(charge) >= CHARGE_FIELDS
    assert charge["station_id"] == station["id"] and charge["vehicle_id"] == tesla["id"]
    assert charge["parking_session_id"] == sid
    assert charge["status"] == "charging"
    assert when(charge["start_time"]) == gw.clock.now() and charge["end_time"] is None
    assert charge["energy_kwh"] == 0 and charge["cost"] == 0
    assert charge["max_power_requested"] == 7.2
    assert station_status(gw, station["id"]) == "in_use"
    assert events_since(gw, mark) == ["ev_station_status_changed", "charging_started"]
    gw.clock.advance(seconds=SEED_SECONDS)
    mark = outbox_mark(gw)
    answer = stop(alice, charge["id"])
    assert answer["energy_used"] == 12.5 and answer["cost"] == 3.13
    assert answer["duration_minutes"] == 104
    done = answer["session"]
    assert done["id"] == charge["id"] and done["status"] == "completed"
    assert done["energy_kwh"] == 12.5 and done["cost"] == 3.13
    assert when(done["end_time"]) == gw.clock.now()
    assert station_status(gw, station["id"]) == "available"
    assert events_since(gw, mark) == ["ev_station_status_changed", "charging_completed"]
    completed = payloads_since(gw, mark)[1][1]
    assert completed["charge_id"] == charge["id"] and completed["parking_session_id"] == sid
    assert_refused(alice.post(f"/ev-charging/{charge['id']}/stop"), 409)  # stopping twice


@pytest.mark.parametrize(
    ("requested", "minutes", "energy", "cost"),
    [
        (11, 60, 7.2, 1.8),  # capped by the station's 7.2 kW
        (None, 60, 7.2, 1.8),  # the station's power
        (3.6, 120, 7.2, 1.8),  # the requested power
        (6, 5, 0.5, 0.13),  # 0.125 -> half-up
        (7.2, 1, 0.12, 0.03),
        (7.2, 0, 0.0, 0.0),
    ],
)
def test_energy_and_cost(gw, admin, alice, station, tesla, requested, minutes, energy, cost):
    extra = {} if requested is None else {"max_power_requested": requested}
    charge = started(alice, station["id"], tesla["id"], **extra)
    gw.clock.advance(minutes=minutes)
    answer = stop(alice, charge["id"])
    assert (answer["energy_used"], answer["cost"], answer["duration_minutes"]) == (
        energy,
        cost,
        minutes,
    )


def test_price_is_the_stations_at_stop(gw, admin, alice, station, tesla):
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(minutes=60)
    admin.put(f"/ev-stations/{station['id']}", json={"price_per_kwh": 0.5})
    assert stop(alice, charge["id"])["cost"] == 3.6


def test_who_may_start(gw, site, admin, operator, alice, bob, anon, station, tesla):
    before = charging_state(gw)
    assert (
        anon.post(
            "/ev-charging/start", json={"station_id": station["id"], "vehicle_id": tesla["id"]}
        ).status_code
        == 401
    )
    assert_refused(start(bob, station["id"], tesla["id"]), 403)
    assert charging_state(gw) == before
    charge = started(operator, station["id"], tesla["id"])  # staff: any vehicle
    assert charge["vehicle_id"] == tesla["id"]
    # Alice sees it and may stop it: it is her car.
    assert [c["id"] for c in alice.get("/ev-charging/sessions").json()["sessions"]] == [
        charge["id"]
    ]
    stop(alice, charge["id"])


def test_owned_vehicle_must_be_an_ev(gw, site, admin, alice, station):
    petrol = ev(alice, admin, "PETROL1", is_ev=False)
    before = charging_state(gw)
    assert_refused(start(alice, station["id"], petrol["id"]), 422)
    assert_refused(start(admin, station["id"], petrol["id"]), 422)
    assert charging_state(gw) == before


def test_vehicle_first_seen_at_a_gate_may_charge(gw, site, admin, operator, alice, station):
    parked = enter(operator, "WALKIN1")
    vehicle_id = parked["session"]["vehicle_id"]
    assert parked["session"]["vehicle"]["user_id"] is None
    assert_refused(start(alice, station["id"], vehicle_id), 403)  # not hers
    charge = started(operator, station["id"], vehicle_id)
    assert charge["parking_session_id"] == parked["session"]["id"]
    assert alice.get("/ev-charging/sessions").json()["total"] == 0
    assert_refused(alice.post(f"/ev-charging/{charge['id']}/stop"), 403)
    gw.clock.advance(minutes=30)
    assert stop(operator, charge["id"])["cost"] == 0.9  # 3.6 kWh


def test_start_refusals(gw, site, admin, operator, alice, station, tesla):
    other = ev(alice, admin, "EV2")
    mine = enter(operator, "EV1")["session"]["id"]
    theirs = enter(operator, "EV2")["session"]["id"]
    gone = enter(operator, "LEFT1")["session"]["id"]
    operator.post("/sessions/exit", json={"license_plate": "LEFT1"})
    before = charging_state(gw)
    assert_refused(start(alice, 999, tesla["id"]), 404)
    assert_refused(start(alice, station["id"], 999), 404)
    assert_refused(start(alice, station["id"], tesla["id"], parking_session_id=999), 404)
    assert_refused(start(alice, station["id"], tesla["id"], parking_session_id=theirs), 422)
    assert_refused(start(alice, station["id"], other["id"], parking_session_id=mine), 422)
    assert_refused(start(admin, station["id"], tesla["id"], parking_session_id=gone), 422)
    assert charging_state(gw) == before
    # The vehicle's own active session is fine.
    assert (
        started(alice, station["id"], tesla["id"], parking_session_id=mine)["parking_session_id"]
        == mine
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"station_id": 1},
        {"vehicle_id": 1},
        {"station_id": "1", "vehicle_id": 1},
        {"station_id": 1, "vehicle_id": 0},
        {"station_id": 1, "vehicle_id": 1, "parking_session_id": 0},
        {"station_id": 1, "vehicle_id": 1, "parking_session_id": "5"},
        {"station_id": 1, "vehicle_id": 1, "max_power_requested": 0},
        {"station_id": 1, "vehicle_id": 1, "max_power_requested": -1},
        {"station_id": 1, "vehicle_id": 1, "max_power_requested": "7.2"},
        {"station_id": 1, "vehicle_id": 1, "max_power_requested": True},
    ],
    ids=repr,
)
def test_start_bad_bodies(gw, admin, alice, station, tesla, body):
    before = charging_state(gw)
    assert_refused(alice.post("/ev-charging/start", json=body))
    assert charging_state(gw) == before


@pytest.mark.parametrize("status", ["in_use", "charging", "faulted", "offline", "maintenance"])
def test_station_must_be_free_to_start(gw, admin, alice, station, tesla, status):
    admin.put(f"/ev-stations/{station['id']}", json={"status": status})
    before = charging_state(gw)
    assert_refused(start(alice, station["id"], tesla["id"]), 409)
    assert charging_state(gw) == before


def test_occupied_station_can_start(gw, admin, alice, station, tesla):
    """``occupied``: a car is plugged in but not charging yet."""
    admin.put(f"/ev-stations/{station['id']}", json={"status": "occupied"})
    started(alice, station["id"], tesla["id"])
    assert station_status(gw, station["id"]) == "in_use"


def test_one_running_charge_per_station_and_per_vehicle(gw, site, admin, alice, station, tesla):
    second_station = make_station(admin, site["spaces"][0]["id"])
    other = ev(alice, admin, "EV2")
    first = started(alice, station["id"], tesla["id"])
    # Staff marks the station available by mistake: it is still busy.
    admin.put(f"/ev-stations/{station['id']}", json={"status": "available"})
    before = charging_state(gw)
    assert_refused(start(alice, station["id"], other["id"]), 409)
    assert_refused(start(alice, second_station["id"], tesla["id"]), 409)
    assert charging_state(gw) == before
    started(alice, second_station["id"], other["id"])
    stop(alice, first["id"])
    started(alice, station["id"], tesla["id"])


def test_parking_session_is_linked_when_omitted(gw, site, admin, operator, alice, station, tesla):
    alone = started(alice, station["id"], tesla["id"])
    assert alone["parking_session_id"] is None  # not inside: nothing to bill it with
    stop(alice, alone["id"])
    sid = enter(operator, "EV1")["session"]["id"]
    linked = started(alice, station["id"], tesla["id"])
    assert linked["parking_session_id"] == sid


def test_who_may_stop(gw, admin, operator, alice, bob, anon, station, tesla):
    charge = started(alice, station["id"], tesla["id"])
    before = charging_state(gw)
    assert anon.post(f"/ev-charging/{charge['id']}/stop").status_code == 401
    assert_refused(bob.post(f"/ev-charging/{charge['id']}/stop"), 403)
    assert_refused(alice.post("/ev-charging/999/stop"), 404)
    assert charging_state(gw) == before
    stop(operator, charge["id"])
    assert_refused(admin.post(f"/ev-charging/{charge['id']}/stop"), 409)


def test_stop_keeps_a_status_staff_set_meanwhile(gw, admin, alice, station, tesla):
    charge = started(alice, station["id"], tesla["id"])
    admin.put(f"/ev-stations/{station['id']}", json={"status": "maintenance"})
    gw.clock.advance(minutes=10)
    assert stop(alice, charge["id"])["energy_used"] == 1.2
    assert station_status(gw, station["id"]) == "maintenance"


def test_list_charges_visibility_and_filters(
    gw, site, admin, operator, alice, bob, anon, station, tesla
):
    second = make_station(admin, site["spaces"][0]["id"])
    bobs = ev(bob, admin, "BOBEV")
    a1 = started(alice, station["id"], tesla["id"])
    gw.clock.advance(minutes=10)
    stop(alice, a1["id"])
    a2 = started(alice, station["id"], tesla["id"])
    b1 = started(bob, second["id"], bobs["id"])

    def ids(client: httpx.Client, **params: Any) -> list[int]:
        r = client.get("/ev-charging/sessions", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) >= {"sessions", "total", "page", "limit"}
        assert page["total"] == len(page["sessions"]) or params.get("limit")
        return [c["id"] for c in page["sessions"]]

    assert ids(alice) == [a1["id"], a2["id"]]
    assert ids(bob) == [b1["id"]]
    assert ids(operator) == [a1["id"], a2["id"], b1["id"]]
    assert ids(admin) == [a1["id"], a2["id"], b1["id"]]
    assert ids(admin, station_id=second["id"]) == [b1["id"]]
    assert ids(admin, vehicle_id=tesla["id"]) == [a1["id"], a2["id"]]
    assert ids(admin, status="completed") == [a1["id"]]
    assert ids(admin, status="charging") == [a2["id"], b1["id"]]
    assert ids(bob, vehicle_id=tesla["id"]) == []  # filters never widen what one sees
    page = admin.get("/ev-charging/sessions", params={"limit": 2, "page": 2}).json()
    assert [c["id"] for c in page["sessions"]] == [b1["id"]] and page["total"] == 3
    first = alice.get("/ev-charging/sessions").json()["sessions"][0]
    assert set(first) >= CHARGE_FIELDS
    assert (first["energy_kwh"], first["cost"], first["status"]) == (1.2, 0.3, "completed")
    for params in ({"status": "running"}, {"station_id": "x"}, {"limit": 101}):
        assert_refused(admin.get("/ev-charging/sessions", params=params))
    assert anon.get("/ev-charging/sessions").status_code == 401


# -- billing with the parking stay ---------------------------------------------------------------


def test_charge_is_paid_with_the_parking_fee(gw, admin, operator, alice, anon, station, tesla):
    parked = enter(operator, "EV1")
    sid, ticket = parked["session"]["id"], parked["ticket_number"]
    charge = started(alice, station["id"], tesla["id"], max_power_requested=7.2)
    gw.clock.advance(seconds=SEED_SECONDS)
    # Still plugged in: the barrier stays closed.
    check = anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()
    assert check["can_exit"] is False
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert_refused(r, 409)
    assert space_status(gw, parked["space_assigned"]["id"]) == "occupied"
    stop(alice, charge["id"])
    body = fee(anon, sid)
    assert body["duration_minutes"] == 104
    assert (body["base_fee"], body["discounts"], body["ev_charging"], body["total"]) == (
        10.0,
        0.0,
        3.13,
        13.13,
    )
    assert lines(body) == [
        ("Parking (2 hour(s) @ $5/hr)", 10.0),
        ("EV charging (12.5 kWh)", 3.13),
    ]
    check = anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()
    assert (check["can_exit"], check["amount_due"]) == (False, 13.13)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 402 and r.json()["amount_due"] == 13.13
    assert_refused(pay(alice, sid, 10.0), 402)
    r = pay(alice, sid, 13.13)
    assert r.status_code == 201, r.text
    assert (r.json()["amount"], r.json()["total_amount"]) == (13.13, 13.13)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket, "exit_gate": "Exit A"})
    assert r.status_code == 200, r.text
    assert r.json()["payment_due"] == 0.0
    assert db_query(gw, "SELECT COUNT(*) FROM payments") == [(1,)]


def test_charge_stopped_after_paying_is_due_at_the_exit(
    gw, admin, operator, alice, anon, station, tesla
):
    parked = enter(operator, "EV1")
    sid, ticket = parked["session"]["id"], parked["ticket_number"]
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(minutes=50)
    assert fee(anon, sid)["total"] == 5.0  # the running charge is not billed yet
    assert pay(alice, sid, 5.0).status_code == 201
    gw.clock.advance(minutes=5)
    assert stop(alice, charge["id"])["cost"] == 1.65  # 55 min at 7.2 kW = 6.6 kWh
    check = anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()
    assert (check["is_paid"], check["can_exit"], check["amount_due"]) == (True, False, 1.65)
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 402, r.text
    assert r.json()["amount_due"] == 1.65
    assert_refused(pay(alice, sid, 1.64), 402)
    r = pay(alice, sid, 1.65)
    assert r.status_code == 201, r.text
    assert r.json()["total_amount"] == 1.65
    assert_refused(pay(alice, sid, 1.65), 409)  # nothing left to pay
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 200, r.text
    total = db_query(gw, "SELECT SUM(CAST(total_amount AS REAL)) FROM payments")[0][0]
    assert round(total, 2) == 6.65


def test_charge_stopped_after_paying_across_an_hour_is_only_the_charge(
    gw, admin, operator, alice, anon, station, tesla
):
    """Paid at 0:50, stopped at 1:04 inside the exit window: the barrier asks for the charge
    only, and the pay station must ask for the same amount (the parking hour that started
    inside the window is not owed)."""
    parked = enter(operator, "EV1")
    sid, ticket = parked["session"]["id"], parked["ticket_number"]
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(minutes=50)
    assert pay(alice, sid, 5.0).status_code == 201
    gw.clock.advance(minutes=14)
    assert stop(alice, charge["id"])["cost"] == 1.92  # 64 min at 7.2 kW = 7.68 kWh
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 402 and r.json()["amount_due"] == 1.92
    check = anon.post("/payments/validate-exit", json={"ticket_number": ticket}).json()
    assert check["amount_due"] == 1.92
    r = pay(alice, sid, 1.92)
    assert r.status_code == 201, r.text
    assert r.json()["total_amount"] == 1.92
    r = operator.post("/sessions/exit", json={"ticket_number": ticket})
    assert r.status_code == 200, r.text


def test_discount_codes_never_reduce_charging(gw, admin, operator, alice, anon, station, tesla):
    make_discount(admin, "FIFTY", discount_type="fixed_amount", value=50.0)
    make_discount(admin, "TWENTY", discount_type="percentage", value=20.0)
    for plate, code, expected_off in (("EV1", "FIFTY", 10.0), ("EV2", "TWENTY", 2.0)):
        car = tesla if plate == "EV1" else ev(alice, admin, plate)
        gw.clock.advance(minutes=1)
        sid = enter(operator, plate)["session"]["id"]
        charge = started(alice, station["id"], car["id"])
        gw.clock.advance(seconds=SEED_SECONDS)
        stop(alice, charge["id"])
        assert fee(anon, sid)["total"] == 13.13
        validated = anon.post("/discounts/validate", json={"code": code, "session_id": sid})
        assert validated.json()["discount_amount"] == expected_off
        r = pay(alice, sid, 0.0, discount_code=code)
        assert r.status_code == 402, r.text
        assert r.json()["amount_due"] == round(13.13 - expected_off, 2)
        r = pay(alice, sid, 13.13 - expected_off, discount_code=code)
        assert r.status_code == 201, r.text
        p = r.json()
        assert (p["amount"], p["discount_amount"]) == (13.13, expected_off)
        assert p["total_amount"] == round(13.13 - expected_off, 2)
        r = operator.post("/sessions/exit", json={"license_plate": plate})
        assert r.status_code == 200, r.text


def test_membership_discount_does_not_reduce_charging(
    gw, admin, operator, alice, anon, station, tesla
):
    plan = admin.post(
        "/membership-plans",
        json={"name": "Twenty", "duration_months": 1, "price": 10, "discount_percentage": 20},
    ).json()
    assert (
        alice.post(
            "/memberships", json={"plan_id": plan["id"], "vehicle_ids": [tesla["id"]]}
        ).status_code
        == 201
    )
    sid = enter(operator, "EV1")["session"]["id"]
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(seconds=SEED_SECONDS)
    stop(alice, charge["id"])
    body = fee(anon, sid)
    assert (body["base_fee"], body["discounts"], body["ev_charging"], body["total"]) == (
        10.0,
        2.0,
        3.13,
        11.13,
    )
    assert lines(body) == [
        ("Parking (2 hour(s) @ $5/hr)", 10.0),
        ("Membership discount (20%)", -2.0),
        ("EV charging (12.5 kWh)", 3.13),
    ]


def test_plan_with_charging_included(gw, admin, operator, alice, anon, station, tesla):
    plan = admin.post(
        "/membership-plans",
        json={
            "name": "EV Plus",
            "duration_months": 1,
            "price": 99,
            "discount_percentage": 0,
            "ev_charging_included": True,
        },
    ).json()
    assert (
        alice.post(
            "/memberships", json={"plan_id": plan["id"], "vehicle_ids": [tesla["id"]]}
        ).status_code
        == 201
    )
    parked = enter(operator, "EV1")
    sid = parked["session"]["id"]
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(seconds=SEED_SECONDS)
    answer = stop(alice, charge["id"])
    assert answer["cost"] == 3.13  # metered and priced on the charge itself
    body = fee(anon, sid)
    assert (body["base_fee"], body["ev_charging"], body["total"]) == (10.0, 0.0, 10.0)
    assert lines(body) == [
        ("Parking (2 hour(s) @ $5/hr)", 10.0),
        ("EV charging (included in membership) (12.5 kWh)", 0.0),
    ]
    assert pay(alice, sid, 10.0).status_code == 201
    r = operator.post("/sessions/exit", json={"ticket_number": parked["ticket_number"]})
    assert r.status_code == 200, r.text


def test_charge_without_a_parking_stay_is_not_billed_later(
    gw, admin, operator, alice, anon, station, tesla
):
    charge = started(alice, station["id"], tesla["id"])
    gw.clock.advance(minutes=60)
    assert stop(alice, charge["id"])["cost"] == 1.8
    sid = enter(operator, "EV1")["session"]["id"]
    gw.clock.advance(minutes=60)
    body = fee(anon, sid)
    assert (body["ev_charging"], body["total"]) == (0.0, 5.0)
