"""The lane engine: runs one lane's state machine against its real devices.

Each lane has its own bounded event queue, its own barrier command worker (commands are
executed in order, without blocking the events that may have to stop a closing arm), and
one supervised task per device. A device that stops answering puts the lane in fault
(event, API, MQTT), is restarted with jittered exponential backoff, and clears the fault
by itself when it answers again; nothing of this reaches another lane.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

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
    Tick,
    step,
)
from gateway.lanes.config import LaneSpec
from gateway.lanes.decisions import Decider
from gateway.ports import Barrier, DeviceUnavailable, LoopDetector
from gateway.timeutil import Clock, iso

log = structlog.get_logger("gateway.lanes")

QUEUE_SIZE = (
    512  # events; overflow drops the newest with an error log (devices re-report on change)
)
TICK_S = 0.25
COMMAND_TIMEOUT_S = 3.0


@dataclass
class LaneDevices:
    barrier: Barrier
    presence_loop: LoopDetector
    safety_loop: LoopDetector
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the camera


class _Link:
    """A driver's connection to its lane (implements gateway.ports.DeviceLink)."""

    def __init__(self, lane: Lane, role: str) -> None:
        self.lane, self.role = lane, role
        self.faulted = False
        self.answered = False

    def healthy(self) -> None:
        self.answered = True
        if self.faulted:
            self.faulted = False
            self.lane.devices_health[self.role] = "ok"
            self.lane.post(DeviceRecovered(self.role))
        elif self.lane.devices_health.get(self.role) != "ok":
            self.lane.devices_health[self.role] = "ok"

    def report(self, value: bool | str) -> None:
        if self.role == "presence_loop":
            self.lane.post(PresenceChanged(bool(value)))
        elif self.role == "safety_loop":
            self.lane.post(SafetyChanged(bool(value)))
        elif value in ("open", "closed"):
            self.lane.post(BarrierReported(value))  # type: ignore[arg-type]

    def fault(self, message: str | None) -> None:
        name = f"{self.role}_controller"
        self.lane.post(DeviceFault(name, message) if message else DeviceRecovered(name))

    def lost(self, message: str) -> None:
        """Also the DeviceLink method a driver that reconnects by itself (a camera) calls."""
        self.answered = False
        self.lane.devices_health[self.role] = f"fault: {message}"
        if not self.faulted:
            self.faulted = True
            self.lane.post(DeviceFault(self.role, message))


class Lane:
    def __init__(
        self, spec: LaneSpec, devices: LaneDevices, decider: Decider, clock: Clock
    ) -> None:
        self.spec = spec
        self.machine = spec.machine
        self.devices = devices
        self.decider = decider
        self.clock = clock
        self.state = LaneState(mode=spec.mode)  # type: ignore[arg-type]
        self.queue: asyncio.Queue[LaneEvent] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.commands: asyncio.Queue[OpenBarrier | CloseBarrier] = asyncio.Queue()
        self.devices_health: dict[str, str] = {
            "barrier": "starting",
            "presence_loop": "starting",
            "safety_loop": "starting",
        }
        self.display = ""
        self.last_decision_at: datetime | None = None
        self.listeners: list[Callable[[Lane], None]] = []
        self.on_command_sent: Callable[[OpenBarrier | CloseBarrier, float], None] | None = None
        self.read_listeners: list[Callable[[Lane, Any, int], None]] = []
        self.last_read_latency_ms = 0.0
        self._tg: asyncio.TaskGroup | None = None
        self.log = log.bind(lane=spec.id)

    # -- input ------------------------------------------------------------------------
    def post(self, event: LaneEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.log.error("lane_queue_overflow", dropped=type(event).__name__)

    def present(self, credential: Credential) -> None:
        """A credential reader (camera, ticket reader, smart camera API) saw this."""
        self.post(CredentialPresented(credential))

    # -- running ----------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(
                self._supervise("barrier", self.devices.barrier.run),
                name=f"lane[{self.spec.id}].barrier",
            )
            tg.create_task(
                self._supervise("presence_loop", self.devices.presence_loop.run),
                name=f"lane[{self.spec.id}].presence_loop",
            )
            tg.create_task(
                self._supervise("safety_loop", self.devices.safety_loop.run),
                name=f"lane[{self.spec.id}].safety_loop",
            )
            camera = self.camera
            if camera is not None:
                camera.sink = self._on_read
                self.devices_health["camera"] = "starting"
                tg.create_task(
                    self._supervise("camera", camera.run), name=f"lane[{self.spec.id}].camera"
                )
            tg.create_task(self._barrier_worker(), name=f"lane[{self.spec.id}].commands")
            tg.create_task(self._ticker(), name=f"lane[{self.spec.id}].tick")
            tg.create_task(self._process(), name=f"lane[{self.spec.id}].events")

    async def _supervise(self, role: str, run: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
        link = _Link(self, role)
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

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if self.queue.qsize() < QUEUE_SIZE // 2:
                self.post(Tick())

    async def _barrier_worker(self) -> None:
        barrier = self.devices.barrier
        while True:
            command = await self.commands.get()
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    if isinstance(command, OpenBarrier):
                        await barrier.open()
                    else:
                        await barrier.close()
                if self.on_command_sent is not None:
                    self.on_command_sent(command, time.perf_counter())
                self.log.info(
                    "barrier_commanded",
                    command="open" if isinstance(command, OpenBarrier) else "close",
                    why=command.why,
                )
            except (DeviceUnavailable, TimeoutError) as err:
                self.post(DeviceFault("barrier", f"command failed: {str(err) or 'timeout'}"))
                self.log.error("barrier_command_failed", why=command.why, error=str(err))

    async def _process(self) -> None:
        while True:
            event = await self.queue.get()
            now = self.clock.now()
            before = self.state
            self.state, commands = step(self.machine, self.state, event, now)
            if isinstance(event, DecisionMade):
                self._decided(event.decision, now)
            elif self.state.last_decision is not before.last_decision:
                self.last_decision_at = now  # an operator's open, a refusal by the lane itself
            for command in commands:
                self._execute(command)
            if self.state.presence != before.presence and self.camera is not None:
                self.camera.set_armed(self.state.presence)
            if self.state != before:
                for listener in list(self.listeners):
                    listener(self)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        assert self._tg is not None
        guarded = self._guard(coro, name)
        try:
            self._tg.create_task(guarded, name=f"lane[{self.spec.id}].{name}")
        except RuntimeError:  # the lane is shutting down: nothing more starts
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
                self.commands.put_nowait(command)
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
        self.post(DecisionMade(decision))
        self.log.info(
            "lane_decided",
            allowed=decision.allowed,
            reason=decision.reason,
            credential=credential.value,
            ticket=decision.ticket_number,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def _decided(self, decision: Decision, now: datetime) -> None:
        self.last_decision_at = now
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
        self.post(OperatorOpen(reason, actor))

    def set_mode(self, mode: Mode) -> None:
        if mode == "free_exit" and self.spec.kind != "exit":
            raise ValueError("free exit is a mode of exit lanes")
        self.post(ModeChanged(mode))

    def status(self) -> dict[str, Any]:
        s = self.state
        d = s.last_decision
        return {
            "id": self.spec.id,
            "name": self.spec.name,
            "kind": self.spec.kind,
            "mode": s.mode,
            "barrier": s.position,
            "presence": s.presence,
            "safety": s.safety,
            "phase": s.phase,
            "fault": s.fault,
            "faults": sorted(s.faults),
            "devices": dict(self.devices_health),
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
