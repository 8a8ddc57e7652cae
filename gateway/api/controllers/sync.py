"""HTTP sync for the central system: pull the outbox in order, and the Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import QueryParameter
from litestar.security.jwt import Token
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.auth import PUBLIC
from gateway.api.deps import Deps
from gateway.api.errors import STAFF, errors
from gateway.api.responses import Events, typed
from gateway.services import one
from gateway.upstream import outbox


class SyncController(Controller):
    path = "/sync"
    tags = ["Sync"]

    @get("/events", opt=PUBLIC, responses=errors(400, *STAFF))
    async def events(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        after: Annotated[int, QueryParameter(ge=0, description="the last sequence you have")] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=5000)] = 500,
    ) -> Events:
        """Outbox events after a sequence number, oldest first, with the cursor to ask for next.

        Authorised by the sync API key (``X-Sync-Key``) or an admin's bearer token.
        """
        _authorise(deps, request)
        batch = outbox.events_after(deps.db, after, limit + 1)
        more = len(batch) > limit
        batch = batch[:limit]
        site = deps.config.site.id
        view = {
            "site_id": site,
            "events": [outbox.envelope(row, site) for row in batch],
            "next": batch[-1]["id"] if batch else after,
            "has_more": more,
        }
        return typed(Events, view)


def _authorise(deps: Deps, request: Request[Any, Any, Any]) -> None:
    key = deps.config.sync.api_key
    given = request.headers.get("x-sync-key")
    if given is not None:
        if key and hmac.compare_digest(key, given):
            return
        raise NotAuthorizedException("wrong sync key")
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "bearer" or not encoded:
        raise NotAuthorizedException("X-Sync-Key or an admin's bearer token required")
    try:
        token = Token.decode(encoded, deps.config.auth.secret_key, "HS256")
        user_id = int(token.sub)
    except Exception as err:  # any undecodable, expired or tampered token
        raise NotAuthorizedException("invalid token") from err
    user = one(deps.db, "SELECT role, is_active FROM users WHERE id = ?", [user_id])
    if user is None or not user["is_active"]:
        raise NotAuthorizedException("invalid token")
    if user["role"] != "admin":
        raise PermissionDeniedException("admin role or the sync key required")


@get("/metrics", opt=PUBLIC, tags=["System"], include_in_schema=False)
async def metrics(deps: NamedDependency[Deps]) -> Response[bytes]:
    # CONTENT_TYPE_LATEST carries "; charset=utf-8", which Litestar would add a second time.
    media_type = CONTENT_TYPE_LATEST.partition("; charset")[0]
    return Response(content=generate_latest(deps.metrics.registry), media_type=media_type)
