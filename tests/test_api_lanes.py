"""The lanes API: live state, operator open (audited), modes, roles and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_kit import events_of
from tests.conftest import (
    ADMIN,
    ALICE,
    OPERATOR,
    ManualClock,
    Running,
    config_from,
    running,
    start_daemon,
)
from tests.peers import assert_stays, wait_for

SIMULATED = {
    "barrier": {"driver": "simulated", "travel_s": 0.05},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


@pytest.fixture
def lanes_gw(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    lanes = [
        {"id": "entry-1", "name": "Main entrance", "kind": "entry", **SIMULATED},
        {"id": "exit-1", "name": "Exit A", "kind": "exit", **SIMULATED},
    ]
    config = config_from(tmp_path, lanes=lanes)
    with running(config, clock, users=(ADMIN, OPERATOR, ALICE)) as gw:
        yield gw


def test_list_and_get(lanes_gw: Running) -> None:
    with lanes_gw.client("operator@example.com") as op:
        lanes = op.get("/lanes").json()
        assert [lane["id"] for lane in lanes] == ["entry-1", "exit-1"]
        lane = wait_for(
            lambda: (x := op.get("/lanes/exit-1").json())["barrier"] == "closed" and x,
            what="closed",
        )
        assert lane["kind"] == "exit" and lane["mode"] == "normal" and lane["fault"] is False
        assert lane["devices"] == {"barrier": "ok", "presence_loop": "ok", "safety_loop": "ok"}
        assert lane["presence"] is False and lane["last_decision"] is None
        assert op.get("/lanes/nope").status_code == 404


def test_operator_open_is_audited_and_opens(lanes_gw: Running) -> None:
    with lanes_gw.client("operator@example.com") as op:
        r = op.post("/lanes/exit-1/open", json={"reason": "ambulance"})
        assert r.status_code == 200, r.text
        wait_for(lambda: op.get("/lanes/exit-1").json()["barrier"] == "open", what="opened")
        decision = op.get("/lanes/exit-1").json()["last_decision"]
        assert decision["reason"] == "operator"
    audit = events_of(lanes_gw, "lane_opened_by_operator")
    assert audit == [{"lane_id": "exit-1", "reason": "ambulance", "actor": "operator@example.com"}]


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 5}, {"reason": "x" * 201}, []]
)
def test_open_needs_a_reason(lanes_gw: Running, body: Any) -> None:
    with lanes_gw.client("operator@example.com") as op:
        r = op.post("/lanes/exit-1/open", json=body)
        assert r.status_code == 400, r.text
        assert "detail" in r.json()
        assert_stays(
            lambda: op.get("/lanes/exit-1").json()["barrier"] == "closed", 0.5, what="closed"
        )
    assert events_of(lanes_gw, "lane_opened_by_operator") == []


def test_roles(lanes_gw: Running) -> None:
    with lanes_gw.client("alice@example.com") as alice, lanes_gw.client() as anon:
        assert alice.get("/lanes").status_code == 403
        assert alice.post("/lanes/exit-1/open", json={"reason": "x"}).status_code == 403
        assert anon.get("/lanes").status_code == 401
    with lanes_gw.client("operator@example.com") as op:
        assert op.put("/lanes/exit-1/mode", json={"mode": "free_exit"}).status_code == 403


def test_modes(lanes_gw: Running) -> None:
    with lanes_gw.client("admin@example.com") as admin:
        r = admin.put("/lanes/exit-1/mode", json={"mode": "locked_open"})
        assert r.status_code == 200, r.text
        wait_for(lambda: admin.get("/lanes/exit-1").json()["barrier"] == "open", what="locked open")
        assert admin.get("/lanes/exit-1").json()["mode"] == "locked_open"
        assert admin.put("/lanes/exit-1/mode", json={"mode": "normal"}).status_code == 200
        wait_for(
            lambda: admin.get("/lanes/exit-1").json()["barrier"] == "closed", what="closed again"
        )
        assert admin.put("/lanes/entry-1/mode", json={"mode": "free_exit"}).status_code == 422
        assert admin.put("/lanes/exit-1/mode", json={"mode": "party"}).status_code == 400
        assert admin.put("/lanes/nope/mode", json={"mode": "normal"}).status_code == 404
        assert admin.get("/lanes/entry-1").json()["mode"] == "normal"
    changes = events_of(lanes_gw, "lane_mode_changed")
    assert [(c["lane_id"], c["mode"]) for c in changes] == [
        ("exit-1", "locked_open"),
        ("exit-1", "normal"),
    ]


def test_health_and_lanes_survive_garbage_requests(lanes_gw: Running) -> None:
    with httpx.Client(
        base_url=lanes_gw.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {lanes_gw.tokens['operator@example.com']}"},
    ) as op:
        r = op.post(
            "/lanes/exit-1/open", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert op.get("/lanes/exit-1").status_code == 200


def test_barriers_go_to_their_shutdown_state_when_the_daemon_stops(
    tmp_path: Path, clock: ManualClock
) -> None:
    lanes = [
        {"id": "exit-open", "kind": "exit", "on_shutdown": "open", **SIMULATED},
        {"id": "entry-close", "kind": "entry", "on_shutdown": "close", **SIMULATED},
        {"id": "entry-blocked", "kind": "entry", "on_shutdown": "close", **SIMULATED},
        {"id": "entry-leave", "kind": "entry", **SIMULATED},
    ]
    daemon, thread = start_daemon(config_from(tmp_path, lanes=lanes), clock)
    assert daemon.lanes is not None and daemon._loop is not None
    blocked = daemon.lanes.get("entry-blocked")
    daemon._loop.call_soon_threadsafe(blocked.devices.safety_loop.set, True)
    wait_for(lambda: blocked.state.safety)
    barriers = {
        lane_id: daemon.lanes.get(lane_id).devices.barrier for lane_id in daemon.lanes.lanes
    }
    before = {lane_id: list(b.commands) for lane_id, b in barriers.items()}
    daemon.request_stop()
    thread.join(15)
    assert not thread.is_alive()
    sent = {lane_id: b.commands[len(before[lane_id]) :] for lane_id, b in barriers.items()}
    assert sent["exit-open"] == ["open"]
    assert sent["entry-close"] == ["closed"]
    assert sent["entry-blocked"] == []  # never close onto a vehicle under the arm
    assert sent["entry-leave"] == []


def test_unknown_shutdown_state_is_refused(tmp_path: Path) -> None:
    from gateway.config import ConfigError
    from gateway.lanes.config import parse_lanes

    with pytest.raises(ConfigError, match="on_shutdown"):
        parse_lanes([{"id": "x", "kind": "exit", "on_shutdown": "explode", **SIMULATED}])
