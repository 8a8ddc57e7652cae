"""Lanes: their live state, and the operator's open and mode controls (both audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from gateway.api.auth import admin, staff
from gateway.api.deps import Deps
from gateway.api.errors import BODY, STAFF, errors
from gateway.api.responses import LaneMode, LaneOpening, LaneStatus, typed
from gateway.api.schemas import NOT_BLANK, Body
from gateway.services import Actor


class OpenIn(Body):
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]


class ModeIn(Body):
    mode: Literal["normal", "locked_open", "locked_closed", "free_exit"]


class LaneController(Controller):
    path = "/lanes"
    tags = ["Lanes"]
    guards = [staff]

    @get("/", responses=errors(*STAFF))
    async def list_lanes(self, deps: NamedDependency[Deps]) -> list[LaneStatus]:
        return [typed(LaneStatus, status) for status in deps.lanes.statuses()]

    @get("/{lane_id:str}", responses=errors(*STAFF, 404))
    async def get_lane(self, deps: NamedDependency[Deps], lane_id: FromPath[str]) -> LaneStatus:
        return typed(LaneStatus, deps.lanes.get(lane_id).status())

    @post("/{lane_id:str}/open", status_code=200, responses=errors(*BODY, *STAFF, 404, 503))
    async def open_lane(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        lane_id: FromPath[str],
        data: JSONBody[OpenIn],
    ) -> LaneOpening:
        """Open the barrier for whoever is in the lane; answers once the audit event is stored.

        503 with ``reason: barrier_unreachable`` (and nothing recorded) while the barrier
        does not answer; an accepted open is re-sent until the barrier follows.
        """
        await deps.lanes.open(lane_id, data.reason.strip(), request.user.email)
        return LaneOpening(lane_id=lane_id, status="opening", reason=data.reason.strip())

    @put("/{lane_id:str}/mode", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def set_mode(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        lane_id: FromPath[str],
        data: JSONBody[ModeIn],
    ) -> LaneMode:
        await deps.lanes.set_mode(lane_id, data.mode, request.user.email)
        return LaneMode(lane_id=lane_id, mode=data.mode)
