"""What every handler needs, injected with ``Provide``: the store, the config and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from litestar.connection import ASGIConnection
from sqlite_utils import Database

from gateway.api.auth import actor_of
from gateway.config import Config
from gateway.ports import Charger
from gateway.services import Actor, Ctx
from gateway.services.views import Views
from gateway.store import Store
from gateway.timeutil import Clock

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Deps:
    store: Store
    config: Config
    clock: Clock
    # The chargers behind the EV stations (the simulated meter, or OCPP charge points).
    charger: Charger
    # The lanes (gateway.lanes.manager.LaneManager), set by the composition root.
    lanes: Any = None
    # Prometheus metrics (gateway.metrics.Metrics), set by the composition root.
    metrics: Any = None
    # The JWT backend (litestar's OAuth2PasswordBearerAuth), set by create_app; it issues tokens.
    auth: Any = None
    # Set when the daemon is stopping: long-lived responses (the console's live stream) end
    # on it, so that uvicorn's graceful shutdown does not wait for them.
    stopping: asyncio.Event | None = None
    # The upstream channels by name ("mqtt", "http"), for the console: objects with
    # ``connected`` and ``last_error``. Filled by the composition root.
    upstream: dict[str, Any] = field(default_factory=dict)
    # Login throttling and the argon2 workers (gateway.api.logins.Logins), set by create_app.
    logins: Any = None

    def ctx(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Ctx:
        return self.ctx_for(actor_of(connection))

    def ctx_for(self, actor: Actor) -> Ctx:
        cfg = self.config
        return Ctx(
            now=self.clock.now(),
            actor=actor,
            parking=cfg.parking,
            reservations=cfg.reservations,
            charging=cfg.charging,
            timezone=cfg.site.timezone,
            ocpp_id_tags=cfg.ocpp.id_tags,
        )

    async def write(
        self, connection: ASGIConnection[Any, Any, Any, Any], command: Callable[[Database, Ctx], T]
    ) -> T:
        """Run a service command for this request's user, as one durable transaction."""
        ctx = self.ctx(connection)
        return await self.store.write(lambda db: command(db, ctx))

    @property
    def db(self) -> Database:
        return self.store.reader

    def views(self) -> Views:
        return Views(self.store.reader)
