"""Register, login (OAuth2 password form) and the current user."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.security.jwt import Token

from gateway.api.auth import PUBLIC
from gateway.api.deps import Deps
from gateway.api.schemas import LoginForm, RegisterIn
from gateway.services import Actor, one, users


class AuthController(Controller):
    path = "/auth"
    tags = ["Authentication"]

    @post("/register", opt=PUBLIC, status_code=201)
    async def register(
        self, deps: NamedDependency[Deps], data: JSONBody[RegisterIn]
    ) -> dict[str, Any]:
        """Self-registration always creates a customer; staff accounts come from the CLI."""
        # Hashing is deliberately slow (argon2); keep it off the loop and out of the write lock.
        password_hash = await asyncio.to_thread(users.hash_password, data.password)
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
        return {
            "user": users.user_view(row),
            "access_token": deps.auth.create_token(identifier=str(user_id)),
            "token_type": "bearer",
        }

    @post("/login", opt=PUBLIC, status_code=200)
    async def login(
        self,
        deps: NamedDependency[Deps],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> dict[str, Any]:
        # argon2 verification takes tens of milliseconds: a reader thread, not the event loop.
        row = await deps.store.read_in_thread(
            lambda db: users.authenticate(db, data.username, data.password)
        )
        return {
            "access_token": deps.auth.create_token(identifier=str(row["id"])),
            "token_type": "bearer",
        }

    @get("/me")
    async def me(
        self, deps: NamedDependency[Deps], request: Request[Actor, Token, Any]
    ) -> dict[str, Any]:
        row = one(deps.db, "SELECT * FROM users WHERE id = ?", [request.user.id])
        assert row is not None
        return users.user_view(row)
