"""The API's authentication as an attacker meets it: the bearer scheme only, no cookie,
JSON bodies only, and failed logins throttled per account and per client address.

Logins are real: argon2 verification in the daemon's password workers, against accounts
made as the CLI makes them; the throttle's window runs on the test's clock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_kit import events_since, outbox_mark, snapshot
from conftest import PASSWORD, SECRET, ManualClock, make_config, running

from gateway.api.logins import LoginThrottle, PasswordHasher
from gateway.config import AuthConfig


def token_for(gw: Any, email: str) -> str:
    return str(gw.tokens[email])


# -- the bearer scheme, and nothing else -----------------------------------------------------


@pytest.mark.parametrize("scheme", ["Basic", "Token", "X", "JWT", "Bearer:", ""])
def test_only_the_bearer_scheme_authenticates(gw, scheme):
    """``Basic <jwt>`` and friends used to authenticate: the scheme was ignored."""
    token = token_for(gw, "admin@example.com")
    header = f"{scheme} {token}" if scheme else token
    r = httpx.get(gw.base_url + "/api/v1/auth/me", headers={"Authorization": header})
    assert r.status_code == 401, (header[:20], r.text)
    assert r.headers["www-authenticate"].lower().startswith("bearer")


def test_bearer_is_case_insensitive_as_http_says(gw):
    token = token_for(gw, "admin@example.com")
    for scheme in ("Bearer", "bearer", "BEARER"):
        r = httpx.get(
            gw.base_url + "/api/v1/auth/me", headers={"Authorization": f"{scheme} {token}"}
        )
        assert r.status_code == 200, (scheme, r.text)
        assert r.json()["email"] == "admin@example.com"


def test_a_token_cookie_never_authenticates(gw, site):
    """A ``token`` cookie used to authenticate: with text/plain bodies read as JSON, any page
    a staff member visited could have posted to the API in their name."""
    token = token_for(gw, "admin@example.com")
    with httpx.Client(base_url=gw.base_url + "/api/v1", cookies={"token": token}) as c:
        assert c.get("/auth/me").status_code == 401
        before = snapshot(gw)
        r = c.post("/levels", json={"name": "Cookie level", "floor_number": 9})
        assert r.status_code == 401, r.text
        assert snapshot(gw) == before


# -- bodies are JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
def test_json_bodies_must_say_so(gw, site, admin, content_type):
    """A cross-site form can send text/plain without a preflight; it used to be read as JSON."""
    mark = outbox_mark(gw)
    before = snapshot(gw)
    body = b'{"name": "Level X", "floor_number": 7}'
    r = admin.post("/levels", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert isinstance(r.json()["detail"], str)
    assert snapshot(gw) == before and events_since(gw, mark) == []
    # The same body as JSON is taken, with or without a charset.
    for ct in ("application/json", "application/json; charset=utf-8"):
        r = admin.post(
            "/levels",
            content=body.replace(b"X", ct[-5:].encode()),
            headers={"Content-Type": ct},
        )
        assert r.status_code == 201, (ct, r.text)


def test_the_login_form_is_the_exception(gw, anon):
    r = anon.post("/auth/login", data={"username": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "bearer"
    r = anon.post("/auth/login", json={"username": "alice@example.com", "password": PASSWORD})
    assert r.status_code in (400, 415, 422), r.text


# -- failed logins ---------------------------------------------------------------------------


def login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/auth/login", data={"username": email, "password": password})


def client_from(gw: Any, address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (another machine)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=gw.base_url + "/api/v1", transport=transport, timeout=10)


def test_forty_wrong_passwords_then_the_right_one_is_429(gw, anon):
    """40 wrong passwords then the right one used to log in (no throttling at all)."""
    codes = [login(anon, "alice@example.com", f"wrong-{n}").status_code for n in range(40)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    r = login(anon, "alice@example.com", PASSWORD)
    assert r.status_code == 429, r.text
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= 15 * 60
    assert "try again" in r.json()["detail"]
    # Once the window has passed, the right password works, and resets the account's count.
    gw.clock.advance(seconds=wait)
    assert login(anon, "alice@example.com", PASSWORD).status_code == 200
    for n in range(4):
        assert login(anon, "alice@example.com", f"again-{n}").status_code == 401
    assert login(anon, "alice@example.com", PASSWORD).status_code == 200
    assert login(anon, "alice@example.com", "again-x").status_code == 401


def test_one_locked_account_leaves_the_others_alone(gw, anon):
    for n in range(5):
        assert login(anon, "alice@example.com", f"wrong-{n}").status_code == 401
    assert login(anon, "Alice@Example.com", PASSWORD).status_code == 429  # same account
    assert login(anon, "bob@example.com", PASSWORD).status_code == 200


def test_failures_per_address_across_accounts(gw):
    """Trying one password on many accounts is throttled by the client's address."""
    with client_from(gw, "127.0.0.1") as attacker, client_from(gw, "127.0.0.2") as other:
        codes = [
            login(attacker, f"user{n}@example.com", "password1").status_code for n in range(25)
        ]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
        r = login(attacker, "bob@example.com", PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        # Another address is not blocked, and bob's account has no failures of its own.
        assert login(other, "bob@example.com", PASSWORD).status_code == 200
        gw.clock.advance(minutes=15)
        assert login(attacker, "bob@example.com", PASSWORD).status_code == 200


def test_failed_logins_are_answered_after_the_delay(tmp_path: Path):
    """A client trying passwords one after another gets one answer per delay."""
    config = replace(
        make_config(tmp_path), auth=AuthConfig(secret_key=SECRET, login_failure_delay_ms=400)
    )
    clock = ManualClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    with running(config, clock, users=[("alice@example.com", "customer")]) as gw, gw.client() as c:
        for expected in (401, 401, 401, 401, 401, 429):
            started = time.monotonic()
            assert login(c, "alice@example.com", "wrong").status_code == expected
            assert time.monotonic() - started >= 0.4
        gw.clock.advance(minutes=15)
        assert login(c, "alice@example.com", PASSWORD).status_code == 200


def test_throttle_rules():
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    t = LoginThrottle(per_account=3, per_address=5, window=timedelta(minutes=10))
    keys = t.keys(" Alice@Example.com ", "10.0.0.7")
    assert keys == ("account:alice@example.com", "address:10.0.0.7")
    for minute in range(3):
        assert t.retry_after(keys, now + timedelta(minutes=minute)) is None
        t.failed(keys, now + timedelta(minutes=minute))
    # The third failure was at +2 min; the first of the last three at +0: free at +10 min.
    assert t.retry_after(keys, now + timedelta(minutes=3)) == 7 * 60
    assert t.retry_after(keys, now + timedelta(minutes=10)) is None
    t.failed(keys, now + timedelta(minutes=10))
    # The oldest of the last three is now +1 min.
    assert t.retry_after(keys, now + timedelta(minutes=10)) == 60
    t.succeeded(keys[0])
    assert t.retry_after(keys, now + timedelta(minutes=10)) is None  # the address has 4 of 5
    # The address has failed at +0, +1, +2, +10, +10 (its 5 last): the oldest is 10 minutes
    # old, so it may try again; one more failure and the oldest of the five is +1.
    t.failed(keys, now + timedelta(minutes=10))
    assert t.retry_after(("address:10.0.0.7",), now + timedelta(minutes=10)) is None
    t.failed(keys, now + timedelta(minutes=10))
    assert t.retry_after(("address:10.0.0.7",), now + timedelta(minutes=10)) == 60


async def test_password_workers_bound_the_hashing():
    """No more than ``workers`` computations run at once however many logins wait."""
    hasher = PasswordHasher(workers=1)
    running_now, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def work() -> int:
        with lock:
            running_now[0] += 1
            peak[0] = max(peak[0], running_now[0])
        release.wait(5)
        with lock:
            running_now[0] -= 1
        return threading.get_native_id()

    tasks = [asyncio.create_task(hasher.run(work)) for _ in range(6)]
    for _ in range(100):
        await asyncio.sleep(0.01)
        if hasher.waiting == 5:
            break
    assert hasher.waiting == 5 and running_now[0] == 1
    release.set()
    thread_ids = await asyncio.gather(*tasks)
    assert peak[0] == 1 and len(set(thread_ids)) == 1
    hasher.close()
