"""Upstream over a real Mosquitto: events in order after any outage, status, state, commands.

The broker is started by the tests on a free port (and stopped, killed, restarted); the
central system is a second MQTT client with a persistent session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.security.jwt import Token

from tests.conftest import SECRET, ManualClock, Running, config_from, password_hash, start_daemon
from tests.peers import Broker, Central, wait_for

SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.01},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}
PREFIX = "carpark/test-site"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    (tmp_path / "broker").mkdir()
    b = Broker(str(tmp_path / "broker")).start()
    yield b
    b.kill()


@pytest.fixture
def central(broker: Broker) -> Iterator[Central]:
    c = Central(broker.port, f"{PREFIX}/#")
    wait_for(lambda: c.client.is_connected(), what="central connected")
    time.sleep(1.2)  # let the broker's autosave record the central's session
    yield c
    c.close()


def gateway(tmp_path: Path, broker: Broker) -> Iterator[Running]:
    config = config_from(
        tmp_path,
        mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive": 5},
        lanes=[{"id": "exit-1", "kind": "exit", **SIM}],
    )
    daemon, thread = start_daemon(config, ManualClock())
    gw = Running(daemon=daemon, clock=ManualClock(), base_url=f"http://127.0.0.1:{daemon.port}")
    gw.user("admin@example.com", "admin")
    gw.user("operator@example.com", "operator")
    # Subscribed to its commands (a command sent before that would be lost: clean session).
    wait_for(lambda: daemon.mqtt is not None and daemon.mqtt.connected, what="gateway connected")
    try:
        yield gw
    finally:
        daemon.request_stop()
        thread.join(15)


@pytest.fixture
def gw(tmp_path: Path, broker: Broker, central: Central) -> Iterator[Running]:
    yield from gateway(tmp_path, broker)


def outbox_ids(db_path: str) -> list[int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with conn:
        return [r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id")]


def assert_delivered(
    central: Central, expected: list[int], timeout: float = 30
) -> list[dict[str, Any]]:
    """Every event exactly once after dedup by id, in sequence order, no gap."""

    def complete() -> bool:
        return {e["sequence"] for e in central.events()} >= set(expected)

    wait_for(complete, timeout=timeout, interval=0.1, what=f"{len(expected)} events at the central")
    seen: dict[str, dict[str, Any]] = {}
    order: list[int] = []
    for event in central.events():
        if event["event_id"] not in seen:
            seen[event["event_id"]] = event
            order.append(event["sequence"])
    assert order == sorted(order), "events arrived out of order"
    assert sorted(set(order)) == list(range(1, max(order) + 1)), "a gap in the sequence"
    assert set(expected) <= set(order)
    return list(seen.values())


def burst(gw: Running, entries: int, opens: int = 0) -> None:
    """Lane and API events: vehicles entering through the API, operators opening a lane."""
    with gw.client("operator@example.com") as op:
        for n in range(entries):
            r = op.post("/sessions/entry", json={"license_plate": f"BURST{n}"})
            assert r.status_code == 201, r.text
            if opens and n % max(1, entries // opens) == 0:
                assert (
                    op.post("/lanes/exit-1/open", json={"reason": f"test {n}"}).status_code == 200
                )


def test_events_status_and_envelope(gw: Running, central: Central) -> None:
    wait_for(lambda: any(m[1] == b"online" for m in central.on(f"{PREFIX}/status")), what="online")
    burst(gw, 3)
    events = assert_delivered(central, outbox_ids(gw.daemon.config.database.path))
    started = [e for e in events if e["type"] == "session_started"]
    assert len(started) == 3
    assert set(started[0]) == {"event_id", "sequence", "type", "occurred_at", "site_id", "data"}
    assert started[0]["site_id"] == "test-site" and started[0]["data"]["license_plate"].startswith(
        "BURST"
    )
    topics = {m[0] for m in central.on(f"{PREFIX}/events/")}
    assert (
        f"{PREFIX}/events/session_started" in topics and f"{PREFIX}/events/user_created" in topics
    )


def test_broker_down_for_a_whole_burst(gw: Running, central: Central, broker: Broker) -> None:
    wait_for(lambda: gw.daemon.deps is not None and central.events(), what="first events")
    broker.stop()
    burst(gw, 480, opens=50)  # over a thousand events while the broker is down
    ids = outbox_ids(gw.daemon.config.database.path)
    assert len(ids) >= 1000
    broker.start()
    assert_delivered(central, ids, timeout=60)


def test_broker_killed_in_the_middle_of_a_burst(
    gw: Running, central: Central, broker: Broker
) -> None:
    wait_for(lambda: central.events(), what="first events")
    done = threading.Event()

    def produce() -> None:
        burst(gw, 450, opens=50)
        done.set()

    worker = threading.Thread(target=produce)
    worker.start()
    wait_for(lambda: len(central.events()) > 250, timeout=30, what="events flowing")
    broker.kill()
    time.sleep(1.0)
    broker.start()
    worker.join(120)
    assert done.is_set()
    assert_delivered(central, outbox_ids(gw.daemon.config.database.path), timeout=60)


def test_retained_state_of_lanes_and_zones(gw: Running, central: Central) -> None:
    with gw.client("admin@example.com") as admin:
        level = admin.post("/levels", json={"name": "L", "floor_number": 0}).json()
        zone = admin.post("/zones", json={"level_id": level["id"], "name": "Z"}).json()
        admin.post("/spaces", json={"zone_id": zone["id"], "space_number": "1"})
        admin.post("/sessions/entry", json={"license_plate": "STATE1"})

    def zone_state() -> dict[str, Any] | None:
        found = central.on(f"{PREFIX}/state/zones/{zone['id']}")
        return json.loads(found[-1][1]) if found else None

    wait_for(lambda: (z := zone_state()) and z["occupied"] == 1, what="zone occupancy")
    assert zone_state() == {
        "zone_id": zone["id"],
        "available": 0,
        "occupied": 1,
        "reserved": 0,
        "total": 1,
    }
    lane = wait_for(lambda: central.on(f"{PREFIX}/state/lanes/exit-1"), what="lane state")
    assert json.loads(lane[-1][1])["mode"] == "normal"
    # A late subscriber gets the retained state at once.
    late = Central(central.client._port, f"{PREFIX}/state/#", client_id="late")
    try:
        retained = wait_for(lambda: late.on(f"{PREFIX}/state/zones/"), what="retained state")
        assert retained[0][2] is True
    finally:
        late.close()


def command(central: Central, name: str, body: Any, raw: bytes | None = None) -> dict[str, Any]:
    before = len(central.on(f"{PREFIX}/cmd/{name}/result"))
    central.publish(f"{PREFIX}/cmd/{name}", raw if raw is not None else json.dumps(body))
    results = wait_for(
        lambda: (r := central.on(f"{PREFIX}/cmd/{name}/result")) and len(r) > before and r,
        what=f"result of {name}",
    )
    return dict(json.loads(results[-1][1]))


def test_commands_results_and_idempotency(gw: Running, central: Central) -> None:
    r = command(
        central,
        "upsert_rate",
        {
            "request_id": "r1",
            "name": "Central hourly",
            "amount": 3.5,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    )
    assert r["status"] == "ok" and r["request_id"] == "r1" and r["data"]["created"] is True
    rate_id = r["data"]["id"]
    again = command(
        central,
        "upsert_rate",
        {
            "request_id": "r1",
            "name": "Central hourly",
            "amount": 3.5,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    )
    assert again["data"] == r["data"] and again["duplicate"] is True
    with gw.client() as anon:
        rates = anon.get("/rates").json()
    assert [x["name"] for x in rates].count("Central hourly") == 1  # done once
    r = command(central, "upsert_rate", {"request_id": "r2", "id": rate_id, "amount": 4.0})
    assert r["status"] == "ok" and r["data"] == {"id": rate_id, "created": False}
    assert (
        command(central, "deactivate_rate", {"request_id": "r3", "id": rate_id})["status"] == "ok"
    )
    r = command(
        central,
        "upsert_discount",
        {
            "request_id": "d1",
            "code": "central10",
            "name": "C10",
            "value": 10,
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_to": "2030-01-01T00:00:00Z",
        },
    )
    assert r["status"] == "ok" and r["data"]["code"] == "CENTRAL10"
    assert (
        command(central, "deactivate_discount", {"request_id": "d2", "code": "CENTRAL10"})["status"]
        == "ok"
    )
    r = command(
        central,
        "upsert_plan",
        {"request_id": "p1", "name": "Central monthly", "duration_months": 1, "price": 99},
    )
    assert r["status"] == "ok"
    assert (
        command(central, "deactivate_plan", {"request_id": "p2", "id": r["data"]["id"]})["status"]
        == "ok"
    )
    r = command(
        central,
        "upsert_plate_list",
        {
            "request_id": "l1",
            "entries": [
                {"plate": "vip-1", "list": "allow", "lane_id": "exit-1"},
                {"plate": "BAD1", "list": "deny"},
            ],
        },
    )
    assert r == {"request_id": "l1", "status": "ok", "data": {"upserted": 2, "removed": 0}}
    r = command(central, "upsert_plate_list", {"request_id": "l2", "remove": [{"plate": "BAD1"}]})
    assert r["data"]["removed"] == 1
    r = command(
        central, "set_lane_mode", {"request_id": "m1", "lane_id": "exit-1", "mode": "free_exit"}
    )
    assert r["status"] == "ok"
    wait_for(lambda: gw.daemon.lanes.get("exit-1").state.mode == "free_exit", what="mode applied")
    r = command(
        central, "open_lane", {"request_id": "o1", "lane_id": "exit-1", "reason": "fire drill"}
    )
    assert r["status"] == "ok"
    wait_for(
        lambda: gw.daemon.lanes.get("exit-1").state.position in ("opening", "open"), what="opened"
    )


@pytest.mark.parametrize(
    ("name", "body", "raw", "message"),
    [
        ("upsert_rate", None, b"{not json", "not valid JSON"),
        ("upsert_rate", None, b"[1, 2]", "JSON object"),
        ("upsert_rate", {"name": "x"}, None, "request_id"),
        (
            "upsert_rate",
            {
                "request_id": "b1",
                "name": "x",
                "amount": "five",
                "effective_from": "2024-01-01T00:00:00Z",
            },
            None,
            "amount",
        ),
        ("upsert_rate", {"request_id": "b2", "id": 999, "amount": 1.0}, None, "not found"),
        ("open_lane", {"request_id": "b3", "lane_id": "exit-1"}, None, "reason"),
        ("open_lane", {"request_id": "b4", "lane_id": "nope", "reason": "x"}, None, "not found"),
        ("set_lane_mode", {"request_id": "b5", "lane_id": "exit-1", "mode": "party"}, None, "mode"),
        (
            "upsert_plate_list",
            {"request_id": "b6", "entries": [{"plate": "X", "list": "maybe"}]},
            None,
            "list",
        ),
        ("launch_rockets", {"request_id": "b7"}, None, "unknown command"),
    ],
)
def test_malformed_commands_get_an_error_and_change_nothing(
    gw: Running, central: Central, name: str, body: Any, raw: bytes | None, message: str
) -> None:
    before = outbox_ids(gw.daemon.config.database.path)
    result = command(central, name, body, raw)
    assert result["status"] == "error"
    assert message.lower() in result["error"].lower()
    time.sleep(0.2)
    assert outbox_ids(gw.daemon.config.database.path) == before
    assert gw.daemon.lanes.get("exit-1").state.mode == "normal"


def test_mqtt5_response_topic_and_correlation(gw: Running, central: Central) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = f"{PREFIX}/replies/central"
    props.CorrelationData = b"corr-42"
    central.publish(
        f"{PREFIX}/cmd/set_lane_mode",
        json.dumps({"request_id": "c1", "lane_id": "exit-1", "mode": "locked_closed"}),
        properties=props,
    )
    reply = wait_for(lambda: central.on(f"{PREFIX}/replies/central"), what="response topic")
    assert json.loads(reply[0][1])["status"] == "ok"
    assert reply[0][3].CorrelationData == b"corr-42"


def daemon_process(tmp_path: Path, broker: Broker) -> subprocess.Popen[str]:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(
        f'[site]\nid = "test-site"\n[auth]\nsecret_key = "{SECRET}"\n[http]\nport = 0\n'
        f'[database]\npath = "{tmp_path / "proc.db"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 5\n'
        '[logging]\nformat = "json"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(cfg), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "daemon_ready" in line:
            port = json.loads(line)["port"]
            proc.api = f"http://127.0.0.1:{port}/api/v1"  # type: ignore[attr-defined]
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc


def test_daemon_killed_mid_burst_resends_and_loses_nothing(
    tmp_path: Path, broker: Broker, central: Central
) -> None:
    proc = daemon_process(tmp_path, broker)
    db_path = str(tmp_path / "proc.db")
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO users (email, password_hash, full_name, role, created_at, updated_at)"
            " VALUES ('op@example.com', ?, 'Op', 'operator', '2026-01-01', '2026-01-01')",
            [password_hash()],
        )
    token = Token(sub="1", exp=datetime.now(UTC) + timedelta(minutes=10)).encode(SECRET, "HS256")
    stop = threading.Event()

    def produce() -> None:
        with httpx.Client(base_url=proc.api, headers={"Authorization": f"Bearer {token}"}) as c:  # type: ignore[attr-defined]
            n = 0
            while not stop.is_set():
                try:
                    c.post("/sessions/entry", json={"license_plate": f"K{n}"})
                except httpx.HTTPError:
                    return
                n += 1

    worker = threading.Thread(target=produce)
    worker.start()
    wait_for(lambda: len(central.events()) > 200, timeout=30, what="events flowing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    worker.join(10)
    # The will: the central sees the dead gateway.
    wait_for(
        lambda: any(m[1] == b"offline" for m in central.on(f"{PREFIX}/status")),
        timeout=20,
        what="last will",
    )
    restarted = daemon_process(tmp_path, broker)
    try:
        assert_delivered(central, outbox_ids(db_path), timeout=60)
        # Resent at most what was not recorded as acknowledged: a small tail, not the whole log.
        duplicates = len(central.events()) - len({e["event_id"] for e in central.events()})
        assert duplicates <= 250
    finally:
        restarted.terminate()
        restarted.wait(20)


def exit_decision(gw: Running, plate: str) -> Any:
    """What the exit lane decides for this plate now (the lane's own decision code)."""
    import asyncio

    from gateway.domain.lanes import Credential

    lanes, loop = gw.daemon.lanes, gw.daemon._loop
    assert lanes is not None and loop is not None
    spec = lanes.get("exit-1").spec
    coro = lanes.decider.decide(spec, Credential(kind="plate", value=plate), "normal")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(5)


def membership_body(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "external_id": "CRM-1001",
        "plan": "Fleet unlimited",
        "vehicles": ["mem-1"],
        "valid_from": "2020-01-01",
        "valid_to": "2099-12-31",
        "status": "active",
        **fields,
    }


def test_central_memberships_are_recognised_at_the_lane_at_once(
    gw: Running, central: Central
) -> None:
    db = gw.daemon.config.database.path
    rate = {"name": "Hourly", "amount": 3.0, "effective_from": "2020-01-01T00:00:00Z"}
    assert command(central, "upsert_rate", {"request_id": "m-r", **rate})["status"] == "ok"
    plan = {"name": "Fleet unlimited", "duration_months": 1, "price": 0, "vehicle_limit": 2}
    plan["discount_percentage"] = 100
    assert command(central, "upsert_plan", {"request_id": "m-p", **plan})["status"] == "ok"
    with gw.client("operator@example.com") as op:
        assert op.post("/sessions/entry", json={"license_plate": "MEM1"}).status_code == 201
    gw.daemon.clock.advance(hours=2)
    assert exit_decision(gw, "MEM1").reason == "unpaid"

    r = command(central, "upsert_membership", membership_body("m-1"))
    assert r["status"] == "ok" and r["data"]["created"] is True, r
    decision = exit_decision(gw, "MEM1")  # no wait: the committed command is what it reads
    assert decision.allowed and decision.reason == "member"
    events = [e for e in outbox_events(db) if e[0] == "membership_upserted"]
    assert len(events) == 1 and events[0][1]["plates"] == ["MEM1"]
    assert events[0][1]["external_id"] == "CRM-1001"

    # Idempotent by request_id: the stored result, nothing done twice.
    again = command(central, "upsert_membership", membership_body("m-1", vehicles=[]))
    assert again["duplicate"] is True and again["data"] == r["data"]
    assert exit_decision(gw, "MEM1").reason == "member"
    # Upsert by external_id: a second plate, the same membership.
    r2 = command(central, "upsert_membership", membership_body("m-2", vehicles=["MEM1", "MEM2"]))
    assert r2["data"] == {**r["data"], "created": False}
    assert len([e for e in outbox_events(db) if e[0] == "membership_upserted"]) == 2

    before = outbox_ids(db)
    for body, message in [
        (membership_body("m-b1", plan="No such plan"), "no membership plan"),
        (membership_body("m-b2", vehicles=["A1", "A2", "A3"]), "at most 2"),
        (membership_body("m-b3", valid_to="2019-01-01"), "before valid_from"),
        (membership_body("m-b4", valid_from="yesterday"), "valid_from"),
        (membership_body("m-b5", status="gold"), "status"),
        (membership_body("m-b6", vehicle=["X"]), "unknown field"),
        ({"request_id": "m-b7"}, "external_id"),
    ]:
        result = command(central, "upsert_membership", body)
        assert result["status"] == "error" and message in result["error"], (body, result)
    assert outbox_ids(db) == before  # refused commands changed nothing

    r = command(central, "cancel_membership", {"request_id": "m-c", "external_id": "CRM-1001"})
    assert r["status"] == "ok" and r["data"]["status"] == "cancelled"
    assert exit_decision(gw, "MEM1").reason == "unpaid"
    cancelled = [e for e in outbox_events(db) if e[0] == "membership_cancelled"]
    assert [e[1]["external_id"] for e in cancelled] == ["CRM-1001"]
    missing = command(central, "cancel_membership", {"request_id": "m-c2", "external_id": "nope"})
    assert missing["status"] == "error" and "no membership" in missing["error"]


def outbox_events(db_path: str) -> list[tuple[str, dict[str, Any]]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with conn:
        rows = conn.execute("SELECT type, payload FROM outbox ORDER BY id").fetchall()
    return [(t, json.loads(p)) for t, p in rows]


def test_retained_site_info_at_start_and_on_change(gw: Running, central: Central) -> None:
    from gateway import __version__
    from gateway.events import EVENT_SCHEMA_VERSION
    from gateway.services import SYSTEM, charging

    def infos() -> list[dict[str, Any]]:
        return [json.loads(m[1]) for m in central.on(f"{PREFIX}/info")]

    first = wait_for(lambda: infos(), what="site info")[-1]
    assert first["site_id"] == "test-site" and first["software_version"] == __version__
    assert first["event_schema_version"] == EVENT_SCHEMA_VERSION and first["protocol"] == "5"
    assert len(first["config_fingerprint"]) == 64
    assert SECRET not in json.dumps(first)
    assert first["lanes"] == [{"id": "exit-1", "kind": "exit", "name": "exit-1"}]
    assert first["chargers"] == []
    # A charger boots: the info changes, and is republished (once, with the charger).
    assert gw.daemon.deps is not None
    ctx = gw.daemon.deps.ctx_for(SYSTEM)
    boot = {"vendor": "ACME", "model": "W1", "serial_number": None, "firmware_version": "1.2"}
    gw.store.write_sync(
        lambda db: charging.charger_seen(db, ctx, "CP-7", connected=True, boot=boot)
    )
    latest = wait_for(lambda: len(infos()) > 1 and infos()[-1], what="info republished")
    assert latest["chargers"] == [
        {
            "id": "CP-7",
            "vendor": "ACME",
            "model": "W1",
            "firmware_version": "1.2",
            "connected": True,
        }
    ]
    assert {k: v for k, v in latest.items() if k != "chargers"} == {
        k: v for k, v in first.items() if k != "chargers"
    }
    # A late subscriber gets it retained.
    late = Central(central.client._port, f"{PREFIX}/info", client_id="late-info")
    try:
        retained = wait_for(lambda: late.on(f"{PREFIX}/info"), what="retained info")
        assert retained[-1][2] is True and json.loads(retained[-1][1]) == latest
    finally:
        late.close()


def test_config_fingerprint_follows_the_configuration_not_its_secrets(tmp_path: Path) -> None:
    from gateway.upstream.mqtt import config_fingerprint

    def fingerprint(**mqtt: Any) -> str:
        return config_fingerprint(config_from(tmp_path, mqtt={"host": "broker", **mqtt}))

    assert fingerprint() == fingerprint()
    assert fingerprint(password="one") == fingerprint(password="two")  # secrets left out
    assert fingerprint(keepalive=10) != fingerprint(keepalive=20)


def test_hosts_skip_a_dead_node_and_deliver_on_the_next(
    tmp_path: Path, broker: Broker, central: Central
) -> None:
    from tests.peers import free_port

    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = config_from(
        tmp_path,
        mqtt={"hosts": [dead, f"127.0.0.1:{broker.port}"], "keepalive": 5},
    )
    daemon, thread = start_daemon(config, ManualClock())
    try:
        gw = Running(daemon=daemon, clock=ManualClock(), base_url=f"http://127.0.0.1:{daemon.port}")
        gw.user("operator@example.com", "operator")
        bridge = daemon.mqtt
        assert bridge is not None
        wait_for(lambda: bridge.connected, what="connected to the live node")
        assert bridge.host == f"127.0.0.1:{broker.port}"
        burst(gw, 5)
        assert_delivered(central, outbox_ids(config.database.path))
    finally:
        daemon.request_stop()
        thread.join(15)
