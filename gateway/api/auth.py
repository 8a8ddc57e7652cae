"""Authentication (litestar's JWT bearer backend) and the role guards.

Tokens carry only the user id; the role is read from the database on every request, so
that demoting or deactivating an account takes effect at once instead of after the
token expires.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTCookieAuthenticationMiddleware, OAuth2PasswordBearerAuth, Token

from gateway.services import Actor, one
from gateway.store import Store

LOGIN_PATH = "/api/v1/auth/login"


class BearerOnly(JWTCookieAuthenticationMiddleware):
    """``Authorization: Bearer <token>`` and nothing else.

    Litestar's middleware takes the token after any scheme (``Basic <jwt>`` worked) and
    also from a ``token`` cookie. A cookie is sent by the browser on its own, so an API
    that honoured one would be open to cross-site request forgery the day a page stored
    the token there; the REST API therefore reads the header only. (The staff console has
    its own session cookie, HttpOnly and SameSite=Strict, with a CSRF token on every change.)
    """

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("an Authorization: Bearer <token> header is required")
        return await self.authenticate_token(encoded_token=token.strip(), connection=connection)


def build_auth(
    store: Store, secret: str, expire_minutes: int
) -> OAuth2PasswordBearerAuth[Actor, Token]:
    async def retrieve_user(
        token: Token, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Actor | None:
        try:
            user_id = int(token.sub)
        except ValueError:
            return None
        row = one(
            store.reader, "SELECT id, role, email, is_active FROM users WHERE id = ?", [user_id]
        )
        if row is None or not row["is_active"]:
            return None
        return Actor(id=row["id"], role=row["role"], email=row["email"])

    return OAuth2PasswordBearerAuth[Actor, Token](
        retrieve_user_handler=retrieve_user,
        token_secret=secret,
        token_url=LOGIN_PATH,
        authentication_middleware_class=BearerOnly,
        default_token_expiration=timedelta(minutes=expire_minutes),
        # Everything not marked public needs a token; public handlers set exclude_from_auth.
        exclude=["^/docs", "^/redoc", "^/openapi.json", "^/schema", "^/health", "^/metrics"],
    )


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    user = connection.scope.get("user")
    if not isinstance(user, Actor):
        # Only reachable on a public handler; public handlers act as an anonymous customer.
        return Actor(id=None, role="anonymous")
    return user


def _options(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    # OPTIONS says which methods a path has; it reveals and changes nothing, and a
    # controller's guards would otherwise refuse it (403) before the Allow header.
    return connection.scope.get("method") == "OPTIONS"


def staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Operators and admins: the people at the gates and in the office."""
    if not actor_of(connection).is_staff and not _options(connection):
        raise PermissionDeniedException("operator or admin role required")


def admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not actor_of(connection).is_admin and not _options(connection):
        raise PermissionDeniedException("admin role required")


PUBLIC = {"exclude_from_auth": True}
