"""Commands from the central system: lane controls and the site's data pushed down.

A command is a JSON object with a ``request_id`` and its own fields. It is idempotent by
``request_id``: the result is stored with the change, in the same transaction where the
change is a database one, and a repeated request returns the stored result and does
nothing twice. A malformed command gets an error result and changes nothing.

Commands: ``open_lane``, ``set_lane_mode``, ``upsert_rate``, ``deactivate_rate``,
``upsert_discount``, ``deactivate_discount``, ``upsert_plan``, ``deactivate_plan``,
``upsert_plate_list``, ``upsert_membership``, ``cancel_membership``. Each has its input
Struct in :data:`COMMANDS` (what the AsyncAPI document publishes as its payload schema).

Central accounts are not pushed down: a site's console is for its own staff, whose
accounts the site makes (``carpark-gateway user create``); memberships sold centrally
need no local account, they cover plates (see :mod:`gateway.services.memberships`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct
from sqlite_utils import Database

from gateway.api.schemas import (
    NOT_BLANK,
    DiscountIn,
    DiscountUpdate,
    Id,
    PlanIn,
    PlanUpdate,
    PlateText,
    RateIn,
    RateUpdate,
    check_times,
    given,
    normal_time,
)
from gateway.domain.plates import InvalidPlate, normalize_plate
from gateway.errors import GatewayError, NotFound
from gateway.services import SYSTEM, Ctx, memberships, one, plates, pricing
from gateway.timeutil import iso, utc

RequestId = Annotated[str, Meta(min_length=1, max_length=128)]


class Envelope(Struct):
    request_id: RequestId


class OpenLane(Struct):
    request_id: RequestId
    lane_id: Annotated[str, Meta(min_length=1, max_length=100)]
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]


class SetLaneMode(Struct):
    request_id: RequestId
    lane_id: Annotated[str, Meta(min_length=1, max_length=100)]
    mode: Literal["normal", "locked_open", "locked_closed", "free_exit"]


class ById(Struct):
    request_id: RequestId
    id: Id


class ByCode(Struct):
    request_id: RequestId
    code: Annotated[str, Meta(min_length=1, max_length=50)]


class ListEntry(Struct):
    plate: PlateText
    list: Literal["allow", "deny"]
    lane_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    reason: Annotated[str, Meta(max_length=200)] | None = None


class Removal(Struct):
    plate: PlateText
    lane_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None


class UpsertPlateList(Struct):
    request_id: RequestId
    entries: Annotated[list[ListEntry], Meta(max_length=10_000)] = msgspec.field(
        default_factory=list
    )
    remove: Annotated[list[Removal], Meta(max_length=10_000)] = msgspec.field(default_factory=list)


B = TypeVar("B", bound=Struct)


def _body(raw: dict[str, Any], kind: type[B]) -> B:
    """The same Struct, and the same rules (dates in 2000..2099), as the REST API's body."""
    value = msgspec.convert(raw, kind, strict=True)
    check_times(value)
    return value


ExternalId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^\S+$")]


class UpsertMembership(Struct, forbid_unknown_fields=True):
    """A membership sold centrally: the whole of it, replacing what the site had."""

    request_id: RequestId
    external_id: ExternalId
    plan: Annotated[str, Meta(min_length=1, max_length=100)]  # the plan's name
    vehicles: Annotated[list[PlateText], Meta(max_length=50)]  # licence plates
    valid_from: date
    valid_to: date
    status: Literal["active", "suspended", "cancelled", "expired"] = "active"


class CancelMembership(Struct, forbid_unknown_fields=True):
    request_id: RequestId
    external_id: ExternalId


# -- the documented payloads (what /asyncapi.json publishes for each command) ------------------
# The create/change forms of the upserts take the API's own input Structs plus the command's
# keys, so the document follows the API's fields. (Issue 13 will let the handlers convert
# into these directly; today they convert into the same API Structs field by field.)


class UpsertRateNew(RateIn, kw_only=True):
    """Without ``id``: a new rate."""

    request_id: RequestId


class UpsertRateChange(RateUpdate, kw_only=True):
    """With the ``id`` of an existing rate: the given fields change."""

    request_id: RequestId
    id: Id


class UpsertDiscount(DiscountIn, kw_only=True):
    """A new code: a new discount."""

    request_id: RequestId


class UpsertDiscountChange(DiscountUpdate, kw_only=True):
    """An existing code: the given fields change."""

    request_id: RequestId
    code: Annotated[str, Meta(min_length=1, max_length=50)]


class UpsertPlan(PlanIn, kw_only=True):
    """A new name: a new plan."""

    request_id: RequestId


class UpsertPlanChange(PlanUpdate, kw_only=True):
    """An existing name: the given fields change."""

    request_id: RequestId
    name: Annotated[str, Meta(min_length=1, max_length=100)]


class CommandDoc(Struct, frozen=True):
    summary: str
    payload: tuple[type[Struct], ...]  # one of these
    example: dict[str, Any]


COMMANDS: dict[str, CommandDoc] = {
    "open_lane": CommandDoc(
        "Open a lane's barrier once (an operator's open, audited with the reason).",
        (OpenLane,),
        {"request_id": "c-1", "lane_id": "exit-1", "reason": "ambulance"},
    ),
    "set_lane_mode": CommandDoc(
        "Put a lane in a mode.",
        (SetLaneMode,),
        {"request_id": "c-2", "lane_id": "exit-1", "mode": "free_exit"},
    ),
    "upsert_rate": CommandDoc(
        "Create a rate, or change the given fields of the rate ``id``.",
        (UpsertRateNew, UpsertRateChange),
        {
            "request_id": "c-3",
            "name": "Central hourly",
            "amount": 3.5,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    ),
    "deactivate_rate": CommandDoc("Stop using a rate.", (ById,), {"request_id": "c-4", "id": 1}),
    "upsert_discount": CommandDoc(
        "Create a discount code, or change the given fields of an existing code.",
        (UpsertDiscount, UpsertDiscountChange),
        {
            "request_id": "c-5",
            "code": "CENTRAL10",
            "name": "Central 10%",
            "value": 10,
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_to": "2030-01-01T00:00:00Z",
        },
    ),
    "deactivate_discount": CommandDoc(
        "Stop accepting a discount code.", (ByCode,), {"request_id": "c-6", "code": "CENTRAL10"}
    ),
    "upsert_plan": CommandDoc(
        "Create a membership plan, or change the given fields of the plan ``name``.",
        (UpsertPlan, UpsertPlanChange),
        {
            "request_id": "c-7",
            "name": "Fleet",
            "duration_months": 1,
            "price": 0,
            "vehicle_limit": 3,
            "discount_percentage": 100,
        },
    ),
    "deactivate_plan": CommandDoc(
        "Stop selling a membership plan.", (ById,), {"request_id": "c-8", "id": 1}
    ),
    "upsert_plate_list": CommandDoc(
        "Add or replace allow/deny list entries, and remove others.",
        (UpsertPlateList,),
        {
            "request_id": "c-9",
            "entries": [{"plate": "VIP1", "list": "allow", "lane_id": "exit-1"}],
            "remove": [{"plate": "OLD1"}],
        },
    ),
    "upsert_membership": CommandDoc(
        "Create or replace the membership ``external_id`` sold centrally; its plates are"
        " recognised by the lanes as soon as the result is ok.",
        (UpsertMembership,),
        {
            "request_id": "c-10",
            "external_id": "CRM-1001",
            "plan": "Fleet",
            "vehicles": ["AB123CD"],
            "valid_from": "2024-01-01",
            "valid_to": "2030-12-31",
            "status": "active",
        },
    ),
    "cancel_membership": CommandDoc(
        "Cancel the membership ``external_id``.",
        (CancelMembership,),
        {"request_id": "c-11", "external_id": "CRM-1001"},
    ),
}


class CommandResult(Struct, forbid_unknown_fields=True):
    """What ``cmd/<name>/result`` carries (``request_id`` null for a message without one)."""

    request_id: str | None
    status: Literal["ok", "error"]
    data: Any = msgspec.UNSET
    error: str | msgspec.UnsetType = msgspec.UNSET
    duplicate: bool | msgspec.UnsetType = msgspec.UNSET  # a repeat: the stored result


class CommandError(Exception):
    """The command cannot be carried out; the message goes into the error result."""


Result = dict[str, Any]


class CommandHandler:
    def __init__(self, deps: Any, lanes: Any) -> None:
        self.deps, self.lanes = deps, lanes
        self._db_commands: dict[str, Callable[[dict[str, Any], Ctx], Callable[[Database], Any]]] = {
            "upsert_rate": self._upsert_rate,
            "deactivate_rate": self._deactivate_rate,
            "upsert_discount": self._upsert_discount,
            "deactivate_discount": self._deactivate_discount,
            "upsert_plan": self._upsert_plan,
            "deactivate_plan": self._deactivate_plan,
            "upsert_plate_list": self._upsert_plate_list,
            "upsert_membership": self._upsert_membership,
            "cancel_membership": self._cancel_membership,
        }
        self._lane_commands: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "open_lane": self._open_lane,
            "set_lane_mode": self._set_lane_mode,
        }

    @property
    def names(self) -> list[str]:
        return sorted([*self._db_commands, *self._lane_commands])

    async def handle(self, name: str, payload: bytes) -> Result:
        """Run one command; always returns the result to publish (never raises for bad input)."""
        try:
            raw = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return _error(None, "the command is not valid JSON")
        if not isinstance(raw, dict):
            return _error(None, "the command must be a JSON object")
        request_id = raw.get("request_id")
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 128:
            return _error(None, "request_id (a string of 1..128 characters) is required")
        stored = one(
            self.deps.store.reader, "SELECT * FROM commands WHERE request_id = ?", [request_id]
        )
        if stored is not None:
            previous: Result = json.loads(stored["result"])
            return {**previous, "duplicate": True}
        if name not in self._db_commands and name not in self._lane_commands:
            return await self._record(name, _error(request_id, f"unknown command {name!r}"))
        ctx = self.deps.ctx_for(SYSTEM)
        try:
            if name in self._lane_commands:
                data = await self._lane_commands[name](raw)
                return await self._record(name, _ok(request_id, data))
            change = self._db_commands[name](raw, ctx)
        except (msgspec.ValidationError, CommandError, InvalidPlate, GatewayError) as err:
            return await self._record(name, _error(request_id, _message(err)))

        def apply(db: Database) -> Result:
            data = change(db)
            result = _ok(request_id, data)
            _store(db, request_id, name, result, ctx)
            return result

        try:
            written: Result = await self.deps.store.write(apply)
            return written
        except GatewayError as err:
            return await self._record(name, _error(request_id, err.detail))

    async def _record(self, name: str, result: Result) -> Result:
        if result.get("request_id") is None:
            return result
        ctx = self.deps.ctx_for(SYSTEM)
        await self.deps.store.write(lambda db: _store(db, result["request_id"], name, result, ctx))
        return result

    # -- lanes --------------------------------------------------------------------------
    async def _open_lane(self, raw: dict[str, Any]) -> Any:
        cmd = msgspec.convert(raw, OpenLane, strict=True)
        await self.lanes.open(cmd.lane_id, cmd.reason.strip(), "central")
        return {"lane_id": cmd.lane_id}

    async def _set_lane_mode(self, raw: dict[str, Any]) -> Any:
        cmd = msgspec.convert(raw, SetLaneMode, strict=True)
        await self.lanes.set_mode(cmd.lane_id, cmd.mode, "central")
        return {"lane_id": cmd.lane_id, "mode": cmd.mode}

    # -- rates, discounts, plans ------------------------------------------------------------
    def _upsert_rate(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        """With an ``id`` of an existing rate: update its given fields; otherwise create it."""
        fields = {k: v for k, v in raw.items() if k not in ("request_id", "id")}
        rate_id = raw.get("id")
        if rate_id is not None:
            if isinstance(rate_id, bool) or not isinstance(rate_id, int):
                raise CommandError("id must be an integer")
            changes = given(_body(fields, RateUpdate))
            for key in ("peak_start_time", "peak_end_time"):
                if key in changes:
                    changes[key] = normal_time(changes[key])  # type: ignore[arg-type]
            if changes.get("effective_to") is not None:
                changes["effective_to"] = utc(changes["effective_to"])  # type: ignore[arg-type]

            def update(db: Database) -> Any:
                pricing.update_rate(db, ctx, rate_id, changes)
                return {"id": rate_id, "created": False}

            return update
        rate = _body(fields, RateIn)
        values = {
            "name": rate.name.strip(),
            "rate_type": rate.rate_type,
            "amount": rate.amount,
            "currency": rate.currency.upper(),
            "vehicle_type_id": rate.vehicle_type_id,
            "zone_id": rate.zone_id,
            "grace_period_minutes": rate.grace_period_minutes,
            "effective_from": utc(rate.effective_from),
            "effective_to": utc(rate.effective_to) if rate.effective_to else None,
            "peak_multiplier": rate.peak_multiplier,
            "peak_start_time": normal_time(rate.peak_start_time),
            "peak_end_time": normal_time(rate.peak_end_time),
            "min_duration_minutes": rate.min_duration_minutes,
            "max_duration_minutes": rate.max_duration_minutes,
        }
        return lambda db: {"id": pricing.create_rate(db, ctx, values), "created": True}

    def _deactivate_rate(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, ById, strict=True)

        def run(db: Database) -> Any:
            pricing.deactivate_rate(db, ctx, cmd.id)
            return {"id": cmd.id}

        return run

    def _upsert_discount(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        """Discounts are keyed by their code: an existing code is updated, a new one created."""
        code = raw.get("code")
        if not isinstance(code, str) or not code.strip():
            raise CommandError("code is required")
        code = code.strip().upper()
        existing = one(self.deps.store.reader, "SELECT id FROM discounts WHERE code = ?", [code])
        fields = {k: v for k, v in raw.items() if k not in ("request_id",)}
        if existing is not None:
            changes = given(_body({k: v for k, v in fields.items() if k != "code"}, DiscountUpdate))
            for key in ("valid_from", "valid_to"):
                if key in changes:
                    changes[key] = utc(changes[key])  # type: ignore[arg-type]

            def update(db: Database) -> Any:
                pricing.update_discount(db, ctx, existing["id"], changes)
                return {"id": existing["id"], "code": code, "created": False}

            return update
        discount = _body(fields, DiscountIn)
        values = {
            "code": code,
            "name": discount.name.strip(),
            "discount_type": discount.discount_type,
            "value": discount.value,
            "valid_from": utc(discount.valid_from),
            "valid_to": utc(discount.valid_to),
            "max_uses": discount.max_uses,
            "max_uses_per_user": discount.max_uses_per_user,
            "min_duration_hours": discount.min_duration_hours,
            "partner_name": discount.partner_name,
        }
        return lambda db: {
            "id": pricing.create_discount(db, ctx, values),
            "code": code,
            "created": True,
        }

    def _deactivate_discount(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, ByCode, strict=True)
        code = cmd.code.strip().upper()

        def run(db: Database) -> Any:
            row = one(db, "SELECT id FROM discounts WHERE code = ?", [code])
            if row is None:
                raise NotFound(f"no discount with code {code}")
            pricing.deactivate_discount(db, ctx, row["id"])
            return {"id": row["id"], "code": code}

        return run

    def _upsert_plan(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        """Plans are keyed by their name."""
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise CommandError("name is required")
        name = name.strip()
        existing = one(
            self.deps.store.reader, "SELECT id FROM membership_plans WHERE name = ?", [name]
        )
        fields = {k: v for k, v in raw.items() if k != "request_id"}
        if existing is not None:
            changes = given(
                msgspec.convert(
                    {k: v for k, v in fields.items() if k != "name"}, PlanUpdate, strict=True
                )
            )

            def update(db: Database) -> Any:
                memberships.update_plan(db, ctx, existing["id"], changes)
                return {"id": existing["id"], "name": name, "created": False}

            return update
        plan = _body(fields, PlanIn)
        values = {
            "name": name,
            "description": plan.description,
            "duration_months": plan.duration_months,
            "price": plan.price,
            "currency": plan.currency.upper(),
            "vehicle_limit": plan.vehicle_limit,
            "included_hours": plan.included_hours,
            "discount_percentage": plan.discount_percentage,
            "priority_reservation": plan.priority_reservation,
            "ev_charging_included": plan.ev_charging_included,
            "is_active": plan.is_active,
        }
        return lambda db: {
            "id": memberships.create_plan(db, ctx, values),
            "name": name,
            "created": True,
        }

    def _deactivate_plan(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, ById, strict=True)

        def run(db: Database) -> Any:
            memberships.update_plan(db, ctx, cmd.id, {"is_active": False})
            return {"id": cmd.id}

        return run

    def _upsert_plate_list(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, UpsertPlateList, strict=True)
        known = set(self.lanes.lanes) if self.lanes is not None else set()
        for lane_id in [e.lane_id for e in cmd.entries] + [r.lane_id for r in cmd.remove]:
            if lane_id is not None and lane_id not in known:
                raise CommandError(f"unknown lane {lane_id}")
        entries = [(normalize_plate(e.plate), e) for e in cmd.entries]
        removals = [(normalize_plate(r.plate), r.lane_id) for r in cmd.remove]

        def run(db: Database) -> Any:
            for plate, entry in entries:
                plates.upsert_list_entry(
                    db,
                    ctx,
                    plate=plate,
                    list_type=entry.list,
                    lane_id=entry.lane_id,
                    reason=entry.reason,
                    valid_until=None,
                )
            removed = 0
            for plate, lane_id in removals:
                row = one(
                    db,
                    "SELECT id FROM plate_lists WHERE plate = ? AND IFNULL(lane_id, '') = IFNULL(?, '')",
                    [plate, lane_id],
                )
                if row is not None:
                    plates.remove_list_entry(db, ctx, row["id"])
                    removed += 1
            return {"upserted": len(entries), "removed": removed}

        return run

    # -- memberships sold centrally -----------------------------------------------------------
    def _upsert_membership(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, UpsertMembership, strict=False)
        plates_ = [normalize_plate(p) for p in cmd.vehicles]
        return lambda db: memberships.upsert_central(
            db,
            ctx,
            external_id=cmd.external_id,
            plan_name=cmd.plan.strip(),
            plates=plates_,
            valid_from=cmd.valid_from,
            valid_to=cmd.valid_to,
            status=cmd.status,
        )

    def _cancel_membership(self, raw: dict[str, Any], ctx: Ctx) -> Callable[[Database], Any]:
        cmd = msgspec.convert(raw, CancelMembership, strict=True)
        return lambda db: memberships.cancel_central(db, ctx, cmd.external_id)


def _store(db: Database, request_id: str, name: str, result: Result, ctx: Ctx) -> None:
    db.execute(
        "INSERT OR IGNORE INTO commands (request_id, name, status, result, received_at) VALUES (?, ?, ?, ?, ?)",
        [request_id, name, result["status"], json.dumps(result), iso(ctx.now)],
    )


def _ok(request_id: str, data: Any) -> Result:
    return {"request_id": request_id, "status": "ok", "data": data}


def _error(request_id: str | None, message: str) -> Result:
    return {"request_id": request_id, "status": "error", "error": message}


def _message(err: Exception) -> str:
    if isinstance(err, GatewayError):
        return err.detail
    return str(err) or type(err).__name__
