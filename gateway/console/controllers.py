"""The console's routes: the landing page, sign-in, the console page, its live stream, and
the operator's actions.

Every action parses its form with the REST API's own input Struct and calls the same
service the API calls (``LaneManager.open``/``set_mode``, ``payments.pay``,
``plates.correct``, ``charging.stop_remote``, ``alarms.acknowledge``): the console is a
third front door, never a second copy of a rule. Actions answer JSON to the page's
script (``X-Console: fetch``) and redirect back to the console for a plain form post;
errors use the API's JSON error shape.
"""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent, Template

import gateway
from gateway.api.controllers.lanes import ModeIn, OpenIn
from gateway.api.controllers.lpr import CorrectionIn, _read_file
from gateway.api.deps import Deps
from gateway.api.schemas import PaymentIn
from gateway.console import live, session
from gateway.console.render import ENV, Renderer
from gateway.domain.plates import normalize_plate
from gateway.errors import GatewayError, Invalid, NotFound
from gateway.services import alarms, charging, payments, plates, require, scalar, users

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PUBLIC = {"exclude_from_auth": True}  # the API's bearer middleware: the console has its own


def _parse(kind: type[Any], values: dict[str, Any]) -> Any:
    """A form through the API's input Struct: the same limits, the same messages."""
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as err:
        raise Invalid(str(err)) from err


def _done(request: Request[Any, Any, Any], message: str, **extra: Any) -> Response[Any]:
    if request.headers.get("x-console") == "fetch":
        return Response({"ok": True, "message": message, **extra})
    return Redirect("/console", status_code=303)


def _acting(request: Request[Any, Any, Any], form: dict[str, Any]) -> session.StaffSession:
    staff = session.staff_session(request)
    session.check_csrf(request, staff.csrf, form)
    return staff


def landing_html(request: Request[Any, Any, Any]) -> bytes:
    """What a person opening the gateway's address sees: the site, its health, the way in."""
    deps: Deps = request.app.state.console_deps
    try:
        scalar(deps.db, "SELECT 1")
        healthy = True
    except Exception:  # the page must render even when the database does not answer
        healthy = False
    paths = {getattr(route, "path", "") for route in request.app.routes}
    links = [
        ("/console", "Operator console", "lanes, live events, payments at the booth"),
        ("/docs", "API reference (Swagger UI)", "try the REST API in the browser"),
        ("/redoc", "API reference (ReDoc)", "the REST API, to read"),
        ("/asyncapi.json", "MQTT topics (AsyncAPI)", "what the gateway publishes and accepts"),
        ("/metrics", "Metrics", "Prometheus text"),
        ("/health", "Health", "JSON, for load balancers and monitoring"),
    ]
    return (
        ENV.get_template("landing.html")
        .render(
            site=deps.config.site,
            version=gateway.__version__,
            healthy=healthy,
            links=[link for link in links if link[0] in paths],
        )
        .encode()
    )


@get("/", opt=PUBLIC, include_in_schema=False, media_type="text/html", sync_to_thread=False)
def landing(request: Request[Any, Any, Any]) -> bytes:
    """``/`` when the app has no OpenAPI router (``http.docs = false``)."""
    return landing_html(request)


class LandingPage(OpenAPIRenderPlugin):
    """``/`` when it has one: litestar's OpenAPI router serves a page at its root ``/``,
    so the landing page is that page (the docs stay at ``/docs`` and ``/redoc``)."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return landing_html(request)


class ConsoleController(Controller):
    path = "/console"
    opt = PUBLIC
    include_in_schema = False

    # -- signing in ---------------------------------------------------------------------
    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, Any], deps: NamedDependency[Deps]
    ) -> Response[Any]:
        if session.read(deps, request) is not None:
            return Redirect("/console")
        return self._login_page(request, deps, None, 200)

    def _login_page(
        self,
        request: Request[Any, Any, Any],
        deps: Deps,
        error: str | None,
        status: int,
        email: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response[Any]:
        token = secrets.token_urlsafe(24)
        page = Template(
            template_name="login.html",
            context={"site": deps.config.site, "csrf": token, "error": error, "email": email},
            status_code=status,
            headers=headers,
        )
        page.cookies.append(session.login_cookie(request, token))
        return page

    @post("/login", status_code=200)
    async def login(
        self, request: Request[Any, Any, Any], deps: NamedDependency[Deps], data: Form
    ) -> Response[Any]:
        expected = request.cookies.get(session.LOGIN_COOKIE, "")
        given = str(data.get(session.CSRF_FIELD, ""))
        email = str(data.get("email", "")).strip()[:200]
        if not expected or not given or not secrets.compare_digest(expected, given):
            return self._login_page(
                request, deps, "The form expired: please sign in again.", 403, email
            )
        password = str(data.get("password", ""))[:200]
        address = request.client.host if request.client else "unknown"
        try:
            # The API's own checks: the same throttle (a second door must not be a way
            # around it) and argon2 in its low-priority workers, not on the lanes' loop.
            user = await deps.logins.check(
                email, password, address, lambda e: users.login_candidate(deps.db, e)
            )
        except TooManyRequestsException as err:
            return self._login_page(
                request, deps, str(err.detail), 429, email, headers=dict(err.headers or {})
            )
        except GatewayError:
            return self._login_page(request, deps, "Wrong e-mail or password.", 401, email)
        if user["role"] not in ("operator", "admin"):
            return self._login_page(
                request,
                deps,
                "The console is for operators and admins; this account is a customer account.",
                403,
                email,
            )
        token, staff = session.issue(deps, user)
        response = Redirect("/console", status_code=303)
        response.cookies.append(session.session_cookie(request, token, staff.expires))
        return session.cleared(response, session.LOGIN_COOKIE)

    @post("/logout", guards=[session.signed_in])
    async def logout(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        _acting(request, data)
        return session.cleared(Redirect("/console/login", status_code=303), session.COOKIE)

    # -- the page and its live stream ---------------------------------------------------------
    @get("/", guards=[session.signed_in])
    async def page(
        self, request: Request[Any, Any, Any], deps: NamedDependency[Deps], q: FromQuery[str] = ""
    ) -> Template:
        renderer = Renderer(deps, session.staff_session(request))
        return Template(template_name="console.html", context=renderer.page(q[:50]))

    @get("/panels/sessions", guards=[session.signed_in])
    async def sessions_panel(
        self, request: Request[Any, Any, Any], deps: NamedDependency[Deps], q: FromQuery[str] = ""
    ) -> Response[str]:
        html = Renderer(deps, session.staff_session(request)).sessions(q[:50])
        return Response(html, media_type="text/html")

    @get("/live", guards=[session.signed_in])
    async def live_stream(
        self, request: Request[Any, Any, Any], deps: NamedDependency[Deps]
    ) -> ServerSentEvent:
        hub: live.Hub = request.app.state.console_hub
        staff = session.staff_session(request)
        return ServerSentEvent(hub.stream(Renderer(deps, staff).changes, staff.expires))

    @get("/reads/{read_id:int}/image", guards=[session.signed_in], media_type="image/jpeg")
    async def read_image(
        self,
        deps: NamedDependency[Deps],
        read_id: FromPath[int],
        kind: FromQuery[Literal["frame", "crop"]] = "crop",
    ) -> Response[bytes]:
        row = require(deps.db, "plate_reads", read_id, "plate read")
        path = row[f"{kind}_path"]
        content = await asyncio.to_thread(_read_file, path) if path else None
        if content is None:
            raise NotFound(f"no {kind} picture for read {read_id}")
        return Response(
            content, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
        )

    # -- actions --------------------------------------------------------------------------------
    @post("/lanes/{lane_id:str}/open", guards=[session.signed_in], status_code=200)
    async def open_lane(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        lane_id: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        staff = _acting(request, data)
        reason = _parse(OpenIn, {"reason": data.get("reason", "")}).reason.strip()
        await deps.lanes.open(lane_id, reason, staff.actor.email)
        return _done(request, f"{lane_id} is opening: {reason}")

    @post(
        "/lanes/{lane_id:str}/mode", guards=[session.signed_in, session.admin_only], status_code=200
    )
    async def set_mode(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        lane_id: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        staff = _acting(request, data)
        mode = _parse(ModeIn, {"mode": data.get("mode", "")}).mode
        await deps.lanes.set_mode(lane_id, mode, staff.actor.email)
        return _done(request, f"{lane_id} is now {mode.replace('_', ' ')}")

    @post("/alarms/{sequence:int}/ack", guards=[session.signed_in], status_code=200)
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        sequence: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        staff = _acting(request, data)
        note = str(data.get("note", ""))
        ctx = deps.ctx_for(staff.actor)
        await deps.store.write(lambda db: alarms.acknowledge(db, ctx, sequence, note))
        return _done(request, f"alarm #{sequence} acknowledged")

    @post("/sessions/{session_id:int}/pay", guards=[session.signed_in], status_code=200)
    async def pay_cash(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        session_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """Cash at the booth: the same service as ``POST /payments``, for the operator."""
        staff = _acting(request, data)
        given = _parse(
            PaymentIn,
            {
                "session_id": session_id,
                "payment_method": "cash",
                "amount": str(data.get("amount", "")).strip() or "x",
            },
        )
        ctx = deps.ctx_for(staff.actor)
        payment_id = await deps.store.write(
            lambda db: payments.pay(
                db, ctx, session_id=given.session_id, payment_method="cash", amount=given.amount
            )
        )
        row = require(deps.db, "payments", payment_id, "payment")
        change = Decimal(row["tendered"]) - Decimal(row["total_amount"])
        return _done(
            request,
            f"paid ${Decimal(row['total_amount']):.2f} cash, change ${change:.2f}, receipt {row['receipt_number']}",
            receipt=row["receipt_number"],
        )

    @post("/reads/{read_id:int}/correct", guards=[session.signed_in], status_code=200)
    async def correct_read(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        read_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        staff = _acting(request, data)
        plate = normalize_plate(_parse(CorrectionIn, {"plate": data.get("plate", "")}).plate)
        ctx = deps.ctx_for(staff.actor)
        await deps.store.write(lambda db: plates.correct(db, ctx, read_id, plate))
        return _done(request, f"read #{read_id} is now {plate}")

    @post("/charges/{charge_id:int}/stop", guards=[session.signed_in], status_code=200)
    async def stop_charge(
        self,
        request: Request[Any, Any, Any],
        deps: NamedDependency[Deps],
        charge_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        staff = _acting(request, data)
        await charging.stop_remote(deps.store, deps.charger, deps.ctx_for(staff.actor), charge_id)
        return _done(request, f"charge #{charge_id} stopped")


def sign_in_first(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    """A page asks for the sign-in form; the page's script (and the stream) get a 401."""
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return Redirect("/console/login")
    return Response({"detail": exc.detail, "sign_in": "/console/login"}, status_code=401)
