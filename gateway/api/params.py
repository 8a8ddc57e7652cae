"""Query parameters shared by the listings, and the page shape of the field reference (1.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from litestar.params import Parameter
from sqlite_utils import Database

from gateway.services import rows, scalar

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
