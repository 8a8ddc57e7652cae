"""The operator console: ``/`` (the landing page) and ``/console``, served by the daemon.

Server-rendered pages (litestar's Jinja templating), one stylesheet and one small script
from this package (no other host, no build step), a cookie session of its own
(:mod:`gateway.console.session`) and a live stream of server-sent events
(:mod:`gateway.console.live`). :func:`install` adds it all to the app in ``create_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from litestar import Router
from litestar.config.app import AppConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from gateway.api.deps import Deps
from gateway.console.controllers import (
    PUBLIC,
    ConsoleController,
    LandingPage,
    landing,
    sign_in_first,
)
from gateway.console.live import Hub
from gateway.console.render import ENV
from gateway.console.session import SignInRequired

STATIC = Path(__file__).parent / "static"


def install(deps: Deps) -> Callable[[AppConfig], AppConfig]:
    """An ``on_app_init`` hook: the routes, the templates, and the live hub."""

    def init(config: AppConfig) -> AppConfig:
        openapi = config.openapi_config
        if openapi is not None:
            # Its router owns "/" (it serves a page at its root): the landing page becomes
            # that page, and the router is public as the docs are.
            page = LandingPage()
            openapi.render_plugins = [page, *openapi.render_plugins]
            openapi.default_plugin = page
            if openapi.openapi_router is None:
                openapi.openapi_router = Router(
                    openapi.path or "/", route_handlers=[], opt=PUBLIC, include_in_schema=False
                )
        else:
            config.route_handlers.append(landing)
        config.route_handlers.extend(
            [
                ConsoleController,
                create_static_files_router(
                    path="/console/static",
                    directories=[STATIC],
                    opt=PUBLIC,
                    cache_control=None,
                    name="console-static",
                ),
            ]
        )
        config.template_config = TemplateConfig(engine=JinjaTemplateEngine.from_environment(ENV))
        config.exception_handlers = {SignInRequired: sign_in_first, **config.exception_handlers}
        config.state.update({"console_deps": deps, "console_hub": Hub(deps)})
        return config

    return init
