"""Lanes: their live state, and the operator's open and mode controls (both audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct

from gateway.api.auth import admin, staff
from gateway.api.deps import Deps
from gateway.services import Actor


class OpenIn(Struct):
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]


class ModeIn(Struct):
    mode: Literal["normal", "locked_open", "locked_closed", "free_exit"]


class LaneController(Controller):
    path = "/lanes"
    tags = ["Lanes"]
    guards = [staff]

    @get("/")
    async def list_lanes(self, deps: NamedDependency[Deps]) -> list[dict[str, Any]]:
        return list(deps.lanes.statuses())

    @get("/{lane_id:str}")
    async def get_lane(self, deps: NamedDependency[Deps], lane_id: FromPath[str]) -> dict[str, Any]:
        return dict(deps.lanes.get(lane_id).status())

    @post("/{lane_id:str}/open", status_code=200)
    async def open_lane(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        lane_id: FromPath[str],
        data: JSONBody[OpenIn],
    ) -> dict[str, Any]:
        """Open the barrier for whoever is in the lane; answers once the audit event is stored.

        503 with ``reason: barrier_unreachable`` (and nothing recorded) while the barrier
        does not answer; an accepted open is re-sent until the barrier follows.
        """
        await deps.lanes.open(lane_id, data.reason.strip(), request.user.email)
        return {"lane_id": lane_id, "status": "opening", "reason": data.reason.strip()}

    @put("/{lane_id:str}/mode", guards=[admin])
    async def set_mode(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        lane_id: FromPath[str],
        data: JSONBody[ModeIn],
    ) -> dict[str, Any]:
        await deps.lanes.set_mode(lane_id, data.mode, request.user.email)
        return {"lane_id": lane_id, "mode": data.mode}
