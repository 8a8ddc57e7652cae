"""Rates, payments and discount codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.api.auth import PUBLIC, admin
from gateway.api.deps import Deps
from gateway.api.errors import AUTH, BODY, STAFF, errors
from gateway.api.params import Limit, Page, QueryId, equal_to, paged
from gateway.api.responses import (
    Discount,
    DiscountValidation,
    Message,
    Payment,
    PaymentPage,
    Rate,
    ValidateExit,
    typed,
)
from gateway.api.schemas import (
    DiscountIn,
    DiscountUpdate,
    DiscountValidateIn,
    PaymentIn,
    PaymentStatus,
    RateIn,
    RateUpdate,
    ValidateExitIn,
    given,
    normal_time,
)
from gateway.domain.discounts import discount_amount, unusable_reason
from gateway.errors import Forbidden
from gateway.services import Actor, pricing, require, rows
from gateway.services import payments as payment_service
from gateway.services.payments import quote
from gateway.services.pricing import load_discount
from gateway.services.sessions import session_fee
from gateway.services.views import discount_view, money, payment_view, rate_view
from gateway.timeutil import utc


class RateController(Controller):
    path = "/rates"
    tags = ["Rates"]

    @get("/", opt=PUBLIC, responses=errors(400))
    async def list_rates(
        self,
        deps: NamedDependency[Deps],
        vehicle_type_id: QueryId = None,
        zone_id: QueryId = None,
        is_active: FromQuery[bool] = True,
    ) -> list[Rate]:
        where, params = ["is_active = ?"], [int(is_active)]
        equal_to(where, params, vehicle_type_id=vehicle_type_id, zone_id=zone_id)
        return [
            typed(Rate, rate_view(r))
            for r in rows(
                deps.db, f"SELECT * FROM rates WHERE {' AND '.join(where)} ORDER BY id", params
            )
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def create_rate(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], data: JSONBody[RateIn]
    ) -> Rate:
        values = {
            "name": data.name.strip(),
            "rate_type": data.rate_type,
            "amount": data.amount,
            "currency": data.currency.upper(),
            "vehicle_type_id": data.vehicle_type_id,
            "zone_id": data.zone_id,
            "grace_period_minutes": data.grace_period_minutes,
            "effective_from": utc(data.effective_from),
            "effective_to": utc(data.effective_to) if data.effective_to else None,
            "peak_multiplier": data.peak_multiplier,
            "peak_start_time": normal_time(data.peak_start_time),
            "peak_end_time": normal_time(data.peak_end_time),
            "min_duration_minutes": data.min_duration_minutes,
            "max_duration_minutes": data.max_duration_minutes,
        }
        rate_id = await deps.write(request, lambda db, ctx: pricing.create_rate(db, ctx, values))
        return typed(Rate, rate_view(require(deps.db, "rates", rate_id, "rate")))

    @put("/{rate_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def update_rate(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        rate_id: FromPath[int],
        data: JSONBody[RateUpdate],
    ) -> Rate:
        changes = given(data)
        for key in ("peak_start_time", "peak_end_time"):
            if key in changes:
                changes[key] = normal_time(changes[key])  # type: ignore[arg-type]
        if changes.get("effective_to") is not None:
            changes["effective_to"] = utc(changes["effective_to"])  # type: ignore[arg-type]
        await deps.write(request, lambda db, ctx: pricing.update_rate(db, ctx, rate_id, changes))
        return typed(Rate, rate_view(require(deps.db, "rates", rate_id, "rate")))

    @delete("/{rate_id:int}", guards=[admin], status_code=200, responses=errors(400, *STAFF, 404))
    async def deactivate_rate(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], rate_id: FromPath[int]
    ) -> Message:
        await deps.write(request, lambda db, ctx: pricing.deactivate_rate(db, ctx, rate_id))
        return Message(message=f"rate {rate_id} deactivated")


class PaymentController(Controller):
    path = "/payments"
    tags = ["Payments"]

    @post("/", status_code=201, responses=errors(*BODY, *AUTH, 402, 404, 409, 422))
    async def pay(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[PaymentIn],
    ) -> Payment:
        """Anyone logged in may pay for any session (a booth operator pays for a walk-in driver)."""
        payment_id = await deps.write(
            request,
            lambda db, ctx: payment_service.pay(
                db,
                ctx,
                session_id=data.session_id,
                payment_method=data.payment_method,
                amount=data.amount,
                discount_code=data.discount_code,
            ),
        )
        return typed(Payment, payment_view(require(deps.db, "payments", payment_id, "payment")))

    @get("/", responses=errors(400, *AUTH))
    async def list_payments(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        page: Page = 1,
        limit: Limit = 20,
        status: FromQuery[PaymentStatus | None] = None,
        session_id: QueryId = None,
    ) -> PaymentPage:
        """Admins see every payment; everyone else the payments they made."""
        where: list[str] = []
        params: list[Any] = []
        if not request.user.is_admin:
            where.append("user_id = ?")
            params.append(request.user.id)
        equal_to(where, params, status=status, session_id=session_id)
        result = paged(
            deps.db,
            key="payments",
            table="payments",
            where=where,
            params=params,
            page=page,
            limit=limit,
            render=payment_view,
        )
        clause = " AND ".join(where) or "1 = 1"
        total = sum(
            (
                Decimal(r["total_amount"])
                for r in rows(deps.db, f"SELECT total_amount FROM payments WHERE {clause}", params)
            ),
            Decimal(0),
        )
        result["total_amount"] = money(total)
        return typed(PaymentPage, result)

    @get("/{payment_id:int}", responses=errors(400, *STAFF, 404))
    async def get_payment(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        payment_id: FromPath[int],
    ) -> Payment:
        row = require(deps.db, "payments", payment_id, "payment")
        if not request.user.is_admin and row["user_id"] != request.user.id:
            raise Forbidden("this payment was made by someone else")
        return typed(Payment, payment_view(row))

    @post("/validate-exit", opt=PUBLIC, status_code=200, responses=errors(*BODY, 404))
    async def validate_exit(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        data: JSONBody[ValidateExitIn],
    ) -> ValidateExit:
        view = payment_service.validate_exit(
            deps.db, deps.ctx(request), data.ticket_number.strip().upper()
        )
        return typed(ValidateExit, view)


class DiscountController(Controller):
    path = "/discounts"
    tags = ["Discounts"]

    @get("/", guards=[admin], responses=errors(400, *STAFF))
    async def list_discounts(
        self,
        deps: NamedDependency[Deps],
        is_active: FromQuery[bool] = True,
        partner_name: FromQuery[str | None] = None,
    ) -> list[Discount]:
        where: list[str] = ["is_active = ?"]
        params: list[Any] = [int(is_active)]
        if partner_name:
            where.append("partner_name LIKE ? ESCAPE '\\'")
            escaped = partner_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return [
            typed(Discount, discount_view(r))
            for r in rows(
                deps.db, f"SELECT * FROM discounts WHERE {' AND '.join(where)} ORDER BY id", params
            )
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 409, 422))
    async def create_discount(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[DiscountIn],
    ) -> Discount:
        values = {
            "code": data.code.strip().upper(),
            "name": data.name.strip(),
            "discount_type": data.discount_type,
            "value": data.value,
            "valid_from": utc(data.valid_from),
            "valid_to": utc(data.valid_to),
            "max_uses": data.max_uses,
            "max_uses_per_user": data.max_uses_per_user,
            "min_duration_hours": data.min_duration_hours,
            "partner_name": data.partner_name,
        }
        discount_id = await deps.write(
            request, lambda db, ctx: pricing.create_discount(db, ctx, values)
        )
        return typed(
            Discount, discount_view(require(deps.db, "discounts", discount_id, "discount"))
        )

    @put("/{discount_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 422))
    async def update_discount(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        discount_id: FromPath[int],
        data: JSONBody[DiscountUpdate],
    ) -> Discount:
        changes = given(data)
        for key in ("valid_from", "valid_to"):
            if key in changes:
                changes[key] = utc(changes[key])  # type: ignore[arg-type]
        await deps.write(
            request, lambda db, ctx: pricing.update_discount(db, ctx, discount_id, changes)
        )
        return typed(
            Discount, discount_view(require(deps.db, "discounts", discount_id, "discount"))
        )

    @delete(
        "/{discount_id:int}", guards=[admin], status_code=200, responses=errors(400, *STAFF, 404)
    )
    async def deactivate_discount(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        discount_id: FromPath[int],
    ) -> Message:
        await deps.write(request, lambda db, ctx: pricing.deactivate_discount(db, ctx, discount_id))
        return Message(message=f"discount {discount_id} deactivated")

    @post("/validate", opt=PUBLIC, status_code=200, responses=errors(*BODY, 404))
    async def validate(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        data: JSONBody[DiscountValidateIn],
    ) -> DiscountValidation:
        ctx = deps.ctx(request)
        session = (
            require(deps.db, "sessions", data.session_id, "session") if data.session_id else None
        )
        found = load_discount(deps.db, data.code)
        stay = session_fee(deps.db, session, None, ctx.now) if session else None
        reason = unusable_reason(
            found[0] if found else None,
            ctx.now,
            stay_minutes=stay.duration_minutes if stay else None,
        )
        amount = None
        if reason is None and session is not None and found is not None:
            q = quote(deps.db, ctx, session, None)
            amount = money(
                discount_amount(found[0], q.parking_due, stay.hourly_amount if stay else None)
            )
        view = {
            "is_valid": reason is None,
            "discount": discount_view(found[1]) if found and reason is None else None,
            "discount_amount": amount,
            "message": reason,
        }
        return typed(DiscountValidation, view)
