"""The OpenAPI document and the pages that show it, served by the daemon alone.

* ``/openapi.json`` describes what the server really accepts and sends: response Structs
  on every route (:mod:`gateway.api.responses`), decimals as JSON numbers (the server
  refuses them as strings), integer bounds as integers, one error body on every code an
  operation can answer.
* ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and styles from
  ``/docs/assets``: a gateway in a car park cabinet is often offline, and pages that
  load from public CDNs are blank there. ``make`` installs the assets (the npm
  packages ``swagger-ui-dist`` and ``redoc``, fetched once by the npm client, never at
  run time) into ``<venv>/share/carpark-gateway/docs``; without them the pages say so.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from litestar import Litestar, Request, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.typing import FieldDefinition

import gateway
from gateway.api.errors import WHEN
from gateway.api.schemas import Update

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

log = structlog.get_logger("gateway.api")

ASSETS_URL = "/docs/assets"
ERROR_REF = Reference(ref="#/components/schemas/ErrorBody")
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")
REDOC_FILES = ("redoc.standalone.js",)


def assets_dir() -> Path:
    """Where ``make`` installs the pages' assets: beside the interpreter running us."""
    return Path(sys.prefix) / "share" / "carpark-gateway" / "docs"


class DecimalAsNumber(OpenAPISchemaPlugin):
    """``Decimal`` fields are JSON numbers on the wire (field reference 1.1).

    Litestar documents ``Decimal`` as a string, which is what msgspec would accept if it
    were lenient; our bodies refuse ``"5.00"`` (``strict_json_body``), so a client
    generated from a "string" document could never send a valid amount.
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is Decimal

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


def _schemas(node: Any) -> Iterator[Schema]:
    """Every Schema object reachable from ``node`` (the spec objects are dataclasses)."""
    stack, seen = [node], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Schema):
            yield item
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def finish(spec: OpenAPI) -> OpenAPI:
    """Last touches Litestar cannot be told: integer bounds as integers.

    Litestar writes every numeric bound as a float, so the id bound ``2**62`` came out as
    ``4.611686018427388e+18``, which typed generators read as a float and JSON Schema
    validators may round.
    """
    for schema in _schemas(spec):
        members = [m for m in (schema.one_of or ()) if isinstance(m, Schema)]
        if schema.type == OpenAPIType.INTEGER or any(
            m.type == OpenAPIType.INTEGER for m in members
        ):
            for name in ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum"):
                value = getattr(schema, name)
                if isinstance(value, float) and value.is_integer():
                    setattr(schema, name, int(value))
    # One error body for every error answer, also those Litestar adds on its own (the
    # 400 of any operation with parameters, whose schema wants a ``status_code``).
    for item in (spec.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            for code, answer in (operation.responses or {}).items() if operation else ():
                if not code.startswith("2") and isinstance(answer, OpenAPIResponse):
                    answer.content = {"application/json": OpenAPIMediaType(schema=ERROR_REF)}
                    answer.description = WHEN.get(int(code), answer.description)
    # An update must name at least one of its fields (strict_json_body answers 400).
    updates = {cls.__name__: cls for cls in _subclasses(Update)}
    for name, schema in (spec.components.schemas or {}).items():
        if name in updates and isinstance(schema, Schema):
            fields = updates[name].__struct_fields__
            schema.any_of = [Schema(required=[field]) for field in fields]
    return spec


def _subclasses(cls: type[Update]) -> Iterator[type[Update]]:
    sub: type[Update]
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_MISSING_PAGE = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>API documentation</title></head>"
    b"<body><h1>API documentation</h1><p>The pages' assets are not installed on this gateway"
    b" (<code>make .venv/.installed</code> installs them). The OpenAPI document is at"
    b" <a href='/openapi.json'>/openapi.json</a>.</p></body></html>"
)

_FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS_URL}/favicon-32x32.png'>"


class _Offline:
    """Mixin: render the page only when its assets are installed."""

    needs: tuple[str, ...] = ()

    def installed(self) -> bool:
        return all((assets_dir() / name).is_file() for name in self.needs)


class OfflineSwagger(_Offline, SwaggerRenderPlugin):
    needs = SWAGGER_FILES

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_schema) if self.installed() else _MISSING_PAGE


class OfflineRedoc(_Offline, RedocRenderPlugin):
    needs = REDOC_FILES

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_schema) if self.installed() else _MISSING_PAGE


def render_plugins() -> list[OpenAPIRenderPlugin]:
    return [
        OfflineSwagger(
            path="/docs",
            js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_URL}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_URL}/swagger-ui-standalone-preset.js",
            favicon=_FAVICON,
        ),
        OfflineRedoc(
            path="/redoc",
            js_url=f"{ASSETS_URL}/redoc.standalone.js",
            google_fonts=False,
            favicon=_FAVICON,
        ),
    ]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="carpark-gateway",
        version=gateway.__version__,
        description="The car-parking API of one site, served by its edge gateway.",
        path="/",
        render_plugins=render_plugins(),
        # The pages, the document and the router's catch-all 404 of unknown top-level paths
        # (``/wp-login.php``) are public: a scan gets 404, not 401 (with ``exclude`` in
        # gateway.api.auth for the pages themselves).
        openapi_router=Router(
            path="/", route_handlers=[], include_in_schema=False, opt={"exclude_from_auth": True}
        ),
    )


def assets_router() -> Router:
    """``/docs/assets``: the installed files (an empty folder when they are not)."""
    folder = assets_dir()
    if not all((folder / name).is_file() for name in (*SWAGGER_FILES, *REDOC_FILES)):
        log.warning("docs_assets_missing", folder=str(folder), hint="make .venv/.installed")
    return create_static_files_router(
        path=ASSETS_URL,
        directories=[folder],
        include_in_schema=False,
        opt={"exclude_from_auth": True},
    )


def finish_on_startup(app: Litestar) -> None:
    """Build the document once at start, with :func:`finish` applied (then cached).

    Public operations (kiosks, pay stations, login) say ``security: [{}]``: a token is
    accepted and ignored, and none is needed (field reference 1.2).
    """
    if app.openapi_config is None:
        return
    spec = finish(app.openapi_schema)
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = (spec.paths or {}).get(route.path_format)
        for method, (handler, _) in route.route_handler_map.items():
            operation = getattr(item, method.lower(), None) if item is not None else None
            if operation is not None and handler.opt.get("exclude_from_auth"):
                operation.security = [{}]
