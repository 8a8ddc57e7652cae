"""The console's sign-in: a cookie holding a short-lived JWT, and a CSRF token bound to it.

The REST API stays bearer-only; a browser page cannot keep a bearer token safe from
scripts, so the console keeps its token in a cookie the page's scripts cannot read:

* ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it),
  ``Path=/console``, ``Secure`` when served over HTTPS, and it expires with the token
  (``auth.token_expire_minutes``, as API tokens).
* The token is litestar's JWT (HS256) with the audience ``carpark-console``, signed with
  a key derived from the API's secret (HMAC-SHA256 of the secret and ``carpark-console``):
  an API bearer token is not a console session, and a console cookie is no API token,
  since neither verifies with the other's key.
* Every state-changing request carries a CSRF token (a form field or the
  ``X-CSRF-Token`` header) that must equal the one sealed in the session's token: a page
  of another origin can neither read the cookie nor the page that holds the token. The
  sign-in form itself is protected the same way with a short-lived pre-session cookie.
* The account is read from the database on every request (as the API does), so a
  deactivated or demoted account loses the console at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import Token

from gateway.api.deps import Deps
from gateway.services import Actor, one

COOKIE = "carpark_console"
LOGIN_COOKIE = "carpark_console_login"
AUDIENCE = "carpark-console"
PATH = "/console"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(NotAuthorizedException):
    """No valid console session: pages redirect to the sign-in form, fetches get 401."""


@dataclass(frozen=True)
class StaffSession:
    actor: Actor
    name: str
    csrf: str
    expires: datetime

    @property
    def is_admin(self) -> bool:
        return self.actor.role == "admin"


def _key(deps: Deps) -> str:
    secret = deps.config.auth.secret_key.encode()
    return hmac.new(secret, AUDIENCE.encode(), hashlib.sha256).hexdigest()


def issue(deps: Deps, user: dict[str, Any]) -> tuple[str, StaffSession]:
    """A session token for a staff account that just signed in."""
    # Real time, not the site clock: the browser and PyJWT judge expiry by the wall clock.
    expires = datetime.now(UTC) + timedelta(minutes=deps.config.auth.token_expire_minutes)
    csrf = secrets.token_urlsafe(24)
    token = Token(sub=str(user["id"]), exp=expires, aud=AUDIENCE, extras={"csrf": csrf}).encode(
        _key(deps), "HS256"
    )
    actor = Actor(id=user["id"], role=user["role"], email=user["email"])
    return token, StaffSession(actor, user["full_name"] or user["email"], csrf, expires)


def read(deps: Deps, connection: ASGIConnection[Any, Any, Any, Any]) -> StaffSession | None:
    """The signed-in staff member of this request, or None."""
    encoded = connection.cookies.get(COOKIE)
    if not encoded:
        return None
    try:
        token = Token.decode(encoded, _key(deps), "HS256", audience=AUDIENCE)
        user_id = int(token.sub)
    except (NotAuthorizedException, ValueError):
        return None
    csrf = token.extras.get("csrf")
    user = one(
        deps.store.reader,
        "SELECT id, email, role, full_name, is_active FROM users WHERE id = ?",
        [user_id],
    )
    if user is None or not user["is_active"] or user["role"] not in ("operator", "admin"):
        return None
    if not isinstance(csrf, str):
        return None
    actor = Actor(id=user["id"], role=user["role"], email=user["email"])
    return StaffSession(actor, user["full_name"] or user["email"], csrf, token.exp)


def staff_session(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffSession:
    found = connection.scope.get("state", {}).get("console")
    if not isinstance(found, StaffSession):
        raise SignInRequired("sign in to the console")
    return found


def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a staff session, kept in the request state for the handler."""
    deps: Deps = connection.app.state.console_deps
    session = read(deps, connection)
    if session is None:
        raise SignInRequired("sign in to the console")
    connection.state.console = session


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not staff_session(connection).is_admin:
        raise PermissionDeniedException("only an admin may do this")


def check_csrf(request: Request[Any, Any, Any], expected: str, form: dict[str, Any]) -> None:
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD) or ""
    if not isinstance(given, str) or not given or not hmac.compare_digest(given, expected):
        raise PermissionDeniedException("the form has expired: reload the console and try again")


def session_cookie(request: Request[Any, Any, Any], token: str, expires: datetime) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=token,
        path=PATH,
        max_age=max(0, int((expires - datetime.now(UTC)).total_seconds())),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def login_cookie(request: Request[Any, Any, Any], value: str) -> Cookie:
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        path=PATH,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def cleared(response: Response[Any], *keys: str) -> Response[Any]:
    for key in keys:
        response.delete_cookie(key, path=PATH)
    return response
