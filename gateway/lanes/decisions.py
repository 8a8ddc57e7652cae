"""What the services decide for a lane: who may enter or leave, and what to record.

The same service functions as the API run here (``sessions.entry``, ``sessions.exit_``),
so a lane entry and an API entry are the same thing with the same outbox event. Exit
decisions are pure reads on the loop's read connection (a barrier must open at once);
the exit itself is recorded when the vehicle has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from sqlite_utils import Database

from gateway.api.deps import Deps
from gateway.domain.lanes import Credential, Decision, Mode
from gateway.domain.plates import InvalidPlate, normalize_plate
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.evidence import EvidenceStore
from gateway.lanes.config import LaneSpec
from gateway.services import SYSTEM, Ctx, plates, sessions
from gateway.store import outbox

log = structlog.get_logger("gateway.lanes")


class Decider:
    def __init__(self, deps: Deps, evidence: EvidenceStore | None = None) -> None:
        self.deps = deps
        self.evidence = evidence
        self.metrics: Any = None  # gateway.metrics.Metrics, set by the composition root
        self._last_read_id: int | None = None

    def _ctx(self) -> Ctx:
        return self.deps.ctx_for(SYSTEM)

    async def decide(self, lane: LaneSpec, credential: Credential, mode: Mode) -> Decision:
        try:
            if lane.kind == "entry":
                decision = await self._entry(lane, credential)
            else:
                decision = self._exit(lane, credential, mode)
        except GatewayError as err:
            decision = Decision(
                allowed=False,
                reason=str(err.extra.get("reason", "refused")),
                credential=credential,
                message=err.detail,
            )
        if self.metrics is not None:
            self.metrics.decisions.labels(
                lane.id, str(decision.allowed).lower(), decision.reason
            ).inc()
        return decision

    async def link_read(self, read_id: int, decision: Decision) -> None:
        await self.deps.store.write(
            lambda db: plates.link_decision(db, read_id, decision.session_id, decision.reason)
        )

    def next_read_id(self) -> int:
        """Plate read ids are handed out here (this daemon is the table's only writer), so a
        lane can act on a read before its row is committed."""
        if self._last_read_id is None:
            self._last_read_id = int(
                self.deps.store.reader.execute(
                    "SELECT IFNULL(MAX(id), 0) FROM plate_reads"
                ).fetchone()[0]
            )
        self._last_read_id += 1
        return self._last_read_id

    # -- entry ---------------------------------------------------------------------------
    async def _entry(self, lane: LaneSpec, credential: Credential) -> Decision:
        if credential.kind != "plate":
            return Decision(
                allowed=False,
                reason="unsupported",
                credential=credential,
                message="Entry needs a licence plate",
            )
        try:
            plate = normalize_plate(credential.value)
        except InvalidPlate:
            return Decision(
                allowed=False, reason="unreadable", credential=credential, message="Plate not read"
            )
        ctx = self._ctx()
        if plates.list_verdict(self.deps.store.reader, plate, lane.id, ctx.now) == "deny":
            await self.audit("plate_denied", lane, {"plate": plate})
            return Decision(
                allowed=False, reason="denied", credential=credential, message="Entry not permitted"
            )
        try:
            result = await self.deps.store.write(
                lambda db: sessions.entry(db, ctx, license_plate=plate, entry_gate=lane.id)
            )
        except Conflict as err:
            if err.extra.get("reason") != "already_inside":
                raise
            if lane.anti_passback == "soft":
                await self.audit(
                    "anti_passback_violation",
                    lane,
                    {"plate": plate, "ticket_number": err.extra.get("ticket_number")},
                )
                return Decision(
                    allowed=True,
                    reason="anti_passback_soft",
                    credential=credential,
                    session_id=err.extra.get("session_id"),
                    ticket_number=err.extra.get("ticket_number"),
                    message="Welcome",
                )
            return Decision(
                allowed=False,
                reason="already_inside",
                credential=credential,
                session_id=err.extra.get("session_id"),
                message="Vehicle already inside",
            )
        return Decision(
            allowed=True,
            reason="entry",
            credential=credential,
            session_id=result.session_id,
            ticket_number=result.ticket_number,
            message=f"Welcome - ticket {result.ticket_number}",
        )

    # -- exit ----------------------------------------------------------------------------
    def _exit(self, lane: LaneSpec, credential: Credential, mode: Mode) -> Decision:
        db = self.deps.store.reader
        ctx = self._ctx()
        verdict = None
        try:
            if credential.kind == "ticket":
                session = sessions.find_for_exit(
                    db, ticket_number=credential.value.strip().upper(), license_plate=None
                )
            else:
                plate = normalize_plate(credential.value)
                found = plates.match_inside(db, plate)
                if found.kind == "ambiguous":
                    # Two vehicles inside are one misread away: never guess which one leaves.
                    return Decision(
                        allowed=False,
                        reason="plate_uncertain",
                        credential=credential,
                        message="Plate not recognised with certainty - please use your ticket",
                    )
                matched = found.plate or plate
                verdict = plates.list_verdict(db, matched, lane.id, ctx.now)
                if verdict == "deny":
                    return Decision(
                        allowed=False,
                        reason="denied",
                        credential=credential,
                        message="Exit not permitted - please call assistance",
                    )
                session = sessions.find_for_exit(db, ticket_number=None, license_plate=matched)
        except (NotFound, InvalidPlate):
            if mode == "free_exit" or verdict == "allow":
                reason = "free_exit" if mode == "free_exit" else "allow_list"
                return Decision(
                    allowed=True, reason=reason, credential=credential, message="Goodbye"
                )
            return Decision(
                allowed=False,
                reason="unknown",
                credential=credential,
                message="Ticket or plate not found - please call assistance",
            )
        common: dict[str, Any] = {
            "credential": credential,
            "session_id": session["id"],
            "ticket_number": session["ticket_number"],
        }
        if sessions.running_charge(db, session["id"]):
            return Decision(
                allowed=False, reason="charging", message="Stop charging first", **common
            )
        if mode == "free_exit":
            return Decision(allowed=True, reason="free_exit", message="Free exit", **common)
        if verdict == "allow":
            return Decision(allowed=True, reason="allow_list", message="Goodbye", **common)
        fee, status = sessions.owed(db, ctx, session)
        if status.amount_due > 0:
            reason = "grace_expired" if status.is_paid else "unpaid"
            return Decision(
                allowed=False,
                reason=reason,
                amount_due=float(status.amount_due),
                message=f"Please pay {status.amount_due:.2f}",
                **common,
            )
        if status.is_paid:
            reason = "paid"
        elif fee.discounts > 0 and fee.membership_id is not None:
            reason = "member"
        else:
            reason = "free"
        return Decision(allowed=True, reason=reason, message="Goodbye", **common)

    # -- what happens after a decision ----------------------------------------------------
    async def passed(self, lane: LaneSpec, decision: Decision) -> None:
        """The granted vehicle went through: complete its exit, and audit the passage."""
        ctx = self._ctx()
        if lane.kind == "exit" and decision.ticket_number and decision.reason != "operator":
            ticket = decision.ticket_number

            def complete(db: Database) -> None:
                # The grant stands even if the fee grew while the vehicle drove through; an exit
                # already recorded (an operator's, in the meantime) is left as it is.
                with contextlib.suppress(NotFound):
                    sessions.exit_(
                        db, ctx, ticket_number=ticket, exit_gate=lane.id, waive=decision.reason
                    )
                _passage(db, ctx, lane, decision)

            await self.deps.store.write(complete)
        else:
            await self.deps.store.write(lambda db: _passage(db, ctx, lane, decision))

    async def cancelled(self, lane: LaneSpec, decision: Decision, why: str) -> None:
        """A grant nobody used: an entry session that was created is cancelled again."""
        ctx = self._ctx()

        def undo(db: Database) -> None:
            if (
                lane.kind == "entry"
                and decision.reason == "entry"
                and decision.session_id is not None
            ):
                sessions.cancel_unused_entry(db, ctx, decision.session_id, why)
            outbox.append(
                db,
                "lane_grant_cancelled",
                {
                    "lane_id": lane.id,
                    "reason": decision.reason,
                    "why": why,
                    "session_id": decision.session_id,
                },
                ctx.now,
            )

        await self.deps.store.write(undo)

    async def record_read(self, lane: LaneSpec, read: Any, read_id: int) -> int:
        ctx = self._ctx()
        vote = read.vote
        return await self.deps.store.write(
            lambda db: plates.record_read(
                db,
                ctx,
                read_id=read_id,
                lane_id=lane.id,
                camera_id=read.camera_id,
                source=read.source,
                plate=vote.text,
                confidence=vote.confidence,
                confident=read.confident,
                reads=vote.reads,
                alternatives=list(vote.alternatives),
                first_seen=vote.first_seen,
                last_seen=vote.last_seen,
            )
        )

    async def store_evidence(self, read_id: int, read: Any) -> None:
        """Write the read's pictures (in a thread) and keep the evidence within its quota."""
        store = self.evidence
        if store is None or (read.evidence.frame is None and read.evidence.crop is None):
            return
        frame_path, crop_path, size = await asyncio.to_thread(
            store.save, read_id, read.vote.first_seen, read.evidence.frame, read.evidence.crop
        )

        def record(db: Database) -> None:
            plates.set_evidence(db, read_id, frame_path, crop_path, size)
            plates.enforce_quota(db, store.quota_bytes)

        await self.deps.store.write(record)

    async def audit(self, event_type: str, lane: LaneSpec, data: dict[str, Any]) -> None:
        ctx = self._ctx()
        await self.deps.store.write(
            lambda db: outbox.append(db, event_type, {"lane_id": lane.id, **data}, ctx.now)
        )


def _passage(db: Database, ctx: Ctx, lane: LaneSpec, decision: Decision) -> None:
    credential = decision.credential
    outbox.append(
        db,
        "lane_passage",
        {
            "lane_id": lane.id,
            "kind": lane.kind,
            "reason": decision.reason,
            "session_id": decision.session_id,
            "ticket_number": decision.ticket_number,
            "credential": None
            if credential is None
            else {"kind": credential.kind, "value": credential.value},
        },
        ctx.now,
    )
