"""Auth and users over HTTP (field reference sections 1.2, 1.3 and 2).

Register, login (OAuth2 password form), ``/auth/me``, and what every protected endpoint
does with a missing, malformed, tampered or expired token. Bad request bodies must be
refused with 400/422 and a JSON ``detail``, never a 500, and must leave nothing behind.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_kit import db_query
from conftest import PASSWORD, SECRET
from litestar.security.jwt import Token

NEW_EMAIL = "carol@example.com"
GOOD_REGISTER = {
    "email": NEW_EMAIL,
    "password": "securepassword",
    "full_name": "Carol Driver",
    "phone": "+1234567890",
}
USER_FIELDS = {
    "id",
    "email",
    "full_name",
    "phone",
    "role",
    "is_active",
    "is_verified",
    "created_at",
    "updated_at",
}


def assert_bad(r: httpx.Response, label: object = "") -> None:
    """400/422 with a JSON object carrying a non-empty string ``detail``."""
    assert r.status_code in (400, 422), (label, r.status_code, r.text)
    body = r.json()
    assert isinstance(body, dict), (label, body)
    assert isinstance(body.get("detail"), str) and body["detail"], (label, body)


def assert_401(r: httpx.Response, label: object = "") -> None:
    assert r.status_code == 401, (label, r.status_code, r.text)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), (label, r.headers)
    assert isinstance(r.json().get("detail"), str), (label, r.text)


def send(client: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    """``bytes`` go out raw as ``application/json``; anything else is JSON-encoded."""
    if isinstance(body, bytes):
        return client.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )
    return client.request(method, url, json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(user_id: int | str, *, secret: str = SECRET, expires_in: timedelta | None = None) -> str:
    token = Token(sub=str(user_id), exp=datetime.now(UTC) + timedelta(minutes=30))
    if expires_in is not None:
        # Token refuses a past ``exp`` at construction; set it afterwards to mint an expired one.
        token.exp = datetime.now(UTC) + expires_in
    return token.encode(secret, "HS256")


def login(anon: httpx.Client, username: str, password: str) -> httpx.Response:
    return anon.post("/auth/login", data={"username": username, "password": password})


# -- register -----------------------------------------------------------------------------


def test_register_answers_user_and_a_working_token(anon: httpx.Client) -> None:
    r = anon.post("/auth/register", json=GOOD_REGISTER)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    user = body["user"]
    assert set(user) >= USER_FIELDS
    assert "password" not in user and "password_hash" not in user
    assert user["email"] == NEW_EMAIL
    assert user["full_name"] == "Carol Driver"
    assert user["phone"] == "+1234567890"
    assert user["role"] == "customer"
    assert user["is_active"] is True
    assert user["is_verified"] is False
    assert isinstance(user["id"], int) and user["id"] > 0

    me = anon.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]
    assert me.json()["email"] == NEW_EMAIL

    # and the password works at the login form
    r = login(anon, NEW_EMAIL, "securepassword")
    assert r.status_code == 200, r.text


def test_register_phone_is_optional(anon: httpx.Client) -> None:
    body = {k: v for k, v in GOOD_REGISTER.items() if k != "phone"}
    r = anon.post("/auth/register", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["user"]["phone"] is None


def test_register_ignores_role_field(anon: httpx.Client) -> None:
    r = anon.post("/auth/register", json={**GOOD_REGISTER, "role": "admin"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["role"] == "customer"
    token = r.json()["access_token"]
    assert anon.get("/auth/me", headers=bearer(token)).json()["role"] == "customer"
    # and the account really has no admin rights
    r = anon.post("/vehicle-types", json={"name": "Hacker"}, headers=bearer(token))
    assert r.status_code == 403, r.text


def test_register_ignores_unknown_fields(anon: httpx.Client) -> None:
    r = anon.post("/auth/register", json={**GOOD_REGISTER, "nickname": "cc", "is_verified": True})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["is_verified"] is False


def test_register_duplicate_email_is_409_case_insensitive(anon: httpx.Client) -> None:
    assert anon.post("/auth/register", json=GOOD_REGISTER).status_code == 201
    for email in (NEW_EMAIL, "Carol@Example.COM", "CAROL@EXAMPLE.COM"):
        r = anon.post("/auth/register", json={**GOOD_REGISTER, "email": email})
        assert r.status_code == 409, (email, r.text)
        assert isinstance(r.json()["detail"], str)
    # accounts made by the CLI count too
    r = anon.post("/auth/register", json={**GOOD_REGISTER, "email": "Alice@example.com"})
    assert r.status_code == 409, r.text


REGISTER_BAD_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("missing email", {k: v for k, v in GOOD_REGISTER.items() if k != "email"}),
    ("missing password", {k: v for k, v in GOOD_REGISTER.items() if k != "password"}),
    ("missing full_name", {k: v for k, v in GOOD_REGISTER.items() if k != "full_name"}),
    ("email null", {**GOOD_REGISTER, "email": None}),
    ("email wrong type", {**GOOD_REGISTER, "email": 12345}),
    ("email not an e-mail", {**GOOD_REGISTER, "email": "not-an-email"}),
    ("email blank", {**GOOD_REGISTER, "email": "   "}),
    ("email empty", {**GOOD_REGISTER, "email": ""}),
    ("email too long", {**GOOD_REGISTER, "email": "c" * 250 + "@example.com"}),
    ("password too short", {**GOOD_REGISTER, "password": "short12"}),
    ("password too long", {**GOOD_REGISTER, "password": "p" * 129}),
    ("password wrong type", {**GOOD_REGISTER, "password": 12345678}),
    ("password blank", {**GOOD_REGISTER, "password": " " * 10}),
    ("full_name blank", {**GOOD_REGISTER, "full_name": "   "}),
    ("full_name empty", {**GOOD_REGISTER, "full_name": ""}),
    ("full_name too long", {**GOOD_REGISTER, "full_name": "n" * 256}),
    ("full_name wrong type", {**GOOD_REGISTER, "full_name": ["Carol"]}),
    ("phone too long", {**GOOD_REGISTER, "phone": "1" * 51}),
    ("phone wrong type", {**GOOD_REGISTER, "phone": 1234567890}),
    ("json array", [GOOD_REGISTER]),
    ("json string", "carol"),
    ("json null", None),
    ("not json", b"email=carol@example.com"),
    ("truncated json", b'{"email": "carol@example.com", '),
    ("empty body", b""),
]


def test_register_bad_bodies_are_refused_and_create_nothing(gw: Any, anon: httpx.Client) -> None:
    accounts = db_query(gw, "SELECT COUNT(*) FROM users")
    for label, body in REGISTER_BAD_BODIES:
        r = send(anon, "POST", "/auth/register", body)
        assert_bad(r, label)
        # nothing was created (a login would be throttled after a few tries: count rows)
        assert db_query(gw, "SELECT COUNT(*) FROM users") == accounts, label
    assert anon.post("/auth/register", json=GOOD_REGISTER).status_code == 201
    assert login(anon, NEW_EMAIL, GOOD_REGISTER["password"]).status_code == 200


def test_register_form_body_is_refused(anon: httpx.Client) -> None:
    r = anon.post("/auth/register", data=GOOD_REGISTER)
    assert r.status_code == 415, r.text
    assert isinstance(r.json()["detail"], str)
    assert login(anon, NEW_EMAIL, GOOD_REGISTER["password"]).status_code == 401


def test_register_limits_are_inclusive(anon: httpx.Client) -> None:
    r = anon.post(
        "/auth/register",
        json={
            "email": NEW_EMAIL,
            "password": "p" * 128,
            "full_name": "n" * 255,
            "phone": "1" * 50,
        },
    )
    assert r.status_code == 201, r.text
    r = anon.post(
        "/auth/register",
        json={"email": "dave@example.com", "password": "p" * 8, "full_name": "D"},
    )
    assert r.status_code == 201, r.text


# -- login ----------------------------------------------------------------------------------


def test_login_form_answers_a_bearer_token(anon: httpx.Client, gw: Any) -> None:
    r = login(anon, "alice@example.com", PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    me = anon.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["id"] == gw.user_ids["alice@example.com"]


def test_login_e_mail_is_case_insensitive(anon: httpx.Client) -> None:
    r = login(anon, "ALICE@Example.com", PASSWORD)
    assert r.status_code == 200, r.text


def test_login_of_a_registered_user(anon: httpx.Client) -> None:
    assert anon.post("/auth/register", json=GOOD_REGISTER).status_code == 201
    r = login(anon, NEW_EMAIL, GOOD_REGISTER["password"])
    assert r.status_code == 200, r.text
    me = anon.get("/auth/me", headers=bearer(r.json()["access_token"]))
    assert me.json()["full_name"] == "Carol Driver"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice@example.com", "wrong-password"),
        ("nobody@example.com", PASSWORD),
        ("alice@example.com", PASSWORD.upper()),
    ],
)
def test_login_wrong_credentials_is_401_with_bearer_challenge(
    anon: httpx.Client, username: str, password: str
) -> None:
    assert_401(login(anon, username, password))


def test_login_json_body_is_refused(anon: httpx.Client) -> None:
    r = anon.post("/auth/login", json={"username": "alice@example.com", "password": PASSWORD})
    assert_bad(r)


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "alice@example.com"},
        {"password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": "alice@example.com", "password": ""},
    ],
)
def test_login_missing_fields(anon: httpx.Client, form: dict[str, str]) -> None:
    r = (
        anon.post("/auth/login", data=form)
        if form
        else anon.post(
            "/auth/login",
            content=b"",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert_bad(r, form)


def test_login_of_a_deactivated_account_is_401(anon: httpx.Client, gw: Any) -> None:
    gw.store.write_sync(
        lambda db: db.execute("UPDATE users SET is_active = 0 WHERE email = 'bob@example.com'")
    )
    assert_401(login(anon, "bob@example.com", PASSWORD))


# -- me ---------------------------------------------------------------------------------------


def test_me_answers_the_callers_profile(alice: httpx.Client, admin: httpx.Client, gw: Any) -> None:
    r = alice.get("/auth/me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert set(me) >= USER_FIELDS
    assert me["id"] == gw.user_ids["alice@example.com"]
    assert me["email"] == "alice@example.com"
    assert me["full_name"] == "Alice Driver"
    assert me["phone"] is None
    assert me["role"] == "customer"
    assert me["is_active"] is True and me["is_verified"] is False
    for stamp in ("created_at", "updated_at"):
        assert datetime.fromisoformat(me[stamp].replace("Z", "+00:00")).utcoffset() is not None
    assert admin.get("/auth/me").json()["role"] == "admin"


def test_me_of_operator(operator: httpx.Client) -> None:
    assert operator.get("/auth/me").json()["role"] == "operator"


# -- tokens -------------------------------------------------------------------------------------

PROTECTED = [("GET", "/auth/me"), ("GET", "/vehicles"), ("POST", "/vehicles")]


def _tamper(token: str, **claims: Any) -> str:
    """Change the payload of a signed token without re-signing it."""
    head, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{raw}.{sig}"


def _bad_authorizations(gw: Any) -> list[tuple[str, dict[str, str]]]:
    alice_id = gw.user_ids["alice@example.com"]
    admin_id = gw.user_ids["admin@example.com"]
    good = mint(alice_id)
    head, payload, sig = good.split(".")
    flipped = sig[:-6] + ("AAAAAA" if sig[-6:] != "AAAAAA" else "BBBBBB")
    return [
        ("missing", {}),
        ("scheme only", {"Authorization": "Bearer"}),
        ("malformed", bearer("not-a-jwt")),
        ("three garbage parts", bearer("abc.def.ghi")),
        ("tampered signature", bearer(f"{head}.{payload}.{flipped}")),
        ("tampered payload", bearer(_tamper(good, sub=str(admin_id)))),
        ("signed with another secret", bearer(mint(alice_id, secret="x" * 48))),
        ("expired", bearer(mint(alice_id, expires_in=timedelta(minutes=-5)))),
        ("unknown user", bearer(mint(999_999))),
        ("non-numeric sub", bearer(mint("alice"))),
        ("basic scheme", {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}),
        ("token without scheme", {"Authorization": good}),
        ("unsigned alg none", bearer(f"{_b64json({'alg': 'none', 'typ': 'JWT'})}.{payload}.")),
    ]


def _b64json(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_bad_tokens_are_401_with_bearer_challenge(gw: Any, anon: httpx.Client) -> None:
    for label, headers in _bad_authorizations(gw):
        for method, path in PROTECTED:
            r = anon.request(method, path, headers=headers, json={})
            assert_401(r, (label, method, path))
    # nothing was created by the refused POSTs
    admin_token = gw.tokens["admin@example.com"]
    assert anon.get("/vehicles", headers=bearer(admin_token)).json()["total"] == 0


def test_a_freshly_minted_token_works(gw: Any, anon: httpx.Client) -> None:
    token = mint(gw.user_ids["bob@example.com"])
    r = anon.get("/auth/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "bob@example.com"


def test_token_of_a_deactivated_account_is_401(gw: Any, bob: httpx.Client) -> None:
    assert bob.get("/auth/me").status_code == 200
    gw.store.write_sync(
        lambda db: db.execute("UPDATE users SET is_active = 0 WHERE email = 'bob@example.com'")
    )
    assert_401(bob.get("/auth/me"))


def test_public_endpoints_ignore_a_bad_token(gw: Any, anon: httpx.Client) -> None:
    for label, headers in _bad_authorizations(gw):
        for path in ("/vehicle-types", "/levels", "/zones", "/spaces", "/spaces/available"):
            r = anon.get(path, headers=headers)
            assert r.status_code == 200, (label, path, r.text)


def test_register_and_login_accept_and_ignore_a_token(gw: Any, anon: httpx.Client) -> None:
    r = anon.post("/auth/register", json=GOOD_REGISTER, headers=bearer("garbage"))
    assert r.status_code == 201, r.text
    r = anon.post(
        "/auth/login",
        data={"username": NEW_EMAIL, "password": GOOD_REGISTER["password"]},
        headers=bearer(gw.tokens["alice@example.com"]),
    )
    assert r.status_code == 200, r.text
    me = anon.get("/auth/me", headers=bearer(r.json()["access_token"]))
    assert me.json()["email"] == NEW_EMAIL


# -- check order: 401 -> 403 -> 400/422 -> 404 ------------------------------------------------


def test_check_order_auth_then_role_then_validation_then_existence(
    anon: httpx.Client, alice: httpx.Client, operator: httpx.Client, admin: httpx.Client
) -> None:
    bad = b"{not json"
    # no token beats everything else
    assert_401(send(anon, "POST", "/vehicle-types", bad))
    assert_401(send(anon, "PUT", "/levels/999", bad))
    assert_401(send(anon, "PUT", "/spaces/999", bad))
    # the role beats a bad body and an unknown id
    assert send(alice, "POST", "/vehicle-types", bad).status_code == 403
    assert send(operator, "POST", "/levels", bad).status_code == 403
    assert send(operator, "PUT", "/levels/999", bad).status_code == 403
    assert send(alice, "PUT", "/spaces/999", {"status": "nonsense"}).status_code == 403
    # a bad body beats an unknown id
    assert_bad(send(admin, "PUT", "/levels/999", bad))
    assert_bad(send(admin, "PUT", "/zones/999", {"name": ""}))
    assert_bad(send(operator, "PUT", "/spaces/999", {"status": "nonsense"}))
    assert_bad(send(alice, "PUT", "/vehicles/999", {"is_ev": "yes"}))
    assert_bad(send(admin, "POST", "/zones", {"level_id": 999, "name": "   "}))
    # and a good body for an unknown id is 404
    assert admin.put("/levels/999", json={"name": "X"}).status_code == 404
    assert admin.put("/zones/999", json={"name": "X"}).status_code == 404
    assert operator.put("/spaces/999", json={"status": "maintenance"}).status_code == 404
    assert alice.put("/vehicles/999", json={"make": "Ford"}).status_code == 404
    assert admin.post("/zones", json={"level_id": 999, "name": "Z"}).status_code == 404
