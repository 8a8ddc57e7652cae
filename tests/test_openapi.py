"""The OpenAPI document against the running daemon: schemathesis with every check, and the
facts a generated client depends on (decimals are numbers, ids are bounded integers,
errors have one documented body, public operations need no token, OPTIONS tells every
method of a path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from api_kit import car_type, enter, make_discount, make_rate
from conftest import ManualClock, config_from, running

import gateway.api.schemas as schemas_module

ROOT = Path(__file__).resolve().parent.parent
ST = Path(sys.executable).with_name("st")
METHODS = ("get", "put", "post", "delete", "patch")


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def seed(admin: httpx.Client, operator: httpx.Client) -> None:
    """A small site, so that generated requests also meet real rows (and their responses
    are checked against the document), not only 404s."""
    level = admin.post("/levels", json={"name": "L1", "floor_number": 1}).json()
    zone = admin.post("/zones", json={"level_id": level["id"], "name": "A"}).json()
    for n in range(3):
        admin.post("/spaces", json={"zone_id": zone["id"], "space_number": f"A-{n}"})
    admin.post(
        "/spaces", json={"zone_id": zone["id"], "space_number": "EV-1", "space_type": "ev_charging"}
    )
    make_rate(admin, name="Hourly", grace_period_minutes=15)
    make_discount(admin, "TEN", value=10)
    admin.post("/membership-plans", json={"name": "Monthly", "duration_months": 1, "price": 30})
    admin.post(
        "/ev-stations",
        json={"space_id": 4, "power_kw": 7.2, "connector_type": "Type 2", "price_per_kwh": 0.25},
    )
    vehicle = admin.post(
        "/vehicles", json={"license_plate": "OWN1", "vehicle_type_id": car_type(admin)}
    ).json()
    assert vehicle["id"] >= 1
    enter(operator, "VISIT1")
    admin.post("/plate-lists", json={"plate": "BAD1", "list": "deny"})


CAMERA_KEY = "schemathesis-camera-key-0123"
CAMERA_OPERATIONS = """
[[operations]]
# Cameras authenticate with their key, not a token.
include-path-regex = "/lpr/(reads|hikvision|axis)$"
headers = {{ X-API-Key = "{key}" }}

[[operations]]
# A vendor's push is XML or multipart in the vendor's own format, which no JSON Schema of the
# document can describe: whatever schemathesis makes of it is refused as not the vendor's
# plate event (400), never a server error.
include-path-regex = "/lpr/(hikvision|axis)$"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "422"]
"""


@pytest.mark.timeout(400)
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    """Every operation, positive and negative data, all checks (server errors, status
    codes, content types, headers, response schemas, acceptance and rejection of data,
    OPTIONS/405 Allow, auth): 0 failures. A bounded number of examples keeps it short."""
    users = [("admin@example.com", "admin"), ("operator@example.com", "operator")]
    # A lane with a smart camera, so that the camera routes (a key, not a token) are tried
    # past their 401 too: the key goes in an X-API-Key header on those operations only.
    lane = {
        "id": "entry-1",
        "kind": "entry",
        "barrier": {"driver": "simulated", "travel_s": 0.01},
        "presence_loop": {"driver": "simulated"},
        "safety_loop": {"driver": "simulated"},
        "camera": {"driver": "smart", "camera_id": "cam-1", "api_key": CAMERA_KEY},
    }
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(
        (ROOT / "tests" / "schemathesis.toml").read_text()
        + CAMERA_OPERATIONS.format(key=CAMERA_KEY)
    )
    config = config_from(tmp_path, lanes=[lane], lpr={"evidence_dir": str(tmp_path / "ev")})
    with running(config, ManualClock(), users=users) as gw:
        with gw.client("admin@example.com") as admin, gw.client("operator@example.com") as op:
            seed(admin, op)
        command = [
            str(ST),
            "--no-color",
            "--config-file",
            str(settings),
            "run",
            f"{gw.base_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "5",
            "--workers",
            "2",
            "--seed",
            "12",
            "--header",
            f"Authorization: Bearer {gw.tokens['admin@example.com']}",
        ]
        done = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=360,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-20000:]
    assert "Tested: 80" in out or "Tested: 8" in out, out[-3000:]
    assert " passed" in out and "failed" not in out.split("SUMMARY")[-1], out[-3000:]


@pytest.fixture
def spec(gw: Any) -> dict[str, Any]:
    r = httpx.get(gw.base_url + "/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def test_decimals_are_documented_as_numbers(spec):
    """The server refuses "5.00" for an amount; the document used to say "string"."""
    schemas = spec["components"]["schemas"]
    assert schemas["PaymentIn"]["properties"]["amount"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 1000000,
    }
    assert schemas["RateIn"]["properties"]["amount"]["type"] == "number"
    assert schemas["DiscountIn"]["properties"]["value"]["minimum"] == 0.005
    height = schemas["LevelIn"]["properties"]["max_height_m"]
    assert {"type": "number"} in height["oneOf"] and {"type": "null"} in height["oneOf"]
    # Every Decimal field of every request body, wherever it is.
    checked = 0
    for name, schema in schemas.items():
        body = getattr(schemas_module, name, None)
        if not (isinstance(body, type) and issubclass(body, schemas_module.Body)):
            continue
        info = msgspec.inspect.type_info(body)
        for field in info.fields:
            text = repr(field.type)
            if "DecimalType" in text:
                prop = schema["properties"][field.encode_name]
                kinds = [prop.get("type")] + [m.get("type") for m in prop.get("oneOf", [])]
                assert "number" in kinds and "string" not in kinds, (name, field.name, prop)
                checked += 1
    assert checked >= 15


def test_id_bounds_are_integers(gw, spec):
    r = httpx.get(gw.base_url + "/openapi.json")
    assert "4611686018427387904" in r.text and "e+18" not in r.text
    session_id = spec["components"]["schemas"]["PaymentIn"]["properties"]["session_id"]
    assert session_id["maximum"] == 2**62 and isinstance(session_id["maximum"], int)
    items = spec["components"]["schemas"]["SubscribeIn"]["properties"]["vehicle_ids"]["items"]
    assert items == {"type": "integer", "minimum": 1, "maximum": 2**62}


def test_every_operation_documents_its_typed_answer(spec):
    """Handlers returned plain dicts, so no response had a model."""
    for method, path, op in operations(spec):
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert len(ok) == 1, (method, path, ok)
        content = op["responses"][ok[0]].get("content", {})
        if path.endswith("/image"):
            assert list(content) == ["image/jpeg"], path
            continue
        schema = content["application/json"]["schema"]
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        assert ref and ref.startswith("#/components/schemas/"), (method, path, schema)


def test_errors_have_one_documented_body_on_every_code(spec):
    """The 400 schema required a ``status_code`` no error body has; 401..429 were missing."""
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["detail"] and "status_code" not in error["properties"]
    for method, path, op in operations(spec):
        public = op.get("security") == [{}]
        codes = set(op["responses"])
        for code, answer in op["responses"].items():
            if code.startswith("2"):
                continue
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
        body = "requestBody" in op
        if body and "x-www-form-urlencoded" not in json.dumps(op["requestBody"]):
            assert {"400", "413", "415"} <= codes, (method, path, codes)
        if not public:
            assert "401" in codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert {"401", "429"} <= set(login["responses"]) and login["security"] == [{}]
    assert "402" in spec["paths"]["/api/v1/payments"]["post"]["responses"]
    assert "409" in spec["paths"]["/api/v1/payments"]["post"]["responses"]


def test_public_operations_need_no_token(spec):
    public = {(m, p) for m, p, op in operations(spec) if op.get("security") == [{}]}
    assert ("POST", "/api/v1/payments/validate-exit") in public
    assert ("GET", "/api/v1/sessions/{session_id}/calculate-fee") in public
    assert ("POST", "/api/v1/payments") not in public


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/vehicles/1", {"PUT", "DELETE", "OPTIONS"}),
        ("/api/v1/levels", {"GET", "POST", "OPTIONS"}),
        ("/api/v1/plate-lists/1", {"PUT", "DELETE", "OPTIONS"}),
        ("/api/v1/rates/1", {"PUT", "DELETE", "OPTIONS"}),
        ("/api/v1/plate-reads/1", {"GET", "PUT", "OPTIONS"}),
    ],
)
def test_options_allow_lists_every_method_of_the_path(gw, path, methods):
    """``OPTIONS /vehicles/{id}`` said ``DELETE, OPTIONS``: the PUT beside it was missing."""
    r = httpx.options(gw.base_url + path)  # no token: OPTIONS needs none
    assert r.status_code == 204, r.text
    assert set(r.headers["allow"].replace(" ", "").split(",")) == methods
    other = "PATCH"
    r = httpx.request(other, gw.base_url + path)
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == methods
