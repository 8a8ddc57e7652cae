"""Vehicle types and vehicles."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from gateway.api.auth import PUBLIC, admin
from gateway.api.deps import Deps
from gateway.api.errors import AUTH, BODY, STAFF, errors
from gateway.api.params import Limit, Page, QueryId, paged
from gateway.api.responses import Message, Vehicle, VehiclePage, VehicleType, typed
from gateway.api.schemas import VehicleIn, VehicleTypeIn, VehicleUpdate, given
from gateway.domain.plates import normalize_plate
from gateway.errors import Forbidden
from gateway.services import Actor, rows, vehicles
from gateway.services.views import vehicle_type_view


class VehicleTypeController(Controller):
    path = "/vehicle-types"
    tags = ["Vehicles"]

    @get("/", opt=PUBLIC)
    async def list_types(self, deps: NamedDependency[Deps]) -> list[VehicleType]:
        return [
            typed(VehicleType, vehicle_type_view(r))
            for r in rows(deps.db, "SELECT * FROM vehicle_types ORDER BY id")
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 409))
    async def create_type(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[VehicleTypeIn],
    ) -> VehicleType:
        type_id = await deps.write(
            request,
            lambda db, ctx: vehicles.create_vehicle_type(
                db,
                ctx,
                name=data.name.strip(),
                size_category=data.size_category,
                description=data.description,
            ),
        )
        return typed(VehicleType, deps.views().vehicle_type(type_id))


class VehicleController(Controller):
    path = "/vehicles"
    tags = ["Vehicles"]

    @get("/", responses=errors(400, *AUTH))
    async def list_vehicles(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        page: Page = 1,
        limit: Limit = 20,
        user_id: QueryId = None,
    ) -> VehiclePage:
        """Customers and operators see their own vehicles; admins all (``user_id`` filters)."""
        actor = request.user
        owner = user_id if actor.is_admin else actor.id
        where, params = (["user_id = ?"], [owner]) if owner is not None else ([], [])
        return typed(
            VehiclePage,
            paged(
                deps.db,
                key="vehicles",
                table="vehicles",
                where=where,
                params=params,
                page=page,
                limit=limit,
                render=deps.views().vehicle_row,
            ),
        )

    @post("/", status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def create_vehicle(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[VehicleIn],
    ) -> Vehicle:
        actor = request.user
        owner = actor.id
        if data.user_id is not None and data.user_id != actor.id:
            if not actor.is_admin:
                raise Forbidden("only admins may register a vehicle for another user")
            owner = data.user_id
        plate = normalize_plate(data.license_plate)
        vehicle_id = await deps.write(
            request,
            lambda db, ctx: vehicles.create_vehicle(
                db,
                ctx,
                license_plate=plate,
                vehicle_type_id=data.vehicle_type_id,
                user_id=owner,
                make=data.make,
                model=data.model,
                color=data.color,
                is_ev=data.is_ev,
            ),
        )
        return typed(Vehicle, deps.views().vehicle(vehicle_id))

    @get("/plate/{plate:str}", responses=errors(*STAFF, 404, 422))
    async def by_plate(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], plate: FromPath[str]
    ) -> Vehicle:
        ctx = deps.ctx(request)
        row = vehicles.find_by_plate(deps.db, ctx, normalize_plate(plate))
        return typed(Vehicle, deps.views().vehicle_row(row))

    @put("/{vehicle_id:int}", responses=errors(*BODY, *STAFF, 404))
    async def update_vehicle(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        vehicle_id: FromPath[int],
        data: JSONBody[VehicleUpdate],
    ) -> Vehicle:
        changes = given(data)
        await deps.write(
            request, lambda db, ctx: vehicles.update_vehicle(db, ctx, vehicle_id, changes)
        )
        return typed(Vehicle, deps.views().vehicle(vehicle_id))

    @delete("/{vehicle_id:int}", status_code=200, responses=errors(400, *STAFF, 404, 409))
    async def delete_vehicle(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        vehicle_id: FromPath[int],
    ) -> Message:
        await deps.write(request, lambda db, ctx: vehicles.delete_vehicle(db, ctx, vehicle_id))
        return Message(message=f"vehicle {vehicle_id} removed")
