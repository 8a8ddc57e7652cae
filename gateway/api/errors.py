"""One JSON error shape for everything: ``{"detail": str, ...extras}``.

Validation failures also list each problem under ``errors`` as ``{field, message}``, so a
client can show the reason next to the field. Anything unexpected is logged with its
traceback and answered 500 without internals; tests assert that no client input gets there.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from gateway.api.responses import ErrorBody
from gateway.domain.plates import InvalidPlate
from gateway.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    Invalid,
    NotFound,
    PaymentRequired,
    Unauthorized,
    Unavailable,
)

log = structlog.get_logger("gateway.api")

STATUS: dict[type[GatewayError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Invalid: 422,
    Conflict: 409,
    PaymentRequired: 402,
    Unauthorized: 401,
    Unavailable: 503,
}


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        content=body, status_code=status, headers=headers, media_type="application/json"
    )


def gateway_error(_: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    # A camera's 401 carries its own challenge (Digest); everything else is a bearer token.
    headers = getattr(exc, "headers", None) or (
        {"WWW-Authenticate": "Bearer"} if status == 401 else None
    )
    body: dict[str, Any] = {"detail": exc.detail, **exc.extra}
    if isinstance(exc, Invalid) and "field" in exc.extra:
        body["errors"] = [{"field": exc.extra["field"], "message": exc.detail}]
    return _json(status, body, headers)


def invalid_plate(_: Request[Any, Any, Any], exc: InvalidPlate) -> Response[Any]:
    return _json(
        422, {"detail": str(exc), "errors": [{"field": "license_plate", "message": str(exc)}]}
    )


def validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            errors.append(
                {
                    "field": item.get("key"),
                    "message": item.get("message"),
                    "source": item.get("source"),
                }
            )
    first = errors[0] if errors else None
    detail = (
        f"{first['field']}: {first['message']}"
        if first and first["field"]
        else first["message"]
        if first
        else exc.detail
    )
    return _json(400, {"detail": f"Invalid request: {detail}", "errors": errors})


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers["WWW-Authenticate"] = "Bearer"
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return _json(exc.status_code, body, headers)


def integrity_error(request: Request[Any, Any, Any], exc: sqlite3.IntegrityError) -> Response[Any]:
    # Services check their rules first; this is the database refusing what slipped past
    # (a race or a rule we did not foresee). It is a conflict, not a server error.
    log.warning("integrity_conflict", path=request.url.path, error=str(exc))
    return _json(409, {"detail": "conflicts with existing data"})


def overflow_error(request: Request[Any, Any, Any], exc: OverflowError) -> Response[Any]:
    # A number too large for SQLite's 64-bit integers: the client's input, never a 500
    # (field reference 1.3). An id of the path that large names nothing that can exist
    # (404, like any unknown id); in a query or a body it is a bad value (400).
    log.info("number_out_of_range", path=request.url.path, error=str(exc))
    if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in request.path_params.values()):
        return _json(404, {"detail": "not found: no such id"})
    return _json(400, {"detail": "Invalid request: a number is out of range"})


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("api_internal_error", path=request.url.path, method=request.method)
    return _json(HTTP_500_INTERNAL_SERVER_ERROR, {"detail": "internal error"})


WHEN: dict[int, str] = {
    400: "Invalid request: malformed or wrongly typed body, query or path values",
    401: "Not authenticated: no, or a bad, `Authorization: Bearer` token; wrong login",
    402: "Payment required: `amount_due` says how much",
    403: "The role or the owner does not allow it",
    404: "Not found: the resource of the path, or one the body names",
    409: "Conflicts with the current state (a duplicate, a wrong status, nothing to pay)",
    413: "The body is too large",
    415: "The body is not application/json",
    422: "A rule about the request's own values is broken",
    429: "Too many failed logins: wait `Retry-After` seconds",
    503: "A device the request needs does not answer (`reason` says which); nothing changed",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The error answers of an operation, for the OpenAPI document: one body for all."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, generate_examples=False, description=WHEN[code]
        )
        for code in sorted(set(codes))
    }


# Shorthands for the codes that come with an operation's shape.
BODY = (400, 413, 415)  # a JSON body: malformed or wrong (400), too large, not JSON
AUTH = (401,)  # needs a token
STAFF = (401, 403)  # needs a token and a role


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: gateway_error,
    InvalidPlate: invalid_plate,
    ValidationException: validation_error,
    HTTPException: http_error,
    sqlite3.IntegrityError: integrity_error,
    OverflowError: overflow_error,
    Exception: internal_error,
}
