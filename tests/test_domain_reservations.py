"""Reservation capacity and deadlines, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.memberships import add_months
from gateway.domain.reservations import ReservationPolicy, Window, fits, peak_overlap

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def w(start_h: float, end_h: float) -> Window:
    return Window(T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h))


@pytest.mark.parametrize(
    ("bookings", "window", "peak"),
    [
        ([], w(0, 8), 0),
        ([w(0, 2), w(6, 10)], w(1, 8), 1),  # two bookings, never at the same moment
        ([w(0, 2), w(1, 3)], w(0, 8), 2),
        ([w(0, 2), w(2, 4)], w(0, 8), 1),  # half-open: one starts as the other ends
        ([w(0, 2)], w(2, 4), 0),
        ([w(0, 10), w(1, 2), w(1.5, 3), w(9, 12)], w(0, 12), 3),
        ([w(5, 6)], w(0, 1), 0),
    ],
)
def test_peak_overlap(bookings, window, peak):
    assert peak_overlap(bookings, window) == peak


def test_fits_counts_walk_ins():
    assert fits(2, [w(0, 4)], w(1, 2))
    assert not fits(2, [w(0, 4)], w(1, 2), occupied=1)
    assert not fits(0, [], w(0, 1))


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=0, max_value=5),
    requests=st.lists(st.tuples(st.integers(0, 48), st.integers(1, 24)), max_size=30),
)
def test_accepting_only_what_fits_never_overbooks(capacity, requests):
    """Whatever arrives, accepting only fitting windows keeps every moment within capacity."""
    accepted: list[Window] = []
    for start, length in requests:
        window = w(start, start + length)
        if fits(capacity, accepted, window):
            accepted.append(window)
    # Check every hour boundary (all windows start and end on whole hours).
    for hour in range(0, 73):
        moment = T0 + timedelta(hours=hour, minutes=30)
        in_force = sum(1 for b in accepted if b.start <= moment < b.end)
        assert in_force <= capacity


POLICY = ReservationPolicy(
    max_duration=timedelta(hours=72), checkin_early=timedelta(minutes=30), no_show_after=None
)


def test_window_rules():
    now = T0
    assert POLICY.window_problem(w(1, 2), now) is None
    assert "after" in POLICY.window_problem(w(2, 2), now)
    assert "after" in POLICY.window_problem(w(2, 1), now)
    assert "past" in POLICY.window_problem(w(-1, 2), now)
    assert "at most 72" in POLICY.window_problem(w(1, 74), now)


def test_no_show_deadline_defaults_to_the_end_of_the_window():
    start, end = T0, T0 + timedelta(hours=2)
    assert (
        POLICY.effective_status("confirmed", start, end, end - timedelta(seconds=1)) == "confirmed"
    )
    assert POLICY.effective_status("confirmed", start, end, end) == "no_show"
    assert (
        POLICY.effective_status("checked_in", start, end, end + timedelta(hours=1)) == "checked_in"
    )
    short = ReservationPolicy(
        max_duration=timedelta(hours=72),
        checkin_early=timedelta(minutes=30),
        no_show_after=timedelta(minutes=20),
    )
    assert (
        short.effective_status("confirmed", start, end, start + timedelta(minutes=19))
        == "confirmed"
    )
    assert (
        short.effective_status("confirmed", start, end, start + timedelta(minutes=20)) == "no_show"
    )
    assert short.check_in_opens(start) == start - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-01-15", 1, "2026-02-15"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2026-12-31", 12, "2027-12-31"),
        ("2026-03-31", 1, "2026-04-30"),
    ],
)
def test_add_months_clamps_to_the_last_day(start, months, end):
    from datetime import date

    assert add_months(date.fromisoformat(start), months) == date.fromisoformat(end)
