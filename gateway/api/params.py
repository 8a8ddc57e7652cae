"""Query parameters shared by the listings, and the page shape of the field reference (1.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.exceptions import ValidationException
from litestar.params import Parameter, QueryParameter
from sqlite_utils import Database

from gateway.api.schemas import FIRST_YEAR, LAST_YEAR, check_year
from gateway.services import rows, scalar
from gateway.timeutil import utc

QueryId = Annotated[int | None, QueryParameter(ge=1, le=2**62, description="an id (filter)")]
Page = Annotated[int, Parameter(ge=1, le=1_000_000, description="page number, from 1")]
Limit = Annotated[int, Parameter(ge=1, le=100, description="items per page (1..100)")]


def paged(
    db: Database,
    *,
    key: str,
    table: str,
    where: Sequence[str],
    params: Sequence[Any],
    page: int,
    limit: int,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    order: str = "id",
) -> dict[str, Any]:
    """``{key: [...], total, page, limit}`` with ``total`` counting every match."""
    clause = " AND ".join(where) if where else "1 = 1"
    total = scalar(db, f"SELECT COUNT(*) FROM {table} WHERE {clause}", params)
    items = [
        render(r)
        for r in rows(
            db,
            f"SELECT * FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, (page - 1) * limit],
        )
    ]
    return {key: items, "total": total, "page": page, "limit": limit}


def equal_to(where: list[str], params: list[Any], **columns: Any) -> None:
    """Add ``column = ?`` for each filter the client gave (None: that filter is not used)."""
    for column, value in columns.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)


_TIME_DOC = f"RFC 3339 date and time, years {FIRST_YEAR}..{LAST_YEAR}; UTC without an offset"
_TIME_SCHEMA = {"format": "date-time"}
QueryTime = Annotated[str, QueryParameter(description=_TIME_DOC, schema_extra=_TIME_SCHEMA)]
OptQueryTime = Annotated[
    str | None, QueryParameter(description=_TIME_DOC, schema_extra=_TIME_SCHEMA)
]


def query_time(value: str | None, name: str) -> datetime | None:
    """A datetime from the query string, as strictly as one in a JSON body.

    Litestar converts query values leniently, which reads ``exit_time=0.5`` as half a
    second after the epoch; a bare number is a client's mistake (400), and so is a year
    outside the range every datetime of the API keeps to.
    """
    if value is None:
        return None
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise ValidationException(
            detail=f"Invalid query parameter {name}",
            extra=[
                {
                    "key": name,
                    "message": "Expected an RFC 3339 date and time, e.g. 2026-03-10T09:00:00Z",
                    "source": "query",
                }
            ],
        ) from None
    check_year(parsed, name)
    return utc(parsed)
