"""Fault injection against the pymodbus barrier controller: each case of the lane issue.

Every case runs a real daemon against ``tests.peers.BarrierController`` (a pymodbus
server with travel time, limit switches, a fault input, a link that drops and comes back
on its port, and an ignore-commands mode). Each row is a fault, when it strikes, and the
outcome that is asserted; and after every case, whatever happened, no close ever reached
the controller while its safety loop was occupied.

| case | fault | when | expected |
| --- | --- | --- | --- |
| link_drop_at_read | Modbus link drops for 3 s | a paid car on the loop, plate read | the open is sent when the link is back; the car leaves within 15 s, its exit completed |
| link_drop_in_passage | link drops | the paid car is under the open arm and drives off | the passage completes when the link is back, then the barrier closes |
| close_ignored | controller fault input on (ignores commands) | the paid car has just passed | close retried with backoff, barrier_timeout fault; closed as soon as the fault clears; the unpaid car after it stays in |
| open_unreachable | controller unreachable | operator opens | 503 barrier_unreachable, nothing recorded or sent; the next paid car opens on its own read |
| restart_open | daemon restarted | barrier left open | closed at start-up with a barrier_open_without_grant alarm |
| restart_open_occupied | daemon restarted | barrier open, a vehicle under it | no close while it is there; closed when it leaves (unauthorised_passage) |
| chatter_50hz | safety loop chatters (a 50 Hz square wave) for 2 s | a paid car under the arm | no close during the chatter; one passage, then the close |
| flood | 10,000 safety reports in one burst | a paid car under the arm | coalesced into a few passes, the latest level kept, no close onto the car |
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api_kit import db_query, events_of
from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.peers import (
    CLOSE_COIL,
    OPEN_COIL,
    SAFETY,
    BarrierController,
    assert_stays,
    wait_for,
)
from tests.test_lanes_modbus import modbus_lane

LANE = "exit-1"


@dataclass
class Lab:
    """A daemon, its controller, and the moves of the cars in the lane."""

    tmp_path: Path
    clock: ManualClock
    controller: BarrierController
    lane: dict[str, Any]
    gw: Running | None = None
    _thread: threading.Thread | None = None
    rate_made: bool = field(default=False)

    # -- the daemon -------------------------------------------------------------------
    def start(self, *, first: bool = True) -> Running:
        config = config_from(
            self.tmp_path,
            modbus={
                "io": {
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": self.controller.port,
                    "timeout_s": 0.3,
                }
            },
            lanes=[self.lane],
        )
        daemon, self._thread = start_daemon(config, self.clock)
        self.gw = Running(
            daemon=daemon, clock=self.clock, base_url=f"http://127.0.0.1:{daemon.port}"
        )
        if first:
            self.gw.user("admin@example.com", "admin")
            self.gw.user("operator@example.com", "operator")
        else:  # the same database: the accounts are there, only the tokens are new
            for email in ("admin@example.com", "operator@example.com"):
                uid = db_query(self.gw, "SELECT id FROM users WHERE email = ?", (email,))[0][0]
                self.gw.tokens[email] = self.gw.token_for(uid)
        return self.gw

    def stop(self) -> None:
        if self.gw is not None and self._thread is not None:
            self.gw.daemon.request_stop()
            self._thread.join(15)
            assert not self._thread.is_alive(), "daemon did not stop"
        self.gw = None

    # -- what the lane says -----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        assert self.gw is not None
        with self.gw.client("operator@example.com") as c:
            r = c.get(f"/lanes/{LANE}")
            assert r.status_code == 200, r.text
            return dict(r.json())

    def wait_status(
        self, check: Callable[[dict[str, Any]], Any], what: str, timeout: float = 10
    ) -> dict[str, Any]:
        def matching() -> dict[str, Any] | None:
            status = self.status()
            return status if check(status) else None

        return dict(wait_for(matching, timeout=timeout, what=what))

    def session(self, session_id: int) -> str:
        return str(
            db_query(self.gw, "SELECT status FROM sessions WHERE id = ?", (session_id,))[0][0]
        )

    # -- the cars ---------------------------------------------------------------------
    def car_inside(self, plate: str, *, paid: bool) -> int:
        """A vehicle that entered two hours ago (and paid, or not): its session id."""
        assert self.gw is not None
        with self.gw.client("admin@example.com") as admin:
            if not self.rate_made:
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
                self.rate_made = True
            entry = (self.clock.now() - timedelta(hours=2)).astimezone(UTC).isoformat()
            r = admin.post("/sessions/entry", json={"license_plate": plate, "entry_time": entry})
            assert r.status_code == 201, r.text
            session_id = int(r.json()["session"]["id"])
            if paid:
                r = admin.post(
                    "/payments",
                    json={"session_id": session_id, "payment_method": "card", "amount": 10.0},
                )
                assert r.status_code == 201, r.text
        return session_id

    def arrive(self) -> None:
        self.controller.presence(True)
        self.wait_status(lambda s: s["presence"], "presence seen")

    def read(self, plate: str) -> None:
        from gateway.domain.lanes import Credential

        assert self.gw is not None and self.gw.daemon.lanes is not None
        self.gw.call(self.gw.daemon.lanes.present, LANE, Credential(kind="plate", value=plate))

    def drive_under(self) -> None:
        self.controller.safety(True)
        self.wait_status(lambda s: s["phase"] == "passing", "passing")

    def drive_off(self) -> None:
        self.controller.presence(False)
        self.controller.safety(False)

    def ready(self) -> None:
        self.wait_status(
            lambda s: s["ready"] and s["devices"]["barrier"] == "ok" and not s["fault"],
            "lane ready",
        )

    def opens(self) -> int:
        return len(self.controller.writes_of(OPEN_COIL))

    def closes(self) -> int:
        return len(self.controller.writes_of(CLOSE_COIL))


# -- the cases ----------------------------------------------------------------------------


def link_drop_at_read(lab: Lab) -> None:
    session = lab.car_inside("PAID1", paid=True)
    lab.ready()
    lab.arrive()
    lab.controller.drop()
    lab.wait_status(lambda s: "barrier" in s["faults"], "barrier fault")
    lab.read("PAID1")
    s = lab.wait_status(lambda s: s["last_decision"] is not None, "decided")
    assert s["last_decision"]["reason"] == "paid" and s["phase"] == "granted"
    assert s["barrier"] == "unknown"  # the lane does not pretend: it cannot see the barrier
    time.sleep(3)  # the link is down for 3 s
    assert lab.opens() == 0
    lab.controller.restore()
    back = time.monotonic()
    wait_for(lambda: lab.opens() > 0, timeout=15, what="open sent when the link is back")
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    lab.drive_off()
    wait_for(lambda: lab.session(session) == "completed", timeout=15, what="exit completed")
    assert time.monotonic() - back < 15
    wait_for(lambda: lab.closes() > 0, what="closed behind it")


def link_drop_in_passage(lab: Lab) -> None:
    session = lab.car_inside("PAID2", paid=True)
    lab.ready()
    lab.arrive()
    lab.read("PAID2")
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    lab.controller.drop()
    lab.wait_status(lambda s: "safety_loop" in s["faults"], "loops faulted")
    lab.drive_off()  # it leaves while nobody can see it
    assert_stays(lambda: lab.session(session) == "active", 1.0, what="nothing completed blind")
    lab.controller.restore()
    back = time.monotonic()
    wait_for(lambda: lab.session(session) == "completed", timeout=15, what="passage completed")
    wait_for(lambda: lab.controller.position == "closed", timeout=15, what="closed")
    assert time.monotonic() - back < 15
    assert len(events_of(lab.gw, "lane_passage")) == 1
    assert events_of(lab.gw, "unauthorised_passage") == []


def close_ignored(lab: Lab) -> None:
    session = lab.car_inside("PAID3", paid=True)
    unpaid = lab.car_inside("UNPAID3", paid=False)
    lab.ready()
    lab.arrive()
    lab.read("PAID3")
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    lab.controller.fault(True)  # the controller faults while the car is under the arm
    lab.drive_off()
    wait_for(lambda: lab.session(session) == "completed", what="the paid exit completed")
    s = lab.wait_status(
        lambda s: {"barrier_timeout", "barrier_controller"} <= set(s["faults"]),
        "barrier timeout",
    )
    assert s["barrier"] == "open" and s["wanted"] == "closed"
    wait_for(lambda: lab.closes() >= 3, what="the close re-sent while it is ignored")
    assert not any(w.obeyed for w in lab.controller.writes_of(CLOSE_COIL))
    lab.controller.fault(False)
    cleared = time.monotonic()
    wait_for(lambda: lab.controller.position == "closed", what="closed once the fault clears")
    assert time.monotonic() - cleared < 2
    lab.wait_status(lambda s: not s["fault"], "faults cleared by themselves")
    # The unpaid car behind it: refused, and the barrier stays down in front of it.
    opens = lab.opens()
    lab.arrive()
    lab.read("UNPAID3")
    s = lab.wait_status(lambda s: s["last_decision"]["reason"] == "unpaid", "refused")
    assert_stays(
        lambda: lab.opens() == opens and lab.controller.position == "closed",
        1.5,
        what="the barrier stays closed for the unpaid car",
    )
    assert lab.session(unpaid) == "active"
    assert events_of(lab.gw, "unauthorised_passage") == []


def open_unreachable(lab: Lab) -> None:
    session = lab.car_inside("PAID4", paid=True)
    lab.ready()
    lab.controller.drop()
    lab.wait_status(lambda s: "barrier" in s["faults"], "barrier fault")
    assert lab.gw is not None
    with lab.gw.client("operator@example.com") as op:
        r = op.post(f"/lanes/{LANE}/open", json={"reason": "intercom"})
    assert r.status_code == 503, r.text
    assert r.json()["reason"] == "barrier_unreachable"
    assert events_of(lab.gw, "lane_opened_by_operator") == []
    lab.controller.restore()
    lab.ready()
    assert_stays(lambda: lab.opens() == 0, 1.0, what="nothing opened by the refused request")
    s = lab.status()
    assert s["phase"] == "idle" and s["wanted"] == "closed"
    # The next car is decided on its own credential.
    lab.arrive()
    lab.read("PAID4")
    wait_for(lambda: lab.opens() == 1, what="opened for the paid car")
    assert lab.status()["last_decision"]["reason"] == "paid"
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    lab.drive_off()
    wait_for(lambda: lab.session(session) == "completed", what="exit completed")


def restart_open(lab: Lab) -> None:
    lab.ready()
    assert lab.gw is not None
    with lab.gw.client("operator@example.com") as op:
        assert op.post(f"/lanes/{LANE}/open", json={"reason": "delivery"}).status_code == 200
    wait_for(lambda: lab.controller.position == "open", what="opened")
    lab.stop()  # on_shutdown = "leave": the barrier stays up
    assert lab.controller.position == "open"
    closes = lab.closes()
    lab.start(first=False)
    wait_for(lambda: lab.closes() > closes, what="closed at start-up")
    wait_for(lambda: lab.controller.position == "closed", what="closed")
    alarms = wait_for(lambda: events_of(lab.gw, "barrier_open_without_grant"), what="alarm")
    assert alarms[0]["lane_id"] == LANE
    assert [a["type"] for a in lab.status()["alarms"]] == ["barrier_open_without_grant"]


def restart_open_occupied(lab: Lab) -> None:
    lab.stop()
    lab.controller.by_hand(True)  # found open at start-up, with something under it
    lab.controller.safety(True)
    lab.start(first=False)
    lab.wait_status(lambda s: s["ready"] and s["safety"], "started")
    assert_stays(lambda: lab.closes() == 0, 1.5, what="no close onto the vehicle")
    assert lab.status()["wanted"] == "open"
    lab.controller.safety(False)
    wait_for(lambda: lab.controller.position == "closed", what="closed once it left")
    wait_for(lambda: events_of(lab.gw, "unauthorised_passage"), what="the passage recorded")
    assert events_of(lab.gw, "barrier_open_without_grant")


def chatter_50hz(lab: Lab) -> None:
    session = lab.car_inside("PAID5", paid=True)
    lab.ready()
    lab.arrive()
    lab.read("PAID5")
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    lab.controller.presence(False)
    lab.controller.chatter(SAFETY, hz=100, seconds=2.0)  # a 50 Hz square wave, then clear
    assert_stays(
        lambda: lab.closes() == 0 or not lab.controller.chattering(),
        2.0,
        what="no close while the loop chatters",
    )
    wait_for(lambda: lab.controller.position == "closed", what="closed after the chatter")
    wait_for(lambda: lab.session(session) == "completed", what="exit completed")
    assert len(events_of(lab.gw, "lane_passage")) == 1
    assert events_of(lab.gw, "unauthorised_passage") == []


def flood(lab: Lab) -> None:
    session = lab.car_inside("PAID6", paid=True)
    lab.ready()
    lab.arrive()
    lab.read("PAID6")
    lab.wait_status(lambda s: s["barrier"] == "open", "open")
    lab.drive_under()
    assert lab.gw is not None and lab.gw.daemon.lanes is not None
    lane = lab.gw.daemon.lanes.get(LANE)
    link = lane.link("safety_loop")
    passes = lane.passes
    done = threading.Event()

    def burst() -> None:  # a detector gone mad: 10,000 reports, the last one "occupied"
        for n in range(10_000):
            link.report(n % 2 == 1)
        done.set()

    lab.gw.call(burst)
    assert done.wait(5)
    assert_stays(
        lambda: lab.status()["safety"] and lab.closes() == 0, 1.0, what="the latest level kept"
    )
    assert lane.passes - passes < 500, "reports are coalesced, not queued"
    lab.drive_off()
    wait_for(lambda: lab.session(session) == "completed", what="exit completed")
    wait_for(lambda: lab.controller.position == "closed", what="closed")
    assert len(events_of(lab.gw, "lane_passage")) == 1


@dataclass(frozen=True)
class Case:
    run: Callable[[Lab], None]
    lane: dict[str, Any] = field(default_factory=dict)


CASES = {
    "link_drop_at_read": Case(link_drop_at_read),
    "link_drop_in_passage": Case(link_drop_in_passage),
    "close_ignored": Case(close_ignored),
    "open_unreachable": Case(open_unreachable),
    "restart_open": Case(restart_open),
    "restart_open_occupied": Case(restart_open_occupied),
    # The default debounce, and the unit polled fast enough to see 50 Hz chatter at all.
    "chatter_50hz": Case(chatter_50hz, {"debounce_ms": 100, "poll_hz": 200}),
    "flood": Case(flood),
}


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock, request: pytest.FixtureRequest) -> Iterator[Lab]:
    case: Case = CASES[request.param]
    lane = modbus_lane(LANE, "exit")
    lane["safety_loop"].update(case.lane)
    controller = BarrierController(travel_s=0.3).start()
    lab = Lab(tmp_path, clock, controller, lane)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        controller.stop()


@pytest.mark.parametrize("lab", list(CASES), indirect=True)
def test_fault_matrix(lab: Lab, request: pytest.FixtureRequest) -> None:
    CASES[request.node.callspec.params["lab"]].run(lab)
    assert lab.controller.closes_onto_the_loop() == [], "a close reached an occupied loop"


def test_wall_clock_steps_neither_fire_nor_stall_the_lane_timers(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Lane timers run on the monotonic clock: the site clock jumping a day (an NTP step)
    does not fire the back-out close of a granted car still on the loop."""
    controller = BarrierController(travel_s=0.05).start()
    lab = Lab(tmp_path, clock, controller, modbus_lane(LANE, "exit"))
    try:
        lab.start()
        lab.car_inside("PAID7", paid=True)
        lab.ready()
        lab.arrive()
        lab.read("PAID7")
        lab.wait_status(lambda s: s["barrier"] == "open", "open")
        controller.presence(False)  # backing out: the grant lasts backout_close_s = 2 s
        lab.wait_status(lambda s: not s["presence"], "presence clear")
        clock.set(datetime(2030, 1, 1, tzinfo=UTC))
        assert_stays(lambda: lab.closes() == 0, 1.0, what="the grant kept")
        wait_for(lambda: lab.closes() > 0, what="closed after the real back-out time")
    finally:
        lab.stop()
        controller.stop()


def test_the_interlock_reads_the_safety_loop_at_the_moment_of_the_close(
    tmp_path: Path, clock: ManualClock
) -> None:
    """The lane's own view of the safety loop lags (a long debounce); the close is still
    refused because the driver reads the input itself just before writing."""
    controller = BarrierController(travel_s=0.05).start()
    lane = modbus_lane(LANE, "exit")
    lane["safety_loop"]["debounce_ms"] = 2000
    lab = Lab(tmp_path, clock, controller, lane)
    try:
        lab.start()
        lab.ready()
        controller.safety(True)  # something steps under the arm: the lane has not seen it yet
        controller.by_hand(True)  # and the arm is lifted: the lane wants it closed
        lab.wait_status(lambda s: s["barrier"] == "open" and s["wanted"] == "closed", "open")
        assert not lab.status()["safety"]
        assert_stays(lambda: lab.closes() == 0, 1.2, what="no close onto the present level")
        controller.safety(False)
        wait_for(lambda: lab.controller.position == "closed", what="closed once clear")
        assert controller.closes_onto_the_loop() == []
        assert events_of(lab.gw, "barrier_open_without_grant")
    finally:
        lab.stop()
        controller.stop()
