"""The lane state machine: loops, credentials and the barrier, as a pure function.

``step(config, state, event, now) -> (state, commands)``. No I/O and no clock: the engine
feeds device events and decisions in, executes the commands that come out (move the
barrier, ask the services for a decision, show a message), and ticks the machine so
that its timers run. That keeps the two rules a driver relies on provable here:

* **Safety.** The barrier is never commanded to close while the safety loop is occupied,
  and it reopens when the safety loop becomes occupied while it is closing.
* **Grant.** The barrier opens only for a grant: an allowed decision for the credential
  presented, an operator's open (audited), or the locked-open mode. A passage is recorded
  only when a granted vehicle has gone through (safety loop occupied, then clear); a
  vehicle that backs out leaves no exit behind and its grant is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

LaneKind = Literal["entry", "exit"]
Mode = Literal["normal", "locked_open", "locked_closed", "free_exit"]
Position = Literal["unknown", "closed", "opening", "open", "closing"]
Phase = Literal["idle", "deciding", "granted", "passing"]
MODES: tuple[Mode, ...] = ("normal", "locked_open", "locked_closed", "free_exit")


@dataclass(frozen=True, kw_only=True)
class LaneTimings:
    barrier_timeout: timedelta = timedelta(seconds=6)  # open/close not confirmed -> lane fault
    backout_close: timedelta = timedelta(seconds=10)  # granted vehicle gone before passing
    presence_stuck: timedelta = timedelta(
        minutes=10
    )  # presence loop occupied that long -> loop fault
    decision_timeout: timedelta = timedelta(seconds=5)  # no answer from the services


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
    position: Literal["open", "closed"]


@dataclass(frozen=True)
class DeviceFault:
    device: str  # barrier, presence_loop, safety_loop, camera
    message: str


@dataclass(frozen=True)
class DeviceRecovered:
    device: str


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
    | Tick
    | OperatorOpen
    | ModeChanged
)


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBarrier:
    why: str


@dataclass(frozen=True)
class CloseBarrier:
    why: str


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


LaneCommand = (
    OpenBarrier
    | CloseBarrier
    | ShowMessage
    | RequestDecision
    | CompletePassage
    | CancelGrant
    | FaultRaised
    | FaultCleared
)


# -- state ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LaneState:
    mode: Mode = "normal"
    presence: bool = False
    safety: bool = False
    position: Position = "unknown"
    position_deadline: datetime | None = None  # when an opening/closing must be confirmed by
    phase: Phase = "idle"
    pending: Credential | None = None
    deciding_since: datetime | None = None
    grant: Decision | None = None
    granted_at: datetime | None = None
    presence_since: datetime | None = None
    presence_lost_at: datetime | None = None
    faults: frozenset[str] = frozenset()
    last_decision: Decision | None = None

    @property
    def fault(self) -> bool:
        return bool(self.faults)


Result = tuple[LaneState, list[LaneCommand]]


def _open(state: LaneState, now: datetime, cfg: LaneConfig, why: str) -> Result:
    if state.position in ("open", "opening"):
        return state, []
    deadline = now + cfg.timings.barrier_timeout
    return replace(state, position="opening", position_deadline=deadline), [OpenBarrier(why)]


def _close(state: LaneState, now: datetime, cfg: LaneConfig, why: str) -> Result:
    """Close unless something forbids it: the safety rule lives here and only here."""
    if state.safety or state.mode == "locked_open" or state.position in ("closed", "closing"):
        return state, []
    deadline = now + cfg.timings.barrier_timeout
    return replace(state, position="closing", position_deadline=deadline), [CloseBarrier(why)]


def _end_grant(state: LaneState) -> LaneState:
    return replace(state, phase="idle", grant=None, granted_at=None, presence_lost_at=None)


def step(cfg: LaneConfig, state: LaneState, event: LaneEvent, now: datetime) -> Result:
    """Apply one event at ``now``; returns the new state and the commands to execute."""
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
            return replace(state, faults=state.faults - {device}), [FaultCleared(device)]
        case Tick():
            return _tick(cfg, state, now)
        case OperatorOpen(reason):
            grant = Decision(
                allowed=True, reason="operator", message=f"opened by operator: {reason}"
            )
            if state.grant is not None:  # a vehicle is already granted: keep its grant
                return _open(state, now, cfg, "operator")
            state = replace(
                state,
                phase="granted",
                grant=grant,
                granted_at=now,
                last_decision=grant,
                presence_lost_at=None if state.presence else now,
            )
            return _open(state, now, cfg, "operator")
        case ModeChanged(mode):
            return _mode(cfg, state, mode, now)
    raise TypeError(f"not a lane event: {event!r}")


def _presence(cfg: LaneConfig, state: LaneState, present: bool, now: datetime) -> Result:
    if present == state.presence:
        return state, []
    commands: list[LaneCommand] = []
    if present:
        state = replace(state, presence=True, presence_since=now, presence_lost_at=None)
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
    return state, commands


def _safety(cfg: LaneConfig, state: LaneState, occupied: bool, now: datetime) -> Result:
    if occupied == state.safety:
        return state, []
    state = replace(state, safety=occupied)
    if occupied:
        commands: list[LaneCommand] = []
        if state.position == "closing":
            # Something is under the closing arm: reopen at once.
            state, commands = _open(replace(state, position="unknown"), now, cfg, "safety")
        if state.phase == "granted":
            state = replace(state, phase="passing", presence_lost_at=None)
        return state, commands
    if state.phase == "passing":
        assert state.grant is not None
        done = state.grant
        state = _end_grant(state)
        state, close = _close(state, now, cfg, "passed")
        return state, [CompletePassage(done), *close]
    if state.phase == "idle" and state.position in ("open", "opening", "unknown"):
        # Something crossed without a grant pending (the lane was idle): close behind it.
        return _close(state, now, cfg, "cleared")
    return state, []


def _credential(cfg: LaneConfig, state: LaneState, credential: Credential, now: datetime) -> Result:
    if state.phase != "idle":
        return state, []  # one vehicle at a time: a grant or a decision is in progress
    if state.mode == "locked_closed":
        refused = Decision(
            allowed=False, reason="lane_closed", credential=credential, message="Lane closed"
        )
        return replace(state, last_decision=refused), [ShowMessage(refused.message)]
    state = replace(state, phase="deciding", pending=credential, deciding_since=now)
    return state, [RequestDecision(credential, state.mode), ShowMessage("Please wait")]


def _decision(cfg: LaneConfig, state: LaneState, decision: Decision, now: datetime) -> Result:
    if state.phase != "deciding" or decision.credential != state.pending:
        # An answer nobody waits for any more: undo what it granted.
        return state, [CancelGrant(decision, "late")] if decision.allowed else []
    state = replace(state, phase="idle", pending=None, deciding_since=None, last_decision=decision)
    if not decision.allowed:
        return state, [ShowMessage(decision.message or decision.reason)]
    if not state.presence:
        return state, [CancelGrant(decision, "vehicle_left")]
    state = replace(state, phase="granted", grant=decision, granted_at=now, presence_lost_at=None)
    state, commands = _open(state, now, cfg, decision.reason)
    return state, [*commands, ShowMessage(decision.message or "Have a nice day")]


def _barrier(
    cfg: LaneConfig, state: LaneState, position: Literal["open", "closed"], now: datetime
) -> Result:
    commands: list[LaneCommand] = []
    if "barrier_timeout" in state.faults:
        commands.append(FaultCleared("barrier_timeout"))
    state = replace(
        state, position=position, position_deadline=None, faults=state.faults - {"barrier_timeout"}
    )
    if position == "closed" and state.mode == "locked_open":
        state, more = _open(state, now, cfg, "locked_open")
        commands.extend(more)
    elif position == "closed" and state.safety:
        # It closed (by itself or by hand) onto something: open again.
        state, more = _open(state, now, cfg, "safety")
        commands.extend(more)
    return state, commands


def _tick(cfg: LaneConfig, state: LaneState, now: datetime) -> Result:
    commands: list[LaneCommand] = []
    t = cfg.timings
    if (
        state.position_deadline is not None
        and now >= state.position_deadline
        and state.position in ("opening", "closing")
    ):
        message = f"barrier not confirmed {'open' if state.position == 'opening' else 'closed'} within {t.barrier_timeout.total_seconds():g} s"
        state = replace(state, position="unknown", position_deadline=None)
        if "barrier_timeout" not in state.faults:
            state = replace(state, faults=state.faults | {"barrier_timeout"})
            commands.append(FaultRaised("barrier_timeout", message))
    if (
        state.phase == "deciding"
        and state.deciding_since is not None
        and now - state.deciding_since >= t.decision_timeout
    ):
        failed = Decision(
            allowed=False,
            reason="unavailable",
            credential=state.pending,
            message="Please wait for assistance",
        )
        state = replace(
            state, phase="idle", pending=None, deciding_since=None, last_decision=failed
        )
        commands.append(ShowMessage(failed.message))
    if state.phase == "granted" and not state.presence and not state.safety:
        since = state.presence_lost_at or state.granted_at
        if since is not None and now - since >= t.backout_close:
            assert state.grant is not None
            commands.append(CancelGrant(state.grant, "backed_out"))
            state = _end_grant(state)
            state, close = _close(state, now, cfg, "backed_out")
            commands.extend(close)
    if (
        state.presence
        and state.presence_since is not None
        and now - state.presence_since >= t.presence_stuck
        and "presence_stuck" not in state.faults
    ):
        state = replace(state, faults=state.faults | {"presence_stuck"})
        commands.append(FaultRaised("presence_stuck", "presence loop occupied for too long"))
    return state, commands


def _mode(cfg: LaneConfig, state: LaneState, mode: Mode, now: datetime) -> Result:
    if mode == "free_exit" and cfg.kind != "exit":
        raise ValueError("free exit is a mode of exit lanes")
    state = replace(state, mode=mode)
    if mode == "locked_open":
        return _open(state, now, cfg, "locked_open")
    if state.phase in ("granted", "passing"):
        return state, []  # let the vehicle in the lane finish
    if mode in ("locked_closed", "normal", "free_exit") and state.position != "closed":
        return _close(state, now, cfg, mode)
    return state, []
