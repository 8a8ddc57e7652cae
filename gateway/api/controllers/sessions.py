"""Parking sessions: the operator's entry and exit, and the lookups kiosks and apps use."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from gateway.api.auth import PUBLIC, staff
from gateway.api.deps import Deps
from gateway.api.errors import BODY, STAFF, errors
from gateway.api.params import Limit, OptQueryTime, Page, QueryId, paged, query_time
from gateway.api.responses import Entry, Exit, FeeCalculation, FeeLine, Session, SessionPage, typed
from gateway.api.schemas import AssignSpaceIn, EntryIn, ExitIn
from gateway.domain.fees import Fee
from gateway.domain.money import cents
from gateway.domain.plates import normalize_plate
from gateway.errors import Invalid, NotFound
from gateway.services import Actor, one, require, sessions
from gateway.services.views import money
from gateway.timeutil import parse, utc


def fee_view(session_id: int, fee: Fee) -> FeeCalculation:
    return FeeCalculation(
        session_id=session_id,
        duration_minutes=fee.duration_minutes,
        base_fee=float(cents(fee.base_fee)),
        discounts=float(cents(fee.discounts)),
        tax=float(cents(fee.tax)),
        ev_charging=float(cents(fee.ev_charging)),
        total=float(cents(fee.total)),
        breakdown=[
            FeeLine(description=line.description, amount=float(cents(line.amount)))
            for line in fee.breakdown
        ],
    )


class SessionController(Controller):
    path = "/sessions"
    tags = ["Sessions"]

    @post("/entry", guards=[staff], status_code=201, responses=errors(*BODY, *STAFF, 409, 422))
    async def entry(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[EntryIn],
    ) -> Entry:
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
        view = {
            "session": views.session(result.session_id),
            "ticket_number": result.ticket_number,
            "space_assigned": views.space(result.space_id),
        }
        return typed(Entry, view)

    @post(
        "/exit",
        guards=[staff],
        status_code=200,
        responses=errors(*BODY, *STAFF, 402, 404, 409, 422),
    )
    async def exit(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], data: JSONBody[ExitIn]
    ) -> Exit:
        if not data.names_a_session:
            raise Invalid("give ticket_number or license_plate", field="ticket_number")
        plate = normalize_plate(data.license_plate) if data.license_plate else None
        ticket = data.ticket_number.strip().upper() if data.ticket_number else None
        result = await deps.write(
            request,
            lambda db, ctx: sessions.exit_(
                db, ctx, ticket_number=ticket, license_plate=plate, exit_gate=data.exit_gate
            ),
        )
        view = {
            "session": deps.views().session(result.session_id),
            "payment_due": 0.0,
            "duration_minutes": result.duration_minutes,
            "fee_total": money(result.fee_total),
        }
        return typed(Exit, view)

    @get("/active", guards=[staff], responses=errors(400, *STAFF))
    async def active(
        self,
        deps: NamedDependency[Deps],
        page: Page = 1,
        limit: Limit = 20,
        zone_id: QueryId = None,
    ) -> SessionPage:
        where, params = ["status = 'active'"], []
        if zone_id is not None:
            where.append("space_id IN (SELECT id FROM spaces WHERE zone_id = ?)")
            params.append(zone_id)
        page_ = paged(
            deps.db,
            key="sessions",
            table="sessions",
            where=where,
            params=params,
            page=page,
            limit=limit,
            render=deps.views().session_row,
        )
        return typed(SessionPage, page_)

    @get("/{session_id:int}", guards=[staff], responses=errors(400, *STAFF, 404))
    async def get_session(self, deps: NamedDependency[Deps], session_id: FromPath[int]) -> Session:
        row = require(deps.db, "sessions", session_id, "session")
        return typed(Session, deps.views().session_row(row))

    @get("/ticket/{ticket:str}", opt=PUBLIC, responses=errors(404))
    async def by_ticket(self, deps: NamedDependency[Deps], ticket: FromPath[str]) -> Session:
        row = one(
            deps.db, "SELECT * FROM sessions WHERE ticket_number = ?", [ticket.strip().upper()]
        )
        if row is None:
            raise NotFound(f"unknown ticket {ticket}")
        return typed(Session, deps.views().session_row(row))

    @get("/{session_id:int}/calculate-fee", opt=PUBLIC, responses=errors(400, 404, 422))
    async def calculate_fee(
        self,
        deps: NamedDependency[Deps],
        session_id: FromPath[int],
        exit_time: OptQueryTime = None,
    ) -> FeeCalculation:
        end = query_time(exit_time, "exit_time")
        session = require(deps.db, "sessions", session_id, "session")
        if end is not None and end < parse(session["entry_time"]):
            # A stay cannot end before it began; pricing it as 0 minutes ("within grace")
            # would quote a free exit for any session.
            raise Invalid("exit_time is before the entry time", field="exit_time")
        fee = sessions.session_fee(deps.db, session, end, deps.clock.now())
        return fee_view(session_id, fee)

    @post(
        "/{session_id:int}/assign-space",
        guards=[staff],
        status_code=200,
        responses=errors(*BODY, *STAFF, 404, 409),
    )
    async def assign_space(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        session_id: FromPath[int],
        data: JSONBody[AssignSpaceIn],
    ) -> Session:
        await deps.write(
            request, lambda db, ctx: sessions.assign_space(db, ctx, session_id, data.space_id)
        )
        return typed(Session, deps.views().session(session_id))
