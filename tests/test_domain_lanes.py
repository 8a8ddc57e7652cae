"""The lane state machine: the flows as tables, the safety rules under random events and
device faults (a stateful test against a model of the physical lane)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gateway.domain.lanes import (
    BarrierOpenWithoutGrant,
    BarrierReported,
    CancelGrant,
    CloseBarrier,
    CommandFailed,
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
    UnauthorisedPassage,
    barrier_reachable,
    ready,
    safety_clear,
    step,
    wanted,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
EXIT = LaneConfig(lane_id="exit-1", kind="exit")
ENTRY = LaneConfig(lane_id="entry-1", kind="entry")
PLATE = Credential(kind="plate", value="ABC123")
OTHER = Credential(kind="plate", value="XYZ987")


def started(cfg=EXIT, position="closed", presence=False, safety=False):
    """A lane whose devices have all reported once (what the start-up pass does)."""
    state, commands = run(
        cfg,
        [
            (0, BarrierReported(position)),
            (0, PresenceChanged(presence)),
            (0, SafetyChanged(safety)),
        ],
        state=LaneState(),
    )
    return state, commands


def run(cfg, events, state=None, start=T0):
    """Feed (seconds, event) pairs; returns the final state and all commands, in order."""
    if state is None:
        state, _ = started(cfg)
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


def refused(reason="unpaid", credential=PLATE):
    return Decision(allowed=False, reason=reason, credential=credential, message="Please pay first")


ARRIVE_AND_PAY = [
    (0, PresenceChanged(True)),
    (1, CredentialPresented(PLATE)),
    (1.02, DecisionMade(allowed())),
]


def test_paid_exit_opens_passes_and_closes():
    state, commands = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
            (1.2, BarrierReported("moving")),
            (2, BarrierReported("open")),
            (4, SafetyChanged(True)),
            (5, PresenceChanged(False)),
            (6, SafetyChanged(False)),
            (6.2, BarrierReported("moving")),
            (7, BarrierReported("closed")),
            (30, Tick()),
        ],
    )
    assert kinds(commands, RequestDecision) == [RequestDecision(PLATE, "normal")]
    opens, closes = kinds(commands, OpenBarrier), kinds(commands, CloseBarrier)
    assert opens == [OpenBarrier("paid", 1)] and closes == [CloseBarrier("no_grant", 1)]
    assert commands.index(opens[0]) < commands.index(closes[0])
    assert kinds(commands, CompletePassage) == [CompletePassage(allowed())]
    assert state.phase == "idle" and state.position == "closed" and not state.fault


def test_the_open_goes_out_with_the_decision_not_at_the_next_tick():
    state, _ = run(EXIT, ARRIVE_AND_PAY[:2])
    _state, commands = run(EXIT, ARRIVE_AND_PAY[2:], state=state)
    assert OpenBarrier("paid", 1) in commands


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
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (3.5, PresenceChanged(False)),
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
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),  # passed: close
            (5.2, BarrierReported("moving")),
            (5.5, SafetyChanged(True)),  # a second car tailgates under the closing arm
        ],
    )
    assert commands[-1] == OpenBarrier("safety", 1)
    assert state.position == "opening" and wanted(state) == "open"
    # It drives through: no grant, so an unauthorised passage, then the barrier closes.
    state, more = run(
        EXIT,
        [(6, BarrierReported("open")), (7, SafetyChanged(False))],
        state=state,
    )
    assert kinds(more, UnauthorisedPassage) == [UnauthorisedPassage(None, None)]
    assert kinds(more, CloseBarrier) and not kinds(more, CompletePassage)


def test_nosing_onto_the_safety_loop_of_a_closed_barrier_opens_nothing():
    _state, commands = run(
        EXIT,
        [(0, PresenceChanged(True)), (1, SafetyChanged(True)), (2, SafetyChanged(False))],
    )
    assert not kinds(commands, OpenBarrier, UnauthorisedPassage, CompletePassage)


def test_a_granted_car_nosing_onto_the_loop_of_a_closed_barrier_has_not_passed():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (0.5, DeviceFault("barrier", "lost")),  # the open cannot go out
            (1, CredentialPresented(PLATE)),
            (1.02, DecisionMade(allowed())),
            (2, SafetyChanged(True)),
            (3, SafetyChanged(False)),
            (30, Tick()),
        ],
    )
    assert not kinds(commands, CompletePassage, UnauthorisedPassage)
    assert state.phase == "granted" and state.grant == allowed()  # still its grant


def test_backing_out_closes_after_the_timeout_and_records_no_exit():
    state, commands = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
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


def test_a_grant_never_carries_over_to_the_next_vehicle():
    # The paid car backs off the loop and another drives on before the back-out time.
    state, commands = run(
        EXIT,
        [*ARRIVE_AND_PAY, (2, PresenceChanged(False)), (3, PresenceChanged(True))],
    )
    assert kinds(commands, CancelGrant) == [CancelGrant(allowed(), "vehicle_left")]
    assert state.grant is None and wanted(state) == "closed"
    # The new vehicle is decided on its own credential.
    state, more = run(EXIT, [(4, CredentialPresented(OTHER))], state=state)
    assert kinds(more, RequestDecision) == [RequestDecision(OTHER, "normal")]


def test_the_next_vehicle_read_during_a_passage_is_decided_after_it():
    state, commands = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (3.5, PresenceChanged(False)),
            (4, PresenceChanged(True)),  # the next car
            (4.5, CredentialPresented(OTHER)),
        ],
    )
    assert len(kinds(commands, RequestDecision)) == 1
    state, more = run(EXIT, [(6, SafetyChanged(False))], state=state)
    assert kinds(more, CompletePassage) == [CompletePassage(allowed())]
    assert kinds(more, RequestDecision) == [RequestDecision(OTHER, "normal")]


def test_barrier_not_at_its_wanted_position_is_a_fault_that_clears():
    state, commands = run(EXIT, [*ARRIVE_AND_PAY, (4, Tick()), (8, Tick())])
    assert FaultRaised("barrier_timeout", "barrier not open within 6 s") in commands
    assert state.fault and state.position == "closed"  # never shown as open when it is not
    state, more = run(EXIT, [(9, BarrierReported("open"))], state=state)
    assert FaultCleared("barrier_timeout") in more and not state.fault


def test_a_barrier_that_ignores_commands_is_commanded_again_with_backoff():
    state, commands = run(EXIT, [*ARRIVE_AND_PAY, *[(1 + n * 0.25, Tick()) for n in range(1, 60)]])
    opens = kinds(commands, OpenBarrier)
    assert [o.attempt for o in opens] == [1, 2, 3, 4, 5]  # at 1, 2, 4, 8 s then every 5 s
    assert all(o.why == "paid" for o in opens)
    state, more = run(EXIT, [(16, BarrierReported("open")), (30, Tick())], state=state)
    assert not kinds(more, OpenBarrier)


def test_a_failed_open_is_re_sent_the_moment_the_barrier_answers_again():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (0.5, DeviceFault("barrier", "modbus: cannot connect")),
            (1, CredentialPresented(PLATE)),
            (1.02, DecisionMade(allowed())),
            (3, Tick()),
            (200, Tick()),  # minutes without the barrier: the car waits, the grant stays
        ],
    )
    assert not kinds(commands, OpenBarrier) and state.grant is not None
    assert state.position == "unknown"  # the lane does not pretend to know
    state, more = run(
        EXIT, [(201, DeviceRecovered("barrier")), (201, BarrierReported("closed"))], state=state
    )
    assert kinds(more, OpenBarrier) == [OpenBarrier("paid", 1)]


def test_a_command_that_failed_is_what_the_next_pass_sends():
    state, commands = run(EXIT, [*ARRIVE_AND_PAY, (1.5, CommandFailed("open", "timeout"))])
    assert len(kinds(commands, OpenBarrier)) == 1
    state, more = run(EXIT, [(2.1, Tick())], state=state)
    assert kinds(more, OpenBarrier) == [OpenBarrier("paid", 2)]


def test_close_ignored_by_a_faulted_controller_is_sent_again_when_it_clears():
    state, commands = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (3.2, DeviceFault("barrier_controller", "barrier controller reports a fault")),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),
            *[(5 + n * 0.25, Tick()) for n in range(1, 33)],  # 8 s
        ],
    )
    closes = kinds(commands, CloseBarrier)
    assert len(closes) >= 3 and "barrier_timeout" in state.faults
    state, more = run(
        EXIT, [(13.1, DeviceRecovered("barrier_controller")), (13.2, Tick())], state=state
    )
    assert kinds(more, CloseBarrier) == [CloseBarrier("no_grant", 1)]
    # Then an unpaid car arrives: refused, and the barrier is closed in front of it.
    state, more = run(
        EXIT,
        [
            (14, BarrierReported("closed")),
            (15, PresenceChanged(True)),
            (16, CredentialPresented(OTHER)),
            (16.1, DecisionMade(refused(credential=OTHER))),
        ],
        state=state,
    )
    assert not kinds(more, OpenBarrier) and not state.fault


def test_the_interlock_holds_a_close_and_tries_again():
    state, commands = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),
            # The driver read the loop at the moment of writing: occupied after all.
            (5.01, CommandFailed("closed", "safety loop occupied", interlock=True)),
            (5.5, Tick()),
        ],
    )
    assert len(kinds(commands, CloseBarrier)) == 1
    state, more = run(EXIT, [(6.1, Tick())], state=state)
    assert kinds(more, CloseBarrier) == [CloseBarrier("no_grant", 2)]


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([(1, SafetyChanged(True))], "occupied"),
        ([(1, DeviceFault("safety_loop", "lost"))], "faulted"),
    ],
)
def test_an_occupied_or_faulted_safety_loop_holds_the_barrier_open(events, why):
    state, _ = started(EXIT, position="open")
    state, commands = run(EXIT, [(0, PresenceChanged(False)), *events, (30, Tick())], state=state)
    assert not kinds(commands, CloseBarrier), why
    assert wanted(state) == "open"


def test_an_unknown_safety_loop_allows_no_close_at_start_up():
    state, commands = run(
        EXIT, [(0, BarrierReported("open")), (0, PresenceChanged(False))], state=LaneState()
    )
    assert ready(state) and not safety_clear(state)
    assert not kinds(commands, CloseBarrier)
    state, more = run(EXIT, [(1, SafetyChanged(False))], state=state)
    assert kinds(more, CloseBarrier)


@pytest.mark.parametrize("safety", [True, False])
def test_a_barrier_of_unknown_position_is_closed_only_onto_a_clear_loop(safety):
    _state, commands = started(EXIT, position="unknown", safety=safety)
    assert bool(kinds(commands, CloseBarrier)) is not safety
    assert not kinds(commands, OpenBarrier)


def test_nothing_moves_and_nothing_is_decided_before_the_lane_knows_where_it_stands():
    state, commands = run(
        EXIT,
        [(0, BarrierReported("open")), (0.1, CredentialPresented(PLATE)), (1, Tick())],
        state=LaneState(),
    )
    assert commands == [] and not ready(state)
    state, more = run(EXIT, [(1.2, PresenceChanged(True))], state=state)
    # The read that came before the loop is decided now, for the vehicle on the loop.
    assert kinds(more, RequestDecision) == [RequestDecision(PLATE, "normal")]


def test_a_credential_read_while_the_lane_cannot_start_is_refused_in_time():
    state, _commands = run(
        EXIT,
        [(0, BarrierReported("closed")), (0.1, CredentialPresented(PLATE)), (6, Tick())],
        state=LaneState(),
    )
    assert state.last_decision is not None and state.last_decision.reason == "unavailable"


@pytest.mark.parametrize("safety", [False, True])
def test_found_open_at_start_up_is_an_alarm_and_is_closed_once_clear(safety):
    state, commands = started(EXIT, position="open", safety=safety)
    assert kinds(commands, BarrierOpenWithoutGrant) == [
        BarrierOpenWithoutGrant("open without a grant")
    ]
    assert bool(kinds(commands, CloseBarrier)) is not safety
    if safety:  # wait for the loop, then close (the vehicle under it left without a grant)
        state, more = run(EXIT, [(3, SafetyChanged(False))], state=state)
        assert kinds(more, UnauthorisedPassage) and kinds(more, CloseBarrier)


def test_a_barrier_lifted_by_hand_is_an_alarm_once_and_closed():
    _state, commands = run(
        EXIT, [(1, BarrierReported("moving")), (2, BarrierReported("open")), (3, Tick())]
    )
    assert len(kinds(commands, BarrierOpenWithoutGrant)) == 1
    assert kinds(commands, CloseBarrier)
    # Our own open never raises it, and nor does the open arm after a passage.
    _state, flow = run(
        EXIT,
        [
            *ARRIVE_AND_PAY,
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),
            (6, Tick()),
        ],
    )
    assert not kinds(flow, BarrierOpenWithoutGrant)


def test_a_refused_car_through_a_stuck_barrier_is_an_unauthorised_passage():
    _state, commands = run(
        EXIT,
        [
            (0, BarrierReported("open")),  # stuck open (its controller ignores the close)
            (1, PresenceChanged(True)),
            (2, CredentialPresented(PLATE)),
            (2.1, DecisionMade(refused())),
            (3, SafetyChanged(True)),
            (3.5, PresenceChanged(False)),
            (4, SafetyChanged(False)),
        ],
    )
    assert kinds(commands, UnauthorisedPassage) == [UnauthorisedPassage(PLATE, refused())]
    assert not kinds(commands, CompletePassage)


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
    assert not kinds(commands, CloseBarrier, UnauthorisedPassage, BarrierOpenWithoutGrant)


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
        state=started(ENTRY)[0],
    )
    assert kinds(commands, CancelGrant) == [CancelGrant(allowed("entry"), "late")]
    assert not kinds(commands, OpenBarrier)


def test_decision_timeout_refuses_with_assistance_message():
    state, commands = run(
        EXIT, [(0, PresenceChanged(True)), (1, CredentialPresented(PLATE)), (7, Tick())]
    )
    assert state.phase == "idle" and state.last_decision.reason == "unavailable"
    assert ShowMessage("Please wait for assistance") in commands


def test_a_grant_never_acted_on_is_decided_afresh_after_the_exit_window():
    state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (0.5, DeviceFault("barrier", "lost")),
            (1, CredentialPresented(PLATE)),
            (1.02, DecisionMade(allowed())),
            (2 + 15 * 60, Tick()),
        ],
    )
    assert kinds(commands, CancelGrant) == [CancelGrant(allowed(), "stale")]
    assert kinds(commands, RequestDecision)[-1] == RequestDecision(PLATE, "normal")
    assert state.phase == "deciding" and state.grant is None


def test_operator_open_is_a_grant():
    state, commands = run(EXIT, [(0, OperatorOpen("ambulance", "op@example.com"))])
    assert kinds(commands, OpenBarrier) == [OpenBarrier("operator", 1)]
    assert state.grant.reason == "operator"
    # nobody came: the barrier closes again after the back-out time
    state, more = run(EXIT, [(1, BarrierReported("open")), (11, Tick())], state=state)
    assert kinds(more, CloseBarrier)


def test_the_vehicle_of_an_operator_open_is_still_decided_on_its_credential():
    _state, commands = run(
        EXIT,
        [
            (0, PresenceChanged(True)),
            (1, OperatorOpen("intercom", "op@example.com")),
            (1.5, CredentialPresented(PLATE)),
            (1.6, DecisionMade(allowed())),
            (2, BarrierReported("open")),
            (3, SafetyChanged(True)),
            (4, PresenceChanged(False)),
            (5, SafetyChanged(False)),
        ],
    )
    assert kinds(commands, RequestDecision) == [RequestDecision(PLATE, "normal")]
    assert kinds(commands, CompletePassage) == [CompletePassage(allowed())]  # the exit completes


def test_device_faults_are_reported_once():
    _state, commands = run(
        EXIT,
        [
            (0, DeviceFault("presence_loop", "timeout")),
            (1, DeviceFault("presence_loop", "timeout")),
            (2, DeviceRecovered("presence_loop")),
            (3, DeviceRecovered("presence_loop")),
        ],
    )
    assert commands == [FaultRaised("presence_loop", "timeout"), FaultCleared("presence_loop")]


# -- the lane against a model of the physical world, with faults ------------------------

TRAVEL = timedelta(seconds=1)


class LaneInTheWorld(RuleBasedStateMachine):
    """Vehicles, loops and a barrier that travels, and a lane that hears about them through
    links that drop, reports that are lost or late, and commands that fail. Commands are
    executed the way the engine executes them: a close is written only after reading the
    safety loop's present level (``gateway.lanes.engine.Lane.close_refusal``)."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = EXIT
        self.state = LaneState()
        self.now = T0
        self.presence = self.safety = False  # the world's true levels
        self.barrier = "closed"
        self.moving_to: str | None = None
        self.arrive_at = T0
        self.links = {"barrier": True, "presence_loop": True, "safety_loop": True}
        self.ignores = False  # the controller's fault input: takes commands, does nothing
        self.fail_next = False
        self.delivery = "now"  # of the next report: now, lost, late
        self.late: list[object] = []
        self.believed = False
        self.queue: list[object] = []
        self.grants = 0
        self.passages = 0
        self.closes_written = 0

    @initialize(
        kind=st.sampled_from(["entry", "exit"]),
        position=st.sampled_from(["closed", "open"]),
        presence=st.booleans(),
        safety=st.booleans(),
        believed=st.booleans(),
    )
    def setup(self, kind, position, presence, safety, believed):
        self.cfg = LaneConfig(lane_id="l", kind=kind)
        self.barrier, self.presence, self.safety = position, presence, safety
        self.believed = believed
        if believed:  # a barrier without limit switches: its driver cannot tell at first
            self.apply(BarrierReported("unknown"))
            self.report("presence_loop", presence)
            self.report("safety_loop", safety)
        else:
            self.rereport()

    # -- plumbing ---------------------------------------------------------------------
    def apply(self, event) -> None:
        self.queue.append(event)
        if len(self.queue) > 1:
            return  # applied by the outer call, in order
        while self.queue:
            self._step(self.queue[0])
            self.queue.pop(0)

    def _step(self, event) -> None:
        before = self.state
        self.state, commands = step(self.cfg, before, event, self.now)
        for command in commands:
            if isinstance(command, CloseBarrier):
                assert safety_clear(self.state), "close commanded on an unclear safety loop"
                assert self.state.mode != "locked_open"
            if isinstance(command, OpenBarrier):
                legitimate = (
                    self.state.grant is not None
                    or self.state.mode == "locked_open"
                    or (command.why == "safety" and not safety_clear(self.state))
                )
                assert legitimate, f"opened without a grant: {event} {before} -> {self.state}"
            if isinstance(command, CompletePassage):
                assert before.grant is not None and before.phase == "passing"
                self.passages += 1
            self.execute(command)
        if self.state.grant is not None and self.state.grant is not before.grant:
            self.grants += 1
        s = self.state
        if isinstance(event, Tick) and s.phase == "granted" and not s.presence and not s.safety:
            since = s.presence_lost_at or s.granted_at
            assert since is not None and self.now - since < self.cfg.timings.backout_close, (
                "a grant outlived its vehicle"
            )

    def report(self, device: str, value) -> None:
        if not self.links[device]:
            return
        delivery, self.delivery = self.delivery, "now"
        event = (
            BarrierReported(value)
            if device == "barrier"
            else PresenceChanged(value)
            if device == "presence_loop"
            else SafetyChanged(value)
        )
        if delivery == "late":
            self.late.append(event)
        elif delivery == "now":
            self.apply(event)

    def execute(self, command) -> None:
        if not isinstance(command, OpenBarrier | CloseBarrier):
            return
        target = "open" if isinstance(command, OpenBarrier) else "closed"
        if target == "closed":
            level = self.safety if self.links["safety_loop"] else None
            if level is not False:
                self.apply(CommandFailed("closed", "safety loop", interlock=True))
                return
        if self.fail_next or not self.links["barrier"]:
            self.fail_next = False
            self.apply(CommandFailed(target, "timeout"))
            return
        if target == "closed":
            assert not self.safety, "a close written onto an occupied safety loop"
            self.closes_written += 1
        self.believed = False  # the driver knows what it commanded
        if not self.ignores and self.barrier != target:
            self.barrier, self.moving_to = "moving", target
            self.arrive_at = self.now + TRAVEL
            self.report("barrier", "moving")

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        if self.moving_to is not None and self.now >= self.arrive_at:
            self.barrier, self.moving_to = self.moving_to, None
            self.report("barrier", self.barrier)
        self.apply(Tick())

    # -- the world --------------------------------------------------------------------
    @rule(present=st.booleans())
    def presence_loop(self, present):
        self.presence = present
        self.report("presence_loop", present)

    @rule(occupied=st.booleans())
    def safety_loop(self, occupied):
        self.safety = occupied
        self.report("safety_loop", occupied)

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

    @rule(seconds=st.floats(min_value=0.1, max_value=700))
    def tick(self, seconds):
        self.advance(seconds)

    @rule()
    def operator(self):
        if barrier_reachable(self.state):  # the API refuses it otherwise
            self.apply(OperatorOpen("test"))

    @rule(mode=st.sampled_from(["normal", "locked_open", "locked_closed", "free_exit"]))
    def mode(self, mode):
        if mode == "free_exit" and self.cfg.kind != "exit":
            return
        self.apply(ModeChanged(mode))

    @rule()
    def by_hand(self):
        self.barrier, self.moving_to = "open", None
        self.report("barrier", "open")

    # -- the faults -------------------------------------------------------------------
    @rule(device=st.sampled_from(["barrier", "presence_loop", "safety_loop"]), up=st.booleans())
    def link(self, device, up):
        if up == self.links[device]:
            return
        self.links[device] = up
        if not up:
            self.apply(DeviceFault(device, "lost"))
            return
        self.apply(DeviceRecovered(device))
        self.delivery = "now"
        self.report(device, self.level(device))  # drivers re-report on (re)connect

    @rule(fault=st.booleans())
    def controller(self, fault):
        self.ignores = fault
        self.apply(
            DeviceFault("barrier_controller", "fault")
            if fault
            else DeviceRecovered("barrier_controller")
        )

    @rule()
    def command_fails(self):
        self.fail_next = True

    @rule(how=st.sampled_from(["lost", "late"]))
    def next_report(self, how):
        self.delivery = how

    @rule()
    def late_reports_arrive(self):
        late, self.late = self.late, []
        for event in late:
            self.apply(event)

    @rule()
    def rereport(self):
        """Every driver's periodic report of its level."""
        for device in self.links:
            self.delivery = "now"
            self.report(device, self.level(device))

    def level(self, device: str):
        if device == "barrier" and self.believed:
            return "unknown"  # a driver's belief stays unknown until it commands the barrier
        return {"barrier": self.barrier, "presence_loop": self.presence}.get(device, self.safety)

    @rule()
    def settle(self):
        """Healthy devices from now on: the barrier reaches the wanted position in bounded
        time (a few travel times and one retry interval)."""
        for device in self.links:
            self.link(device, True)
        if self.ignores:
            self.controller(False)
        self.fail_next, self.delivery = False, "now"
        self.late_reports_arrive()
        self.rereport()
        for _ in range(24):  # 6 s
            target = wanted(self.state)
            if self.barrier == target and self.state.barrier == target:
                return
            self.advance(0.25)
        target = wanted(self.state)
        if target == "closed" and self.safety:
            return  # held by the interlock (a barrier of unknown position, a vehicle on the loop)
        assert self.barrier == target, (
            f"barrier {self.barrier} not at {target} after 6 s: {self.state}"
        )

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def passages_need_grants(self):
        assert self.passages <= self.grants

    @invariant()
    def phase_matches_grant(self):
        assert (self.state.grant is not None) == (self.state.phase in ("granted", "passing"))

    @invariant()
    def a_grant_belongs_to_its_vehicle(self):
        s = self.state
        if s.grant is not None and s.phase == "granted" and s.grant_vehicle is not None:
            assert s.grant_vehicle == s.vehicle, "a grant carried over to the next vehicle"

    @invariant()
    def never_keeps_closing_onto_what_it_knows_is_there(self):
        s = self.state
        if not safety_clear(s) and s.barrier == "moving" and barrier_reachable(s):
            assert s.command != "closed" or not ready(s), f"closing onto the safety loop: {s}"


LaneInTheWorld.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestLaneInTheWorld = LaneInTheWorld.TestCase
