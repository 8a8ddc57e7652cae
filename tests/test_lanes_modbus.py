"""Lanes over Modbus TCP against a pymodbus server acting as the barrier controller.

The controller is a real Modbus server on loopback; the daemon drives it through its
configured register map. Vehicles are the test flipping the controller's loop inputs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.domain.lanes import Credential
from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.peers import (
    CLOSE_COIL,
    OPEN_COIL,
    PRESENCE,
    SAFETY,
    BarrierController,
    assert_stays,
    wait_for,
)


def modbus_lane(lane_id: str, kind: str, unit: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": lane_id,
        "kind": kind,
        "name": lane_id,
        "barrier_timeout_s": 3,
        "backout_close_s": 2,
        **extra,
        "barrier": {
            "driver": "modbus",
            "bus": "io",
            "unit": unit,
            "open_coil": OPEN_COIL,
            "close_coil": CLOSE_COIL,
            "command": "pulse",
            "pulse_ms": 50,
            "opened_input": 0,
            "closed_input": 1,
            "fault_input": 2,
            "poll_hz": 50,
        },
        "presence_loop": {
            "driver": "modbus",
            "bus": "io",
            "unit": unit,
            "input": PRESENCE,
            "poll_hz": 50,
            "debounce_ms": 20,
        },
        "safety_loop": {
            "driver": "modbus",
            "bus": "io",
            "unit": unit,
            "input": SAFETY,
            "poll_hz": 50,
            "debounce_ms": 20,
        },
    }


@pytest.fixture
def controller() -> Iterator[BarrierController]:
    peer = BarrierController().start()
    try:
        yield peer
    finally:
        peer.stop()


def run_gateway(
    tmp_path: Path, clock: ManualClock, port: int, lanes: list[dict[str, Any]]
) -> Iterator[Running]:
    config = config_from(
        tmp_path,
        modbus={"io": {"transport": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.3}},
        lanes=lanes,
    )
    daemon, thread = start_daemon(config, clock)
    running = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    running.user("admin@example.com", "admin")
    running.user("operator@example.com", "operator")
    try:
        yield running
    finally:
        daemon.request_stop()
        thread.join(15)


@pytest.fixture
def site_gw(tmp_path: Path, clock: ManualClock, controller: BarrierController) -> Iterator[Running]:
    # One controller with both lanes' I/O would need two unit ids; the exit lane is what the
    # payment rules act on, the entry lane shares the flows. Each test picks its lane kind.
    yield from run_gateway(tmp_path, clock, controller.port, [modbus_lane("exit-1", "exit")])


def lane_status(gw: Running, lane_id: str) -> dict[str, Any]:
    with gw.client("operator@example.com") as c:
        r = c.get(f"/lanes/{lane_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def present(gw: Running, lane_id: str, plate: str) -> None:
    assert gw.daemon.lanes is not None
    gw.call(gw.daemon.lanes.present, lane_id, Credential(kind="plate", value=plate))


def drive_through(gw: Running, controller: BarrierController, lane_id: str = "exit-1") -> None:
    """The car on the presence loop drives under the open arm and away."""
    controller.safety(True)
    wait_for(lambda: lane_status(gw, lane_id)["safety"], what="safety loop occupied")
    controller.presence(False)
    controller.safety(False)


def seed_rate_and_entry(gw: Running, plate: str, minutes_ago: int = 120) -> dict[str, Any]:
    with gw.client("admin@example.com") as admin:
        r = admin.post(
            "/rates",
            json={
                "name": "Hourly",
                "rate_type": "hourly",
                "amount": 5.0,
                "grace_period_minutes": 10,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text
        entry_time = datetime.fromtimestamp(
            gw.clock.now().timestamp() - minutes_ago * 60, UTC
        ).isoformat()
        r = admin.post("/sessions/entry", json={"license_plate": plate, "entry_time": entry_time})
        assert r.status_code == 201, r.text
        return dict(r.json())


def test_paid_exit_opens_passes_closes_and_completes(
    site_gw: Running, controller: BarrierController
) -> None:
    entry = seed_rate_and_entry(site_gw, "PAID1")
    with site_gw.client("admin@example.com") as admin:
        r = admin.post(
            "/payments",
            json={"session_id": entry["session"]["id"], "payment_method": "card", "amount": 10.0},
        )
        assert r.status_code == 201, r.text
    wait_for(
        lambda: lane_status(site_gw, "exit-1")["devices"]["presence_loop"] == "ok",
        what="loops polled",
    )
    controller.presence(True)
    wait_for(lambda: lane_status(site_gw, "exit-1")["presence"], what="presence seen")
    present(site_gw, "exit-1", "PAID1")
    wait_for(lambda: controller.writes_of(OPEN_COIL), what="open coil written")
    wait_for(
        lambda: lane_status(site_gw, "exit-1")["barrier"] == "open", what="barrier reported open"
    )
    assert lane_status(site_gw, "exit-1")["last_decision"]["reason"] == "paid"
    controller.safety(True)
    wait_for(lambda: lane_status(site_gw, "exit-1")["phase"] == "passing", what="passing")
    controller.presence(False)
    controller.safety(False)
    wait_for(lambda: controller.writes_of(CLOSE_COIL), what="close coil written")
    with site_gw.client("operator@example.com") as op:
        session = op.get(f"/sessions/{entry['session']['id']}").json()
    wait_for(
        lambda: _session_status(site_gw, entry["session"]["id"]) == "completed",
        what="exit recorded",
    )
    assert session["status"] in ("active", "completed")
    final = _session_row(site_gw, entry["session"]["id"])
    assert final["exit_gate"] == "exit-1"
    # The pulse was released after pulse_ms.
    wait_for(lambda: controller.writes_of(OPEN_COIL, False), what="pulse released")


def test_unpaid_exit_does_not_open(site_gw: Running, controller: BarrierController) -> None:
    seed_rate_and_entry(site_gw, "UNPAID1")
    wait_for(
        lambda: lane_status(site_gw, "exit-1")["devices"]["presence_loop"] == "ok",
        what="loops polled",
    )
    controller.presence(True)
    wait_for(lambda: lane_status(site_gw, "exit-1")["presence"], what="presence seen")
    present(site_gw, "exit-1", "UNPAID1")
    status = wait_for(
        lambda: (s := lane_status(site_gw, "exit-1"))["last_decision"] and s, what="decision"
    )
    assert status["last_decision"]["allowed"] is False
    assert status["last_decision"]["reason"] == "unpaid"
    assert status["last_decision"]["amount_due"] == 10.0
    assert "10.00" in status["display"]
    assert_stays(lambda: not controller.writes_of(OPEN_COIL), 1.0, what="barrier kept closed")
    assert _session_status(site_gw, None, plate="UNPAID1") == "active"


def test_vehicle_under_the_barrier_keeps_it_open(
    site_gw: Running, controller: BarrierController
) -> None:
    seed_rate_and_entry(site_gw, "UNDER1", minutes_ago=5)  # inside the grace period: free
    wait_for(
        lambda: lane_status(site_gw, "exit-1")["devices"]["presence_loop"] == "ok",
        what="loops polled",
    )
    controller.presence(True)
    wait_for(lambda: lane_status(site_gw, "exit-1")["presence"], what="presence seen")
    present(site_gw, "exit-1", "UNDER1")
    wait_for(lambda: lane_status(site_gw, "exit-1")["barrier"] == "open", what="open")
    controller.safety(True)
    controller.presence(False)
    wait_for(lambda: lane_status(site_gw, "exit-1")["safety"], what="safety seen")
    # Past the back-out time (2 s) and the barrier timeout (3 s): still nothing may close.
    assert_stays(lambda: not controller.writes_of(CLOSE_COIL), 3.5, what="barrier kept open")
    controller.safety(False)
    wait_for(lambda: controller.writes_of(CLOSE_COIL), what="closed once clear")


def test_device_disappears_and_comes_back(tmp_path: Path, clock: ManualClock) -> None:
    peer = BarrierController().start()
    gen = run_gateway(tmp_path, clock, peer.port, [modbus_lane("exit-1", "exit")])
    gw = next(gen)
    try:
        wait_for(lambda: lane_status(gw, "exit-1")["devices"]["barrier"] == "ok", what="healthy")
        assert lane_status(gw, "exit-1")["fault"] is False
        peer.stop()
        status = wait_for(
            lambda: (s := lane_status(gw, "exit-1"))["fault"] and s, timeout=10, what="fault"
        )
        assert "barrier" in status["faults"] or "presence_loop" in status["faults"]
        assert status["devices"]["barrier"].startswith("fault")
        # The API and the rest of the daemon keep working meanwhile.
        with httpx.Client(base_url=gw.base_url) as c:
            assert c.get("/health").status_code == 200
        revived = BarrierController(port=peer.port).start()
        try:
            wait_for(lambda: not lane_status(gw, "exit-1")["fault"], timeout=15, what="recovery")
            assert lane_status(gw, "exit-1")["devices"]["barrier"] == "ok"
            types = _event_types(gw)
            assert "lane_fault" in types and "lane_fault_cleared" in types
        finally:
            revived.stop()
    finally:
        gen.close()


def test_modbus_exception_replies_fault_the_lane(
    tmp_path: Path, clock: ManualClock, controller: BarrierController
) -> None:
    # Unit 9 does not exist on the controller: every request gets an error (or no) answer.
    gen = run_gateway(tmp_path, clock, controller.port, [modbus_lane("exit-9", "exit", unit=9)])
    gw = next(gen)
    try:
        status = wait_for(
            lambda: (s := lane_status(gw, "exit-9"))["fault"] and s, timeout=10, what="fault"
        )
        assert status["devices"]["barrier"].startswith("fault")
        with httpx.Client(base_url=gw.base_url) as c:
            assert c.get("/health").status_code == 200
    finally:
        gen.close()


def test_silent_device_times_out_into_a_fault(tmp_path: Path, clock: ManualClock) -> None:
    import socket
    import threading

    # A TCP peer that accepts and never answers: a hung controller.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    gen = run_gateway(tmp_path, clock, port, [modbus_lane("exit-1", "exit")])
    gw = next(gen)
    try:
        status = wait_for(
            lambda: (s := lane_status(gw, "exit-1"))["fault"] and s, timeout=10, what="fault"
        )
        assert status["devices"]["barrier"].startswith("fault")
        assert (
            "TimeoutError" in status["devices"]["barrier"]
            or "timeout" in status["devices"]["barrier"].lower()
        )
    finally:
        gen.close()
        stop.set()
        acceptor.join(5)
        for conn in held:
            conn.close()
        server.close()


def _db(gw: Running) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{gw.daemon.config.database.path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _session_row(gw: Running, session_id: int) -> sqlite3.Row:
    with _db(gw) as conn:
        return conn.execute("SELECT * FROM sessions WHERE id = ?", [session_id]).fetchone()


def _session_status(gw: Running, session_id: int | None, plate: str | None = None) -> str:
    with _db(gw) as conn:
        if plate is not None:
            row = conn.execute(
                "SELECT s.status FROM sessions s JOIN vehicles v ON v.id = s.vehicle_id"
                " WHERE v.license_plate = ? ORDER BY s.id DESC",
                [plate],
            ).fetchone()
        else:
            row = conn.execute("SELECT status FROM sessions WHERE id = ?", [session_id]).fetchone()
        return str(row["status"])


def _event_types(gw: Running) -> list[str]:
    with _db(gw) as conn:
        return [r["type"] for r in conn.execute("SELECT type FROM outbox ORDER BY id")]


def test_entry_lane_creates_the_session_and_refuses_a_vehicle_inside(
    tmp_path: Path, clock: ManualClock, controller: BarrierController
) -> None:
    gen = run_gateway(tmp_path, clock, controller.port, [modbus_lane("entry-1", "entry")])
    gw = next(gen)
    try:
        wait_for(
            lambda: lane_status(gw, "entry-1")["devices"]["presence_loop"] == "ok",
            what="loops polled",
        )
        controller.presence(True)
        wait_for(lambda: lane_status(gw, "entry-1")["presence"], what="presence")
        present(gw, "entry-1", "new-car 1")
        wait_for(lambda: controller.writes_of(OPEN_COIL), what="open")
        decision = lane_status(gw, "entry-1")["last_decision"]
        assert decision["allowed"] and decision["reason"] == "entry"
        assert decision["ticket_number"].startswith("TKT-")
        row = _session_row(gw, decision["session_id"])
        assert row["status"] == "active" and row["entry_gate"] == "entry-1"
        wait_for(lambda: lane_status(gw, "entry-1")["barrier"] == "open", what="opened")
        controller.safety(True)
        wait_for(lambda: lane_status(gw, "entry-1")["phase"] == "passing", what="passing")
        controller.presence(False)
        controller.safety(False)
        wait_for(lambda: controller.writes_of(CLOSE_COIL), what="closed")
        wait_for(lambda: "lane_passage" in _event_types(gw), what="passage audited")
        types = _event_types(gw)
        # The lane entry is the same entry as the API's: the same session_started event.
        assert "session_started" in types and "lane_decision" in types

        # The same car again (anti-passback, hard): refused, nothing opens.
        opens = len(controller.writes_of(OPEN_COIL))
        wait_for(lambda: lane_status(gw, "entry-1")["barrier"] == "closed", what="closed again")
        controller.presence(True)
        wait_for(lambda: lane_status(gw, "entry-1")["presence"], what="presence")
        present(gw, "entry-1", "NEWCAR1")
        wait_for(
            lambda: lane_status(gw, "entry-1")["last_decision"]["reason"] == "already_inside",
            what="refused",
        )
        assert_stays(
            lambda: len(controller.writes_of(OPEN_COIL)) == opens, 1.0, what="no second open"
        )
        controller.presence(False)
    finally:
        gen.close()


def test_backing_out_of_an_entry_cancels_the_session(
    tmp_path: Path, clock: ManualClock, controller: BarrierController
) -> None:
    gen = run_gateway(tmp_path, clock, controller.port, [modbus_lane("entry-1", "entry")])
    gw = next(gen)
    try:
        wait_for(
            lambda: lane_status(gw, "entry-1")["devices"]["presence_loop"] == "ok",
            what="loops polled",
        )
        controller.presence(True)
        wait_for(lambda: lane_status(gw, "entry-1")["presence"], what="presence")
        present(gw, "entry-1", "SHY1")
        wait_for(lambda: lane_status(gw, "entry-1")["barrier"] == "open", what="opened")
        session_id = lane_status(gw, "entry-1")["last_decision"]["session_id"]
        controller.presence(False)  # the driver changes their mind and reverses
        wait_for(lambda: not lane_status(gw, "entry-1")["presence"], what="presence lost")
        # Not before backout_close_s = 2 (lane timers run on the monotonic clock) ...
        assert_stays(lambda: not controller.writes_of(CLOSE_COIL), 1.5, what="grant kept")
        # ... but after it.
        wait_for(lambda: controller.writes_of(CLOSE_COIL), what="closed after back-out")
        wait_for(
            lambda: _session_row(gw, session_id)["status"] == "cancelled", what="session cancelled"
        )
        assert "session_cancelled" in _event_types(gw)
        assert "lane_passage" not in _event_types(gw)
    finally:
        gen.close()


def test_modbus_rtu_over_a_serial_line(tmp_path: Path, clock: ManualClock) -> None:
    """The same lane on Modbus RTU: the controller listens on one end of a socat null-modem."""
    from tests.peers import SerialLink

    link = SerialLink(str(tmp_path))
    peer = BarrierController(serial_port=link.a).start()
    lane = modbus_lane("exit-1", "exit")
    config = config_from(
        tmp_path,
        modbus={
            "rs485": {"transport": "rtu", "device": link.b, "baudrate": 115200, "timeout_s": 0.5}
        },
        lanes=[
            {**lane, **{k: {**v, "bus": "rs485"} for k, v in lane.items() if isinstance(v, dict)}}
        ],
    )
    daemon, thread = start_daemon(config, clock)
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    gw.user("admin@example.com", "admin")
    gw.user("operator@example.com", "operator")
    try:
        seed_rate_and_entry(gw, "RTU1", minutes_ago=5)  # inside the grace period
        wait_for(
            lambda: lane_status(gw, "exit-1")["devices"]["presence_loop"] == "ok",
            timeout=10,
            what="polled over RTU",
        )
        peer.presence(True)
        wait_for(lambda: lane_status(gw, "exit-1")["presence"], what="presence over RTU")
        present(gw, "exit-1", "RTU1")
        wait_for(lambda: peer.writes_of(OPEN_COIL), what="open coil over RTU")
        assert lane_status(gw, "exit-1")["last_decision"]["reason"] == "free"
    finally:
        daemon.request_stop()
        thread.join(15)
        peer.stop()
        link.close()


def test_clean_stop_opens_an_on_shutdown_open_lane(
    tmp_path: Path, clock: ManualClock, controller: BarrierController
) -> None:
    gateway = run_gateway(
        tmp_path, clock, controller.port, [modbus_lane("exit-1", "exit", on_shutdown="open")]
    )
    gw = next(gateway)
    wait_for(lambda: lane_status(gw, "exit-1")["devices"]["barrier"] == "ok", what="barrier polled")
    assert controller.writes_of(OPEN_COIL) == []
    next(gateway, None)  # stops the daemon
    assert not gw.daemon.ready.is_set()
    # Commanded over the still-connected bus, and the pulse released before the bus closed.
    assert len(controller.writes_of(OPEN_COIL)) == 1
    assert len(controller.writes_of(OPEN_COIL, False)) == 1
    wait_for(lambda: controller.position == "open", what="the controller's barrier open")


def test_a_quiet_poller_or_a_stuck_bus_is_a_fault_not_a_frozen_input(
    controller: BarrierController,
) -> None:
    """Inputs that stop being read must not keep their last value (a safety loop "clear"):
    the subscriber faults, a stuck poll task is replaced on the next subscription, and a
    request stuck behind a bus that never frees gives up with "bus busy"."""
    import asyncio

    from drivers.modbus import BusSpec, ModbusBus
    from gateway.ports import DeviceUnavailable

    async def scenario() -> None:
        spec = BusSpec(
            name="io", transport="tcp", host="127.0.0.1", port=controller.port, timeout_s=0.1
        )
        bus = ModbusBus(spec)
        loop = asyncio.get_running_loop()
        try:
            poller = bus.poller(1)
            first = poller.subscribe((PRESENCE,), 50)
            slow = poller.subscribe((SAFETY,), 1)  # stays subscribed: the task is not idle
            assert await first.get() == {PRESENCE: False}
            assert slow.stale_s > first.stale_s
            # The poll task hangs (here: swapped for one that never polls).
            assert poller._task is not None
            poller._task.cancel()
            poller._task = loop.create_task(asyncio.sleep(3600))
            started = loop.time()
            with pytest.raises(DeviceUnavailable, match="no reading"):
                while True:
                    await first.get()
            assert loop.time() - started <= first.stale_s + 0.5
            poller.unsubscribe(first)
            # The next subscription sees the task has made no progress and replaces it.
            controller.presence(True)
            again = poller.subscribe((PRESENCE,), 50)
            assert await again.get() == {PRESENCE: True}
            # A request waiting for a bus that never frees gives up.
            await bus._lock.acquire()
            started = loop.time()
            with pytest.raises(DeviceUnavailable, match="bus busy"):
                await bus.read_inputs(1, PRESENCE, 1)
            assert 1.5 <= loop.time() - started <= 3.0
            bus._lock.release()
            assert await bus.read_inputs(1, PRESENCE, 1) == [True]
        finally:
            for sub in list(poller.subscriptions):
                poller.unsubscribe(sub)
            bus.close()

    asyncio.run(scenario())
