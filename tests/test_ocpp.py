"""The gateway as OCPP 1.6J central system, with the ``ocpp`` library's ChargePoint as the charger.

Each test runs a real websocket client in its own event loop thread, talking to the
daemon's endpoint on a free port; the API is driven over HTTP as a client would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AvailabilityStatus, RemoteStartStopStatus

from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.peers import free_port, wait_for

PASSWORD = "charger-secret-1"
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.01},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


class Wallbox(ChargePoint):
    """A wallbox that does what the gateway asks, and lets the test speak for it."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=5)
        self.remote_starts: list[dict[str, Any]] = []
        self.remote_stops: list[int] = []
        self.availability: list[str] = []
        self.answer_stop = True

    @on(Action.remote_start_transaction)
    async def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **extra: Any
    ) -> Any:
        self.remote_starts.append({"id_tag": id_tag, "connector_id": connector_id, **extra})
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> Any:
        self.remote_stops.append(transaction_id)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.change_availability)
    async def on_availability(self, connector_id: int, type: str) -> Any:
        self.availability.append(type)
        return call_result.ChangeAvailability(status=AvailabilityStatus.accepted)


class ChargerThread:
    """Runs a Wallbox connection in a thread; ``do`` runs a coroutine on its loop."""

    def __init__(self, url: str, cp_id: str, password: str | None = PASSWORD) -> None:
        self.url, self.cp_id, self.password = url, cp_id, password
        self.loop = asyncio.new_event_loop()
        self.point: Wallbox | None = None
        self.ws: Any = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def connect(self) -> Wallbox:
        async def go() -> Wallbox:
            headers = {}
            if self.password:
                token = base64.b64encode(f"{self.cp_id}:{self.password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            self.ws = await websockets.connect(
                f"{self.url}/ocpp/{self.cp_id}",
                subprotocols=["ocpp1.6"],
                additional_headers=headers,
            )
            point = Wallbox(self.cp_id, self.ws)

            async def serve() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await point.start()

            self.loop.create_task(serve())
            return point

        self.point = self.do(go())
        return self.point

    def do(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def send(self, payload: Any) -> Any:
        assert self.point is not None
        return self.do(self.point.call(payload))

    def raw(self, text: str) -> Any:
        """Send raw text and wait for the raw answer (bypassing the library's checks)."""
        assert self.point is not None

        async def go() -> Any:
            await self.ws.send(text)
            return await asyncio.wait_for(self.point._response_queue.get(), 5)

        return self.do(go())

    def disconnect(self) -> None:
        if self.ws is not None:
            self.do(self.ws.close())

    def close(self) -> None:
        try:
            self.disconnect()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            # websockets resolves the host in the loop's default executor: stop its threads.
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()


@pytest.fixture
def ev_gw(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    port = free_port()
    config = config_from(
        tmp_path,
        ocpp={
            "enabled": True,
            "host": "127.0.0.1",
            "port": port,
            "heartbeat_interval": 30,
            "command_timeout_s": 3,
            "stop_timeout_s": 2,
            "id_tags": ["RFID-1"],
            "chargers": {"CP-1": {"password": PASSWORD}},
        },
        charging={"idle_fee_per_minute": "0.50", "idle_grace_minutes": 10},
        lanes=[{"id": "exit-1", "kind": "exit", **SIM}],
    )
    daemon, thread = start_daemon(config, clock)
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    gw.ocpp_url = f"ws://127.0.0.1:{port}"  # type: ignore[attr-defined]
    gw.user("admin@example.com", "admin")
    gw.user("operator@example.com", "operator")
    gw.user("alice@example.com", "customer")
    wait_for(lambda: daemon.csms is not None and daemon.csms.port, what="ocpp listening")
    try:
        yield gw
    finally:
        daemon.request_stop()
        thread.join(15)


@pytest.fixture
def station(ev_gw: Running) -> dict[str, Any]:
    with ev_gw.client("admin@example.com") as admin:
        level = admin.post("/levels", json={"name": "L", "floor_number": 0}).json()
        zone = admin.post("/zones", json={"level_id": level["id"], "name": "Z"}).json()
        space = admin.post(
            "/spaces",
            json={"zone_id": zone["id"], "space_number": "EV1", "space_type": "ev_charging"},
        ).json()
        admin.post(
            "/rates",
            json={
                "name": "h",
                "amount": 5.0,
                "grace_period_minutes": 0,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
        r = admin.post(
            "/ev-stations",
            json={
                "space_id": space["id"],
                "charger_type": "level2",
                "power_kw": 7.2,
                "connector_type": "Type2",
                "price_per_kwh": 0.25,
                "ocpp_id": "CP-1",
                "connector_id": 1,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["ocpp_id"] == "CP-1" and r.json()["connector_id"] == 1
        return dict(r.json())


@pytest.fixture
def charger(ev_gw: Running, station: dict[str, Any]) -> Iterator[ChargerThread]:
    c = ChargerThread(ev_gw.ocpp_url, "CP-1")  # type: ignore[attr-defined]
    c.connect()
    yield c
    c.close()


def db(gw: Running) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{gw.daemon.config.database.path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def station_status(gw: Running, station_id: int) -> str:
    with gw.client() as anon:
        return str(
            next(s for s in anon.get("/ev-stations").json() if s["id"] == station_id)["status"]
        )


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def meter(wh: int, at: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at or now_iso(),
            "sampled_value": [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            ],
        }
    ]


def test_boot_heartbeat_and_status(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    boot = charger.send(call.BootNotification(charge_point_model="Box", charge_point_vendor="Acme"))
    assert boot.status == "Accepted" and boot.interval == 30
    assert charger.send(call.Heartbeat()).current_time
    for ocpp_status, ours in [
        ("Preparing", "occupied"),
        ("Charging", "charging"),
        ("Faulted", "faulted"),
        ("Unavailable", "maintenance"),
        ("Available", "available"),
    ]:
        charger.send(
            call.StatusNotification(connector_id=1, error_code="NoError", status=ocpp_status)
        )
        assert station_status(ev_gw, station["id"]) == ours
    with db(ev_gw) as conn:
        row = conn.execute("SELECT * FROM ocpp_chargers WHERE id = 'CP-1'").fetchone()
        types = {r[0] for r in conn.execute("SELECT type FROM outbox")}
    assert row["vendor"] == "Acme" and row["connected"] == 1
    assert {"charger_booted", "charger_status"} <= types


def test_handshake_refuses_unknown_and_wrong_password(
    ev_gw: Running, station: dict[str, Any]
) -> None:
    url = ev_gw.ocpp_url  # type: ignore[attr-defined]

    async def attempt(cp_id: str, password: str | None, subprotocol: str = "ocpp1.6") -> int:
        headers = {}
        if password is not None:
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{cp_id}:{password}".encode()).decode()
            )
        try:
            async with websockets.connect(
                f"{url}/ocpp/{cp_id}",
                subprotocols=[subprotocol],  # type: ignore[list-item]
                additional_headers=headers,
            ):
                return 101
        except websockets.InvalidStatus as err:
            return int(err.response.status_code)

    assert asyncio.run(attempt("NOBODY", None)) == 404
    assert asyncio.run(attempt("CP-1", None)) == 401
    assert asyncio.run(attempt("CP-1", "wrong")) == 401
    assert asyncio.run(attempt("CP-1", PASSWORD, "ocpp2.0.1")) == 400
    assert asyncio.run(attempt("CP-1", PASSWORD)) == 101


def test_authorize(ev_gw: Running, station: dict[str, Any], charger: ChargerThread) -> None:
    assert charger.send(call.Authorize(id_tag="RFID-1")).id_tag_info["status"] == "Accepted"
    assert charger.send(call.Authorize(id_tag="STRANGER")).id_tag_info["status"] == "Invalid"


def test_remote_start_meter_values_remote_stop(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    with ev_gw.client("operator@example.com") as op:
        entry = op.post("/sessions/entry", json={"license_plate": "EV1"}).json()
        vehicle_id = entry["session"]["vehicle_id"]
        r = op.post(
            "/ev-charging/start",
            json={
                "station_id": station["id"],
                "vehicle_id": vehicle_id,
                "max_power_requested": 3.6,
            },
        )
        assert r.status_code == 201, r.text
        charge = r.json()
        assert (
            charge["status"] == "started" and charge["parking_session_id"] == entry["session"]["id"]
        )
        request = charger.point.remote_starts[0]
        assert request["connector_id"] == 1 and request["id_tag"].startswith("GW-")
        assert (
            request["charging_profile"]["charging_schedule"]["charging_schedule_period"][0]["limit"]
            == 3600.0
        )
        started = charger.send(
            call.StartTransaction(
                connector_id=1, id_tag=request["id_tag"], meter_start=1000, timestamp=now_iso()
            )
        )
        assert (
            started.transaction_id == charge["id"] and started.id_tag_info["status"] == "Accepted"
        )
        charger.send(
            call.MeterValues(connector_id=1, transaction_id=charge["id"], meter_value=meter(5500))
        )
        live = op.get("/ev-charging/sessions").json()["sessions"][0]
        assert live["status"] == "charging" and live["energy_kwh"] == 4.5 and live["cost"] == 1.13

        # The stop waits for the charger's StopTransaction, which the test sends when asked.
        def stop_when_asked() -> None:
            wait_for(lambda: charger.point.remote_stops, what="remote stop")
            charger.send(
                call.StopTransaction(
                    meter_stop=13500,
                    timestamp=now_iso(),
                    transaction_id=charge["id"],
                    reason="Remote",
                )
            )

        helper = threading.Thread(target=stop_when_asked)
        helper.start()
        r = op.post(f"/ev-charging/{charge['id']}/stop")
        helper.join(10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["energy_used"] == 12.5 and body["cost"] == 3.13 and body["provisional"] is False
        assert body["session"]["status"] == "completed"


def test_stop_timeout_is_provisional_then_final(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    with ev_gw.client("operator@example.com") as op:
        vehicle_id = op.post("/sessions/entry", json={"license_plate": "EV2"}).json()["session"][
            "vehicle_id"
        ]
        charge = op.post(
            "/ev-charging/start", json={"station_id": station["id"], "vehicle_id": vehicle_id}
        ).json()
        tag = charger.point.remote_starts[0]["id_tag"]
        charger.send(
            call.StartTransaction(connector_id=1, id_tag=tag, meter_start=0, timestamp=now_iso())
        )
        charger.send(
            call.MeterValues(connector_id=1, transaction_id=charge["id"], meter_value=meter(2000))
        )
        r = op.post(
            f"/ev-charging/{charge['id']}/stop"
        )  # the charger never sends StopTransaction in time
        assert r.status_code == 200, r.text
        assert r.json()["provisional"] is True and r.json()["energy_used"] == 2.0
        # It arrives later, with the real figure.
        charger.send(
            call.StopTransaction(meter_stop=2600, timestamp=now_iso(), transaction_id=charge["id"])
        )
        final = op.get("/ev-charging/sessions").json()["sessions"][0]
        assert final["energy_kwh"] == 2.6 and final["cost"] == 0.65
    with db(ev_gw) as conn:
        assert conn.execute("SELECT provisional FROM charging_sessions").fetchone()[0] == 0


def test_stop_for_unknown_transaction_is_answered_and_recorded(
    ev_gw: Running, charger: ChargerThread
) -> None:
    result = charger.send(
        call.StopTransaction(meter_stop=100, timestamp=now_iso(), transaction_id=98765)
    )
    assert result.id_tag_info["status"] == "Accepted"
    with db(ev_gw) as conn:
        payloads = [
            json.loads(r[0])
            for r in conn.execute(
                "SELECT payload FROM outbox WHERE type = 'charger_stop_unmatched'"
            )
        ]
    assert payloads and payloads[0]["transaction_id"] == 98765


def test_malformed_and_schema_invalid_messages_get_callerrors(
    ev_gw: Running, charger: ChargerThread
) -> None:
    # Not the shape of an OCPP message at all, but with a message id: FormationViolation.
    answer = charger.raw(json.dumps([2, "m-1", "Heartbeat"]))
    assert answer.message_type_id == 4 and answer.unique_id == "m-1"
    # Valid frame, payload against the schema (vendor missing): a CALLERROR too.
    answer = charger.raw(json.dumps([2, "m-2", "BootNotification", {"chargePointModel": "X"}]))
    assert answer.message_type_id == 4 and answer.unique_id == "m-2"
    assert answer.error_code in (
        "FormationViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "ProtocolError",
    )
    # An action the central system does not implement.
    answer = charger.raw(json.dumps([2, "m-3", "GetDiagnostics", {"location": "x"}]))
    assert answer.message_type_id == 4
    # The connection is still good.
    assert charger.send(call.Heartbeat()).current_time


def test_offline_charger_and_reconciliation(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    charger.send(call.BootNotification(charge_point_model="Box", charge_point_vendor="Acme"))
    charger.disconnect()
    wait_for(lambda: station_status(ev_gw, station["id"]) == "offline", what="offline")
    with ev_gw.client("operator@example.com") as op:
        vehicle_id = op.post("/sessions/entry", json={"license_plate": "EV3"}).json()["session"][
            "vehicle_id"
        ]
        r = op.post(
            "/ev-charging/start", json={"station_id": station["id"], "vehicle_id": vehicle_id}
        )
        assert r.status_code == 409  # an offline station cannot start
    # While offline, the driver started and stopped with the card; the charger reports it later.
    again = ChargerThread(ev_gw.ocpp_url, "CP-1")  # type: ignore[attr-defined]
    try:
        again.connect()
        began, ended = now_iso(timedelta(minutes=-50)), now_iso(timedelta(minutes=-10))
        started = again.send(
            call.StartTransaction(connector_id=1, id_tag="RFID-1", meter_start=500, timestamp=began)
        )
        assert started.id_tag_info["status"] == "Accepted" and started.transaction_id > 0
        again.send(
            call.StopTransaction(
                meter_stop=4500,
                timestamp=ended,
                transaction_id=started.transaction_id,
                reason="Local",
            )
        )
        with db(ev_gw) as conn:
            row = conn.execute(
                "SELECT * FROM charging_sessions WHERE id = ?", [started.transaction_id]
            ).fetchone()
        assert (
            row["status"] == "completed" and row["energy_kwh"] == "4.000" and row["cost"] == "1.00"
        )
        assert row["start_time"].startswith(began[:16]) and row["end_time"].startswith(ended[:16])
        assert row["vehicle_id"] == vehicle_id  # the car parked on the station's space
    finally:
        again.close()


def test_station_to_maintenance_sends_change_availability(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    with ev_gw.client("admin@example.com") as admin:
        assert (
            admin.put(f"/ev-stations/{station['id']}", json={"status": "maintenance"}).status_code
            == 200
        )
        wait_for(lambda: charger.point.availability == ["Inoperative"], what="ChangeAvailability")
        assert (
            admin.put(f"/ev-stations/{station['id']}", json={"status": "available"}).status_code
            == 200
        )
        wait_for(
            lambda: charger.point.availability == ["Inoperative", "Operative"],
            what="back to operative",
        )


def test_ev_journey_with_ocpp_and_the_exit_lane(
    ev_gw: Running, station: dict[str, Any], charger: ChargerThread
) -> None:
    """Enter, charge over OCPP, pay parking and charging (and the idle time) at once, leave by the lane."""
    with ev_gw.client("operator@example.com") as op, ev_gw.client("alice@example.com") as alice:
        with ev_gw.client("admin@example.com") as admin:
            car_type = admin.post("/vehicle-types", json={"name": "Car"}).json()
        car = alice.post(
            "/vehicles",
            json={"license_plate": "JOURNEY1", "vehicle_type_id": car_type["id"], "is_ev": True},
        )
        assert car.status_code == 201, car.text
        entry = op.post("/sessions/entry", json={"license_plate": "JOURNEY1"}).json()
        assert (
            entry["space_assigned"]["id"] == station["space_id"]
        )  # the EV gets the charging space
        charge = alice.post(
            "/ev-charging/start", json={"station_id": station["id"], "vehicle_id": car.json()["id"]}
        ).json()
        tag = charger.point.remote_starts[-1]["id_tag"]
        t0 = datetime.now(UTC)
        charger.send(
            call.StartTransaction(
                connector_id=1, id_tag=tag, meter_start=0, timestamp=t0.isoformat()
            )
        )
        charger.send(
            call.MeterValues(connector_id=1, transaction_id=charge["id"], meter_value=meter(6000))
        )
        charger.send(
            call.StopTransaction(
                meter_stop=12500,
                timestamp=(t0 + timedelta(minutes=100)).isoformat(),
                transaction_id=charge["id"],
                reason="EVDisconnected",
            )
        )
        # The car stays plugged in 30 minutes after charging (10 minutes of grace, then 0.50/min).
        charger.send(
            call.StatusNotification(
                connector_id=1,
                error_code="NoError",
                status="Available",
                timestamp=(t0 + timedelta(minutes=130)).isoformat(),
            )
        )
        ev_gw.clock.advance(minutes=140)
        fee = op.get(f"/sessions/{entry['session']['id']}/calculate-fee").json()
        lines = {line["description"]: line["amount"] for line in fee["breakdown"]}
        assert lines["EV charging (12.5 kWh)"] == 3.13 and lines["EV idle fee"] == 10.0
        assert fee["total"] == 15.0 + 3.13 + 10.0
        paid = alice.post(
            "/payments",
            json={
                "session_id": entry["session"]["id"],
                "payment_method": "card",
                "amount": fee["total"],
            },
        )
        assert paid.status_code == 201, paid.text
        # Out through the exit lane: presence, plate, open, through.
        lanes = ev_gw.daemon.lanes
        devices = lanes.get("exit-1").devices
        from gateway.domain.lanes import Credential

        ev_gw.call(devices.presence_loop.set, True)
        wait_for(lambda: lanes.get("exit-1").state.presence, what="presence")
        ev_gw.call(lanes.present, "exit-1", Credential(kind="plate", value="JOURNEY1"))
        wait_for(lambda: lanes.get("exit-1").state.position == "open", what="barrier open")
        assert lanes.get("exit-1").state.last_decision.reason == "paid"
        ev_gw.call(devices.safety_loop.set, True)
        wait_for(lambda: lanes.get("exit-1").state.phase == "passing", what="passing")
        ev_gw.call(devices.presence_loop.set, False)
        ev_gw.call(devices.safety_loop.set, False)
        wait_for(
            lambda: op.get(f"/sessions/{entry['session']['id']}").json()["status"] == "completed",
            what="exit recorded",
        )


def test_charger_sessions_list_over_http(ev_gw: Running) -> None:
    with httpx.Client(base_url=ev_gw.base_url) as c:
        assert c.get("/health").status_code == 200
