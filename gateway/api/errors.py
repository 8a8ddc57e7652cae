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
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

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
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
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
    # An id or number too large for SQLite's 64-bit integers (``/zones/99999999999999999999``,
    # ``?zone_id=...``): the client's input, so 400, never a 500 (field reference 1.3).
    log.info("number_out_of_range", path=request.url.path, error=str(exc))
    return _json(400, {"detail": "Invalid request: a number is out of range"})


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("api_internal_error", path=request.url.path, method=request.method)
    return _json(HTTP_500_INTERNAL_SERVER_ERROR, {"detail": "internal error"})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: gateway_error,
    InvalidPlate: invalid_plate,
    ValidationException: validation_error,
    HTTPException: http_error,
    sqlite3.IntegrityError: integrity_error,
    OverflowError: overflow_error,
    Exception: internal_error,
}
