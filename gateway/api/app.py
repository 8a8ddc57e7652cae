"""The Litestar application: ``create_app(deps)`` builds it from the runtime objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import Litestar, Router, get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

import gateway
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
async def health(deps: NamedDependency[Deps]) -> dict[str, Any]:
    """Liveness for load balancers and the installer: the loop answers and the database reads."""
    scalar(deps.db, "SELECT 1")
    return {"status": "ok", "version": gateway.__version__, "site": deps.config.site.id}


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
    deps = replace(deps, auth=auth)
    api = Router(
        path="/api/v1",
        route_handlers=[*API_CONTROLLERS, *(extra_handlers or [])],
        # JSON bodies are type-checked strictly (no 1 for true, no "5" for 5): field reference 1.1.
        before_request=strict_json_body,
    )
    openapi = (
        OpenAPIConfig(
            title="carpark-gateway",
            version=gateway.__version__,
            description="The car-parking API of one site, served by its edge gateway.",
            path="/",
            render_plugins=[SwaggerRenderPlugin(path="/docs"), RedocRenderPlugin(path="/redoc")],
        )
        if deps.config.http.docs
        else None
    )

    def _init(config: AppConfig) -> AppConfig:
        return auth.on_app_init(config)

    # /metrics only when there are metrics to show (otherwise it is a 404, not a 500).
    handlers: list[Any] = [api, health, *([metrics] if deps.metrics is not None else [])]
    if deps.config.http.docs:
        contract = site_asyncapi(deps.config)

        @get("/asyncapi.json", opt=PUBLIC, include_in_schema=False, sync_to_thread=False)
        def asyncapi() -> dict[str, Any]:
            """The MQTT topics, payload schemas, QoS and retain flags (linked from ``/``)."""
            return contract

        handlers.append(asyncapi)
    return Litestar(
        route_handlers=handlers,
        middleware=[deps.metrics.middleware()] if deps.metrics is not None else [],
        dependencies={
            "deps": Provide(lambda: deps, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        on_app_init=[_init, *(on_app_init or [])],
        debug=False,
        logging_config=None,
    )
