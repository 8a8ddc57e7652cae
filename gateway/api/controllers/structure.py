"""Levels, zones and spaces."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from gateway.api.auth import PUBLIC, admin, staff
from gateway.api.deps import Deps
from gateway.api.errors import BODY, STAFF, errors
from gateway.api.params import Limit, Page, QueryId, equal_to, paged
from gateway.api.responses import Level, Space, SpacePage, Zone, ZoneAvailability, typed
from gateway.api.schemas import (
    LevelIn,
    LevelUpdate,
    SpaceIn,
    SpaceStatus,
    SpaceType,
    SpaceUpdate,
    ZoneIn,
    ZoneUpdate,
    given,
)
from gateway.services import Actor, require, rows, structure
from gateway.services.views import level_view


class LevelController(Controller):
    path = "/levels"
    tags = ["Parking structure"]

    @get("/", opt=PUBLIC)
    async def list_levels(self, deps: NamedDependency[Deps]) -> list[Level]:
        return [
            typed(Level, level_view(r))
            for r in rows(deps.db, "SELECT * FROM levels ORDER BY floor_number, id")
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 409))
    async def create_level(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[LevelIn],
    ) -> Level:
        values = {
            "name": data.name.strip(),
            "floor_number": data.floor_number,
            "is_underground": data.is_underground,
            "max_height_m": data.max_height_m,
        }
        level_id = await deps.write(
            request, lambda db, ctx: structure.create_level(db, ctx, values)
        )
        return typed(Level, deps.views().level(level_id))

    @put("/{level_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409))
    async def update_level(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        level_id: FromPath[int],
        data: JSONBody[LevelUpdate],
    ) -> Level:
        changes = given(data)
        await deps.write(
            request, lambda db, ctx: structure.update_level(db, ctx, level_id, changes)
        )
        return typed(Level, level_view(require(deps.db, "levels", level_id, "level")))


class ZoneController(Controller):
    path = "/zones"
    tags = ["Parking structure"]

    @get("/", opt=PUBLIC, responses=errors(400))
    async def list_zones(self, deps: NamedDependency[Deps], level_id: QueryId = None) -> list[Zone]:
        views = deps.views()
        if level_id is None:
            found = rows(deps.db, "SELECT * FROM zones ORDER BY id")
        else:
            found = rows(deps.db, "SELECT * FROM zones WHERE level_id = ? ORDER BY id", [level_id])
        return [typed(Zone, views.zone_row(r)) for r in found]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 404, 409))
    async def create_zone(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any], data: JSONBody[ZoneIn]
    ) -> Zone:
        values = {
            "level_id": data.level_id,
            "name": data.name.strip(),
            "description": data.description,
            "total_spaces": data.total_spaces,
            "color_code": data.color_code,
        }
        zone_id = await deps.write(request, lambda db, ctx: structure.create_zone(db, ctx, values))
        return typed(Zone, deps.views().zone(zone_id))

    @put("/{zone_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409))
    async def update_zone(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        zone_id: FromPath[int],
        data: JSONBody[ZoneUpdate],
    ) -> Zone:
        changes = given(data)
        await deps.write(request, lambda db, ctx: structure.update_zone(db, ctx, zone_id, changes))
        return typed(Zone, deps.views().zone(zone_id))

    @get("/{zone_id:int}/availability", opt=PUBLIC, responses=errors(400, 404))
    async def availability(
        self, deps: NamedDependency[Deps], zone_id: FromPath[int]
    ) -> ZoneAvailability:
        return typed(ZoneAvailability, structure.zone_availability(deps.db, zone_id))


class SpaceController(Controller):
    path = "/spaces"
    tags = ["Parking structure"]

    @get("/", opt=PUBLIC, responses=errors(400))
    async def list_spaces(
        self,
        deps: NamedDependency[Deps],
        page: Page = 1,
        limit: Limit = 20,
        zone_id: QueryId = None,
        status: FromQuery[SpaceStatus | None] = None,
        space_type: FromQuery[SpaceType | None] = None,
    ) -> SpacePage:
        where: list[str] = []
        params: list[Any] = []
        equal_to(where, params, zone_id=zone_id, status=status, space_type=space_type)
        return typed(
            SpacePage,
            paged(
                deps.db,
                key="spaces",
                table="spaces",
                where=where,
                params=params,
                page=page,
                limit=limit,
                render=deps.views().space_row,
            ),
        )

    @get("/available", opt=PUBLIC, responses=errors(400))
    async def available(
        self,
        deps: NamedDependency[Deps],
        zone_id: QueryId = None,
        is_ev: FromQuery[bool | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
    ) -> list[Space]:
        where, params = ["status = 'available'"], []
        if zone_id is not None:
            where.append("zone_id = ?")
            params.append(zone_id)
        if is_ev is not None:
            where.append("is_ev_charging = ?")
            params.append(int(is_ev))
        views = deps.views()
        return [
            typed(Space, views.space_row(r))
            for r in rows(
                deps.db,
                f"SELECT * FROM spaces WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
                [*params, limit],
            )
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 404, 409))
    async def create_space(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[SpaceIn],
    ) -> Space:
        values = {
            "zone_id": data.zone_id,
            "space_number": data.space_number.strip(),
            "space_type": data.space_type,
            "floor": data.floor,
            "row": data.row,
            "is_ev_charging": data.is_ev_charging,
            "is_handicapped": data.is_handicapped,
        }
        space_id = await deps.write(
            request, lambda db, ctx: structure.create_space(db, ctx, values)
        )
        return typed(Space, deps.views().space(space_id))

    @put("/{space_id:int}", guards=[staff], responses=errors(*BODY, *STAFF, 404, 409))
    async def update_space(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        space_id: FromPath[int],
        data: JSONBody[SpaceUpdate],
    ) -> Space:
        changes = given(data)
        await deps.write(
            request, lambda db, ctx: structure.update_space(db, ctx, space_id, changes)
        )
        return typed(Space, deps.views().space(space_id))
