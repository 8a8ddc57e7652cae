"""The console over plain HTTP: sign-in, the cookie, CSRF, roles, and its actions calling
the same services as the API (audit events, payments, corrections, acknowledgements)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.domain.lanes import Credential
from gateway.services import SYSTEM, plates
from tests.api_kit import db_query, events_of
from tests.conftest import (
    ADMIN,
    ALICE,
    OPERATOR,
    PASSWORD,
    SECRET,
    ManualClock,
    Running,
    config_from,
    running,
)
from tests.console_kit import act, console_client, csrf_of, sign_in
from tests.test_api_lanes import SIMULATED


@pytest.fixture
def site(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    lanes = [
        {"id": "entry-1", "name": "Main entrance", "kind": "entry", **SIMULATED},
        {"id": "exit-1", "name": "Exit A", "kind": "exit", **SIMULATED},
    ]
    with running(config_from(tmp_path, lanes=lanes), clock, users=(ADMIN, OPERATOR, ALICE)) as gw:
        yield gw


def signed_in(gw: Running, email: str) -> httpx.Client:
    client = console_client(gw.base_url)
    response = sign_in(client, email, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    return client


def test_landing_page_and_the_way_in(site: Running) -> None:
    with console_client(site.base_url) as browser:
        landing = browser.get("/")
        assert landing.status_code == 200 and landing.headers["content-type"].startswith(
            "text/html"
        )
        for link in ('href="/console"', 'href="/docs"', 'href="/redoc"', 'href="/health"'):
            assert link in landing.text
        assert "healthy" in landing.text
        page = browser.get("/console", headers={"Accept": "text/html"})
        assert page.status_code in (302, 303) and page.headers["location"] == "/console/login"
        api_like = browser.get("/console/live", headers={"Accept": "text/event-stream"})
        assert api_like.status_code == 401 and api_like.json()["sign_in"] == "/console/login"
        # The docs still live where they did.
        assert browser.get("/openapi.json").status_code == 200


def test_session_cookie_is_httponly_strict_and_expires_with_the_token(site: Running) -> None:
    client = console_client(site.base_url)
    response = sign_in(client, "operator@example.com", PASSWORD)
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("carpark_console=")
    )
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/console"
    max_age = int(attributes["max-age"].split("=")[1])
    assert 30 * 60 - 5 <= max_age <= 30 * 60  # auth.token_expire_minutes
    assert client.get("/console").status_code == 200
    # The cookie is no API token, and an API token is no console session.
    value = client.cookies["carpark_console"]
    api = httpx.get(f"{site.base_url}/api/v1/lanes", headers={"Authorization": f"Bearer {value}"})
    assert api.status_code == 401
    forged = console_client(site.base_url)
    forged.cookies.set("carpark_console", site.tokens["operator@example.com"], path="/console")
    assert forged.get("/console").status_code in (302, 303)


def test_sign_in_is_refused_to_customers_wrong_passwords_and_forged_forms(site: Running) -> None:
    with console_client(site.base_url) as customer:
        refused = sign_in(customer, "alice@example.com", PASSWORD)
        assert refused.status_code == 403
        assert "for operators and admins" in refused.text
        assert "carpark_console" not in customer.cookies
        assert customer.get("/console").status_code in (302, 303)
    with console_client(site.base_url) as wrong:
        assert sign_in(wrong, "operator@example.com", "not-the-password").status_code == 401
        assert "carpark_console" not in wrong.cookies
    with console_client(site.base_url) as forged:  # no form fetched first: no login CSRF cookie
        r = forged.post(
            "/console/login",
            data={"_csrf": "guess", "email": "operator@example.com", "password": PASSWORD},
        )
        assert r.status_code == 403 and "carpark_console" not in forged.cookies


def test_sign_in_shares_the_apis_login_throttle(tmp_path: Path, clock: ManualClock) -> None:
    """Guessing through the console counts against the same account as guessing through the
    API: the console is not a way around the throttle, and the right password is refused too."""
    config = config_from(tmp_path, auth={"secret_key": SECRET, "login_failure_delay_ms": 0})
    with running(config, clock, users=(OPERATOR,)) as gw:
        limit = gw.daemon.config.auth.login_max_failures_per_account
        with console_client(gw.base_url) as guesser:
            for _ in range(limit):
                assert sign_in(guesser, "operator@example.com", "wrong").status_code == 401
            locked = sign_in(guesser, "operator@example.com", PASSWORD)
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
            assert "carpark_console" not in guesser.cookies
        with httpx.Client(base_url=gw.base_url + "/api/v1") as api:
            r = api.post(
                "/auth/login", data={"username": "operator@example.com", "password": PASSWORD}
            )
            assert r.status_code == 429, r.text


def test_a_demoted_account_loses_the_console_at_once(site: Running) -> None:
    client = signed_in(site, "operator@example.com")
    assert client.get("/console").status_code == 200
    site.store.write_sync(
        lambda db: db.execute(
            "UPDATE users SET role = 'customer' WHERE email = 'operator@example.com'"
        )
    )
    assert client.get("/console", headers={"Accept": "text/html"}).status_code in (302, 303)


def test_open_needs_the_csrf_token_and_a_reason_and_is_audited(site: Running) -> None:
    client = signed_in(site, "operator@example.com")
    csrf = csrf_of(client)
    assert act(client, "/console/lanes/exit-1/open", None, reason="ambulance").status_code == 403
    assert act(client, "/console/lanes/exit-1/open", "wrong", reason="ambulance").status_code == 403
    assert act(client, "/console/lanes/exit-1/open", csrf, reason="   ").status_code == 422
    assert events_of(site, "lane_opened_by_operator") == []
    ok = act(client, "/console/lanes/exit-1/open", csrf, reason="ambulance")
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.text
    assert events_of(site, "lane_opened_by_operator") == [
        {"lane_id": "exit-1", "reason": "ambulance", "actor": "operator@example.com"}
    ]
    assert site.daemon.lanes is not None
    lane = site.daemon.lanes.get("exit-1")
    deadline = time.monotonic() + 5
    while lane.state.position != "open":
        assert time.monotonic() < deadline, "the barrier did not open"
        time.sleep(0.02)
    # A plain form post (no script) is answered with the console again.
    plain = client.post("/console/lanes/exit-1/open", data={"_csrf": csrf, "reason": "taxi"})
    assert plain.status_code == 303 and plain.headers["location"] == "/console"


def test_only_admins_change_modes(site: Running) -> None:
    operator = signed_in(site, "operator@example.com")
    r = act(operator, "/console/lanes/exit-1/mode", csrf_of(operator), mode="free_exit")
    assert r.status_code == 403
    assert 'action="/console/lanes/exit-1/mode"' not in operator.get("/console").text
    admin = signed_in(site, "admin@example.com")
    csrf = csrf_of(admin)
    assert act(admin, "/console/lanes/exit-1/mode", csrf, mode="party").status_code == 422
    assert act(admin, "/console/lanes/entry-1/mode", csrf, mode="free_exit").status_code == 422
    assert act(admin, "/console/lanes/exit-1/mode", csrf, mode="free_exit").status_code == 200
    assert [
        (e["lane_id"], e["mode"], e["actor"]) for e in events_of(site, "lane_mode_changed")
    ] == [("exit-1", "free_exit", "admin@example.com")]


def test_cash_payment_at_the_booth_is_the_api_payment(site: Running) -> None:
    admin = site.client("admin@example.com")
    level = admin.post("/levels", json={"name": "L1", "floor_number": 1}).json()
    zone = admin.post("/zones", json={"level_id": level["id"], "name": "A"}).json()
    admin.post("/spaces", json={"zone_id": zone["id"], "space_number": "A-1"})
    admin.post(
        "/rates",
        json={
            "name": "Hourly",
            "rate_type": "hourly",
            "amount": 4.0,
            "grace_period_minutes": 0,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    )
    entry = admin.post("/sessions/entry", json={"license_plate": "CASH1", "entry_gate": "A"}).json()
    session_id = entry["session"]["id"]
    site.clock.advance(minutes=90)
    client = signed_in(site, "operator@example.com")
    found = client.get("/console/panels/sessions", params={"q": "cash"})
    assert found.status_code == 200 and "CASH1" in found.text and "$8.00" in found.text
    assert "CASH1" not in client.get("/console/panels/sessions", params={"q": "NOPE9"}).text
    csrf = csrf_of(client)
    short = act(client, f"/console/sessions/{session_id}/pay", csrf, amount="5.00")
    assert short.status_code == 402 and short.json()["amount_due"] == 8.0
    assert act(client, f"/console/sessions/{session_id}/pay", csrf, amount="-3").status_code == 422
    paid = act(client, f"/console/sessions/{session_id}/pay", csrf, amount="10")
    assert paid.status_code == 200, paid.text
    assert "change $2.00" in paid.json()["message"]
    rows = db_query(site, "SELECT payment_method, total_amount, tendered, user_id FROM payments")
    assert rows == [("cash", "8.00", "10.00", site.user_ids["operator@example.com"])]
    again = act(client, f"/console/sessions/{session_id}/pay", csrf, amount="10")
    assert again.status_code == 409


def test_correcting_a_read_and_acknowledging_an_alarm(site: Running) -> None:
    admin = site.client("admin@example.com")
    for plate in ("AD054JI", "AD054J7"):
        assert (
            admin.post(
                "/sessions/entry", json={"license_plate": plate, "entry_gate": "A"}
            ).status_code
            == 201
        )
    ctx = site.daemon.deps.ctx_for(SYSTEM)  # type: ignore[union-attr]
    read_id = site.store.write_sync(
        lambda db: plates.record_read(
            db,
            ctx,
            lane_id="exit-1",
            camera_id="cam",
            source="camera",
            plate="AD054J1",
            confidence=0.55,
            confident=False,
            reads=3,
            alternatives=[("AD054J1", 0.6), ("A0054J1", 0.4)],
            first_seen=ctx.now,
            last_seen=ctx.now,
        )
    )
    site.store.write_sync(lambda db: plates.link_decision(db, read_id, None, "plate_uncertain"))
    client = signed_in(site, "operator@example.com")
    page = client.get("/console").text
    assert f'data-read="{read_id}"' in page
    assert 'value="AD054JI"' in page and 'value="AD054J7"' in page  # the candidates inside
    csrf = csrf_of(client)
    ok = act(client, f"/console/reads/{read_id}/correct", csrf, plate="ad054ji")
    assert ok.status_code == 200, ok.text
    assert db_query(
        site, "SELECT plate, corrected_from FROM plate_reads WHERE id = ?", [read_id]
    ) == [("AD054JI", "AD054J1")]
    assert f'data-read="{read_id}"' not in client.get("/console").text

    site.store.write_sync(
        lambda db: db.execute(
            "INSERT INTO outbox (event_id, type, occurred_at, payload) VALUES ('e1', 'unauthorised_passage', ?, ?)",
            [ctx.now.isoformat(), json.dumps({"lane_id": "exit-1"})],
        )
    )
    sequence = db_query(site, "SELECT MAX(id) FROM outbox")[0][0]
    assert f'action="/console/alarms/{sequence}/ack"' in client.get("/console").text
    assert act(client, f"/console/alarms/{sequence}/ack", csrf).status_code == 200
    assert act(client, f"/console/alarms/{sequence}/ack", csrf).status_code == 409
    assert act(client, f"/console/alarms/{read_id}/ack", csrf).status_code in (404, 422)
    assert f'action="/console/alarms/{sequence}/ack"' not in client.get("/console").text
    acked = events_of(site, "alarm_acknowledged")
    assert acked == [
        {
            "sequence": sequence,
            "type": "unauthorised_passage",
            "lane_id": "exit-1",
            "actor": "operator@example.com",
            "note": None,
        }
    ]


def test_live_stream_pushes_lane_changes_and_ends_when_the_daemon_stops(
    tmp_path: Path, clock: ManualClock
) -> None:
    lanes = [{"id": "exit-1", "name": "Exit A", "kind": "exit", **SIMULATED}]
    gw_cm = running(config_from(tmp_path, lanes=lanes), clock, users=(OPERATOR,))
    gw = gw_cm.__enter__()
    stopped_at: list[float] = []
    try:
        client = signed_in(gw, "operator@example.com")
        events: list[tuple[str, dict]] = []
        ended = threading.Event()

        def listen() -> None:
            with client.stream("GET", "/console/live", timeout=30) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                name = None
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name:
                        events.append((name, json.loads(line[6:])))
            ended.set()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not any(e[0] == "panel" and e[1]["id"] == "lane-exit-1" for e in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.05)
        first = len(events)
        assert gw.daemon.lanes is not None
        lane = gw.daemon.lanes.get("exit-1")
        gw.call(lane.devices.presence_loop.set, True)
        gw.call(lane.present, Credential(kind="plate", value="NOBODY1"))
        deadline = time.monotonic() + 5
        while not any(
            e[0] == "panel"
            and e[1]["id"] == "lane-exit-1"
            and "NOBODY1" in e[1]["html"]
            and "Refused" in e[1]["html"]
            for e in events[first:]
        ):
            assert time.monotonic() < deadline, events[first:]
            time.sleep(0.05)
        began = time.monotonic()
    finally:
        gw_cm.__exit__(None, None, None)
        stopped_at.append(time.monotonic())
    assert stopped_at[0] - began < 5, "an open console held up the shutdown"
    assert ended.wait(5), "the stream did not end with the daemon"


def test_upstream_panel_shows_a_channel_that_cannot_deliver(
    tmp_path: Path, clock: ManualClock
) -> None:
    from tests.peers import free_port

    dead = f"http://127.0.0.1:{free_port()}/events"  # nobody listens there
    config = config_from(tmp_path, upstream={"http": {"url": dead, "timeout_s": 0.5}})
    with running(config, clock, users=(OPERATOR,)) as gw:
        client = signed_in(gw, "operator@example.com")
        relay = gw.daemon.deps.upstream["http"]  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while relay.last_error is None:
            assert time.monotonic() < deadline, "the push never failed"
            time.sleep(0.05)
        page = client.get("/console").text
        panel = page[page.index('id="upstream"') :]
        assert relay.last_error in panel
        assert 'data-channel="http"' in panel and "not connected" in panel
        backlog = int(panel.split("not connected</span>")[1].split("undelivered")[0].strip(" ·\n"))
        assert backlog == db_query(gw, "SELECT COUNT(*) FROM outbox")[0][0] > 0
        assert "oldest" in panel


def test_landing_page_without_the_docs(tmp_path: Path, clock: ManualClock) -> None:
    config = config_from(tmp_path, http={"host": "127.0.0.1", "port": 0, "docs": False})
    with running(config, clock) as gw, console_client(gw.base_url) as browser:
        landing = browser.get("/")
        assert landing.status_code == 200 and 'href="/console"' in landing.text
        assert 'href="/docs"' not in landing.text and browser.get("/docs").status_code == 404
