"""Levels, zones and spaces over HTTP (field reference sections 5, 6 and 7).

Public reads, admin-only creation, staff space updates, zone availability counts and the
space listings with their filters. Bad bodies and bad query parameters must be 400/422 with
a JSON ``detail``, never a 500, and a refused request must change nothing (checked with a
follow-up GET).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

LEVEL_FIELDS = {
    "id",
    "name",
    "floor_number",
    "is_underground",
    "max_height_m",
    "created_at",
    "updated_at",
}
ZONE_FIELDS = {
    "id",
    "level_id",
    "name",
    "description",
    "total_spaces",
    "color_code",
    "level",
    "created_at",
    "updated_at",
}
SPACE_FIELDS = {
    "id",
    "zone_id",
    "space_number",
    "space_type",
    "floor",
    "row",
    "is_ev_charging",
    "is_handicapped",
    "status",
    "zone",
    "created_at",
    "updated_at",
}
AVAILABILITY_FIELDS = {
    "zone_id",
    "total",
    "available",
    "occupied",
    "reserved",
    "maintenance",
    "occupancy_rate",
}
SPACE_STATUSES = ["available", "occupied", "reserved", "maintenance", "out_of_service"]
SPACE_TYPES = ["standard", "compact", "handicapped", "ev_charging", "motorcycle"]


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


def created(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    return dict(r.json())


def all_spaces(client: httpx.Client) -> list[dict[str, Any]]:
    r = client.get("/spaces", params={"limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["spaces"])


def space_by_id(client: httpx.Client, space_id: int) -> dict[str, Any]:
    return next(s for s in all_spaces(client) if s["id"] == space_id)


COMMON_BAD: list[tuple[str, Any]] = [
    ("json array", [{"name": "X"}]),
    ("json string", "X"),
    ("json number", 5),
    ("json null", None),
    ("not json", b"name=X"),
    ("truncated json", b'{"name": "X",'),
    ("empty body", b""),
]


# -- levels ---------------------------------------------------------------------------------------


def test_levels_are_public_and_ordered_by_floor_number(
    admin: httpx.Client, anon: httpx.Client, alice: httpx.Client
) -> None:
    assert anon.get("/levels").json() == []
    roof = created(admin.post("/levels", json={"name": "Roof", "floor_number": 3}))
    b1 = created(
        admin.post(
            "/levels",
            json={
                "name": "B1",
                "floor_number": -1,
                "is_underground": True,
                "max_height_m": 2.1,
            },
        )
    )
    ground = created(admin.post("/levels", json={"name": "Ground", "floor_number": 0}))
    r = anon.get("/levels")
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)
    assert [lv["name"] for lv in r.json()] == ["B1", "Ground", "Roof"]
    assert r.json() == [b1, ground, roof]
    assert alice.get("/levels").json() == r.json()

    assert set(b1) >= LEVEL_FIELDS
    assert (b1["floor_number"], b1["is_underground"], b1["max_height_m"]) == (-1, True, 2.1)
    assert (roof["is_underground"], roof["max_height_m"]) == (False, None)


def test_level_create_is_admin_only(
    admin: httpx.Client, operator: httpx.Client, alice: httpx.Client, anon: httpx.Client
) -> None:
    body = {"name": "L1", "floor_number": 1}
    assert operator.post("/levels", json=body).status_code == 403
    assert alice.post("/levels", json=body).status_code == 403
    assert anon.post("/levels", json=body).status_code == 401
    assert admin.get("/levels").json() == []


def test_level_update(admin: httpx.Client, anon: httpx.Client) -> None:
    low = created(admin.post("/levels", json={"name": "Low", "floor_number": 1}))
    high = created(
        admin.post("/levels", json={"name": "High", "floor_number": 2, "max_height_m": 2.5})
    )
    r = admin.put(f"/levels/{high['id']}", json={"name": "Top"})
    assert r.status_code == 200, r.text
    top = r.json()
    assert (top["name"], top["floor_number"], top["max_height_m"]) == ("Top", 2, 2.5)
    # moving a level re-orders the listing
    r = admin.put(
        f"/levels/{high['id']}",
        json={"floor_number": -2, "is_underground": True, "max_height_m": None},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["floor_number"], r.json()["is_underground"]) == (-2, True)
    assert r.json()["max_height_m"] is None
    assert [lv["id"] for lv in anon.get("/levels").json()] == [high["id"], low["id"]]
    # an empty body is a mistake (400), and changes nothing
    r = admin.put(f"/levels/{low['id']}", json={})
    assert r.status_code == 400, r.text
    assert anon.get("/levels").json()[1]["name"] == "Low"
    assert admin.put("/levels/999", json={"name": "Nope"}).status_code == 404


def test_level_update_is_admin_only(
    admin: httpx.Client, operator: httpx.Client, alice: httpx.Client, anon: httpx.Client
) -> None:
    level = created(admin.post("/levels", json={"name": "L1", "floor_number": 1}))
    for client, code in ((operator, 403), (alice, 403), (anon, 401)):
        assert client.put(f"/levels/{level['id']}", json={"name": "Hacked"}).status_code == code
    assert admin.get("/levels").json() == [level]


LEVEL_BAD_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("missing name", {"floor_number": 1}),
    ("missing floor_number", {"name": "L"}),
    ("name null", {"name": None, "floor_number": 1}),
    ("name wrong type", {"name": 1, "floor_number": 1}),
    ("name blank", {"name": "  ", "floor_number": 1}),
    ("name empty", {"name": "", "floor_number": 1}),
    ("name too long", {"name": "n" * 51, "floor_number": 1}),
    ("floor_number string", {"name": "L", "floor_number": "1"}),
    ("floor_number float", {"name": "L", "floor_number": 1.5}),
    ("floor_number bool", {"name": "L", "floor_number": True}),
    ("floor_number null", {"name": "L", "floor_number": None}),
    ("is_underground yes", {"name": "L", "floor_number": 1, "is_underground": "yes"}),
    ("is_underground 1", {"name": "L", "floor_number": 1, "is_underground": 1}),
    ("is_underground 'true'", {"name": "L", "floor_number": 1, "is_underground": "true"}),
    ("max_height_m zero", {"name": "L", "floor_number": 1, "max_height_m": 0}),
    ("max_height_m negative", {"name": "L", "floor_number": 1, "max_height_m": -2.0}),
    ("max_height_m string", {"name": "L", "floor_number": 1, "max_height_m": "2.5"}),
    ("max_height_m word", {"name": "L", "floor_number": 1, "max_height_m": "tall"}),
    ("max_height_m bool", {"name": "L", "floor_number": 1, "max_height_m": True}),
    *COMMON_BAD,
]


def test_level_create_bad_bodies_change_nothing(admin: httpx.Client, anon: httpx.Client) -> None:
    existing = created(admin.post("/levels", json={"name": "Keep", "floor_number": 0}))
    for label, body in LEVEL_BAD_BODIES:
        assert_bad(send(admin, "POST", "/levels", body), label)
        assert anon.get("/levels").json() == [existing], label


LEVEL_UPDATE_BAD_BODIES: list[tuple[str, Any]] = [
    ("name blank", {"name": "   "}),
    ("name empty", {"name": ""}),
    ("name null", {"name": None}),
    ("name too long", {"name": "n" * 51}),
    ("floor_number string", {"floor_number": "2"}),
    ("floor_number null", {"floor_number": None}),
    ("is_underground yes", {"is_underground": "yes"}),
    ("is_underground 1", {"is_underground": 1}),
    ("max_height_m zero", {"max_height_m": 0}),
    ("max_height_m string", {"max_height_m": "3.0"}),
    ("good field plus bad field", {"name": "New", "is_underground": 0}),
    *COMMON_BAD,
]


def test_level_update_bad_bodies_change_nothing(admin: httpx.Client, anon: httpx.Client) -> None:
    level = created(
        admin.post("/levels", json={"name": "Keep", "floor_number": 0, "max_height_m": 2.2})
    )
    for label, body in LEVEL_UPDATE_BAD_BODIES:
        assert_bad(send(admin, "PUT", f"/levels/{level['id']}", body), label)
        assert anon.get("/levels").json() == [level], label


# -- zones ----------------------------------------------------------------------------------------


@pytest.fixture
def two_levels(admin: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    one = created(admin.post("/levels", json={"name": "One", "floor_number": 1}))
    two = created(admin.post("/levels", json={"name": "Two", "floor_number": 2}))
    return one, two


def test_zone_create_list_and_level_filter(
    admin: httpx.Client, anon: httpx.Client, two_levels: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    one, two = two_levels
    a = created(
        admin.post(
            "/zones",
            json={
                "level_id": one["id"],
                "name": "A",
                "description": "North side",
                "total_spaces": 50,
                "color_code": "#FF0000",
            },
        )
    )
    assert set(a) >= ZONE_FIELDS
    assert (a["level_id"], a["name"], a["description"]) == (one["id"], "A", "North side")
    assert (a["total_spaces"], a["color_code"]) == (50, "#FF0000")
    assert a["level"]["id"] == one["id"] and a["level"]["name"] == "One"
    b = created(admin.post("/zones", json={"level_id": two["id"], "name": "B"}))
    assert (b["description"], b["total_spaces"], b["color_code"]) == (None, 0, None)
    c = created(admin.post("/zones", json={"level_id": one["id"], "name": "C"}))

    r = anon.get("/zones")
    assert r.status_code == 200, r.text
    assert r.json() == [a, b, c]
    assert anon.get("/zones", params={"level_id": one["id"]}).json() == [a, c]
    assert anon.get("/zones", params={"level_id": two["id"]}).json() == [b]
    assert anon.get("/zones", params={"level_id": 999}).json() == []
    for bad in ("abc", "1.5", ""):
        r = anon.get("/zones", params={"level_id": bad})
        if bad == "":
            assert r.status_code in (200, 400, 422), r.text
        else:
            assert_bad(r, bad)


def test_zone_unknown_level_is_404(admin: httpx.Client, anon: httpx.Client) -> None:
    r = admin.post("/zones", json={"level_id": 999, "name": "Ghost"})
    assert r.status_code == 404, r.text
    assert isinstance(r.json()["detail"], str)
    assert anon.get("/zones").json() == []


def test_zone_create_and_update_are_admin_only(
    admin: httpx.Client,
    operator: httpx.Client,
    alice: httpx.Client,
    anon: httpx.Client,
    two_levels: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    one, _ = two_levels
    zone = created(admin.post("/zones", json={"level_id": one["id"], "name": "A"}))
    for client, code in ((operator, 403), (alice, 403), (anon, 401)):
        r = client.post("/zones", json={"level_id": one["id"], "name": "X"})
        assert r.status_code == code, r.text
        r = client.put(f"/zones/{zone['id']}", json={"name": "X"})
        assert r.status_code == code, r.text
    assert anon.get("/zones").json() == [zone]


def test_zone_update(
    admin: httpx.Client, anon: httpx.Client, two_levels: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    one, two = two_levels
    zone = created(
        admin.post("/zones", json={"level_id": one["id"], "name": "A", "description": "d"})
    )
    r = admin.put(
        f"/zones/{zone['id']}", json={"name": "A2", "total_spaces": 12, "color_code": "#00FF00"}
    )
    assert r.status_code == 200, r.text
    z = r.json()
    assert (z["name"], z["total_spaces"], z["color_code"], z["description"]) == (
        "A2",
        12,
        "#00FF00",
        "d",
    )
    r = admin.put(f"/zones/{zone['id']}", json={"description": None})
    assert r.status_code == 200 and r.json()["description"] is None
    # level_id is not changeable: ignored or refused, never applied
    r = admin.put(f"/zones/{zone['id']}", json={"level_id": two["id"]})
    assert r.status_code in (200, 400, 422), r.text
    assert anon.get("/zones").json()[0]["level_id"] == one["id"]
    assert admin.put("/zones/999", json={"name": "Nope"}).status_code == 404


ZONE_BAD_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("missing level_id", {"name": "Z"}),
    ("missing name", {"level_id": "LEVEL"}),
    ("level_id string", {"level_id": "1", "name": "Z"}),
    ("level_id zero", {"level_id": 0, "name": "Z"}),
    ("level_id null", {"level_id": None, "name": "Z"}),
    ("name blank", {"level_id": "LEVEL", "name": " \t "}),
    ("name empty", {"level_id": "LEVEL", "name": ""}),
    ("name too long", {"level_id": "LEVEL", "name": "z" * 51}),
    ("name wrong type", {"level_id": "LEVEL", "name": ["Z"]}),
    ("description too long", {"level_id": "LEVEL", "name": "Z", "description": "d" * 256}),
    ("total_spaces negative", {"level_id": "LEVEL", "name": "Z", "total_spaces": -1}),
    ("total_spaces string", {"level_id": "LEVEL", "name": "Z", "total_spaces": "5"}),
    ("total_spaces float", {"level_id": "LEVEL", "name": "Z", "total_spaces": 2.5}),
    ("color_code too long", {"level_id": "LEVEL", "name": "Z", "color_code": "#FF0000FF00"}),
    ("color_code wrong type", {"level_id": "LEVEL", "name": "Z", "color_code": 255}),
    *COMMON_BAD,
]


def _with_level(body: Any, level_id: int) -> Any:
    if isinstance(body, dict) and body.get("level_id") == "LEVEL":
        return {**body, "level_id": level_id}
    return body


def test_zone_create_bad_bodies_change_nothing(
    admin: httpx.Client, anon: httpx.Client, two_levels: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    one, _ = two_levels
    zone = created(admin.post("/zones", json={"level_id": one["id"], "name": "Keep"}))
    for label, body in ZONE_BAD_BODIES:
        assert_bad(send(admin, "POST", "/zones", _with_level(body, one["id"])), label)
        assert anon.get("/zones").json() == [zone], label


ZONE_UPDATE_BAD_BODIES: list[tuple[str, Any]] = [
    ("name blank", {"name": "   "}),
    ("name null", {"name": None}),
    ("name too long", {"name": "z" * 51}),
    ("description too long", {"description": "d" * 256}),
    ("total_spaces negative", {"total_spaces": -3}),
    ("total_spaces string", {"total_spaces": "3"}),
    ("total_spaces null", {"total_spaces": None}),
    ("color_code too long", {"color_code": "x" * 11}),
    ("good field plus bad field", {"name": "Ok", "total_spaces": -1}),
    *COMMON_BAD,
]


def test_zone_update_bad_bodies_change_nothing(
    admin: httpx.Client, anon: httpx.Client, two_levels: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    one, _ = two_levels
    zone = created(
        admin.post("/zones", json={"level_id": one["id"], "name": "Keep", "total_spaces": 4})
    )
    for label, body in ZONE_UPDATE_BAD_BODIES:
        assert_bad(send(admin, "PUT", f"/zones/{zone['id']}", body), label)
        assert anon.get("/zones").json() == [zone], label


# -- zone availability ---------------------------------------------------------------------------


def test_zone_availability_counts_and_rate(
    site: dict[str, Any], operator: httpx.Client, anon: httpx.Client
) -> None:
    zone_a, zone_b = site["zone_a"], site["zone_b"]
    s1, s2, s3, s4, s5, _ = site["spaces"]

    r = anon.get(f"/zones/{zone_a['id']}/availability")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= AVAILABILITY_FIELDS
    assert body["zone_id"] == zone_a["id"]
    assert (body["total"], body["available"], body["occupied"]) == (4, 4, 0)
    assert (body["reserved"], body["maintenance"]) == (0, 0)
    assert body["occupancy_rate"] == 0.0 and isinstance(body["occupancy_rate"], float)

    for space, status in ((s1, "occupied"), (s2, "reserved"), (s3, "maintenance")):
        r = operator.put(f"/spaces/{space['id']}", json={"status": status})
        assert r.status_code == 200, r.text
    body = anon.get(f"/zones/{zone_a['id']}/availability").json()
    assert (body["total"], body["available"]) == (4, 1)
    assert (body["occupied"], body["reserved"], body["maintenance"]) == (1, 1, 1)
    assert body["occupancy_rate"] == 75.0

    # out of service still counts in total, not as available
    operator.put(f"/spaces/{s4['id']}", json={"status": "out_of_service"})
    body = anon.get(f"/zones/{zone_a['id']}/availability").json()
    assert (body["total"], body["available"], body["occupancy_rate"]) == (4, 0, 100.0)

    operator.put(f"/spaces/{s5['id']}", json={"status": "occupied"})
    body = anon.get(f"/zones/{zone_b['id']}/availability").json()
    assert (body["zone_id"], body["total"], body["available"], body["occupied"]) == (
        zone_b["id"],
        2,
        1,
        1,
    )
    assert body["occupancy_rate"] == 50.0


def test_zone_availability_rate_has_two_decimals(
    site: dict[str, Any], admin: httpx.Client, operator: httpx.Client, anon: httpx.Client
) -> None:
    zone = created(admin.post("/zones", json={"level_id": site["level"]["id"], "name": "C"}))
    spaces = [
        created(admin.post("/spaces", json={"zone_id": zone["id"], "space_number": f"C-{n}"}))
        for n in range(3)
    ]
    operator.put(f"/spaces/{spaces[0]['id']}", json={"status": "occupied"})
    body = anon.get(f"/zones/{zone['id']}/availability").json()
    assert body["occupancy_rate"] == 33.33
    operator.put(f"/spaces/{spaces[1]['id']}", json={"status": "reserved"})
    assert anon.get(f"/zones/{zone['id']}/availability").json()["occupancy_rate"] == 66.67


def test_zone_availability_of_an_empty_zone(admin: httpx.Client, anon: httpx.Client) -> None:
    level = created(admin.post("/levels", json={"name": "L", "floor_number": 0}))
    zone = created(
        admin.post("/zones", json={"level_id": level["id"], "name": "Empty", "total_spaces": 30})
    )
    r = anon.get(f"/zones/{zone['id']}/availability")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["available"], body["occupied"]) == (0, 0, 0)
    assert (body["reserved"], body["maintenance"]) == (0, 0)
    assert body["occupancy_rate"] == 0.0


def test_zone_availability_of_an_unknown_zone_is_404(anon: httpx.Client) -> None:
    r = anon.get("/zones/999/availability")
    assert r.status_code == 404, r.text
    assert isinstance(r.json()["detail"], str)
    assert anon.get("/zones/abc/availability").status_code in (400, 404, 422)


def test_entry_and_exit_show_in_availability(
    site: dict[str, Any], operator: httpx.Client, anon: httpx.Client
) -> None:
    r = operator.post("/sessions/entry", json={"license_plate": "AV-1"})
    assert r.status_code == 201, r.text
    space = r.json()["space_assigned"]
    assert space is not None
    body = anon.get(f"/zones/{space['zone_id']}/availability").json()
    assert body["occupied"] == 1
    assert body["available"] == body["total"] - 1
    # a staff member may not free a space a session still occupies
    r = operator.put(f"/spaces/{space['id']}", json={"status": "available"})
    assert r.status_code == 409, r.text
    assert space_by_id(anon, space["id"])["status"] == "occupied"


# -- spaces: create ----------------------------------------------------------------------------------


def test_space_create_defaults(site: dict[str, Any], admin: httpx.Client) -> None:
    zone = site["zone_b"]
    s = created(admin.post("/spaces", json={"zone_id": zone["id"], "space_number": "B-100"}))
    assert set(s) >= SPACE_FIELDS
    assert (s["zone_id"], s["space_number"], s["space_type"]) == (zone["id"], "B-100", "standard")
    assert s["floor"] == site["level"]["floor_number"]
    assert (s["row"], s["is_ev_charging"], s["is_handicapped"]) == (None, False, False)
    assert s["status"] == "available"
    # the seed's space_assigned shape: {id, space_number, zone: {name, level: {name}}}
    assert s["zone"]["name"] == "Zone B" and s["zone"]["level"]["name"] == "Level 1"


def test_space_create_with_every_field(site: dict[str, Any], admin: httpx.Client) -> None:
    body = {
        "zone_id": site["zone_a"]["id"],
        "space_number": "H-1",
        "space_type": "handicapped",
        "floor": -2,
        "row": "R12",
        "is_ev_charging": True,
        "is_handicapped": True,
    }
    s = created(admin.post("/spaces", json=body))
    for key, value in body.items():
        assert s[key] == value, key
    assert s["status"] == "available"


@pytest.mark.parametrize("space_type", SPACE_TYPES)
def test_space_create_every_type(
    site: dict[str, Any], admin: httpx.Client, space_type: str
) -> None:
    s = created(
        admin.post(
            "/spaces",
            json={"zone_id": site["zone_b"]["id"], "space_number": "T-1", "space_type": space_type},
        )
    )
    assert s["space_type"] == space_type


def test_space_create_is_admin_only(
    site: dict[str, Any], operator: httpx.Client, alice: httpx.Client, anon: httpx.Client
) -> None:
    before = all_spaces(anon)
    body = {"zone_id": site["zone_a"]["id"], "space_number": "X-1"}
    assert operator.post("/spaces", json=body).status_code == 403
    assert alice.post("/spaces", json=body).status_code == 403
    assert anon.post("/spaces", json=body).status_code == 401
    assert all_spaces(anon) == before


def test_space_number_is_unique_within_its_zone(
    site: dict[str, Any], admin: httpx.Client, anon: httpx.Client
) -> None:
    before = all_spaces(anon)
    r = admin.post("/spaces", json={"zone_id": site["zone_a"]["id"], "space_number": "S-1"})
    assert r.status_code == 409, r.text
    assert isinstance(r.json()["detail"], str)
    r = admin.post("/spaces", json={"zone_id": site["zone_a"]["id"], "space_number": " S-1 "})
    assert r.status_code == 409, r.text
    assert all_spaces(anon) == before
    # the same number in another zone is fine
    s = created(
        admin.post("/spaces", json={"zone_id": site["zone_b"]["id"], "space_number": "S-1"})
    )
    assert s["zone_id"] == site["zone_b"]["id"]


def test_space_in_an_unknown_zone_is_404(
    site: dict[str, Any], admin: httpx.Client, anon: httpx.Client
) -> None:
    before = all_spaces(anon)
    r = admin.post("/spaces", json={"zone_id": 999, "space_number": "Z-1"})
    assert r.status_code == 404, r.text
    assert all_spaces(anon) == before


SPACE_BAD_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("missing zone_id", {"space_number": "N-1"}),
    ("missing space_number", {"zone_id": "ZONE"}),
    ("zone_id string", {"zone_id": "1", "space_number": "N-1"}),
    ("zone_id zero", {"zone_id": 0, "space_number": "N-1"}),
    ("zone_id float", {"zone_id": 1.5, "space_number": "N-1"}),
    ("space_number blank", {"zone_id": "ZONE", "space_number": "   "}),
    ("space_number empty", {"zone_id": "ZONE", "space_number": ""}),
    ("space_number too long", {"zone_id": "ZONE", "space_number": "N" * 21}),
    ("space_number wrong type", {"zone_id": "ZONE", "space_number": 12}),
    ("space_number null", {"zone_id": "ZONE", "space_number": None}),
    ("space_type seed capitals", {"zone_id": "ZONE", "space_number": "N-1", "space_type": "EV"}),
    ("space_type unknown", {"zone_id": "ZONE", "space_number": "N-1", "space_type": "vip"}),
    ("space_type upper", {"zone_id": "ZONE", "space_number": "N-1", "space_type": "STANDARD"}),
    ("space_type null", {"zone_id": "ZONE", "space_number": "N-1", "space_type": None}),
    ("floor string", {"zone_id": "ZONE", "space_number": "N-1", "floor": "1"}),
    ("floor float", {"zone_id": "ZONE", "space_number": "N-1", "floor": 1.5}),
    ("row too long", {"zone_id": "ZONE", "space_number": "N-1", "row": "r" * 11}),
    ("row wrong type", {"zone_id": "ZONE", "space_number": "N-1", "row": 3}),
    ("is_ev_charging yes", {"zone_id": "ZONE", "space_number": "N-1", "is_ev_charging": "yes"}),
    ("is_ev_charging 1", {"zone_id": "ZONE", "space_number": "N-1", "is_ev_charging": 1}),
    ("is_handicapped 1", {"zone_id": "ZONE", "space_number": "N-1", "is_handicapped": 1}),
    (
        "is_handicapped 'false'",
        {"zone_id": "ZONE", "space_number": "N-1", "is_handicapped": "false"},
    ),
    ("status given", {"zone_id": "ZONE", "space_number": "N-1", "status": 7}),
    *COMMON_BAD,
]


def _with_zone(body: Any, zone_id: int) -> Any:
    if isinstance(body, dict) and body.get("zone_id") == "ZONE":
        return {**body, "zone_id": zone_id}
    return body


def test_space_create_bad_bodies_change_nothing(
    site: dict[str, Any], admin: httpx.Client, anon: httpx.Client
) -> None:
    before = all_spaces(anon)
    zone_id = site["zone_a"]["id"]
    for label, body in SPACE_BAD_BODIES:
        r = send(admin, "POST", "/spaces", _with_zone(body, zone_id))
        if label == "status given":
            # unknown fields are ignored; a status in the body must not be applied
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "available"
            before = all_spaces(anon)
            continue
        assert_bad(r, label)
        assert all_spaces(anon) == before, label


# -- spaces: list --------------------------------------------------------------------------------------


def test_space_list_page_shape_and_pagination(site: dict[str, Any], anon: httpx.Client) -> None:
    r = anon.get("/spaces")
    assert r.status_code == 200, r.text
    page = r.json()
    assert set(page) >= {"spaces", "total", "page", "limit"}
    assert (page["total"], page["page"], page["limit"]) == (6, 1, 20)
    assert page["spaces"] == site["spaces"]
    assert all(set(s) >= SPACE_FIELDS for s in page["spaces"])

    r = anon.get("/spaces", params={"page": 2, "limit": 4})
    page = r.json()
    assert (page["total"], page["page"], page["limit"]) == (6, 2, 4)
    assert page["spaces"] == site["spaces"][4:]
    page = anon.get("/spaces", params={"page": 3, "limit": 4}).json()
    assert page["spaces"] == [] and page["total"] == 6


def test_space_list_filters(
    site: dict[str, Any], operator: httpx.Client, anon: httpx.Client
) -> None:
    spaces = site["spaces"]
    zone_a, zone_b = site["zone_a"], site["zone_b"]
    by_zone = anon.get("/spaces", params={"zone_id": zone_b["id"]}).json()
    assert by_zone["total"] == 2 and by_zone["spaces"] == spaces[4:]
    by_type = anon.get("/spaces", params={"space_type": "standard"}).json()
    assert [s["space_number"] for s in by_type["spaces"]] == ["S-1", "S-2", "S-5"]
    ev = anon.get("/spaces", params={"space_type": "ev_charging"}).json()
    assert [s["space_number"] for s in ev["spaces"]] == ["S-4"]
    both = anon.get("/spaces", params={"zone_id": zone_a["id"], "space_type": "standard"}).json()
    assert [s["space_number"] for s in both["spaces"]] == ["S-1", "S-2"] and both["total"] == 2

    operator.put(f"/spaces/{spaces[1]['id']}", json={"status": "maintenance"})
    maint = anon.get("/spaces", params={"status": "maintenance"}).json()
    assert [s["id"] for s in maint["spaces"]] == [spaces[1]["id"]] and maint["total"] == 1
    avail = anon.get("/spaces", params={"status": "available", "limit": 2}).json()
    assert avail["total"] == 5 and len(avail["spaces"]) == 2
    assert anon.get("/spaces", params={"status": "reserved"}).json()["total"] == 0
    assert anon.get("/spaces", params={"zone_id": 999}).json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"status": "broken"},
        {"status": "AVAILABLE"},
        {"space_type": "EV"},
        {"space_type": "vip"},
        {"zone_id": "abc"},
        {"page": 0},
        {"page": "x"},
        {"limit": 0},
        {"limit": 101},
        {"limit": -5},
    ],
)
def test_space_list_bad_query_parameters(
    site: dict[str, Any], anon: httpx.Client, params: dict[str, Any]
) -> None:
    assert_bad(anon.get("/spaces", params=params), params)


# -- spaces: update ---------------------------------------------------------------------------------


def test_staff_update_space_status(
    site: dict[str, Any], operator: httpx.Client, admin: httpx.Client, anon: httpx.Client
) -> None:
    space = site["spaces"][0]
    for client, status in zip(
        (operator, admin, operator, operator, operator),
        ["maintenance", "reserved", "out_of_service", "occupied", "available"],
        strict=True,
    ):
        r = client.put(f"/spaces/{space['id']}", json={"status": status})
        assert r.status_code == 200, (status, r.text)
        assert r.json()["status"] == status
        assert set(r.json()) >= SPACE_FIELDS
        assert space_by_id(anon, space["id"])["status"] == status


def test_update_space_other_fields(
    site: dict[str, Any], operator: httpx.Client, anon: httpx.Client
) -> None:
    space = site["spaces"][1]
    r = operator.put(
        f"/spaces/{space['id']}",
        json={"space_type": "handicapped", "is_handicapped": True, "row": "B"},
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["space_type"], s["is_handicapped"], s["row"]) == ("handicapped", True, "B")
    assert (s["status"], s["space_number"], s["is_ev_charging"]) == ("available", "S-2", False)
    r = operator.put(f"/spaces/{space['id']}", json={"is_ev_charging": True, "row": None})
    assert r.status_code == 200, r.text
    assert r.json()["is_ev_charging"] is True and r.json()["row"] is None
    assert space_by_id(anon, space["id"]) == r.json()


def test_update_space_access(
    site: dict[str, Any], alice: httpx.Client, anon: httpx.Client, operator: httpx.Client
) -> None:
    space = site["spaces"][0]
    assert alice.put(f"/spaces/{space['id']}", json={"status": "maintenance"}).status_code == 403
    r = anon.put(f"/spaces/{space['id']}", json={"status": "maintenance"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert space_by_id(anon, space["id"]) == space
    assert operator.put("/spaces/999", json={"status": "maintenance"}).status_code == 404


SPACE_UPDATE_BAD_BODIES: list[tuple[str, Any]] = [
    ("status unknown", {"status": "broken"}),
    ("status upper", {"status": "MAINTENANCE"}),
    ("status null", {"status": None}),
    ("status wrong type", {"status": 1}),
    ("space_type unknown", {"space_type": "EV"}),
    ("space_type null", {"space_type": None}),
    ("is_ev_charging yes", {"is_ev_charging": "yes"}),
    ("is_ev_charging 1", {"is_ev_charging": 1}),
    ("is_handicapped 0", {"is_handicapped": 0}),
    ("is_handicapped null", {"is_handicapped": None}),
    ("row too long", {"row": "r" * 11}),
    ("row wrong type", {"row": 5}),
    ("good field plus bad field", {"status": "maintenance", "space_type": "vip"}),
    *COMMON_BAD,
]


def test_update_space_bad_bodies_change_nothing(
    site: dict[str, Any], operator: httpx.Client, admin: httpx.Client, anon: httpx.Client
) -> None:
    space = site["spaces"][2]
    for label, body in SPACE_UPDATE_BAD_BODIES:
        assert_bad(send(operator, "PUT", f"/spaces/{space['id']}", body), label)
        assert_bad(send(admin, "PUT", f"/spaces/{space['id']}", body), label)
        assert space_by_id(anon, space["id"]) == space, label


# -- spaces: available ------------------------------------------------------------------------------


def test_available_spaces(site: dict[str, Any], operator: httpx.Client, anon: httpx.Client) -> None:
    spaces = site["spaces"]
    r = anon.get("/spaces/available")
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)
    assert r.json() == spaces

    operator.put(f"/spaces/{spaces[0]['id']}", json={"status": "maintenance"})
    operator.put(f"/spaces/{spaces[4]['id']}", json={"status": "reserved"})
    listed = anon.get("/spaces/available").json()
    assert [s["id"] for s in listed] == [spaces[i]["id"] for i in (1, 2, 3, 5)]
    assert all(s["status"] == "available" for s in listed)

    ev = anon.get("/spaces/available", params={"is_ev": "true"}).json()
    assert [s["space_number"] for s in ev] == ["S-4"]
    assert all(s["is_ev_charging"] for s in ev)
    not_ev = anon.get("/spaces/available", params={"is_ev": "false"}).json()
    assert [s["space_number"] for s in not_ev] == ["S-2", "S-3", "S-6"]

    zone_a = anon.get("/spaces/available", params={"zone_id": site["zone_a"]["id"]}).json()
    assert [s["space_number"] for s in zone_a] == ["S-2", "S-3", "S-4"]
    zone_b_ev = anon.get(
        "/spaces/available", params={"zone_id": site["zone_b"]["id"], "is_ev": "true"}
    ).json()
    assert zone_b_ev == []

    assert [
        s["space_number"] for s in anon.get("/spaces/available", params={"limit": 2}).json()
    ] == [
        "S-2",
        "S-3",
    ]
    assert len(anon.get("/spaces/available", params={"limit": 100}).json()) == 4


def test_available_spaces_default_limit_is_50(
    site: dict[str, Any], admin: httpx.Client, anon: httpx.Client
) -> None:
    zone_id = site["zone_b"]["id"]
    for n in range(50):
        created(admin.post("/spaces", json={"zone_id": zone_id, "space_number": f"M-{n}"}))
    assert len(anon.get("/spaces/available").json()) == 50
    assert len(anon.get("/spaces/available", params={"limit": 100}).json()) == 56


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "all"},
        {"is_ev": "maybe"},
        {"is_ev": "yes"},
        {"zone_id": "abc"},
    ],
)
def test_available_spaces_bad_query_parameters(
    site: dict[str, Any], anon: httpx.Client, params: dict[str, Any]
) -> None:
    assert_bad(anon.get("/spaces/available", params=params), params)


# -- out-of-range numbers and the error shape -----------------------------------------------------

HUGE = "9" * 25  # beyond SQLite's 64-bit integers


def test_out_of_range_ids_are_refused_not_500(
    site: dict[str, Any], admin: httpx.Client, operator: httpx.Client, anon: httpx.Client
) -> None:
    before = (anon.get("/levels").json(), anon.get("/zones").json(), all_spaces(anon))
    responses = [
        anon.get("/spaces", params={"zone_id": HUGE}),
        anon.get("/spaces/available", params={"zone_id": HUGE}),
        anon.get("/zones", params={"level_id": HUGE}),
        anon.get(f"/zones/{HUGE}/availability"),
        admin.put(f"/levels/{HUGE}", json={"name": "X"}),
        admin.put(f"/zones/{HUGE}", json={"name": "X"}),
        operator.put(f"/spaces/{HUGE}", json={"status": "maintenance"}),
        admin.post("/zones", json={"level_id": 10**30, "name": "Z"}),
        admin.post("/spaces", json={"zone_id": 10**30, "space_number": "Z-1"}),
        admin.post("/levels", json={"name": "Deep", "floor_number": -(10**30)}),
        anon.get("/spaces", params={"page": HUGE}),
    ]
    for r in responses:
        assert r.status_code in (400, 404, 422), (r.request.url, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str), r.text
    after = (anon.get("/levels").json(), anon.get("/zones").json(), all_spaces(anon))
    assert after == before


def test_validation_errors_name_the_field(site: dict[str, Any], admin: httpx.Client) -> None:
    cases = [
        ("/levels", {"name": "L", "floor_number": 1, "max_height_m": 0}, "max_height_m"),
        ("/levels", {"name": "L", "floor_number": 1, "is_underground": 1}, "is_underground"),
        ("/levels", {"name": "L"}, None),
        ("/zones", {"level_id": site["level"]["id"], "name": "   "}, "name"),
        (
            "/spaces",
            {"zone_id": site["zone_a"]["id"], "space_number": "Q", "space_type": "EV"},
            "space_type",
        ),
    ]
    for path, body, field in cases:
        r = admin.post(path, json=body)
        assert_bad(r, (path, body))
        errors = r.json().get("errors")
        assert isinstance(errors, list) and errors, r.text
        assert all({"field", "message"} <= set(e) for e in errors), r.text
        if field is not None:
            assert errors[0]["field"] == field, r.text
