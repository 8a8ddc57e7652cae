"""The lane engine: runs one lane's state machine against its real devices.

Inputs are levels, never queues of edges. Each device of a lane has one *slot* holding
its latest level and health; a driver's report overwrites the slot (a new value replaces
an unprocessed old one) and wakes the lane, which feeds what changed into the machine on
its next pass. Nothing a loop says can be dropped by a burst, whatever the event rate,
and a pulse shorter than a pass (occupied, then clear again before the lane looked) is
still seen as one edge each way, because each slot counts its changes. Drivers re-report
their level after a (re)connect and every ``REPORT_S`` seconds, so a missed report heals
itself. The discrete events (credentials, decisions, operator opens, mode changes,
command outcomes) are applied at once, on the loop, after the slots are read.

The barrier has one command slot, read by its own worker so that a slow Modbus write never
blocks the events that may have to stop a closing arm; the newest command replaces one
not yet written. Before a close is written the worker reads the safety loop's *present*
level from its driver; unknown, unreadable or occupied refuses the close, and the machine
tries again later (the interlock of :mod:`gateway.domain.lanes` holds too).

Control timers (retries, barrier timeout, back-out, decision timeout) run on the monotonic
clock, so a wall-clock step (NTP) can neither fire nor stall them; what the lane shows and
records (decision times, alarms) uses the site's clock. One supervised task per device: a
device that stops answering puts the lane in fault (event, API, MQTT), is restarted with
jittered exponential backoff, and clears the fault by itself when it answers again;
nothing of this reaches another lane.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

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
    LaneCommand,
    LaneEvent,
    LaneState,
    Mode,
    ModeChanged,
    OpenBarrier,
    OperatorOpen,
    PresenceChanged,
    RequestDecision,
    SafetyChanged,
    ShowMessage,
    Target,
    Tick,
    UnauthorisedPassage,
    close_permitted,
    ready,
    step,
    wanted,
)
from gateway.lanes.config import LaneSpec
from gateway.lanes.decisions import Decider
from gateway.ports import Barrier, DeviceUnavailable, LoopDetector
from gateway.timeutil import Clock, iso

log = structlog.get_logger("gateway.lanes")

TICK_S = 0.25  # the machine's timers are looked at this often (and at every change)
COMMAND_TIMEOUT_S = 3.0
ALARMS_KEPT = 20  # the newest alarms on the lane's status; all of them are outbox events
POSITIONS = ("open", "closed", "moving", "unknown")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class LaneDevices:
    barrier: Barrier
    presence_loop: LoopDetector
    safety_loop: LoopDetector
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the camera


@dataclass
class _Slot:
    """The latest of one device, overwritten by each report (never queued)."""

    value: bool | str | None = None
    changes: int = 0  # how often the value changed: a pulse between two passes still shows
    healthy: bool | None = None  # None: has not answered yet
    message: str = ""
    fault: str | None = None  # a fault the device itself reports (a controller's fault input)


class _Link:
    """A driver's connection to its lane (implements gateway.ports.DeviceLink)."""

    def __init__(self, lane: Lane, role: str) -> None:
        self.lane, self.role = lane, role
        self.answered = False

    def healthy(self) -> None:
        self.answered = True
        self.lane._set_health(self.role, True, "")

    def report(self, value: bool | str) -> None:
        self.lane._set_level(self.role, value)

    def fault(self, message: str | None) -> None:
        self.lane._set_fault(self.role, message)

    def lost(self, message: str) -> None:
        """Also the DeviceLink method a driver that reconnects by itself calls."""
        self.answered = False
        self.lane._set_health(self.role, False, message)


class Lane:
    def __init__(
        self,
        spec: LaneSpec,
        devices: LaneDevices,
        decider: Decider,
        clock: Clock,
        *,
        exit_window: timedelta | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        machine = spec.machine
        if exit_window is not None:
            machine = replace(machine, timings=replace(machine.timings, grant_max_age=exit_window))
        self.machine = machine
        self.devices = devices
        self.decider = decider
        self.clock = clock
        self.timer = timer
        self.state = LaneState(mode=spec.mode)  # type: ignore[arg-type]
        roles = ["barrier", "presence_loop", "safety_loop"]
        if self.camera is not None:
            roles.append("camera")
        self.slots: dict[str, _Slot] = {role: _Slot() for role in roles}
        self._fed: dict[str, _Slot] = {role: _Slot() for role in roles}  # what the machine saw
        self._wake = asyncio.Event()
        self._command: OpenBarrier | CloseBarrier | None = None
        self._command_ready = asyncio.Event()
        self._control = True  # off during shutdown: the machine no longer moves the barrier
        self._last_tick = -1e9
        self.alarms: deque[dict[str, Any]] = deque(maxlen=ALARMS_KEPT)
        self.display = ""
        self.last_decision_at: datetime | None = None
        self.listeners: list[Callable[[Lane], None]] = []
        self.on_command_sent: Callable[[OpenBarrier | CloseBarrier, float], None] | None = None
        self.read_listeners: list[Callable[[Lane, Any, int], None]] = []
        self.last_read_latency_ms = 0.0
        self.passes = 0  # passes over the slots (the benchmark's measure of coalescing)
        self._tg: asyncio.TaskGroup | None = None
        self.log = log.bind(lane=spec.id)

    # -- the slots (called by the drivers, on the loop) --------------------------------
    def _set_level(self, role: str, value: bool | str) -> None:
        slot = self.slots[role]
        if role == "barrier":
            if value not in POSITIONS:
                self.log.warning("barrier_report_ignored", value=repr(value))
                return
        else:
            value = bool(value)
        if value != slot.value:
            slot.value = value
            slot.changes += 1
            self._wake.set()

    def _set_health(self, role: str, healthy: bool, message: str) -> None:
        slot = self.slots[role]
        if slot.healthy != healthy or (not healthy and slot.message != message):
            slot.healthy, slot.message = healthy, message
            self._wake.set()

    def _set_fault(self, role: str, message: str | None) -> None:
        slot = self.slots[role]
        if slot.fault != message:
            slot.fault = message
            self._wake.set()

    @property
    def devices_health(self) -> dict[str, str]:
        return {
            role: "starting"
            if slot.healthy is None
            else "ok"
            if slot.healthy
            else f"fault: {slot.message}"
            for role, slot in self.slots.items()
        }

    def barrier_reachable(self) -> bool:
        """The barrier answers right now (its slot, not the machine's last pass)."""
        return self.slots["barrier"].healthy is True

    # -- input ------------------------------------------------------------------------
    def present(self, credential: Credential) -> None:
        """A credential reader (camera, ticket reader, smart camera API) saw this."""
        self._handle(CredentialPresented(credential))

    def _now(self) -> datetime:
        """The machine's time: monotonic (see the module docstring)."""
        return _EPOCH + timedelta(seconds=self.timer())

    def _slot_events(self) -> list[LaneEvent]:
        """What changed in the slots since the machine last saw them: health first (a
        recovered barrier is commanded at once), then the levels."""
        events: list[LaneEvent] = []
        for role, slot in self.slots.items():
            fed = self._fed[role]
            if slot.healthy is not None and (
                slot.healthy != fed.healthy or (not slot.healthy and slot.message != fed.message)
            ):
                if slot.healthy:
                    events.append(DeviceRecovered(role))
                elif fed.healthy is not False:
                    events.append(DeviceFault(role, slot.message))
                fed.healthy, fed.message = slot.healthy, slot.message
            if slot.fault != fed.fault:
                name = f"{role}_controller"
                if slot.fault is None:
                    events.append(DeviceRecovered(name))
                else:
                    if fed.fault is not None:
                        events.append(DeviceRecovered(name))  # a new message replaces the old
                    events.append(DeviceFault(name, slot.fault))
                fed.fault = slot.fault
            if slot.changes != fed.changes and slot.value is not None:
                if role != "barrier" and slot.value == fed.value:
                    # It changed and changed back before this pass: one edge each way.
                    events.append(_level_event(role, not slot.value))
                events.append(_level_event(role, slot.value))
                fed.value, fed.changes = slot.value, slot.changes
        return events

    def _handle(self, event: LaneEvent | None) -> None:
        """Apply the slots' news and then ``event`` (None: only the slots, and the timers
        when they are due), then tell the listeners if anything changed."""
        self.passes += 1
        before = self.state
        health = self.devices_health
        now = self._now()
        events = self._slot_events()
        if event is not None:
            events.append(event)
        elif self.timer() - self._last_tick >= TICK_S:
            self._last_tick = self.timer()
            events.append(Tick())
        for item in events:
            self._apply(item, now)
        if self.state != before or self.devices_health != health:
            for listener in list(self.listeners):
                listener(self)

    def _apply(self, event: LaneEvent, now: datetime) -> None:
        before = self.state
        self.state, commands = step(self.machine, before, event, now)
        if isinstance(event, DecisionMade):
            self._decided(event.decision)
        elif self.state.last_decision is not before.last_decision:
            self.last_decision_at = self.clock.now()  # an operator's open, a lane refusal
        for command in commands:
            self._execute(command)
        if self.state.presence != before.presence and self.camera is not None:
            self.camera.set_armed(self.state.presence)

    # -- running ----------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for role in ("barrier", "presence_loop", "safety_loop"):
                device = getattr(self.devices, role)
                tg.create_task(
                    self._supervise(role, device.run), name=f"lane[{self.spec.id}].{role}"
                )
            camera = self.camera
            if camera is not None:
                camera.sink = self._on_read
                tg.create_task(
                    self._supervise("camera", camera.run), name=f"lane[{self.spec.id}].camera"
                )
            tg.create_task(self._barrier_worker(), name=f"lane[{self.spec.id}].commands")
            tg.create_task(self._passes(), name=f"lane[{self.spec.id}].passes")

    def link(self, role: str) -> _Link:
        """A connection to this lane as a driver has one (each supervisor makes its own)."""
        if role not in self.slots:
            raise KeyError(f"lane {self.spec.id} has no {role}")
        return _Link(self, role)

    async def _supervise(self, role: str, run: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
        link = self.link(role)
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                await run(link)
                raise DeviceUnavailable("driver stopped")
            except asyncio.CancelledError:
                raise
            except DeviceUnavailable as err:
                message = str(err)
            except Exception as err:  # a driver bug must not take the lane down either
                self.log.exception("device_driver_crashed", device=role)
                message = f"driver error: {err!r}"
            if link.answered or time.monotonic() - started > 30:
                attempt = 0
            attempt += 1
            link.lost(message)
            delay = min(30.0, random.uniform(0, 1.5 ** min(10, attempt)) / 4 + 0.1)
            self.log.warning(
                "device_unavailable", device=role, error=message, retry_in=round(delay, 2)
            )
            await asyncio.sleep(delay)

    async def _passes(self) -> None:
        """One pass per wake-up (a slot changed) and at least every TICK_S."""
        while True:
            try:
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self._handle(None)

    async def _barrier_worker(self) -> None:
        barrier = self.devices.barrier
        while True:
            await self._command_ready.wait()
            self._command_ready.clear()
            command, self._command = self._command, None
            if command is None:
                continue
            target: Target = "open" if isinstance(command, OpenBarrier) else "closed"
            if target == "closed":
                refusal = await self.close_refusal()
                if refusal is None and self._command is not None:
                    continue  # overtaken while the loop was read: the newer command goes
                if refusal is not None:
                    self.log.warning("barrier_close_refused", why=command.why, reason=refusal)
                    self._handle(CommandFailed("closed", refusal, interlock=True))
                    continue
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    if target == "open":
                        await barrier.open()
                    else:
                        await barrier.close()
            except (DeviceUnavailable, TimeoutError) as err:
                message = str(err) or "timeout"
                self.log.error(
                    "barrier_command_failed",
                    command=target,
                    why=command.why,
                    attempt=command.attempt,
                    error=message,
                )
                self._handle(CommandFailed(target, message))
                continue
            if self.on_command_sent is not None:
                self.on_command_sent(command, time.perf_counter())
            self.log.info(
                "barrier_commanded", command=target, why=command.why, attempt=command.attempt
            )

    async def close_refusal(self) -> str | None:
        """Why a close must not be written now, from the safety loop's present level (read
        from its driver at this moment, not the last level the lane processed); None: it
        may. Unknown, unreadable or faulted counts as occupied."""
        if self.slots["safety_loop"].healthy is not True:
            return "safety loop not answering"
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                level = await self.devices.safety_loop.level()
        except (DeviceUnavailable, TimeoutError) as err:
            return f"safety loop not read: {str(err) or 'timeout'}"
        if level is None:
            return "safety loop level unknown"
        if level:
            return "safety loop occupied"
        self._handle(None)  # what arrived meanwhile
        if self._control and not close_permitted(self.state):
            return "the lane no longer wants it closed"
        return None

    def release_control(self) -> None:
        """Shutdown: the barrier is left to the manager's ``on_shutdown`` command."""
        self._control = False
        self._command = None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        guarded = self._guard(coro, name)
        try:
            if self._tg is None:
                raise RuntimeError("lane not running")
            self._tg.create_task(guarded, name=f"lane[{self.spec.id}].{name}")
        except RuntimeError:  # the lane is shutting down (or not started): nothing more starts
            guarded.close()
            coro.close()

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except Exception:
            self.log.exception("lane_task_failed", task=name)

    def _execute(self, command: LaneCommand) -> None:
        match command:
            case OpenBarrier() | CloseBarrier():
                if not self._control:
                    return
                if command.attempt > 1:
                    self.log.warning(
                        "barrier_command_retried",
                        command="open" if isinstance(command, OpenBarrier) else "close",
                        why=command.why,
                        attempt=command.attempt,
                        barrier=self.state.barrier,
                    )
                self._command = command
                self._command_ready.set()
            case RequestDecision(credential, mode):
                self._spawn(self._decide(credential, mode), "decide")
            case CompletePassage(decision):
                self.log.info(
                    "vehicle_passed", reason=decision.reason, ticket=decision.ticket_number
                )
                self._spawn(self.decider.passed(self.spec, decision), "passage")
            case CancelGrant(decision, why):
                self.log.info("grant_cancelled", reason=decision.reason, why=why)
                self._spawn(self.decider.cancelled(self.spec, decision, why), "cancel")
            case ShowMessage(text):
                self.display = text
            case FaultRaised(device, message):
                self.log.error("lane_fault", device=device, message=message)
                self._spawn(
                    self.decider.audit(
                        "lane_fault", self.spec, {"device": device, "message": message}
                    ),
                    "audit",
                )
            case FaultCleared(device):
                self.log.info("lane_fault_cleared", device=device)
                self._spawn(
                    self.decider.audit("lane_fault_cleared", self.spec, {"device": device}), "audit"
                )
            case BarrierOpenWithoutGrant(why):
                self._alarm(
                    "barrier_open_without_grant",
                    {
                        "message": f"barrier {why}",
                        "mode": self.state.mode,
                        "safety": self.state.safety,
                    },
                )
            case UnauthorisedPassage(credential, decision):
                who = "a vehicle without a read" if credential is None else credential.value
                refused = "" if decision is None else f" (refused: {decision.reason})"
                self._alarm(
                    "unauthorised_passage",
                    {
                        "message": f"{who} passed without a grant{refused}",
                        "kind": self.spec.kind,
                        "plate": credential.value
                        if credential is not None and credential.kind == "plate"
                        else None,
                        "credential": None
                        if credential is None
                        else {"kind": credential.kind, "value": credential.value},
                        "refused_because": None if decision is None else decision.reason,
                        "session_id": None if decision is None else decision.session_id,
                        "ticket_number": None if decision is None else decision.ticket_number,
                    },
                )

    def _alarm(self, kind: str, data: dict[str, Any]) -> None:
        """A surprise: logged, kept on the lane's status, and an outbox event (so MQTT)."""
        self.log.error(kind, **data)
        self.alarms.append({"type": kind, "at": iso(self.clock.now()), **data})
        self._spawn(self.decider.audit(kind, self.spec, data), "alarm")

    async def _decide(self, credential: Credential, mode: Mode) -> None:
        started = time.perf_counter()
        try:
            decision = await self.decider.decide(self.spec, credential, mode)
        except Exception as err:
            self.log.exception("decision_failed")
            decision = Decision(
                allowed=False,
                reason="error",
                credential=credential,
                message=f"Please wait for assistance ({type(err).__name__})",
            )
        self._handle(DecisionMade(decision))
        self.log.info(
            "lane_decided",
            allowed=decision.allowed,
            reason=decision.reason,
            credential=credential.value,
            ticket=decision.ticket_number,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def _decided(self, decision: Decision) -> None:
        self.last_decision_at = self.clock.now()
        credential = decision.credential
        if credential is not None and credential.read_id is not None:
            # After the decision, off its path; the writer's queue keeps it behind the read's row.
            self._spawn(self.decider.link_read(credential.read_id, decision), "link_read")
        self._spawn(
            self.decider.audit(
                "lane_decision",
                self.spec,
                {
                    "allowed": decision.allowed,
                    "reason": decision.reason,
                    "session_id": decision.session_id,
                    "ticket_number": decision.ticket_number,
                    "amount_due": decision.amount_due,
                    "credential": None
                    if credential is None
                    else {"kind": credential.kind, "value": credential.value},
                },
            ),
            "audit",
        )

    # -- the camera -------------------------------------------------------------------
    @property
    def camera(self) -> Any:
        return self.devices.extra.get("camera")

    def _on_read(self, read: Any) -> None:
        """A voted plate read of this lane's camera (called on the loop)."""
        self.last_read_latency_ms = (time.perf_counter() - read.triggered_at) * 1000
        self._spawn(self._record_read(read), "plate_read")

    async def _record_read(self, read: Any) -> None:
        """Hand the plate to the lane first, then record it: the barrier never waits for the row."""
        vote = read.vote
        read_id = self.decider.next_read_id()
        if read.confident:
            self.present(
                Credential(
                    kind="plate", value=vote.text, confidence=vote.confidence, read_id=read_id
                )
            )
        await self.decider.record_read(self.spec, read, read_id)
        self.log.info(
            "plate_read",
            plate=vote.text,
            confidence=vote.confidence,
            confident=read.confident,
            reads=vote.reads,
            of=vote.total,
            read_id=read_id,
            ms_since_trigger=round(self.last_read_latency_ms, 1),
        )
        for listener in list(self.read_listeners):
            listener(self, read, read_id)
        await self.decider.store_evidence(read_id, read)

    # -- control ----------------------------------------------------------------------
    def open_by_operator(self, reason: str, actor: str | None) -> None:
        self._handle(OperatorOpen(reason, actor))

    def set_mode(self, mode: Mode) -> None:
        if mode == "free_exit" and self.spec.kind != "exit":
            raise ValueError("free exit is a mode of exit lanes")
        self._handle(ModeChanged(mode))

    def status(self) -> dict[str, Any]:
        s = self.state
        d = s.last_decision
        return {
            "id": self.spec.id,
            "name": self.spec.name,
            "kind": self.spec.kind,
            "mode": s.mode,
            "barrier": s.position,
            "wanted": wanted(s),
            "ready": ready(s),
            "presence": s.presence,
            "safety": s.safety,
            "phase": s.phase,
            "fault": s.fault,
            "faults": sorted(s.faults),
            "alarms": list(self.alarms),
            "devices": self.devices_health,
            "display": self.display,
            "last_decision": None
            if d is None
            else {
                "allowed": d.allowed,
                "reason": d.reason,
                "session_id": d.session_id,
                "ticket_number": d.ticket_number,
                "amount_due": d.amount_due,
                "message": d.message,
                "credential": None
                if d.credential is None
                else {"kind": d.credential.kind, "value": d.credential.value},
                "at": iso(self.last_decision_at) if self.last_decision_at else None,
            },
        }


def _level_event(role: str, value: bool | str) -> LaneEvent:
    if role == "presence_loop":
        return PresenceChanged(bool(value))
    if role == "safety_loop":
        return SafetyChanged(bool(value))
    return BarrierReported(value)  # type: ignore[arg-type]
