"""What every handler needs, injected with ``Provide``: the store, the config and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar.connection import ASGIConnection
from sqlite_utils import Database

from gateway.api.auth import actor_of
from gateway.config import Config
from gateway.services import Ctx
from gateway.services.views import Views
from gateway.store import Store
from gateway.timeutil import Clock

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Deps:
    store: Store
    config: Config
    clock: Clock
    # The JWT backend (litestar's OAuth2PasswordBearerAuth), set by create_app; it issues tokens.
    auth: Any = None

    def ctx(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Ctx:
        return Ctx(now=self.clock.now(), actor=actor_of(connection), parking=self.config.parking)

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
