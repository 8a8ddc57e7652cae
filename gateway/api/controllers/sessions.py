"""Parking sessions: the operator's entry and exit, and the lookups kiosks and apps use."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.api.auth import PUBLIC, staff
from gateway.api.deps import Deps
from gateway.api.params import Limit, OptQueryTime, Page, paged, query_time
from gateway.api.schemas import AssignSpaceIn, EntryIn, ExitIn
from gateway.domain.fees import Fee
from gateway.domain.plates import normalize_plate
from gateway.errors import Invalid, NotFound
from gateway.services import Actor, one, require, sessions
from gateway.services.views import money
from gateway.timeutil import parse, utc


def fee_view(session_id: FromPath[int], fee: Fee) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "duration_minutes": fee.duration_minutes,
        "base_fee": money(fee.base_fee),
        "discounts": money(fee.discounts),
        "tax": money(fee.tax),
        "ev_charging": money(fee.ev_charging),
        "total": money(fee.total),
        "breakdown": [
            {"description": line.description, "amount": money(line.amount)}
            for line in fee.breakdown
        ],
    }


class SessionController(Controller):
    path = "/sessions"
    tags = ["Sessions"]

    @post("/entry", guards=[staff], status_code=201)
    async def entry(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[EntryIn],
    ) -> dict[str, Any]:
        plate = normalize_plate(data.license_plate)
        entry_time = utc(data.entry_time) if data.entry_time else None
        result = await deps.write(
            request,
            lambda db, ctx: sessions.entry(
                db,
                ctx,
                license_plate=plate,
                entry_gate=data.entry_gate,
                lpr_image=data.lpr_image,
                entry_time=entry_time,
            ),
        )
        views = deps.views()
        return {
            "session": views.session(result.session_id),
            "ticket_number": result.ticket_number,
            "space_assigned": views.space(result.space_id),
        }

    @post("/exit", guards=[staff], status_code=200)
    async def exit(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], data: JSONBody[ExitIn]
    ) -> dict[str, Any]:
        plate = normalize_plate(data.license_plate) if data.license_plate else None
        ticket = data.ticket_number.strip().upper() if data.ticket_number else None
        result = await deps.write(
            request,
            lambda db, ctx: sessions.exit_(
                db, ctx, ticket_number=ticket, license_plate=plate, exit_gate=data.exit_gate
            ),
        )
        return {
            "session": deps.views().session(result.session_id),
            "payment_due": 0.0,
            "duration_minutes": result.duration_minutes,
            "fee_total": money(result.fee_total),
        }

    @get("/active", guards=[staff])
    async def active(
        self,
        deps: NamedDependency[Deps],
        page: Page = 1,
        limit: Limit = 20,
        zone_id: FromQuery[int | None] = None,
    ) -> dict[str, Any]:
        where, params = ["status = 'active'"], []
        if zone_id is not None:
            where.append("space_id IN (SELECT id FROM spaces WHERE zone_id = ?)")
            params.append(zone_id)
        return paged(
            deps.db,
            key="sessions",
            table="sessions",
            where=where,
            params=params,
            page=page,
            limit=limit,
            render=deps.views().session_row,
        )

    @get("/{session_id:int}", guards=[staff])
    async def get_session(
        self, deps: NamedDependency[Deps], session_id: FromPath[int]
    ) -> dict[str, Any]:
        return deps.views().session_row(require(deps.db, "sessions", session_id, "session"))

    @get("/ticket/{ticket:str}", opt=PUBLIC)
    async def by_ticket(self, deps: NamedDependency[Deps], ticket: FromPath[str]) -> dict[str, Any]:
        row = one(
            deps.db, "SELECT * FROM sessions WHERE ticket_number = ?", [ticket.strip().upper()]
        )
        if row is None:
            raise NotFound(f"unknown ticket {ticket}")
        return deps.views().session_row(row)

    @get("/{session_id:int}/calculate-fee", opt=PUBLIC)
    async def calculate_fee(
        self,
        deps: NamedDependency[Deps],
        session_id: FromPath[int],
        exit_time: OptQueryTime = None,
    ) -> dict[str, Any]:
        end = query_time(exit_time, "exit_time")
        session = require(deps.db, "sessions", session_id, "session")
        if end is not None and end < parse(session["entry_time"]):
            # A stay cannot end before it began; pricing it as 0 minutes ("within grace")
            # would quote a free exit for any session.
            raise Invalid("exit_time is before the entry time", field="exit_time")
        fee = sessions.session_fee(deps.db, session, end, deps.clock.now())
        return fee_view(session_id, fee)

    @post("/{session_id:int}/assign-space", guards=[staff], status_code=200)
    async def assign_space(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        session_id: FromPath[int],
        data: JSONBody[AssignSpaceIn],
    ) -> dict[str, Any]:
        await deps.write(
            request, lambda db, ctx: sessions.assign_space(db, ctx, session_id, data.space_id)
        )
        return deps.views().session(session_id)
