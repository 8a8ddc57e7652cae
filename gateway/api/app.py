"""The Litestar application: ``create_app(deps)`` builds it from the runtime objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import Litestar, Router, get
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency, Provide
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

import gateway
from gateway import console
from gateway.api.auth import PUBLIC, build_auth
from gateway.api.controllers.auth import AuthController
from gateway.api.controllers.bookings import (
    MembershipController,
    PlanController,
    ReservationController,
)
from gateway.api.controllers.charging import (
    ChargingController,
    ReportController,
    StationController,
)
from gateway.api.controllers.lanes import LaneController
from gateway.api.controllers.lpr import (
    PlateListController,
    PlateReadController,
    SmartCameraController,
)
from gateway.api.controllers.pricing import DiscountController, PaymentController, RateController
from gateway.api.controllers.sessions import SessionController
from gateway.api.controllers.structure import LevelController, SpaceController, ZoneController
from gateway.api.controllers.sync import SyncController, metrics
from gateway.api.controllers.vehicles import VehicleController, VehicleTypeController
from gateway.api.deps import Deps
from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.logins import Logins
from gateway.api.openapi import (
    DecimalAsNumber,
    assets_router,
    finish_on_startup,
    openapi_config,
)
from gateway.api.responses import Health
from gateway.api.schemas import strict_json_body
from gateway.config import Config
from gateway.services import scalar
from gateway.upstream.asyncapi import document as asyncapi_document

API_CONTROLLERS: list[Any] = [
    AuthController,
    VehicleTypeController,
    VehicleController,
    LevelController,
    ZoneController,
    SpaceController,
    SessionController,
    RateController,
    PaymentController,
    DiscountController,
    ReservationController,
    PlanController,
    MembershipController,
    StationController,
    ChargingController,
    ReportController,
    LaneController,
    SmartCameraController,
    PlateReadController,
    PlateListController,
    SyncController,
]


@get("/health", opt=PUBLIC, tags=["System"], include_in_schema=True)
async def health(deps: NamedDependency[Deps]) -> Health:
    """Liveness for load balancers and the installer: the loop answers and the database reads."""
    scalar(deps.db, "SELECT 1")
    return Health(status="ok", version=gateway.__version__, site=deps.config.site.id)


async def allow_every_method(message: Message, scope: Scope) -> None:
    """``OPTIONS`` answers ``Allow`` with every method of the path.

    Litestar builds the OPTIONS handler of a path with its first handler and does not
    update it when the router adds the others, so ``OPTIONS /vehicles/{id}`` said
    ``DELETE, OPTIONS`` although ``PUT`` is there too.
    """
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    template = scope.get("path_template")
    if message["status"] != 204 or template is None:
        return
    methods: set[str] = set()
    for route in scope["app"].routes:
        if isinstance(route, HTTPRoute) and route.path_format == template:
            methods |= set(route.methods)
    if methods:
        MutableScopeHeaders.from_message(message)["Allow"] = ", ".join(sorted(methods))


def site_asyncapi(config: Config) -> dict[str, Any]:
    """The MQTT contract of this site: its own topic prefix and brokers, AsyncAPI 2.6."""
    return asyncapi_document(
        (config.mqtt.topic_prefix or f"carpark/{config.site.id}").rstrip("/"),
        servers=config.mqtt.endpoints,
        protocol=config.mqtt.protocol,
        software_version=gateway.__version__,
    )


def create_app(
    deps: Deps, *, extra_handlers: list[Any] | None = None, on_app_init: list[Any] | None = None
) -> Litestar:
    auth = build_auth(
        deps.store, deps.config.auth.secret_key, deps.config.auth.token_expire_minutes
    )
    logins = Logins(deps.config.auth, deps.clock)
    deps = replace(deps, auth=auth, logins=logins)
    api = Router(
        path="/api/v1",
        route_handlers=[*API_CONTROLLERS, *(extra_handlers or [])],
        # JSON bodies are type-checked strictly (no 1 for true, no "5" for 5): field reference 1.1.
        before_request=strict_json_body,
    )
    docs = deps.config.http.docs

    def _init(config: AppConfig) -> AppConfig:
        return auth.on_app_init(config)

    # /metrics only when there are metrics to show (otherwise it is a 404, not a 500).
    handlers: list[Any] = [api, health, *([metrics] if deps.metrics is not None else [])]
    if docs:
        handlers.append(assets_router())
        contract = site_asyncapi(deps.config)

        @get("/asyncapi.json", opt=PUBLIC, include_in_schema=False, sync_to_thread=False)
        def asyncapi() -> dict[str, Any]:
            """The MQTT topics, payload schemas, QoS and retain flags (linked from ``/``)."""
            return contract

        handlers.append(asyncapi)
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "deps": Provide(lambda: deps, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config() if docs else None,
        plugins=[DecimalAsNumber()],
        before_send=[allow_every_method],
        on_app_init=[_init, console.install(deps), *(on_app_init or [])],
        on_startup=[finish_on_startup],
        on_shutdown=[logins.close],
        debug=False,
        logging_config=None,
    )
    if deps.metrics is not None:
        # Around the router, so that 401s, 404s and 405s are timed too (see Metrics.instrument).
        app.asgi_handler = deps.metrics.instrument(app.asgi_handler)
    return app
