"""Vehicle types and vehicles over HTTP (field reference sections 3 and 4).

Covers the access rules (public list, admin-only types, owner/admin vehicles, staff look-up
by plate), plate normalisation and uniqueness, the page shape of ``GET /vehicles`` and its
visibility, and the refusal of bad bodies: each must be 400/422 with a JSON ``detail``, never
a 500, and must change nothing (checked with a follow-up GET).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

VEHICLE_TYPE_FIELDS = {"id", "name", "size_category", "description", "created_at", "updated_at"}
VEHICLE_FIELDS = {
    "id",
    "license_plate",
    "vehicle_type_id",
    "user_id",
    "make",
    "model",
    "color",
    "is_ev",
    "vehicle_type",
    "created_at",
    "updated_at",
}


def assert_bad(r: httpx.Response, label: object = "") -> None:
    """400/422 with a JSON object carrying a non-empty string ``detail``."""
    assert r.status_code in (400, 422), (label, r.status_code, r.text)
    body = r.json()
    assert isinstance(body, dict), (label, body)
    assert isinstance(body.get("detail"), str) and body["detail"], (label, body)


def send(client: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    """``bytes`` go out raw as ``application/json``; anything else is JSON-encoded."""
    if isinstance(body, bytes):
        return client.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )
    return client.request(method, url, json=body)


def all_vehicles(admin: httpx.Client) -> list[dict[str, Any]]:
    r = admin.get("/vehicles", params={"limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["vehicles"])


@pytest.fixture
def car(admin: httpx.Client) -> dict[str, Any]:
    r = admin.post("/vehicle-types", json={"name": "Car"})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def van(admin: httpx.Client) -> dict[str, Any]:
    r = admin.post("/vehicle-types", json={"name": "Van", "size_category": "large"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def add_vehicle(client: httpx.Client, plate: str, type_id: int, **extra: Any) -> dict[str, Any]:
    r = client.post("/vehicles", json={"license_plate": plate, "vehicle_type_id": type_id, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


# -- vehicle types ----------------------------------------------------------------------------


def test_vehicle_types_public_list_and_admin_create(
    admin: httpx.Client, anon: httpx.Client
) -> None:
    assert anon.get("/vehicle-types").json() == []
    r = admin.post(
        "/vehicle-types",
        json={"name": "SUV", "size_category": "large", "description": "Sport utility"},
    )
    assert r.status_code == 201, r.text
    suv = r.json()
    assert set(suv) >= VEHICLE_TYPE_FIELDS
    assert (suv["name"], suv["size_category"], suv["description"]) == (
        "SUV",
        "large",
        "Sport utility",
    )
    r = admin.post("/vehicle-types", json={"name": "Car"})
    assert r.status_code == 201, r.text
    car = r.json()
    assert car["size_category"] == "medium" and car["description"] is None

    r = anon.get("/vehicle-types")
    assert r.status_code == 200, r.text
    listed = r.json()
    assert isinstance(listed, list)
    assert [t["name"] for t in listed] == ["SUV", "Car"]
    assert listed[0] == suv


@pytest.mark.parametrize("size", ["small", "medium", "large", "extra_large"])
def test_vehicle_type_every_size_category(admin: httpx.Client, size: str) -> None:
    r = admin.post("/vehicle-types", json={"name": f"T-{size}", "size_category": size})
    assert r.status_code == 201, r.text
    assert r.json()["size_category"] == size


def test_vehicle_type_create_is_admin_only(
    admin: httpx.Client, operator: httpx.Client, alice: httpx.Client, anon: httpx.Client
) -> None:
    body = {"name": "Truck"}
    assert operator.post("/vehicle-types", json=body).status_code == 403
    assert alice.post("/vehicle-types", json=body).status_code == 403
    r = anon.post("/vehicle-types", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert admin.get("/vehicle-types").json() == []
    # staff and customers may read the list
    assert operator.get("/vehicle-types").status_code == 200
    assert alice.get("/vehicle-types").status_code == 200


def test_vehicle_type_duplicate_name_is_409(admin: httpx.Client, car: dict[str, Any]) -> None:
    r = admin.post("/vehicle-types", json={"name": "Car", "size_category": "small"})
    assert r.status_code == 409, r.text
    assert isinstance(r.json()["detail"], str)
    r = admin.post("/vehicle-types", json={"name": "  Car  "})
    assert r.status_code == 409, r.text
    assert admin.get("/vehicle-types").json() == [car]


VEHICLE_TYPE_BAD_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("missing name", {"size_category": "small"}),
    ("name null", {"name": None}),
    ("name wrong type", {"name": 42}),
    ("name blank", {"name": "   "}),
    ("name empty", {"name": ""}),
    ("name too long", {"name": "n" * 51}),
    ("unknown size_category", {"name": "Bus", "size_category": "huge"}),
    ("upper-case size_category", {"name": "Bus", "size_category": "LARGE"}),
    ("size_category wrong type", {"name": "Bus", "size_category": 2}),
    ("description too long", {"name": "Bus", "description": "d" * 256}),
    ("description wrong type", {"name": "Bus", "description": {"text": "x"}}),
    ("json array", [{"name": "Bus"}]),
    ("json string", "Bus"),
    ("not json", b"name=Bus"),
    ("truncated json", b'{"name": "Bus"'),
    ("empty body", b""),
]


def test_vehicle_type_bad_bodies_change_nothing(admin: httpx.Client, anon: httpx.Client) -> None:
    before = anon.get("/vehicle-types").json()
    for label, body in VEHICLE_TYPE_BAD_BODIES:
        assert_bad(send(admin, "POST", "/vehicle-types", body), label)
        assert anon.get("/vehicle-types").json() == before, label
    # name limits are inclusive
    r = admin.post("/vehicle-types", json={"name": "n" * 50, "description": "d" * 255})
    assert r.status_code == 201, r.text


# -- vehicles: create ---------------------------------------------------------------------------


def test_seed_example_body_is_accepted(alice: httpx.Client, car: dict[str, Any], gw: Any) -> None:
    r = alice.post(
        "/vehicles",
        json={
            "license_plate": "ABC123",
            "vehicle_type_id": car["id"],
            "make": "Toyota",
            "model": "Camry",
            "color": "Silver",
            "is_ev": False,
        },
    )
    assert r.status_code == 201, r.text
    v = r.json()
    assert set(v) >= VEHICLE_FIELDS
    assert v["license_plate"] == "ABC123"
    assert v["user_id"] == gw.user_ids["alice@example.com"]
    assert (v["make"], v["model"], v["color"], v["is_ev"]) == ("Toyota", "Camry", "Silver", False)
    assert v["vehicle_type_id"] == car["id"]
    assert v["vehicle_type"]["name"] == "Car"
    assert v["vehicle_type"]["size_category"] == "medium"


def test_plate_is_normalised_and_defaults_apply(alice: httpx.Client, car: dict[str, Any]) -> None:
    v = add_vehicle(alice, "ab-123 c", car["id"])
    assert v["license_plate"] == "AB123C"
    assert v["make"] is None and v["model"] is None and v["color"] is None
    assert v["is_ev"] is False
    v = add_vehicle(alice, "  ev 42  ", car["id"], is_ev=True)
    assert v["license_plate"] == "EV42" and v["is_ev"] is True


def test_plate_is_unique_whatever_its_spelling(
    alice: httpx.Client, bob: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    first = add_vehicle(alice, "AB123C", car["id"])
    for client, plate in (
        (alice, "AB123C"),
        (alice, "ab-123 c"),
        (bob, "Ab 123-C"),
        (admin, "ab123c"),
    ):
        r = client.post("/vehicles", json={"license_plate": plate, "vehicle_type_id": car["id"]})
        assert r.status_code == 409, (plate, r.text)
        assert isinstance(r.json()["detail"], str)
    assert all_vehicles(admin) == [first]


def test_unknown_vehicle_type_is_404(alice: httpx.Client, admin: httpx.Client) -> None:
    r = alice.post("/vehicles", json={"license_plate": "XY1", "vehicle_type_id": 999})
    assert r.status_code == 404, r.text
    assert all_vehicles(admin) == []


def test_plate_length_limits(alice: httpx.Client, admin: httpx.Client, car: dict[str, Any]) -> None:
    v = add_vehicle(alice, "A" * 20, car["id"])
    assert v["license_plate"] == "A" * 20
    v = add_vehicle(alice, "b", car["id"])
    assert v["license_plate"] == "B"
    r = alice.post("/vehicles", json={"license_plate": "C" * 21, "vehicle_type_id": car["id"]})
    assert_bad(r)
    assert len(all_vehicles(admin)) == 2


def vehicle_bad_bodies(type_id: int) -> list[tuple[str, Any]]:
    good = {"license_plate": "BAD1", "vehicle_type_id": type_id}
    return [
        ("empty object", {}),
        ("missing plate", {"vehicle_type_id": type_id}),
        ("missing vehicle_type_id", {"license_plate": "BAD1"}),
        ("plate null", {**good, "license_plate": None}),
        ("plate wrong type", {**good, "license_plate": 123456}),
        ("plate blank", {**good, "license_plate": "    "}),
        ("plate empty", {**good, "license_plate": ""}),
        ("plate only separators", {**good, "license_plate": "- . -"}),
        ("plate too long", {**good, "license_plate": "X" * 21}),
        ("plate far too long", {**good, "license_plate": "X" * 500}),
        ("plate bad characters", {**good, "license_plate": "AB@12!"}),
        ("vehicle_type_id string", {**good, "vehicle_type_id": str(type_id)}),
        ("vehicle_type_id float", {**good, "vehicle_type_id": 1.5}),
        ("vehicle_type_id zero", {**good, "vehicle_type_id": 0}),
        ("vehicle_type_id negative", {**good, "vehicle_type_id": -1}),
        ("vehicle_type_id bool", {**good, "vehicle_type_id": True}),
        ("is_ev yes", {**good, "is_ev": "yes"}),
        ("is_ev 1", {**good, "is_ev": 1}),
        ("is_ev 0", {**good, "is_ev": 0}),
        ("is_ev 'true'", {**good, "is_ev": "true"}),
        ("is_ev null", {**good, "is_ev": None}),
        ("make too long", {**good, "make": "m" * 51}),
        ("model too long", {**good, "model": "m" * 51}),
        ("color too long", {**good, "color": "c" * 31}),
        ("make wrong type", {**good, "make": 7}),
        ("user_id string", {**good, "user_id": "me"}),
        ("user_id zero", {**good, "user_id": 0}),
        ("json array", [good]),
        ("json number", 7),
        ("json null", None),
        ("not json", b"license_plate=BAD1"),
        ("truncated json", b'{"license_plate": "BAD1",'),
        ("empty body", b""),
    ]


def test_vehicle_bad_bodies_change_nothing(
    alice: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    existing = add_vehicle(alice, "KEEP1", car["id"])
    for label, body in vehicle_bad_bodies(car["id"]):
        assert_bad(send(alice, "POST", "/vehicles", body), label)
        assert_bad(send(admin, "POST", "/vehicles", body), label)
        assert all_vehicles(admin) == [existing], label
    # the good body still works afterwards
    add_vehicle(alice, "BAD1", car["id"])


def test_admin_may_register_a_vehicle_for_another_user(
    admin: httpx.Client, alice: httpx.Client, gw: Any, car: dict[str, Any]
) -> None:
    alice_id = gw.user_ids["alice@example.com"]
    v = add_vehicle(admin, "FOR-ALICE", car["id"], user_id=alice_id)
    assert v["user_id"] == alice_id
    assert [x["id"] for x in alice.get("/vehicles").json()["vehicles"]] == [v["id"]]
    # without user_id the admin owns it
    v2 = add_vehicle(admin, "ADMIN1", car["id"])
    assert v2["user_id"] == gw.user_ids["admin@example.com"]
    # an unknown user is 404 and creates nothing
    r = admin.post(
        "/vehicles", json={"license_plate": "NOBODY1", "vehicle_type_id": car["id"], "user_id": 999}
    )
    assert r.status_code == 404, r.text
    assert len(all_vehicles(admin)) == 2


def test_non_admin_may_not_register_for_another_user(
    alice: httpx.Client, operator: httpx.Client, admin: httpx.Client, gw: Any, car: dict[str, Any]
) -> None:
    bob_id = gw.user_ids["bob@example.com"]
    body = {"license_plate": "FOR-BOB", "vehicle_type_id": car["id"], "user_id": bob_id}
    r = alice.post("/vehicles", json=body)
    assert r.status_code == 403, r.text
    assert isinstance(r.json()["detail"], str)
    assert operator.post("/vehicles", json=body).status_code == 403
    assert all_vehicles(admin) == []
    # naming oneself is fine
    v = add_vehicle(alice, "MINE1", car["id"], user_id=gw.user_ids["alice@example.com"])
    assert v["user_id"] == gw.user_ids["alice@example.com"]


def test_create_vehicle_needs_a_token(
    anon: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    r = anon.post("/vehicles", json={"license_plate": "ANON1", "vehicle_type_id": car["id"]})
    assert r.status_code == 401
    assert anon.get("/vehicles").status_code == 401
    assert all_vehicles(admin) == []


def test_a_plate_first_seen_at_a_gate_is_claimed_by_registering_it(
    gw: Any,
    site: dict[str, Any],
    operator: httpx.Client,
    alice: httpx.Client,
    bob: httpx.Client,
    admin: httpx.Client,
    car: dict[str, Any],
) -> None:
    r = operator.post("/sessions/entry", json={"license_plate": "gate-7"})
    assert r.status_code == 201, r.text
    seen = r.json()["session"]["vehicle"]
    assert seen["license_plate"] == "GATE7" and seen["user_id"] is None
    v = add_vehicle(alice, "Gate 7", car["id"], make="Fiat")
    assert v["id"] == seen["id"]
    assert v["user_id"] == gw.user_ids["alice@example.com"]
    r = bob.post("/vehicles", json={"license_plate": "GATE7", "vehicle_type_id": car["id"]})
    assert r.status_code == 409, r.text
    assert len(all_vehicles(admin)) == 1


# -- vehicles: list -------------------------------------------------------------------------------


def test_list_page_shape_and_visibility(
    alice: httpx.Client,
    bob: httpx.Client,
    operator: httpx.Client,
    admin: httpx.Client,
    gw: Any,
    car: dict[str, Any],
) -> None:
    a1 = add_vehicle(alice, "ALICE1", car["id"])
    b1 = add_vehicle(bob, "BOB1", car["id"])
    a2 = add_vehicle(alice, "ALICE2", car["id"])
    o1 = add_vehicle(operator, "OPER1", car["id"])

    r = alice.get("/vehicles")
    assert r.status_code == 200, r.text
    page = r.json()
    assert set(page) >= {"vehicles", "total", "page", "limit"}
    assert (page["total"], page["page"], page["limit"]) == (2, 1, 20)
    assert page["vehicles"] == [a1, a2]

    assert bob.get("/vehicles").json()["vehicles"] == [b1]
    # operators see their own vehicles too, not everybody's
    assert operator.get("/vehicles").json()["vehicles"] == [o1]
    # a customer's user_id filter cannot widen the view
    bob_id = gw.user_ids["bob@example.com"]
    r = alice.get("/vehicles", params={"user_id": bob_id})
    assert r.status_code in (200, 403), r.text
    if r.status_code == 200:
        assert all(v["user_id"] == gw.user_ids["alice@example.com"] for v in r.json()["vehicles"])

    everything = admin.get("/vehicles").json()
    assert everything["total"] == 4
    assert [v["id"] for v in everything["vehicles"]] == [a1["id"], b1["id"], a2["id"], o1["id"]]
    filtered = admin.get("/vehicles", params={"user_id": bob_id}).json()
    assert filtered["vehicles"] == [b1] and filtered["total"] == 1
    assert admin.get("/vehicles", params={"user_id": 999}).json() == {
        "vehicles": [],
        "total": 0,
        "page": 1,
        "limit": 20,
    }


def test_list_pagination(alice: httpx.Client, car: dict[str, Any]) -> None:
    made = [add_vehicle(alice, f"PAGE{n}", car["id"]) for n in range(5)]
    r = alice.get("/vehicles", params={"page": 2, "limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["total"], page["page"], page["limit"]) == (5, 2, 2)
    assert page["vehicles"] == made[2:4]
    assert alice.get("/vehicles", params={"page": 3, "limit": 2}).json()["vehicles"] == made[4:]
    beyond = alice.get("/vehicles", params={"page": 9, "limit": 2}).json()
    assert beyond["vehicles"] == [] and beyond["total"] == 5
    assert alice.get("/vehicles", params={"limit": 100}).json()["limit"] == 100


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": -1},
        {"page": "abc"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"page": "1.5"},
        {"user_id": "abc"},
    ],
)
def test_list_bad_query_parameters(admin: httpx.Client, params: dict[str, Any]) -> None:
    assert_bad(admin.get("/vehicles", params=params), params)


# -- vehicles: find by plate ------------------------------------------------------------------------


def test_find_by_plate_access(
    alice: httpx.Client,
    bob: httpx.Client,
    operator: httpx.Client,
    admin: httpx.Client,
    anon: httpx.Client,
    car: dict[str, Any],
) -> None:
    v = add_vehicle(alice, "ab-123 c", car["id"])
    for plate in ("AB123C", "ab123c", "ab-123 c", "AB 123 C"):
        r = alice.get(f"/vehicles/plate/{plate}")
        assert r.status_code == 200, (plate, r.text)
        assert r.json() == v
    assert operator.get("/vehicles/plate/AB123C").json() == v
    assert admin.get("/vehicles/plate/ab123c").json() == v
    r = bob.get("/vehicles/plate/AB123C")
    assert r.status_code == 403, r.text
    assert isinstance(r.json()["detail"], str)
    assert anon.get("/vehicles/plate/AB123C").status_code == 401


def test_find_unknown_plate_is_404(alice: httpx.Client, operator: httpx.Client) -> None:
    for client in (alice, operator):
        r = client.get("/vehicles/plate/NOPE99")
        assert r.status_code == 404, r.text
        assert isinstance(r.json()["detail"], str)


def test_find_impossible_plate_is_refused_not_500(alice: httpx.Client) -> None:
    for plate in ("AB%40CD", "X" * 30, "%20%20"):
        r = alice.get(f"/vehicles/plate/{plate}")
        assert r.status_code in (400, 404, 422), (plate, r.text)
        assert isinstance(r.json()["detail"], str)


# -- vehicles: update -----------------------------------------------------------------------------


def test_owner_updates_only_given_fields(
    alice: httpx.Client, car: dict[str, Any], van: dict[str, Any]
) -> None:
    v = add_vehicle(alice, "UPD1", car["id"], make="Ford", model="Focus", color="Blue")
    r = alice.put(f"/vehicles/{v['id']}", json={"color": "Red", "is_ev": True})
    assert r.status_code == 200, r.text
    u = r.json()
    assert (u["make"], u["model"], u["color"], u["is_ev"]) == ("Ford", "Focus", "Red", True)
    assert u["license_plate"] == "UPD1" and u["vehicle_type_id"] == car["id"]

    r = alice.put(f"/vehicles/{v['id']}", json={"vehicle_type_id": van["id"], "make": None})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["vehicle_type_id"] == van["id"] and u["vehicle_type"]["name"] == "Van"
    assert u["make"] is None and u["model"] == "Focus"
    assert alice.get("/vehicles/plate/UPD1").json() == u

    # an empty body (or one of unknown fields only) is a mistake: 400, nothing changes
    for body in ({}, {"plate": "X1"}):
        r = alice.put(f"/vehicles/{v['id']}", json=body)
        assert r.status_code == 400, r.text
        assert "nothing to update" in r.json()["detail"]
    assert alice.get("/vehicles/plate/UPD1").json() == u


def test_plate_cannot_be_changed(alice: httpx.Client, car: dict[str, Any]) -> None:
    v = add_vehicle(alice, "FIXED1", car["id"])
    r = alice.put(f"/vehicles/{v['id']}", json={"license_plate": "OTHER1", "color": "Green"})
    assert r.status_code in (200, 400, 422), r.text
    after = alice.get("/vehicles/plate/FIXED1")
    assert after.status_code == 200 and after.json()["license_plate"] == "FIXED1"
    assert alice.get("/vehicles/plate/OTHER1").status_code == 404


def test_update_access(
    alice: httpx.Client,
    bob: httpx.Client,
    operator: httpx.Client,
    admin: httpx.Client,
    anon: httpx.Client,
    car: dict[str, Any],
) -> None:
    v = add_vehicle(alice, "OWN1", car["id"], color="Blue")
    assert bob.put(f"/vehicles/{v['id']}", json={"color": "Black"}).status_code == 403
    assert operator.put(f"/vehicles/{v['id']}", json={"color": "Black"}).status_code == 403
    assert anon.put(f"/vehicles/{v['id']}", json={"color": "Black"}).status_code == 401
    assert alice.get("/vehicles/plate/OWN1").json() == v
    r = admin.put(f"/vehicles/{v['id']}", json={"color": "White"})
    assert r.status_code == 200, r.text
    assert r.json()["color"] == "White" and r.json()["user_id"] == v["user_id"]


def test_update_unknown_vehicle_or_type_is_404(
    alice: httpx.Client, bob: httpx.Client, car: dict[str, Any]
) -> None:
    assert alice.put("/vehicles/999", json={"color": "Red"}).status_code == 404
    v = add_vehicle(alice, "TYPE1", car["id"])
    r = alice.put(f"/vehicles/{v['id']}", json={"vehicle_type_id": 999, "color": "Red"})
    assert r.status_code == 404, r.text
    assert alice.get("/vehicles/plate/TYPE1").json() == v
    # existence (404) is checked before ownership (403)
    r = bob.put(f"/vehicles/{v['id']}", json={"vehicle_type_id": 999})
    assert r.status_code == 404, r.text


def vehicle_update_bad_bodies(type_id: int) -> list[tuple[str, Any]]:
    return [
        ("is_ev yes", {"is_ev": "yes"}),
        ("is_ev 1", {"is_ev": 1}),
        ("is_ev 'false'", {"is_ev": "false"}),
        ("is_ev null", {"is_ev": None}),
        ("make too long", {"make": "m" * 51}),
        ("model too long", {"model": "m" * 51}),
        ("color too long", {"color": "c" * 31}),
        ("color wrong type", {"color": ["red"]}),
        ("vehicle_type_id string", {"vehicle_type_id": str(type_id)}),
        ("vehicle_type_id zero", {"vehicle_type_id": 0}),
        ("vehicle_type_id null", {"vehicle_type_id": None}),
        ("good field plus bad field", {"color": "Pink", "is_ev": "yes"}),
        ("json array", [{"color": "Red"}]),
        ("json string", "Red"),
        ("not json", b"color=Red"),
        ("truncated json", b'{"color": '),
        ("empty body", b""),
    ]


def test_update_bad_bodies_change_nothing(
    alice: httpx.Client, bob: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    v = add_vehicle(alice, "STAY1", car["id"], make="Ford", color="Blue")
    for label, body in vehicle_update_bad_bodies(car["id"]):
        assert_bad(send(alice, "PUT", f"/vehicles/{v['id']}", body), label)
        assert_bad(send(admin, "PUT", f"/vehicles/{v['id']}", body), label)
        # validation comes before ownership: another customer gets 400/422 too
        assert_bad(send(bob, "PUT", f"/vehicles/{v['id']}", body), label)
        assert alice.get("/vehicles/plate/STAY1").json() == v, label


# -- vehicles: delete ------------------------------------------------------------------------------


def test_owner_deletes_a_vehicle(
    alice: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    v = add_vehicle(alice, "GONE1", car["id"])
    keep = add_vehicle(alice, "KEEP2", car["id"])
    r = alice.delete(f"/vehicles/{v['id']}")
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str) and r.json()["message"]
    assert alice.get("/vehicles/plate/GONE1").status_code == 404
    assert alice.get("/vehicles").json()["vehicles"] == [keep]
    assert alice.delete(f"/vehicles/{v['id']}").status_code == 404
    # the plate is free again
    add_vehicle(alice, "GONE1", car["id"])
    assert len(all_vehicles(admin)) == 2


def test_delete_access(
    alice: httpx.Client,
    bob: httpx.Client,
    operator: httpx.Client,
    admin: httpx.Client,
    anon: httpx.Client,
    car: dict[str, Any],
) -> None:
    v = add_vehicle(alice, "DEL1", car["id"])
    assert bob.delete(f"/vehicles/{v['id']}").status_code == 403
    assert operator.delete(f"/vehicles/{v['id']}").status_code == 403
    assert anon.delete(f"/vehicles/{v['id']}").status_code == 401
    assert alice.get("/vehicles/plate/DEL1").json() == v
    r = admin.delete(f"/vehicles/{v['id']}")
    assert r.status_code == 200, r.text
    assert "message" in r.json()
    assert alice.get("/vehicles/plate/DEL1").status_code == 404
    assert admin.delete("/vehicles/999").status_code == 404
    assert admin.delete("/vehicles/abc").status_code in (400, 404, 405, 422)


def test_delete_a_vehicle_that_is_inside_is_409(
    site: dict[str, Any],
    alice: httpx.Client,
    admin: httpx.Client,
    operator: httpx.Client,
    car: dict[str, Any],
) -> None:
    v = add_vehicle(alice, "INSIDE1", car["id"])
    r = operator.post("/sessions/entry", json={"license_plate": "inside-1"})
    assert r.status_code == 201, r.text
    assert r.json()["session"]["vehicle_id"] == v["id"]
    for client in (alice, admin):
        r = client.delete(f"/vehicles/{v['id']}")
        assert r.status_code == 409, r.text
        assert isinstance(r.json()["detail"], str)
    assert alice.get("/vehicles/plate/INSIDE1").json()["id"] == v["id"]
    assert alice.get("/vehicles").json()["total"] == 1


def test_out_of_range_ids_are_refused_not_500(
    alice: httpx.Client, admin: httpx.Client, car: dict[str, Any]
) -> None:
    v = add_vehicle(alice, "RANGE1", car["id"])
    huge = "9" * 25
    responses = [
        admin.get("/vehicles", params={"user_id": huge}),
        alice.put(f"/vehicles/{huge}", json={"make": "Ford"}),
        alice.delete(f"/vehicles/{huge}"),
        alice.post("/vehicles", json={"license_plate": "RANGE2", "vehicle_type_id": 10**30}),
        admin.post(
            "/vehicles",
            json={"license_plate": "RANGE3", "vehicle_type_id": car["id"], "user_id": 10**30},
        ),
        alice.put(f"/vehicles/{v['id']}", json={"vehicle_type_id": 10**30}),
    ]
    for r in responses:
        assert r.status_code in (400, 404, 422), (r.request.url, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str), r.text
    assert all_vehicles(admin) == [v]


def test_body_type_errors_name_the_field(alice: httpx.Client, car: dict[str, Any]) -> None:
    for body, field in (
        ({"license_plate": "F1", "vehicle_type_id": car["id"], "is_ev": 1}, "is_ev"),
        ({"license_plate": "F1", "vehicle_type_id": str(car["id"])}, "vehicle_type_id"),
        ({"license_plate": "F1", "vehicle_type_id": car["id"], "color": "c" * 31}, "color"),
    ):
        r = alice.post("/vehicles", json=body)
        assert_bad(r, body)
        assert r.json()["errors"][0]["field"] == field, r.text
