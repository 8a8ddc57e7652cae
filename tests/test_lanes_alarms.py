"""A lane's surprises reach the central system: outbox events over MQTT, and the lane's
retained state, with the plate of the vehicle that went through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.lanes import Credential
from tests.api_kit import db_query
from tests.conftest import ADMIN, OPERATOR, ManualClock, Running, config_from, running
from tests.peers import Broker, Central, wait_for

PREFIX = "carpark/test-site"
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.05},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


@pytest.fixture
def site(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Running, Central]]:
    (tmp_path / "broker").mkdir()
    broker = Broker(str(tmp_path / "broker")).start()
    central = Central(broker.port, f"{PREFIX}/#")
    try:
        wait_for(lambda: central.client.is_connected(), what="central connected")
        config = config_from(
            tmp_path,
            mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive": 5},
            lanes=[{"id": "exit-1", "kind": "exit", **SIM}],
        )
        with running(config, clock, users=(ADMIN, OPERATOR)) as gw:
            yield gw, central
    finally:
        central.close()
        broker.kill()


def test_a_stuck_barrier_and_the_unpaid_car_through_it_are_alarms_upstream(
    site: tuple[Running, Central],
) -> None:
    gw, central = site
    with gw.client("admin@example.com") as admin:
        r = admin.post("/sessions/entry", json={"license_plate": "NOPAY1"})
        assert r.status_code == 201, r.text
        session_id = r.json()["session"]["id"]
        r = admin.post(
            "/rates",
            json={
                "name": "Hourly",
                "rate_type": "hourly",
                "amount": 5.0,
                "grace_period_minutes": 0,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text
    gw.clock.advance(hours=2)
    assert gw.daemon.lanes is not None
    lane = gw.daemon.lanes.get("exit-1")
    barrier, presence, safety = (
        lane.devices.barrier,
        lane.devices.presence_loop,
        lane.devices.safety_loop,
    )
    wait_for(lambda: lane.state.position == "closed", what="lane ready")

    def jam_open() -> None:  # the arm is forced up and its motor no longer answers commands
        barrier.stuck = True
        barrier.by_hand("open")

    gw.call(jam_open)
    wait_for(lambda: lane.state.position == "open", what="open")
    wait_for(lambda: "closed" in barrier.commands, what="the lane tries to close it")
    gw.call(presence.set, True)
    wait_for(lambda: lane.state.presence, what="presence")
    gw.call(lane.present, Credential(kind="plate", value="NOPAY1"))
    wait_for(
        lambda: (
            lane.state.last_decision is not None and lane.state.last_decision.reason == "unpaid"
        ),
        what="refused",
    )
    gw.call(safety.set, True)  # it drives out under the stuck arm
    wait_for(lambda: lane.state.safety, what="safety")
    gw.call(presence.set, False)
    gw.call(safety.set, False)

    def upstream(kind: str) -> list[dict[str, Any]]:
        return [e for e in central.events() if e["type"] == kind]

    passage = wait_for(lambda: upstream("unauthorised_passage"), what="passage upstream")[0]
    assert passage["data"]["plate"] == "NOPAY1"
    assert passage["data"]["refused_because"] == "unpaid"
    assert passage["data"]["session_id"] == session_id
    assert passage["data"]["message"] == "NOPAY1 passed without a grant (refused: unpaid)"
    assert wait_for(lambda: upstream("barrier_open_without_grant"), what="open alarm upstream")

    def retained_alarms() -> list[str]:
        states = central.on(f"{PREFIX}/state/lanes/exit-1")
        if not states:
            return []
        return [a["type"] for a in json.loads(states[-1][1])["alarms"]]

    wait_for(
        lambda: retained_alarms() == ["barrier_open_without_grant", "unauthorised_passage"],
        what="alarms on the lane's state",
    )
    # Not an exit: the session is still open, and nothing says it passed.
    assert db_query(gw, "SELECT status FROM sessions WHERE id = ?", (session_id,)) == [("active",)]
    assert [e for e in central.events() if e["type"] == "lane_passage"] == []
