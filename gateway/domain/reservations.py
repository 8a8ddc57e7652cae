"""Reservation rules: windows, capacity over time, check-in and no-show deadlines.

Capacity is checked for every moment of a window, not just its start: a reservation from
9:00 to 17:00 must fit next to one from 8:00 to 10:00 *and* one from 16:00 to 18:00. The
sweep below finds the busiest moment of a window in O(n log n) over the bookings that
overlap it. Windows are half-open, so a booking may start exactly when another ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

BLOCKING = ("pending", "confirmed", "checked_in")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end


def peak_overlap(bookings: Iterable[Window], window: Window) -> int:
    """The largest number of ``bookings`` in force at any one moment of ``window``."""
    events: list[tuple[datetime, int]] = []
    for b in bookings:
        if b.overlaps(window):
            events.append((max(b.start, window.start), 1))
            events.append((min(b.end, window.end), -1))
    # At equal times ends (-1) sort before starts (+1): half-open windows do not collide.
    events.sort()
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def fits(capacity: int, bookings: Iterable[Window], window: Window, *, occupied: int = 0) -> bool:
    """Whether one more booking for ``window`` keeps every moment within ``capacity``.

    ``occupied`` counts places taken for the whole window by something else (vehicles
    already parked without a reservation).
    """
    return peak_overlap(bookings, window) + occupied + 1 <= capacity


def new_confirmation_number() -> str:
    return "RSV-" + secrets.token_hex(4).upper()


@dataclass(frozen=True, kw_only=True)
class ReservationPolicy:
    max_duration: timedelta
    checkin_early: timedelta
    no_show_after: timedelta | None  # after the start; None: at the end of the window

    def check_in_opens(self, start: datetime) -> datetime:
        return start - self.checkin_early

    def no_show_at(self, start: datetime, end: datetime) -> datetime:
        return end if self.no_show_after is None else min(end, start + self.no_show_after)

    def effective_status(self, status: str, start: datetime, end: datetime, now: datetime) -> str:
        """A confirmed reservation nobody checked in for is a no-show once its deadline passed."""
        if status in ("pending", "confirmed") and now >= self.no_show_at(start, end):
            return "no_show"
        return status

    def window_problem(self, window: Window, now: datetime) -> str | None:
        """Why the window cannot be booked (a 422 reason), or None."""
        if window.end <= window.start:
            return "end_time must be after start_time"
        if window.start < now:
            return "start_time must not be in the past"
        if window.end - window.start > self.max_duration:
            hours = self.max_duration.total_seconds() / 3600
            return f"a reservation may last at most {hours:g} hours"
        return None
