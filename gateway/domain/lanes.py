"""The lane state machine: loops, credentials and the barrier, as a pure function.

``step(config, state, event, now) -> (state, commands)``. No I/O and no clock: the engine
feeds device levels, decisions and command outcomes in, executes the commands that come
out, and ticks the machine so that its timers run.

The barrier is driven level-triggered, like a PLC scan or a Kubernetes controller: after
every event the machine derives the position it *wants* (:func:`wanted`) from the grant,
the passage, the mode and the safety loop, compares it with the position the barrier
*reports*, and while they differ it commands again (with bounded backoff). A command is
never taken for a fact; a command that failed is simply what the next pass re-sends, and
a missed report is healed by the next re-report of the level. The rules this keeps
provable here:

* **Safety.** A close is only ever commanded while the safety loop is known, answering and
  clear (:func:`close_permitted`; an unknown or faulted loop counts as occupied), and the
  barrier reopens when the safety loop becomes occupied while the arm is up or moving.
* **Grant.** The barrier opens only for a grant (an allowed decision for the credential of
  the vehicle on the presence loop, or an operator's open), the locked-open mode, or to
  keep it off something on the safety loop. A grant belongs to one vehicle: it is
  cancelled when that vehicle backs out, and never carries over to the next one.
* **Passage.** A passage is a vehicle on the safety loop while the arm was up. With a
  grant it completes the grant; without one it is an :class:`UnauthorisedPassage`.
* **Honesty.** A barrier found open that nothing wanted open is an alarm
  (:class:`BarrierOpenWithoutGrant`) and is closed as soon as the safety loop is clear.
* **Start-up.** Nothing is commanded and no credential is decided until the barrier and
  the presence loop have reported once (:func:`ready`); the safety loop counts as
  occupied until it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

LaneKind = Literal["entry", "exit"]
Mode = Literal["normal", "locked_open", "locked_closed", "free_exit"]
Position = Literal["unknown", "closed", "opening", "open", "closing"]
Reported = Literal["unknown", "open", "closed", "moving"]
Target = Literal["open", "closed"]
Phase = Literal["idle", "deciding", "granted", "passing"]
MODES: tuple[Mode, ...] = ("normal", "locked_open", "locked_closed", "free_exit")
# What must have reported before the lane acts. Not the safety loop: until it has spoken
# it counts as occupied (nothing closes), and a line-based detector may say nothing until
# a vehicle crosses it.
DEVICES = ("barrier", "presence_loop")


@dataclass(frozen=True, kw_only=True)
class LaneTimings:
    barrier_timeout: timedelta = timedelta(seconds=6)  # wanted != reported that long -> fault
    backout_close: timedelta = timedelta(seconds=10)  # granted vehicle gone before passing
    presence_stuck: timedelta = timedelta(
        minutes=10
    )  # presence loop occupied that long -> loop fault
    decision_timeout: timedelta = timedelta(seconds=5)  # no answer from the services
    # A command the barrier did not follow is re-sent after retry_first, doubling up to
    # retry_max; a barrier that comes back (or whose controller clears its fault) is
    # commanded at once.
    retry_first: timedelta = timedelta(seconds=1)
    retry_max: timedelta = timedelta(seconds=5)
    # A grant the barrier could not act on (it was unreachable) is decided afresh when it is
    # older than this: the payment behind it may be outside its exit window by now.
    grant_max_age: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, kw_only=True)
class LaneConfig:
    lane_id: str
    kind: LaneKind
    timings: LaneTimings = field(default_factory=LaneTimings)


@dataclass(frozen=True, kw_only=True)
class Credential:
    kind: Literal["plate", "ticket"]
    value: str
    confidence: float | None = None
    read_id: int | None = None  # the plate read behind it, when a camera saw it


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The services' answer for a credential. ``reason`` is what a lane display shows."""

    allowed: bool
    reason: (
        str  # paid, free, member, entry, operator, free_exit, locked_open | unpaid, unknown, ...
    )
    credential: Credential | None = None
    session_id: int | None = None
    ticket_number: str | None = None
    amount_due: float | None = None
    message: str = ""


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PresenceChanged:
    """The presence loop's level (a re-report of the same level changes nothing)."""

    present: bool


@dataclass(frozen=True)
class SafetyChanged:
    occupied: bool


@dataclass(frozen=True)
class CredentialPresented:
    credential: Credential


@dataclass(frozen=True)
class DecisionMade:
    decision: Decision


@dataclass(frozen=True)
class BarrierReported:
    """What the barrier says: its limit switches, or its driver's belief where it has none."""

    position: Reported


@dataclass(frozen=True)
class DeviceFault:
    device: str  # barrier, presence_loop, safety_loop, camera, barrier_controller
    message: str


@dataclass(frozen=True)
class DeviceRecovered:
    device: str


@dataclass(frozen=True)
class CommandFailed:
    """A barrier command was not written: the device did not take it, or (``interlock``)
    the safety loop's present level forbade the close at the moment of writing."""

    target: Target
    message: str
    interlock: bool = False


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class OperatorOpen:
    reason: str
    actor: str | None = None


@dataclass(frozen=True)
class ModeChanged:
    mode: Mode


LaneEvent = (
    PresenceChanged
    | SafetyChanged
    | CredentialPresented
    | DecisionMade
    | BarrierReported
    | DeviceFault
    | DeviceRecovered
    | CommandFailed
    | Tick
    | OperatorOpen
    | ModeChanged
)


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBarrier:
    why: str
    attempt: int = 1  # 2, 3, ...: a retry (the barrier did not follow the previous one)


@dataclass(frozen=True)
class CloseBarrier:
    why: str
    attempt: int = 1


@dataclass(frozen=True)
class ShowMessage:
    text: str


@dataclass(frozen=True)
class RequestDecision:
    credential: Credential
    mode: Mode


@dataclass(frozen=True)
class CompletePassage:
    """A granted vehicle went through: complete the exit (or confirm the entry)."""

    decision: Decision


@dataclass(frozen=True)
class CancelGrant:
    """A grant that was not used (the vehicle backed out, or the answer came too late)."""

    decision: Decision
    why: str


@dataclass(frozen=True)
class FaultRaised:
    device: str
    message: str


@dataclass(frozen=True)
class FaultCleared:
    device: str


@dataclass(frozen=True)
class BarrierOpenWithoutGrant:
    """An alarm: the barrier is open and nothing the lane did explains it (found open at
    start-up, opened by its controller after a fault, lifted by hand)."""

    why: str


@dataclass(frozen=True)
class UnauthorisedPassage:
    """A vehicle went through without a grant (tailgating, a barrier stuck open). The
    credential is the one its vehicle presented, when one was read; nothing is completed."""

    credential: Credential | None
    decision: Decision | None  # the refusal it had, if any


LaneCommand = (
    OpenBarrier
    | CloseBarrier
    | ShowMessage
    | RequestDecision
    | CompletePassage
    | CancelGrant
    | FaultRaised
    | FaultCleared
    | BarrierOpenWithoutGrant
    | UnauthorisedPassage
)


# -- state ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LaneState:
    mode: Mode = "normal"
    presence: bool = False  # the latest level of each loop (see ``known``)
    safety: bool = False
    barrier: Reported = "unknown"  # the latest position the barrier reported
    known: frozenset[str] = frozenset()  # devices that have reported a level since start
    vehicle: int = 0  # one more each time the presence loop goes from clear to occupied
    phase: Phase = "idle"
    pending: Credential | None = None  # the credential being decided
    deciding_since: datetime | None = None
    waiting: Credential | None = None  # a credential that can be decided only later
    waiting_vehicle: int = 0
    waiting_since: datetime | None = None
    seen: Credential | None = None  # the last credential of the current vehicle
    seen_vehicle: int = 0
    grant: Decision | None = None
    granted_at: datetime | None = None
    grant_vehicle: int | None = None  # None: an operator's open waiting for its vehicle
    grant_opened: bool = False  # the barrier has been seen open for this grant
    presence_since: datetime | None = None
    presence_lost_at: datetime | None = None
    crossing: bool = False  # something is on the safety loop while the arm is up
    faults: frozenset[str] = frozenset()
    last_decision: Decision | None = None
    # reconciliation of the barrier
    target: Target | None = None  # the wanted position when it was last derived
    command: Target | None = None  # the last command issued
    command_at: datetime | None = None
    attempts: int = 0  # commands issued towards the current target
    retry_at: datetime | None = None  # no new command before this
    disagree_since: datetime | None = None
    unexplained_open: bool = False  # the barrier opened without our command
    alarmed_open: bool = False  # ... and the alarm for it was raised

    @property
    def fault(self) -> bool:
        return bool(self.faults)

    @property
    def position(self) -> Position:
        """What the lane shows: the barrier's report, never a command taken for a fact."""
        if "barrier" in self.faults:
            return "unknown"
        if self.barrier == "moving":
            if self.command == "open":
                return "opening"
            return "closing" if self.command == "closed" else "unknown"
        return self.barrier


Result = tuple[LaneState, list[LaneCommand]]


def ready(state: LaneState) -> bool:
    """The barrier and the presence loop have reported: the lane knows where it stands."""
    return all(device in state.known for device in DEVICES)


def safety_clear(state: LaneState) -> bool:
    """Unknown or faulted counts as occupied."""
    return "safety_loop" in state.known and not state.safety and "safety_loop" not in state.faults


def barrier_reachable(state: LaneState) -> bool:
    return "barrier" in state.known and "barrier" not in state.faults


def wanted(state: LaneState) -> Target | None:
    """The position the barrier should be in; None until the lane knows where it stands."""
    if not ready(state):
        return None
    if state.mode == "locked_open" or state.grant is not None:
        return "open"
    if not safety_clear(state) and state.barrier in ("open", "moving"):
        return "open"  # something may be under the arm: hold it up, or reopen it
    return "closed"


def close_permitted(state: LaneState) -> bool:
    """The interlock: the only place that allows a close."""
    return safety_clear(state) and state.mode != "locked_open" and wanted(state) == "closed"


def _why(state: LaneState, target: Target) -> str:
    if target == "closed":
        return "no_grant"
    if state.mode == "locked_open":
        return "locked_open"
    if state.grant is not None:
        return state.grant.reason
    return "safety"


def _agrees(reported: Reported, target: Target) -> bool:
    return reported == target


def _end_grant(state: LaneState) -> LaneState:
    return replace(
        state,
        phase="idle",
        grant=None,
        granted_at=None,
        grant_vehicle=None,
        grant_opened=False,
        presence_lost_at=None,
    )


def _grant(state: LaneState, decision: Decision, now: datetime, vehicle: int | None) -> LaneState:
    return replace(
        state,
        phase="granted",
        grant=decision,
        granted_at=now,
        grant_vehicle=vehicle,
        grant_opened=state.barrier == "open",
        presence_lost_at=None if state.presence else now,
    )


def step(cfg: LaneConfig, state: LaneState, event: LaneEvent, now: datetime) -> Result:
    """Apply one event at ``now``, then reconcile the barrier; returns the new state and
    the commands to execute."""
    state, commands = _apply(cfg, state, event, now)
    state, more = _take_waiting(cfg, state, now)
    commands.extend(more)
    state, more = _reconcile(cfg, state, now)
    commands.extend(more)
    return state, commands


def _apply(cfg: LaneConfig, state: LaneState, event: LaneEvent, now: datetime) -> Result:
    match event:
        case PresenceChanged(present):
            return _presence(cfg, state, present, now)
        case SafetyChanged(occupied):
            return _safety(cfg, state, occupied, now)
        case CredentialPresented(credential):
            return _credential(cfg, state, credential, now)
        case DecisionMade(decision):
            return _decision(cfg, state, decision, now)
        case BarrierReported(position):
            return _barrier(cfg, state, position, now)
        case DeviceFault(device, message):
            if device in state.faults:
                return state, []
            return replace(state, faults=state.faults | {device}), [FaultRaised(device, message)]
        case DeviceRecovered(device):
            if device not in state.faults:
                return state, []
            state = replace(state, faults=state.faults - {device})
            if device in ("barrier", "barrier_controller"):
                state = replace(state, attempts=0, retry_at=None)  # it answers: command now
            return state, [FaultCleared(device)]
        case CommandFailed(target, _message, interlock):
            if target != state.command:
                return state, []
            if interlock:  # not the barrier's failure: try again once the loop is clear
                return replace(state, retry_at=now + cfg.timings.retry_first), []
            return state, []  # the backoff set when it was issued stands
        case Tick():
            return _tick(cfg, state, now)
        case OperatorOpen(reason):
            grant = Decision(
                allowed=True, reason="operator", message=f"opened by operator: {reason}"
            )
            if state.grant is not None:  # a vehicle is already granted: keep its grant
                return state, []
            vehicle = state.vehicle if state.presence else None
            return replace(_grant(state, grant, now, vehicle), last_decision=grant), []
        case ModeChanged(mode):
            if mode == "free_exit" and cfg.kind != "exit":
                raise ValueError("free exit is a mode of exit lanes")
            return replace(state, mode=mode), []
    raise TypeError(f"not a lane event: {event!r}")


def _presence(cfg: LaneConfig, state: LaneState, present: bool, now: datetime) -> Result:
    first = "presence_loop" not in state.known
    if first:
        state = replace(state, known=state.known | {"presence_loop"})
    if present == state.presence:
        return state, []
    commands: list[LaneCommand] = []
    if present:
        vehicle = state.vehicle + 1  # a new vehicle: it is decided on its own credential
        state = replace(
            state, presence=True, vehicle=vehicle, presence_since=now, presence_lost_at=None
        )
        if first and state.waiting is not None:  # read while the lane was starting: its vehicle
            state = replace(state, waiting_vehicle=vehicle)
        grant = state.grant
        if state.phase == "granted" and grant is not None:
            if state.grant_vehicle is None:  # an operator's open: this is its vehicle
                state = replace(state, grant_vehicle=vehicle)
            elif state.grant_vehicle != vehicle:
                commands.append(CancelGrant(grant, "vehicle_left"))
                state = _end_grant(state)
        if state.phase == "idle" and state.mode != "locked_open":
            commands.append(
                ShowMessage(
                    "Welcome" if cfg.kind == "entry" else "Reading your plate / insert ticket"
                )
            )
        return state, commands
    state = replace(state, presence=False, presence_since=None)
    if "presence_stuck" in state.faults:
        state = replace(state, faults=state.faults - {"presence_stuck"})
        commands.append(FaultCleared("presence_stuck"))
    if state.phase == "granted":
        state = replace(state, presence_lost_at=now)  # backing out? the tick decides
    elif state.phase == "deciding":
        state = replace(state, phase="idle", pending=None, deciding_since=None)
    if state.waiting is not None and state.waiting_vehicle == state.vehicle:
        state = replace(state, waiting=None, waiting_since=None)  # its vehicle left
    return state, commands


def _safety(cfg: LaneConfig, state: LaneState, occupied: bool, now: datetime) -> Result:
    if "safety_loop" not in state.known:
        state = replace(state, known=state.known | {"safety_loop"})
    if occupied == state.safety:
        return state, []
    if occupied:
        crossing = state.barrier in ("open", "moving")
        if state.phase == "granted":
            return replace(
                state, safety=True, crossing=crossing, phase="passing", presence_lost_at=None
            ), []
        return replace(state, safety=True, crossing=crossing), []
    crossed = state.crossing
    state = replace(state, safety=False, crossing=False)
    if state.phase == "passing":
        assert state.grant is not None
        if not crossed:  # it never went under a raised arm: nothing passed
            lost = None if state.presence else now
            return replace(state, phase="granted", presence_lost_at=lost), []
        done = state.grant  # its credential is used up: a follower is not that vehicle
        return replace(_end_grant(state), seen=None), [CompletePassage(done)]
    if crossed and state.mode != "locked_open":  # locked open: free flow, nothing to report
        credential = state.seen if state.seen_vehicle == state.vehicle else None
        refusal = state.last_decision
        if refusal is not None and (refusal.allowed or refusal.credential != credential):
            refusal = None
        return state, [UnauthorisedPassage(credential, refusal)]
    return state, []


def _credential(cfg: LaneConfig, state: LaneState, credential: Credential, now: datetime) -> Result:
    state = replace(state, seen=credential, seen_vehicle=state.vehicle)
    if state.mode == "locked_closed" and state.phase == "idle":
        refused = Decision(
            allowed=False, reason="lane_closed", credential=credential, message="Lane closed"
        )
        return replace(state, last_decision=refused), [ShowMessage(refused.message)]
    if state.phase in ("granted", "passing") and state.grant_vehicle in (None, state.vehicle):
        assert state.grant is not None
        if state.grant.reason == "operator" and state.pending is None:
            # The operator opened for this vehicle; its own credential still decides what is
            # recorded (a paid exit is completed, not waved through).
            pending = replace(state, pending=credential, deciding_since=now)
            return pending, [RequestDecision(credential, state.mode)]
        return state, []  # its grant is already given
    if state.phase != "idle" or not ready(state):
        # A grant or a decision for another vehicle is in progress, or the lane is starting:
        # decide this one as soon as the lane is free (the newest credential wins).
        return replace(
            state, waiting=credential, waiting_vehicle=state.vehicle, waiting_since=now
        ), []
    state = replace(state, phase="deciding", pending=credential, deciding_since=now)
    return state, [RequestDecision(credential, state.mode), ShowMessage("Please wait")]


def _take_waiting(cfg: LaneConfig, state: LaneState, now: datetime) -> Result:
    if state.waiting is None or state.phase != "idle" or not ready(state):
        return state, []
    credential = state.waiting
    if state.waiting_vehicle != state.vehicle or not state.presence:
        return replace(state, waiting=None, waiting_since=None), []
    state = replace(state, waiting=None, waiting_since=None)
    return _credential(cfg, state, credential, now)


def _decision(cfg: LaneConfig, state: LaneState, decision: Decision, now: datetime) -> Result:
    if state.pending is None or decision.credential != state.pending:
        # An answer nobody waits for any more: undo what it granted.
        return state, [CancelGrant(decision, "late")] if decision.allowed else []
    if state.phase in ("granted", "passing"):  # the vehicle of an operator's open
        assert state.grant is not None
        state = replace(state, pending=None, deciding_since=None, last_decision=decision)
        if not decision.allowed:
            return state, [ShowMessage(decision.message or decision.reason)]
        return replace(state, grant=decision), [ShowMessage(decision.message or "Have a nice day")]
    state = replace(state, phase="idle", pending=None, deciding_since=None, last_decision=decision)
    if not decision.allowed:
        return state, [ShowMessage(decision.message or decision.reason)]
    if not state.presence:
        return state, [CancelGrant(decision, "vehicle_left")]
    state = _grant(state, decision, now, state.vehicle)
    return state, [ShowMessage(decision.message or "Have a nice day")]


def _barrier(cfg: LaneConfig, state: LaneState, position: Reported, now: datetime) -> Result:
    previous = state.barrier if "barrier" in state.known else None
    state = replace(state, barrier=position, known=state.known | {"barrier"})
    if state.safety and position in ("open", "moving"):
        state = replace(state, crossing=True)
    if position == "open":
        if state.grant is not None:
            state = replace(state, grant_opened=True)
        if previous != "open" and state.command != "open":
            state = replace(state, unexplained_open=True)
    else:
        state = replace(state, unexplained_open=False, alarmed_open=False)
    return state, []


def _tick(cfg: LaneConfig, state: LaneState, now: datetime) -> Result:
    commands: list[LaneCommand] = []
    t = cfg.timings
    if (
        state.pending is not None
        and state.deciding_since is not None
        and now - state.deciding_since >= t.decision_timeout
    ):
        failed = Decision(
            allowed=False,
            reason="unavailable",
            credential=state.pending,
            message="Please wait for assistance",
        )
        state = replace(state, pending=None, deciding_since=None, last_decision=failed)
        if state.phase == "deciding":
            state = replace(state, phase="idle")
        commands.append(ShowMessage(failed.message))
    if (
        state.waiting is not None
        and not ready(state)
        and state.waiting_since is not None
        and now - state.waiting_since >= t.decision_timeout
    ):
        failed = Decision(
            allowed=False,
            reason="unavailable",
            credential=state.waiting,
            message="Please wait for assistance",
        )
        state = replace(state, waiting=None, waiting_since=None, last_decision=failed)
        commands.append(ShowMessage(failed.message))
    if state.phase == "granted" and not state.presence and not state.safety:
        since = state.presence_lost_at or state.granted_at
        if since is not None and now - since >= t.backout_close:
            assert state.grant is not None
            commands.append(CancelGrant(state.grant, "backed_out"))
            state = _end_grant(state)
    if (
        state.phase == "granted"
        and cfg.kind == "exit"
        and not state.grant_opened
        and state.grant is not None
        and state.grant.credential is not None
        and state.granted_at is not None
        and now - state.granted_at >= t.grant_max_age
    ):
        # Never acted on (the barrier was unreachable) and older than the exit window: the
        # payment behind it may have run out; the services decide again.
        stale = state.grant
        assert stale.credential is not None
        commands.append(CancelGrant(stale, "stale"))
        state = replace(
            _end_grant(state), phase="deciding", pending=stale.credential, deciding_since=now
        )
        commands.append(RequestDecision(stale.credential, state.mode))
    if (
        state.presence
        and state.presence_since is not None
        and now - state.presence_since >= t.presence_stuck
        and "presence_stuck" not in state.faults
    ):
        state = replace(state, faults=state.faults | {"presence_stuck"})
        commands.append(FaultRaised("presence_stuck", "presence loop occupied for too long"))
    return state, commands


def _reconcile(cfg: LaneConfig, state: LaneState, now: datetime) -> Result:
    """Compare the wanted with the reported position, and command while they differ."""
    t = cfg.timings
    commands: list[LaneCommand] = []
    target = wanted(state)
    if target != state.target:
        state = replace(state, target=target, attempts=0, retry_at=None, disagree_since=None)
    explained = state.grant is not None or state.mode == "locked_open"
    if explained and state.unexplained_open:
        state = replace(state, unexplained_open=False)
    elif state.unexplained_open and not state.alarmed_open and ready(state):
        state = replace(state, alarmed_open=True)
        commands.append(BarrierOpenWithoutGrant("open without a grant"))
    if target is None:
        return state, commands
    if _agrees(state.barrier, target):
        if state.attempts or state.retry_at is not None or state.disagree_since is not None:
            state = replace(state, attempts=0, retry_at=None, disagree_since=None)
        if "barrier_timeout" in state.faults:
            state = replace(state, faults=state.faults - {"barrier_timeout"})
            commands.append(FaultCleared("barrier_timeout"))
        return state, commands
    if target == "closed" and not close_permitted(state):
        # The interlock holds it (something on the safety loop): not the barrier's fault.
        if state.disagree_since is not None:
            state = replace(state, disagree_since=None)
        return state, commands
    if state.disagree_since is None:
        state = replace(state, disagree_since=now)
    elif now - state.disagree_since >= t.barrier_timeout and "barrier_timeout" not in state.faults:
        state = replace(state, faults=state.faults | {"barrier_timeout"})
        commands.append(
            FaultRaised(
                "barrier_timeout",
                f"barrier not {target} within {t.barrier_timeout.total_seconds():g} s",
            )
        )
    if not barrier_reachable(state):
        return state, commands  # nothing can be written; its recovery commands at once
    travelling = (
        state.barrier == "moving"
        and state.command == target
        and state.command_at is not None
        and now - state.command_at < t.barrier_timeout
    )
    if travelling or (state.retry_at is not None and now < state.retry_at):
        return state, commands
    attempts = state.attempts + 1
    delay = min(t.retry_max, t.retry_first * 2 ** min(attempts - 1, 16))
    state = replace(state, command=target, command_at=now, attempts=attempts, retry_at=now + delay)
    why = _why(state, target)
    commands.append(OpenBarrier(why, attempts) if target == "open" else CloseBarrier(why, attempts))
    return state, commands
