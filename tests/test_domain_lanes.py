"""The lane state machine: the normal flows as tables, the safety rules under random events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gateway.domain.lanes import (
    BarrierReported,
    CancelGrant,
    CloseBarrier,
    CompletePassage,
    Credential,
    CredentialPresented,
    Decision,
    DecisionMade,
    DeviceFault,
    DeviceRecovered,
    FaultCleared,
    FaultRaised,
    LaneConfig,
    LaneState,
    ModeChanged,
    OpenBarrier,
    OperatorOpen,
    PresenceChanged,
    RequestDecision,
    SafetyChanged,
    ShowMessage,
    Tick,
    step,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
EXIT = LaneConfig(lane_id="exit-1", kind="exit")
ENTRY = LaneConfig(lane_id="entry-1", kind="entry")
PLATE = Credential(kind="plate", value="ABC123")


def run(cfg, events, state=None, start=T0):
    """Feed (seconds, event) pairs; returns the final state and all commands, in order."""
    state = state or LaneState(position="closed")
    commands = []
    for seconds, event in events:
        state, out = step(cfg, state, event, start + timedelta(seconds=seconds))
        commands.extend(out)
    return state, commands


def kinds(commands, *types):
    return [c for c in commands if isinstance(c, types)]


def allowed(reason="paid", credential=PLATE):
    return Decision(
        allowed=True, reason=reason, credential=credential, session_id=7, ticket_number="TKT-1"
    )


def refused(reason="unpaid"):
    return Decision(allowed=False, reason=reason, credential=PLATE, message="Please pay first")


def test_paid_exit_opens_passes_and_closes():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1.02, DecisionMade(allowed())),
            (2, BarrierReported("open")),
            (4, SafetyChanged(True)),
            (5, PresenceChanged(False)),
            (6, SafetyChanged(False)),
            (7, BarrierReported("closed")),
        ],
    )
    assert kinds(commands, RequestDecision) == [RequestDecision(PLATE, "normal")]
    opens, closes = kinds(commands, OpenBarrier), kinds(commands, CloseBarrier)
    assert len(opens) == 1 and len(closes) == 1
    assert commands.index(opens[0]) < commands.index(closes[0])
    assert kinds(commands, CompletePassage) == [CompletePassage(allowed())]
    assert state.phase == "idle" and state.position == "closed"


def test_unpaid_exit_never_opens():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1.1, DecisionMade(refused())),
            (30, Tick()),
        ],
    )
    assert not kinds(commands, OpenBarrier)
    assert ShowMessage("Please pay first") in commands
    assert state.last_decision == refused()


def test_vehicle_under_the_barrier_keeps_it_open():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1, DecisionMade(allowed())),
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (60, Tick()),
            (120, Tick()),
        ],
    )
    assert not kinds(commands, CloseBarrier)
    assert state.phase == "passing"


def test_safety_loop_while_closing_reopens():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1, DecisionMade(allowed())),
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),  # passed: close
            (5.5, SafetyChanged(True)),  # a second car tailgates under the closing arm
        ],
    )
    assert isinstance(commands[-1], OpenBarrier) and commands[-1].why == "safety"
    assert state.position == "opening"


def test_backing_out_closes_after_the_timeout_and_records_no_exit():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1, DecisionMade(allowed())),
            (2, BarrierReported("open")),
            (3, PresenceChanged(False)),
            (12, Tick()),  # 9 s: not yet
        ],
    )
    assert not kinds(commands, CloseBarrier)
    state, more = run(EXIT, [(13.5, Tick())], state=state)
    assert kinds(more, CancelGrant) == [CancelGrant(allowed(), "backed_out")]
    assert kinds(more, CloseBarrier)
    assert not kinds(commands + more, CompletePassage)


def test_barrier_not_confirmed_is_a_lane_fault_that_clears():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1, DecisionMade(allowed())),
            (8, Tick()),
        ],
    )
    assert FaultRaised("barrier_timeout", "barrier not confirmed open within 6 s") in commands
    assert state.fault
    state, more = run(EXIT, [(9, BarrierReported("open"))], state=state)
    assert FaultCleared("barrier_timeout") in more and not state.fault


def test_presence_stuck_is_a_loop_fault():
    state, commands = run(EXIT, [(0, PresenceChanged(True)), (601, Tick())])
    assert [c.device for c in kinds(commands, FaultRaised)] == ["presence_stuck"]
    state, more = run(EXIT, [(602, PresenceChanged(False))], state=state)
    assert FaultCleared("presence_stuck") in more


def test_locked_closed_refuses_and_locked_open_opens():
    state, commands = run(
        EXIT,
        [
            (0, ModeChanged("locked_closed")),
            (1, PresenceChanged(True)),
            (2, CredentialPresented(PLATE)),
        ],
    )
    assert not kinds(commands, OpenBarrier, RequestDecision)
    assert state.last_decision.reason == "lane_closed"
    state, commands = run(EXIT, [(3, ModeChanged("locked_open"))], state=state)
    assert kinds(commands, OpenBarrier)
    state, commands = run(
        EXIT,
        [(4, BarrierReported("open")), (5, SafetyChanged(True)), (6, SafetyChanged(False))],
        state=state,
    )
    assert not kinds(commands, CloseBarrier)


def test_free_exit_is_only_for_exit_lanes():
    with pytest.raises(ValueError):
        step(ENTRY, LaneState(), ModeChanged("free_exit"), T0)
    _state, commands = run(
        EXIT,
        [
            (0, ModeChanged("free_exit")),
            (1, PresenceChanged(True)),
            (2, CredentialPresented(PLATE)),
        ],
        state=LaneState(position="closed"),
    )
    assert kinds(commands, RequestDecision) == [RequestDecision(PLATE, "free_exit")]


def test_late_or_orphan_decisions_are_cancelled():
    # The vehicle left while the services were deciding.
    _state, commands = run(
        ENTRY,
        [
            (0, PresenceChanged(True)),
            (1, CredentialPresented(PLATE)),
            (1.5, PresenceChanged(False)),
            (2, DecisionMade(allowed("entry"))),
        ],
    )
    assert kinds(commands, CancelGrant) == [CancelGrant(allowed("entry"), "late")]
    assert not kinds(commands, OpenBarrier)


def test_decision_timeout_refuses_with_assistance_message():
    state, commands = run(
        EXIT, [(0, PresenceChanged(True)), (1, CredentialPresented(PLATE)), (7, Tick())]
    )
    assert state.phase == "idle" and state.last_decision.reason == "unavailable"
    assert ShowMessage("Please wait for assistance") in commands


def test_operator_open_is_a_grant():
    state, commands = run(EXIT, [(0, OperatorOpen("ambulance", "op@example.com"))])
    assert kinds(commands, OpenBarrier) == [OpenBarrier("operator")]
    assert state.grant.reason == "operator"
    # nobody came: the barrier closes again after the back-out time
    state, more = run(EXIT, [(1, BarrierReported("open")), (11, Tick())], state=state)
    assert kinds(more, CloseBarrier)


def test_device_faults_are_reported_once():
    _state, commands = run(
        EXIT,
        [
            (0, DeviceFault("barrier", "timeout")),
            (1, DeviceFault("barrier", "timeout")),
            (2, DeviceRecovered("barrier")),
            (3, DeviceRecovered("barrier")),
        ],
    )
    assert commands == [FaultRaised("barrier", "timeout"), FaultCleared("barrier")]


class LaneMachine(RuleBasedStateMachine):
    """Random events in random order: the safety and grant rules must hold after each one."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = EXIT
        self.state = LaneState()
        self.now = T0
        self.grants = 0
        self.passages = 0

    @initialize(
        kind=st.sampled_from(["entry", "exit"]),
        position=st.sampled_from(["unknown", "closed", "open"]),
    )
    def setup(self, kind, position):
        self.cfg = LaneConfig(lane_id="l", kind=kind)
        self.state = LaneState(position=position)

    def apply(self, event, seconds: float = 0.5):
        self.now += timedelta(seconds=seconds)
        before = self.state
        granted_before = before.grant is not None
        self.state, commands = step(self.cfg, before, event, self.now)
        for command in commands:
            if isinstance(command, CloseBarrier):
                assert not self.state.safety, "closed on an occupied safety loop"
                assert self.state.mode != "locked_open"
            if isinstance(command, OpenBarrier):
                legitimate = (
                    self.state.grant is not None
                    or self.state.mode == "locked_open"
                    or (command.why == "safety" and self.state.safety)
                )
                assert legitimate, f"opened without a grant: {event} {before} -> {self.state}"
            if isinstance(command, CompletePassage):
                assert granted_before and before.phase == "passing"
                self.passages += 1
        if self.state.grant is not None and not granted_before:
            self.grants += 1
        if isinstance(event, SafetyChanged) and event.occupied and before.position == "closing":
            assert any(isinstance(c, OpenBarrier) for c in commands), (
                "did not reopen on the safety loop"
            )

    @rule(present=st.booleans())
    def presence(self, present):
        self.apply(PresenceChanged(present))

    @rule(occupied=st.booleans())
    def safety(self, occupied):
        self.apply(SafetyChanged(occupied))

    @rule(value=st.sampled_from(["ABC123", "XYZ9"]))
    def credential(self, value):
        self.apply(CredentialPresented(Credential(kind="plate", value=value)))

    @rule(ok=st.booleans(), matching=st.booleans())
    def decision(self, ok, matching):
        credential = (
            self.state.pending
            if matching and self.state.pending
            else Credential(kind="plate", value="OTHER")
        )
        self.apply(
            DecisionMade(
                Decision(allowed=ok, reason="paid" if ok else "unpaid", credential=credential)
            )
        )

    @rule(position=st.sampled_from(["open", "closed"]))
    def barrier(self, position):
        self.apply(BarrierReported(position))

    @rule(seconds=st.floats(min_value=0.1, max_value=700))
    def tick(self, seconds):
        self.apply(Tick(), seconds)

    @rule()
    def operator(self):
        self.apply(OperatorOpen("test"))

    @rule(mode=st.sampled_from(["normal", "locked_open", "locked_closed", "free_exit"]))
    def mode(self, mode):
        if mode == "free_exit" and self.cfg.kind != "exit":
            return
        self.apply(ModeChanged(mode))

    @rule(device=st.sampled_from(["barrier", "presence_loop"]), up=st.booleans())
    def device(self, device, up):
        self.apply(DeviceRecovered(device) if up else DeviceFault(device, "lost"))

    @invariant()
    def never_closing_on_a_vehicle(self):
        assert not (self.state.safety and self.state.position == "closing")

    @invariant()
    def passages_need_grants(self):
        assert self.passages <= self.grants

    @invariant()
    def phase_matches_grant(self):
        assert (self.state.grant is not None) == (self.state.phase in ("granted", "passing"))


LaneMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestLaneMachine = LaneMachine.TestCase
