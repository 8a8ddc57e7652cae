"""Time on the wire and in the database: UTC, ISO 8601, always with an offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """A datetime without an offset is taken as UTC (field reference 1.1)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """The one stored form: fixed width, so that text order is time order.

    ``isoformat`` rather than ``strftime("%Y...")``: glibc does not zero-pad years before
    1000 (``1-01-01T...``), which is neither fixed width nor readable back.
    """
    return utc(value).isoformat(timespec="microseconds")


def parse(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def parse_opt(text: str | None) -> datetime | None:
    return None if text is None else parse(text)
