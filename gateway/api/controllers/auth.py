"""Register, login (OAuth2 password form) and the current user."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.security.jwt import Token

from gateway.api.auth import PUBLIC
from gateway.api.deps import Deps
from gateway.api.errors import AUTH, BODY, errors
from gateway.api.responses import Registered, TokenOut, User, typed
from gateway.api.schemas import LoginForm, RegisterIn
from gateway.services import Actor, one, users


class AuthController(Controller):
    path = "/auth"
    tags = ["Authentication"]

    @post("/register", opt=PUBLIC, status_code=201, responses=errors(*BODY, 409))
    async def register(self, deps: NamedDependency[Deps], data: JSONBody[RegisterIn]) -> Registered:
        """Self-registration always creates a customer; staff accounts come from the CLI."""
        # Hashing is deliberately slow (argon2): in the password workers, off the loop and
        # out of the write lock.
        password_hash = await deps.logins.hasher.run(lambda: users.hash_password(data.password))
        user_id = await deps.store.write(
            lambda db: users.create_user(
                db,
                email=data.email,
                password_hash=password_hash,
                full_name=data.full_name,
                role="customer",
                phone=data.phone,
                now=deps.clock.now(),
            )
        )
        row = one(deps.db, "SELECT * FROM users WHERE id = ?", [user_id])
        assert row is not None
        return Registered(
            user=typed(User, users.user_view(row)),
            access_token=deps.auth.create_token(identifier=str(user_id)),
        )

    @post("/login", opt=PUBLIC, status_code=200, responses=errors(400, 401, 413, 429))
    async def login(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> TokenOut:
        """Failed logins are throttled per account and per client address (429 with
        ``Retry-After``); see :mod:`gateway.api.logins`."""
        address = request.client.host if request.client else "unknown"
        row = await deps.logins.check(
            data.username,
            data.password,
            address,
            lambda email: users.login_candidate(deps.db, email),
        )
        return TokenOut(access_token=deps.auth.create_token(identifier=str(row["id"])))

    @get("/me", responses=errors(*AUTH))
    async def me(self, deps: NamedDependency[Deps], request: Request[Actor, Token, Any]) -> User:
        row = one(deps.db, "SELECT * FROM users WHERE id = ?", [request.user.id])
        assert row is not None
        return typed(User, users.user_view(row))
