"""Reservations, membership plans and memberships."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from gateway.api.auth import PUBLIC, admin
from gateway.api.deps import Deps
from gateway.api.errors import AUTH, BODY, STAFF, errors
from gateway.api.params import Limit, Page, QueryId, QueryTime, paged, query_time
from gateway.api.responses import (
    Availability,
    CheckIn,
    Membership,
    MembershipPage,
    MembershipPaid,
    MembershipUsage,
    Plan,
    Reservation,
    ReservationCancelled,
    ReservationCreated,
    ReservationPage,
    typed,
)
from gateway.api.schemas import (
    MembershipStatus,
    PlanIn,
    PlanUpdate,
    ReservationIn,
    ReservationStatus,
    ReservationUpdate,
    SubscribeIn,
    given,
)
from gateway.errors import Forbidden, Invalid, NotFound
from gateway.services import Actor, memberships, one, require, reservations, rows
from gateway.services.views import BookingViews, plan_view
from gateway.timeutil import iso, utc


def _owner_or_staff(actor: Actor, owner: int, what: str) -> None:
    if not actor.is_staff and actor.id != owner:
        raise Forbidden(f"this {what} belongs to someone else")


class ReservationController(Controller):
    path = "/reservations"
    tags = ["Reservations"]

    @post("/", status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def create(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[ReservationIn],
    ) -> ReservationCreated:
        start, end = utc(data.start_time), utc(data.end_time)
        reservation_id = await deps.write(
            request,
            lambda db, ctx: reservations.create(
                db,
                ctx,
                vehicle_id=data.vehicle_id,
                zone_id=data.zone_id,
                space_id=data.space_id,
                start=start,
                end=end,
                special_requests=data.special_requests,
            ),
        )
        view = BookingViews(deps.db, deps.ctx(request)).reservation(reservation_id)
        return typed(
            ReservationCreated,
            {"reservation": view, "confirmation_number": view["confirmation_number"]},
        )

    @get("/", responses=errors(400, *AUTH))
    async def list_reservations(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        page: Page = 1,
        limit: Limit = 20,
        status: FromQuery[ReservationStatus | None] = None,
        day: Annotated[date | None, QueryParameter(name="date")] = None,
        zone_id: QueryId = None,
    ) -> ReservationPage:
        """Customers see their own; staff all. ``date`` keeps those overlapping that UTC day."""
        ctx = deps.ctx(request)
        where: list[str] = []
        params: list[Any] = []
        if not request.user.is_staff:
            where.append("user_id = ?")
            params.append(request.user.id)
        if zone_id is not None:
            where.append("zone_id = ?")
            params.append(zone_id)
        if day is not None:
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            where.append("start_time < ? AND end_time > ?")
            params.extend([iso(midnight + timedelta(days=1)), iso(midnight)])
        if status is not None:
            # The stored status lags behind no-shows until the sweep; filter on the effective one.
            where.append(_status_clause(status, params, ctx.now))
        return typed(
            ReservationPage,
            paged(
                deps.db,
                key="reservations",
                table="reservations",
                where=where,
                params=params,
                page=page,
                limit=limit,
                render=BookingViews(deps.db, ctx).reservation_row,
            ),
        )

    @get("/availability", opt=PUBLIC, responses=errors(400, 404, 422))
    async def availability(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        start_time: QueryTime,
        end_time: QueryTime,
        zone_id: QueryId = None,
    ) -> Availability:
        start, end = query_time(start_time, "start_time"), query_time(end_time, "end_time")
        assert start is not None and end is not None
        ctx = deps.ctx(request)
        result = reservations.availability(deps.db, ctx, start, end, zone_id)
        views = BookingViews(deps.db, ctx)
        spaces = [views.space_row(r) for r in result.pop("free_space_rows")]
        view = {
            "available_spaces": spaces,
            "total_available": len(spaces),
            "zone_id": zone_id,
            **result,
        }
        return typed(Availability, view)

    @get("/confirmation/{code:str}", responses=errors(*STAFF, 404))
    async def by_confirmation(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], code: FromPath[str]
    ) -> Reservation:
        row = one(
            deps.db,
            "SELECT * FROM reservations WHERE confirmation_number = ?",
            [code.strip().upper()],
        )
        if row is None:
            raise NotFound(f"no reservation with confirmation number {code}")
        _owner_or_staff(request.user, row["user_id"], "reservation")
        return typed(Reservation, BookingViews(deps.db, deps.ctx(request)).reservation_row(row))

    @get("/{reservation_id:int}", responses=errors(400, *STAFF, 404))
    async def get_reservation(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        reservation_id: FromPath[int],
    ) -> Reservation:
        row = require(deps.db, "reservations", reservation_id, "reservation")
        _owner_or_staff(request.user, row["user_id"], "reservation")
        return typed(Reservation, BookingViews(deps.db, deps.ctx(request)).reservation_row(row))

    @put("/{reservation_id:int}", responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def update(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        reservation_id: FromPath[int],
        data: JSONBody[ReservationUpdate],
    ) -> Reservation:
        changes = given(data)
        for key in ("start_time", "end_time"):
            if key in changes:
                changes[key] = utc(changes[key])  # type: ignore[arg-type]
        await deps.write(
            request, lambda db, ctx: reservations.update(db, ctx, reservation_id, changes)
        )
        return typed(
            Reservation, BookingViews(deps.db, deps.ctx(request)).reservation(reservation_id)
        )

    @delete("/{reservation_id:int}", status_code=200, responses=errors(400, *STAFF, 404, 409, 422))
    async def cancel(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        reservation_id: FromPath[int],
        reason: FromQuery[str | None] = None,
    ) -> ReservationCancelled:
        if reason is not None and len(reason) > 500:
            raise Invalid("reason must be at most 500 characters", field="reason")
        await deps.write(
            request, lambda db, ctx: reservations.cancel(db, ctx, reservation_id, reason)
        )
        view = BookingViews(deps.db, deps.ctx(request)).reservation(reservation_id)
        return typed(ReservationCancelled, {"reservation": view, "refund_amount": None})

    @post(
        "/{reservation_id:int}/check-in",
        status_code=201,
        responses=errors(400, *STAFF, 404, 409, 422),
    )
    async def check_in(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        reservation_id: FromPath[int],
    ) -> CheckIn:
        result = await deps.write(
            request, lambda db, ctx: reservations.check_in(db, ctx, reservation_id)
        )
        views = BookingViews(deps.db, deps.ctx(request))
        view = {
            "session_id": result.session_id,
            "ticket_number": result.ticket_number,
            "space_assigned": views.space(result.space_id),
            "reservation": views.reservation(reservation_id),
        }
        return typed(CheckIn, view)


def _status_clause(status: str, params: list[Any], now: datetime) -> str:
    """SQL for the effective status: confirmed/pending past their deadline count as no_show.

    The deadline is the end of the window by default; with a configured no-show window the
    sweep persists it within a minute, so the end of the window is the safe bound here.
    """
    ts = iso(now)
    if status == "no_show":
        params.append(ts)
        return "(status = 'no_show' OR (status IN ('pending', 'confirmed') AND end_time <= ?))"
    if status in ("pending", "confirmed"):
        params.extend([status, ts])
        return "(status = ? AND end_time > ?)"
    params.append(status)
    return "status = ?"


class PlanController(Controller):
    path = "/membership-plans"
    tags = ["Memberships"]

    @get("/", opt=PUBLIC, responses=errors(400))
    async def list_plans(
        self, deps: NamedDependency[Deps], is_active: FromQuery[bool] = True
    ) -> list[Plan]:
        return [
            typed(Plan, plan_view(r))
            for r in rows(
                deps.db,
                "SELECT * FROM membership_plans WHERE is_active = ? ORDER BY id",
                [int(is_active)],
            )
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 409))
    async def create_plan(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], data: JSONBody[PlanIn]
    ) -> Plan:
        values = {
            "name": data.name.strip(),
            "description": data.description,
            "duration_months": data.duration_months,
            "price": data.price,
            "currency": data.currency.upper(),
            "vehicle_limit": data.vehicle_limit,
            "included_hours": data.included_hours,
            "discount_percentage": data.discount_percentage,
            "priority_reservation": data.priority_reservation,
            "ev_charging_included": data.ev_charging_included,
            "is_active": data.is_active,
        }
        plan_id = await deps.write(
            request, lambda db, ctx: memberships.create_plan(db, ctx, values)
        )
        return typed(
            Plan, plan_view(require(deps.db, "membership_plans", plan_id, "membership plan"))
        )

    @put("/{plan_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409))
    async def update_plan(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        plan_id: FromPath[int],
        data: JSONBody[PlanUpdate],
    ) -> Plan:
        changes = given(data)
        name = changes.get("name")
        if isinstance(name, str):
            changes["name"] = name.strip()
        currency = changes.get("currency")
        if isinstance(currency, str):
            changes["currency"] = currency.upper()  # as on create
        await deps.write(
            request, lambda db, ctx: memberships.update_plan(db, ctx, plan_id, changes)
        )
        return typed(
            Plan, plan_view(require(deps.db, "membership_plans", plan_id, "membership plan"))
        )


class MembershipController(Controller):
    path = "/memberships"
    tags = ["Memberships"]

    @post("/", status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def subscribe(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[SubscribeIn],
    ) -> MembershipPaid:
        membership_id, payment_id = await deps.write(
            request,
            lambda db, ctx: memberships.subscribe(
                db,
                ctx,
                plan_id=data.plan_id,
                vehicles=list(data.vehicle_ids),
                auto_renew=data.auto_renew,
                payment_method=data.payment_method,
            ),
        )
        view = BookingViews(deps.db, deps.ctx(request)).membership(membership_id)
        return typed(MembershipPaid, {"membership": view, "payment_id": payment_id})

    @get("/", responses=errors(400, *AUTH))
    async def list_memberships(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        page: Page = 1,
        limit: Limit = 20,
        status: FromQuery[MembershipStatus | None] = None,
    ) -> MembershipPage:
        """Customers (and operators) see their own; admins all."""
        ctx = deps.ctx(request)
        where: list[str] = []
        params: list[Any] = []
        if not request.user.is_admin:
            where.append("user_id = ?")
            params.append(request.user.id)
        if status is not None:
            today = ctx.utc_today.isoformat()
            if status == "expired":
                where.append(
                    "(status = 'expired' OR (status = 'active' AND auto_renew = 0 AND end_date < ?))"
                )
                params.append(today)
            elif status == "active":
                where.append("status = 'active' AND (auto_renew = 1 OR end_date >= ?)")
                params.append(today)
            else:
                where.append("status = ?")
                params.append(status)
        return typed(
            MembershipPage,
            paged(
                deps.db,
                key="memberships",
                table="memberships",
                where=where,
                params=params,
                page=page,
                limit=limit,
                render=BookingViews(deps.db, ctx).membership_row,
            ),
        )

    @get("/{membership_id:int}", responses=errors(400, *STAFF, 404))
    async def get_membership(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        membership_id: FromPath[int],
    ) -> Membership:
        row = require(deps.db, "memberships", membership_id, "membership")
        if not request.user.is_admin and row["user_id"] != request.user.id:
            raise Forbidden("this membership belongs to someone else")
        return typed(Membership, BookingViews(deps.db, deps.ctx(request)).membership_row(row))

    @get("/{membership_id:int}/usage", responses=errors(400, *STAFF, 404))
    async def usage(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        membership_id: FromPath[int],
    ) -> MembershipUsage:
        return typed(MembershipUsage, memberships.usage(deps.db, deps.ctx(request), membership_id))

    @post("/{membership_id:int}/cancel", status_code=200, responses=errors(400, *STAFF, 404, 409))
    async def cancel(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        membership_id: FromPath[int],
    ) -> Membership:
        await deps.write(request, lambda db, ctx: memberships.cancel(db, ctx, membership_id))
        return typed(Membership, BookingViews(deps.db, deps.ctx(request)).membership(membership_id))

    @post(
        "/{membership_id:int}/renew", status_code=200, responses=errors(400, *STAFF, 404, 409, 422)
    )
    async def renew(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        membership_id: FromPath[int],
    ) -> MembershipPaid:
        payment_id = await deps.write(
            request, lambda db, ctx: memberships.renew(db, ctx, membership_id)
        )
        view = BookingViews(deps.db, deps.ctx(request)).membership(membership_id)
        return typed(MembershipPaid, {"membership": view, "payment_id": payment_id})
