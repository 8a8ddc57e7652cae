"""Fee rules of the field reference (sections 9 and 11.3), tested on the pure domain layer.

No daemon, no database, no event loop: rates are plain values, time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.fees import (
    ChargeLine,
    Fee,
    PaymentRecord,
    Rate,
    RateType,
    calculate_fee,
    choose_rates,
    duration_minutes,
    exit_status,
    minutes_left,
    started_hours,
)
from gateway.domain.memberships import MemberBenefit
from gateway.domain.money import cents

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # outside every peak window used below
VEHICLE_TYPE = 1
ZONE = 10
EXIT_WINDOW = timedelta(minutes=15)


def rate(rate_id: int, rate_type: RateType = "hourly", amount: str = "5", **kw: Any) -> Rate:
    kw.setdefault("effective_from", LONG_AGO)
    return Rate(id=rate_id, rate_type=rate_type, amount=Decimal(amount), **kw)


def discount(pct: Decimal) -> MemberBenefit:
    """A plan that only takes a percentage off (no included hours)."""
    return MemberBenefit(
        membership_id=1,
        discount_percentage=pct,
        included_minutes_left=None,
        ev_charging_included=False,
    )


def fee(
    minutes: int,
    *rates: Rate,
    end: datetime = NOON,
    vehicle_type_id: int | None = VEHICLE_TYPE,
    zone_id: int | None = ZONE,
    **kw: Any,
) -> Fee:
    return calculate_fee(
        entry=end - timedelta(minutes=minutes),
        end=end,
        rates=rates,
        vehicle_type_id=vehicle_type_id,
        zone_id=zone_id,
        **kw,
    )


def is_cents(amount: Decimal) -> bool:
    return amount.as_tuple().exponent == -2


def assert_consistent(f: Fee) -> None:
    """The invariants every fee must satisfy, whatever priced it."""
    assert sum(line.amount for line in f.breakdown) == f.total
    assert f.total == f.base_fee - f.discounts + f.ev_charging + f.tax
    assert f.total >= 0
    for amount in (f.base_fee, f.discounts, f.tax, f.ev_charging, f.total):
        assert is_cents(amount), amount
    for line in f.breakdown:
        assert is_cents(line.amount), line


HOURLY_5 = rate(1, "hourly", "5")
DAILY_25 = rate(2, "daily", "25")


# -- 9.1 which rate applies --------------------------------------------------------------


GENERIC = rate(1)
ZONE_ONLY = rate(2, zone_id=ZONE)
TYPE_ONLY = rate(3, vehicle_type_id=VEHICLE_TYPE)
TYPE_AND_ZONE = rate(4, vehicle_type_id=VEHICLE_TYPE, zone_id=ZONE)
OTHER_TYPE = rate(5, vehicle_type_id=VEHICLE_TYPE + 1)
OTHER_ZONE = rate(6, zone_id=ZONE + 1)
OTHER_TYPE_SAME_ZONE = rate(7, vehicle_type_id=VEHICLE_TYPE + 1, zone_id=ZONE)


@pytest.mark.parametrize(
    ("rates", "zone_id", "winner", "specificity"),
    [
        ([GENERIC], ZONE, 1, 4),
        ([GENERIC, ZONE_ONLY], ZONE, 2, 3),
        ([ZONE_ONLY, GENERIC], ZONE, 2, 3),
        ([GENERIC, ZONE_ONLY, TYPE_ONLY], ZONE, 3, 2),
        ([TYPE_AND_ZONE, TYPE_ONLY, ZONE_ONLY, GENERIC], ZONE, 4, 1),
        ([GENERIC, OTHER_TYPE, OTHER_ZONE, OTHER_TYPE_SAME_ZONE], ZONE, 1, 4),
        # A session without a space matches only rates without a zone.
        ([TYPE_AND_ZONE, ZONE_ONLY, GENERIC], None, 1, 4),
        ([TYPE_AND_ZONE, ZONE_ONLY, TYPE_ONLY], None, 3, 2),
        ([OTHER_TYPE, OTHER_ZONE, OTHER_TYPE_SAME_ZONE], ZONE, None, None),
    ],
)
def test_most_specific_rate_wins(
    rates: list[Rate], zone_id: int | None, winner: int | None, specificity: int | None
) -> None:
    chosen = choose_rates(rates, vehicle_type_id=VEHICLE_TYPE, zone_id=zone_id, at=NOON)
    assert (chosen.hourly.id if chosen.hourly else None) == winner
    assert chosen.specificity.get("hourly") == specificity


def test_a_rate_with_a_vehicle_type_does_not_match_a_vehicle_without_one() -> None:
    chosen = choose_rates([TYPE_ONLY, GENERIC], vehicle_type_id=None, zone_id=ZONE, at=NOON)
    assert chosen.hourly is GENERIC


@pytest.mark.parametrize(
    ("rates", "winner"),
    [
        # Same specificity: the latest effective_from wins, even against a higher id.
        (
            [rate(9, effective_from=LONG_AGO), rate(3, effective_from=LONG_AGO.replace(year=2024))],
            3,
        ),
        (
            [rate(3, effective_from=LONG_AGO.replace(year=2024)), rate(9, effective_from=LONG_AGO)],
            3,
        ),
        # Same effective_from too: the highest id wins, whatever the order given.
        ([rate(3), rate(9), rate(5)], 9),
        ([rate(9), rate(3)], 9),
        # Specificity comes before both tie-breaks.
        ([rate(99, effective_from=NOON - timedelta(days=1)), rate(1, zone_id=ZONE)], 1),
    ],
)
def test_ties_go_to_latest_effective_from_then_highest_id(rates: list[Rate], winner: int) -> None:
    chosen = choose_rates(rates, vehicle_type_id=VEHICLE_TYPE, zone_id=ZONE, at=NOON)
    assert chosen.hourly is not None and chosen.hourly.id == winner


def test_each_rate_type_is_chosen_separately() -> None:
    rates = [
        rate(1, "hourly", vehicle_type_id=VEHICLE_TYPE, zone_id=ZONE),
        rate(2, "hourly"),
        rate(3, "daily", "25"),
        rate(4, "daily", "30", zone_id=ZONE),
        rate(5, "flat", "7", vehicle_type_id=VEHICLE_TYPE),
    ]
    chosen = choose_rates(rates, vehicle_type_id=VEHICLE_TYPE, zone_id=ZONE, at=NOON)
    assert (chosen.hourly, chosen.daily, chosen.flat) == (rates[0], rates[3], rates[4])
    assert chosen.specificity == {"hourly": 1, "daily": 3, "flat": 2}


@pytest.mark.parametrize(
    ("candidate", "applies"),
    [
        (rate(2, "hourly", "9"), True),
        (rate(2, "hourly", "9", is_active=False), False),
        (rate(2, "hourly", "9", effective_from=NOON), True),  # effective_from <= end
        (rate(2, "hourly", "9", effective_from=NOON + timedelta(seconds=1)), False),
        (rate(2, "hourly", "9", effective_to=NOON), True),  # effective_to >= end
        (rate(2, "hourly", "9", effective_to=NOON - timedelta(seconds=1)), False),
    ],
)
def test_a_rate_applies_when_active_and_effective_at_the_end_of_the_stay(
    candidate: Rate, applies: bool
) -> None:
    # The candidate is more specific than the fallback, so it wins whenever it applies.
    fallback = rate(1, "hourly", "5")
    f = fee(60, replace(candidate, zone_id=ZONE), fallback)
    assert f.base_fee == (Decimal("9.00") if applies else Decimal("5.00"))


@pytest.mark.parametrize(
    "rates",
    [
        [],
        [rate(1, is_active=False)],
        [rate(1, effective_from=NOON + timedelta(hours=1))],
        [rate(1, effective_to=NOON - timedelta(hours=1))],
        [rate(1, vehicle_type_id=VEHICLE_TYPE + 1), rate(2, "daily", zone_id=ZONE + 1)],
    ],
)
def test_no_applicable_rate_costs_nothing(rates: list[Rate]) -> None:
    f = fee(300, *rates)
    assert f.base_fee == 0 and f.total == 0
    assert [line.description for line in f.breakdown] == ["No applicable rate"]
    assert not f.within_grace
    assert f.hourly_amount is None
    assert_consistent(f)


# -- 9.2 flat, hourly and daily ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "minutes", "base_fee"),
    [
        # Flat at least as specific as the hourly rate: flat, whatever the duration.
        ([rate(1, "hourly", "5"), rate(2, "flat", "7")], 600, "7.00"),
        ([rate(1, "hourly", "5"), rate(2, "flat", "7")], 5, "7.00"),
        ([rate(1, "hourly", "5", zone_id=ZONE), rate(2, "flat", "7", zone_id=ZONE)], 600, "7.00"),
        ([rate(1, "hourly", "5"), rate(2, "flat", "7", vehicle_type_id=VEHICLE_TYPE)], 600, "7.00"),
        # The hourly rate is more specific: hourly wins.
        ([rate(1, "hourly", "5", zone_id=ZONE), rate(2, "flat", "7")], 600, "50.00"),
        (
            [
                rate(1, "hourly", "5", vehicle_type_id=VEHICLE_TYPE),
                rate(2, "flat", "7", zone_id=ZONE),
            ],
            600,
            "50.00",
        ),
        # Flat with no hourly rate, next to a daily one: the daily rate is not used.
        ([rate(1, "daily", "25"), rate(2, "flat", "7")], 3000, "7.00"),
        # A more specific flat rate still wins over a daily one.
        ([rate(1, "daily", "25", zone_id=ZONE), rate(2, "flat", "7")], 3000, "7.00"),
    ],
)
def test_flat_against_hourly_precedence(rates: list[Rate], minutes: int, base_fee: str) -> None:
    f = fee(minutes, *rates)
    assert f.base_fee == Decimal(base_fee)
    assert_consistent(f)


def test_flat_line_describes_a_flat_rate() -> None:
    f = fee(600, rate(1, "hourly"), rate(2, "flat", "7"))
    assert len(f.breakdown) == 1
    assert "flat rate" in f.breakdown[0].description.lower()


@pytest.mark.parametrize(
    ("minutes", "base_fee", "days"),
    [
        (0, "25.00", 1),
        (1, "25.00", 1),
        (1439, "25.00", 1),
        (1440, "25.00", 1),
        (1441, "50.00", 2),
        (2880, "50.00", 2),
        (2881, "75.00", 3),
    ],
)
def test_daily_only_pricing_charges_each_started_24_hours(
    minutes: int, base_fee: str, days: int
) -> None:
    f = fee(minutes, rate(1, "daily", "25"))
    assert f.base_fee == Decimal(base_fee)
    assert [line.description for line in f.breakdown] == [f"Daily rate ({days} day(s) @ $25/day)"]
    assert_consistent(f)


@pytest.mark.parametrize(
    ("minutes", "base_fee", "hours"),
    [
        (1, "5.00", 1),
        (59, "5.00", 1),
        (60, "5.00", 1),
        (61, "10.00", 2),
        (120, "10.00", 2),
        (121, "15.00", 3),
        (127, "15.00", 3),  # the seed's example
    ],
)
def test_started_hours(minutes: int, base_fee: str, hours: int) -> None:
    f = fee(minutes, HOURLY_5)
    assert f.base_fee == Decimal(base_fee) == f.total
    assert len(f.breakdown) == 1
    assert f"{hours} hour(s)" in f.breakdown[0].description
    assert started_hours(minutes) == hours


def test_seed_example_127_minutes_with_15_minutes_grace() -> None:
    f = fee(127, rate(1, "hourly", "5", grace_period_minutes=15))
    assert f.duration_minutes == 127
    assert (f.base_fee, f.discounts, f.tax, f.total) == (
        Decimal("15"),
        Decimal(0),
        Decimal(0),
        Decimal("15"),
    )
    assert [(line.description, line.amount) for line in f.breakdown] == [
        ("Parking (3 hour(s) @ $5/hr)", Decimal("15.00"))
    ]


# -- grace period ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "minutes", "base_fee"),
    [
        (15, 0, "0.00"),
        (15, 14, "0.00"),
        (15, 15, "0.00"),  # exactly the grace period is free
        (15, 16, "5.00"),
        # Past the grace the whole stay is billed from entry: 75 min is 2 hours, not 1.
        (15, 75, "10.00"),
        (60, 60, "0.00"),
        (60, 61, "10.00"),
        # Grace 0 means none: even a zero-minute stay costs one hour.
        (0, 0, "5.00"),
        (0, 1, "5.00"),
    ],
)
def test_grace_period(grace: int, minutes: int, base_fee: str) -> None:
    f = fee(minutes, rate(1, "hourly", "5", grace_period_minutes=grace))
    assert f.base_fee == Decimal(base_fee)
    assert f.within_grace == (base_fee == "0.00")
    assert f.grace_period_minutes == grace
    assert_consistent(f)


def test_within_grace_line() -> None:
    f = fee(10, rate(1, "hourly", "5", grace_period_minutes=15))
    assert len(f.breakdown) == 1
    assert "grace period" in f.breakdown[0].description.lower()
    assert f.breakdown[0].amount == 0


@pytest.mark.parametrize(
    ("rates", "minutes", "base_fee"),
    [
        # The grace period is the one of the rate that prices the stay.
        (
            [
                rate(1, "hourly", grace_period_minutes=0),
                rate(2, "flat", "7", grace_period_minutes=30),
            ],
            20,
            "0.00",
        ),
        (
            [
                rate(1, "hourly", grace_period_minutes=30),
                rate(2, "flat", "7", grace_period_minutes=0),
            ],
            20,
            "7.00",
        ),
        (
            [
                rate(1, "hourly", grace_period_minutes=30, zone_id=ZONE),
                rate(2, "flat", "7", grace_period_minutes=0),
            ],
            20,
            "0.00",
        ),
        (
            [
                rate(1, "hourly", grace_period_minutes=0, zone_id=ZONE),
                rate(2, "flat", "7", grace_period_minutes=30),
            ],
            20,
            "5.00",
        ),
        # The daily rate's grace does not apply when the hourly rate prices the stay.
        (
            [
                rate(1, "hourly", grace_period_minutes=0),
                rate(2, "daily", "25", grace_period_minutes=30),
            ],
            20,
            "5.00",
        ),
        ([rate(2, "daily", "25", grace_period_minutes=30)], 30, "0.00"),
        ([rate(2, "daily", "25", grace_period_minutes=30)], 31, "25.00"),
    ],
)
def test_grace_of_the_pricing_rate(rates: list[Rate], minutes: int, base_fee: str) -> None:
    assert fee(minutes, *rates).base_fee == Decimal(base_fee)


# -- daily maximum -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "base_fee"),
    [
        (3 * 60 + 30, "20.00"),
        (5 * 60, "25.00"),  # 5 hours is exactly the daily amount
        (10 * 60, "25.00"),
        (24 * 60, "25.00"),
        (24 * 60 + 1, "30.00"),
        (51 * 60, "65.00"),  # 2 x 25 + 3 x 5
        (58 * 60, "75.00"),  # the 10-hour remainder is capped at 25
        (72 * 60, "75.00"),
    ],
)
def test_daily_maximum_examples(minutes: int, base_fee: str) -> None:
    f = fee(minutes, HOURLY_5, DAILY_25)
    assert f.base_fee == Decimal(base_fee) == f.total
    assert_consistent(f)


@pytest.mark.parametrize(
    ("minutes", "lines"),
    [
        (210, [("4 hour(s)", "20.00")]),
        (600, [("daily maximum", "25.00")]),
        (51 * 60, [("2 day(s)", "50.00"), ("remaining time (3 hour(s)", "15.00")]),
        (58 * 60, [("2 day(s)", "50.00"), ("daily maximum", "25.00")]),
        (72 * 60, [("3 day(s)", "75.00")]),
    ],
)
def test_daily_maximum_breakdown(minutes: int, lines: list[tuple[str, str]]) -> None:
    f = fee(minutes, HOURLY_5, DAILY_25)
    assert len(f.breakdown) == len(lines)
    for line, (words, amount) in zip(f.breakdown, lines, strict=True):
        assert words in line.description.lower()
        assert line.amount == Decimal(amount)


def test_daily_maximum_with_grace_zero_and_a_zero_minute_stay() -> None:
    # "A stay past the grace period costs at least one hour, even a zero-minute stay when
    # the grace period is 0": that hour is billed, and it is still under the daily cap.
    assert fee(0, HOURLY_5, DAILY_25).base_fee == Decimal("5.00")
    assert fee(0, rate(1, "hourly", "30"), DAILY_25).base_fee == Decimal("25.00")


# -- peak pricing ------------------------------------------------------------------------


DAY_PEAK = rate(
    1,
    "hourly",
    "4",
    peak_multiplier=Decimal("1.5"),
    peak_start_time=time(17),
    peak_end_time=time(19),
)
NIGHT_PEAK = rate(
    1, "hourly", "4", peak_multiplier=Decimal("2"), peak_start_time=time(22), peak_end_time=time(6)
)


def at(hour: int, minute: int = 0) -> datetime:
    return NOON.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(
    ("hourly", "end", "base_fee"),
    [
        (DAY_PEAK, at(16, 59), "16.00"),
        (DAY_PEAK, at(17, 0), "24.00"),  # the start of the window is inside it
        (DAY_PEAK, at(18, 0), "24.00"),
        (DAY_PEAK, at(18, 59), "24.00"),
        (DAY_PEAK, at(19, 0), "16.00"),  # the end is not
        # A window that wraps midnight.
        (NIGHT_PEAK, at(21, 59), "16.00"),
        (NIGHT_PEAK, at(22, 0), "32.00"),
        (NIGHT_PEAK, at(23, 30), "32.00"),
        (NIGHT_PEAK, at(0, 0), "32.00"),
        (NIGHT_PEAK, at(5, 59), "32.00"),
        (NIGHT_PEAK, at(6, 0), "16.00"),
        (NIGHT_PEAK, at(12, 0), "16.00"),
    ],
)
def test_peak_multiplies_the_whole_stay_when_it_ends_in_the_window(
    hourly: Rate, end: datetime, base_fee: str
) -> None:
    # Four hours; only where the stay ends matters, not where it started.
    f = fee(240, hourly, end=end)
    assert f.base_fee == Decimal(base_fee)
    assert f.hourly_amount == Decimal(base_fee) / 4


def test_peak_without_a_window_is_ignored() -> None:
    hourly = rate(1, "hourly", "4", peak_multiplier=Decimal("3"), peak_start_time=time(11))
    assert fee(60, hourly, end=at(12)).base_fee == Decimal("4.00")


def test_daily_maximum_uses_the_peak_hourly_amount() -> None:
    peak = rate(
        1,
        "hourly",
        "5",
        peak_multiplier=Decimal("2"),
        peak_start_time=time(17),
        peak_end_time=time(19),
    )
    # 2 h at $10 = 20 (under the cap); 3 h at $10 = 30, capped at 25.
    assert fee(120, peak, DAILY_25, end=at(18)).base_fee == Decimal("20.00")
    assert fee(180, peak, DAILY_25, end=at(18)).base_fee == Decimal("25.00")
    # 25 hours: one day plus one started hour at $10.
    assert fee(25 * 60, peak, DAILY_25, end=at(18)).base_fee == Decimal("35.00")


# -- rounding and the whole fee ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "minutes", "kw", "total"),
    [
        # Half-up, not half-even: 2.345 -> 2.35; 0.125 -> 0.13.
        ([rate(1, "hourly", "2.345")], 60, {}, "2.35"),
        ([rate(1, "flat", "2.345")], 60, {}, "2.35"),
        ([rate(1, "daily", "0.125")], 60, {}, "0.13"),
        (
            [
                rate(
                    1,
                    "hourly",
                    "0.25",
                    peak_multiplier=Decimal("0.5"),
                    peak_start_time=time(11),
                    peak_end_time=time(13),
                )
            ],
            60,
            {},
            "0.13",
        ),
        # Membership discount 5% of 2.50 = 0.125 -> 0.13 off.
        ([rate(1, "hourly", "2.5")], 60, {"member": discount(Decimal("5"))}, "2.37"),
        # The seed's charging example: 12.5 kWh x 0.25 = 3.125 -> 3.13.
        (
            [rate(1, "hourly", "5")],
            60,
            {"charges": [ChargeLine(Decimal("12.5"), Decimal("3.125"))]},
            "8.13",
        ),
    ],
)
def test_half_up_rounding_to_cents(
    rates: list[Rate], minutes: int, kw: dict[str, Any], total: str
) -> None:
    f = fee(minutes, *rates, **kw)
    assert f.total == Decimal(total)
    assert_consistent(f)


def test_membership_discount_example() -> None:
    f = fee(60, HOURLY_5, member=discount(Decimal("20")))
    assert (f.base_fee, f.discounts, f.total) == (Decimal("5.00"), Decimal("1.00"), Decimal("4.00"))
    assert f.breakdown[-1].amount == Decimal("-1.00")
    assert "membership discount (20%)" in f.breakdown[-1].description.lower()
    assert_consistent(f)


def test_membership_discount_on_a_free_stay_adds_no_line() -> None:
    f = fee(5, rate(1, "hourly", "5", grace_period_minutes=15), member=discount(Decimal("20")))
    assert f.discounts == 0 and f.total == 0
    assert len(f.breakdown) == 1


def test_charges_are_added_with_their_idle_fee() -> None:
    charges = [ChargeLine(Decimal("10"), Decimal("2.50"), idle_fee=Decimal("1.00"))]
    f = fee(60, HOURLY_5, charges=charges)
    assert (f.ev_charging, f.total) == (Decimal("3.50"), Decimal("8.50"))
    assert len(f.breakdown) == 3
    assert_consistent(f)


@pytest.mark.parametrize(
    ("delta", "minutes"),
    [
        (timedelta(minutes=59, seconds=59), 59),
        (timedelta(minutes=60), 60),
        (timedelta(minutes=60, microseconds=1), 60),
        (timedelta(0), 0),
        (timedelta(minutes=-5), 0),
    ],
)
def test_duration_is_whole_minutes_rounded_down(delta: timedelta, minutes: int) -> None:
    assert duration_minutes(NOON, NOON + delta) == minutes


def test_an_end_before_entry_is_a_zero_minute_stay() -> None:
    f = calculate_fee(
        entry=NOON,
        end=NOON - timedelta(hours=2),
        rates=[rate(1, "hourly", "5", grace_period_minutes=15)],
        vehicle_type_id=VEHICLE_TYPE,
        zone_id=ZONE,
    )
    assert f.duration_minutes == 0 and f.total == 0 and f.within_grace


# -- properties --------------------------------------------------------------------------

cents_amount = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))
odd_amount = st.decimals(min_value=0, max_value=500, places=3)


@st.composite
def rate_sets(
    draw: st.DrawFn, *, types: tuple[str, ...] = ("hourly", "daily", "flat")
) -> list[Rate]:
    """A few rates of random types, amounts, graces and scopes (never a peak window)."""
    count = draw(st.integers(min_value=1, max_value=5))
    return [
        rate(
            rate_id,
            draw(st.sampled_from(types)),
            str(draw(st.one_of(cents_amount, odd_amount))),
            grace_period_minutes=draw(st.sampled_from([0, 0, 10, 15, 30, 60])),
            vehicle_type_id=draw(st.sampled_from([None, VEHICLE_TYPE, VEHICLE_TYPE + 1])),
            zone_id=draw(st.sampled_from([None, ZONE, ZONE + 1])),
        )
        for rate_id in range(1, count + 1)
    ]


stay_minutes = st.integers(min_value=0, max_value=10 * 1440)


@given(rate_sets(), stay_minutes, stay_minutes)
def test_fee_never_decreases_as_the_stay_gets_longer(rates: list[Rate], a: int, b: int) -> None:
    shorter, longer = sorted((a, b))
    assert fee(shorter, *rates).total <= fee(longer, *rates).total


@given(rate_sets(types=("hourly", "daily")), odd_amount, stay_minutes)
def test_daily_cap_always_holds(rates: list[Rate], generic_daily: Decimal, minutes: int) -> None:
    # A generic daily rate always applies, possibly beaten by a more specific one.
    rates = [*rates, rate(100, "daily", str(generic_daily))]
    chosen = choose_rates(rates, vehicle_type_id=VEHICLE_TYPE, zone_id=ZONE, at=NOON)
    assert chosen.daily is not None
    days = max(1, math.ceil(minutes / 1440))
    assert fee(minutes, *rates).base_fee <= days * cents(chosen.daily.amount)


@given(
    rate_sets(),
    stay_minutes,
    st.one_of(st.none(), st.decimals(min_value=1, max_value=100, places=2)),
    st.lists(st.builds(ChargeLine, odd_amount, odd_amount, odd_amount), max_size=3),
)
def test_breakdown_adds_up_and_amounts_are_cents(
    rates: list[Rate], minutes: int, pct: Decimal | None, charges: list[ChargeLine]
) -> None:
    assert_consistent(fee(minutes, *rates, member=discount(pct) if pct else None, charges=charges))


@given(cents_amount, cents_amount, st.integers(min_value=1, max_value=10 * 1440))
def test_hourly_with_daily_is_the_cheaper_of_plain_hours_and_the_cap(
    hourly: Decimal, daily: Decimal, minutes: int
) -> None:
    # The formula of 9.2, verbatim (the second term is 0 when rest is 0).
    f = fee(minutes, rate(1, "hourly", str(hourly)), rate(2, "daily", str(daily)))
    full_days, rest = divmod(minutes, 1440)
    capped = full_days * daily + (min(math.ceil(rest / 60) * hourly, daily) if rest else 0)
    assert f.base_fee == min(started_hours(minutes) * hourly, capped)


# -- 11.3 amount due at the barrier ------------------------------------------------------

PAID_AT = NOON


def paid(amount: str, at: datetime = PAID_AT) -> PaymentRecord:
    return PaymentRecord(amount=Decimal(amount), paid_at=at)


@pytest.mark.parametrize(
    ("fee_total", "payments", "now", "due", "in_window"),
    [
        ("5.00", [], PAID_AT, "5.00", False),
        ("0.00", [], PAID_AT, "0.00", False),
        # Inside the exit window nothing is due, whatever the fee does meanwhile.
        ("5.00", [paid("5")], PAID_AT, "0.00", True),
        ("10.00", [paid("5")], PAID_AT + timedelta(minutes=14, seconds=59), "0.00", True),
        # After it, only what the fee has grown beyond the payments.
        ("5.00", [paid("5")], PAID_AT + timedelta(minutes=15, seconds=1), "0.00", False),
        ("10.00", [paid("5")], PAID_AT + timedelta(minutes=16), "5.00", False),
        (
            "15.00",
            [paid("5", PAID_AT - timedelta(hours=2)), paid("5")],
            PAID_AT + timedelta(hours=1),
            "5.00",
            False,
        ),
        # The window is the latest payment's.
        (
            "15.00",
            [paid("5", PAID_AT - timedelta(hours=2)), paid("5")],
            PAID_AT + timedelta(minutes=5),
            "0.00",
            True,
        ),
        # A fee lower than what was paid (a rate went down) is nothing due, never negative.
        ("3.00", [paid("5")], PAID_AT + timedelta(hours=1), "0.00", False),
    ],
)
def test_exit_status(
    fee_total: str, payments: list[PaymentRecord], now: datetime, due: str, in_window: bool
) -> None:
    status = exit_status(Decimal(fee_total), payments, now, EXIT_WINDOW)
    assert status.amount_due == Decimal(due)
    assert is_cents(status.amount_due)
    assert status.in_exit_window is in_window
    assert status.is_paid is bool(payments)
    expected_end = max(p.paid_at for p in payments) + EXIT_WINDOW if payments else None
    assert status.window_ends == expected_end


def test_stay_after_the_exit_window_pays_only_the_extra_hours() -> None:
    entry = NOON
    rates = [rate(1, "hourly", "5", grace_period_minutes=15)]

    def due_at(minutes: int, payments: list[PaymentRecord]) -> Decimal:
        end = entry + timedelta(minutes=minutes)
        total = fee(minutes, *rates, end=end).total
        return exit_status(total, payments, end, EXIT_WINDOW).amount_due

    assert due_at(50, []) == Decimal("5.00")
    payment = [paid("5.00", entry + timedelta(minutes=50))]
    assert due_at(64, payment) == 0  # inside the window, although now 2 hours are started
    assert due_at(70, payment) == Decimal("5.00")  # window over, the second hour is owed

    early = [paid("5.00", entry + timedelta(minutes=20))]
    assert due_at(55, early) == 0  # window over, but the fee has not grown


@pytest.mark.parametrize(
    ("left", "minutes"),
    [
        (timedelta(minutes=15), 15),
        (timedelta(minutes=14, seconds=1), 15),
        (timedelta(minutes=14), 14),
        (timedelta(seconds=1), 1),
        (timedelta(0), 0),
        (timedelta(minutes=-3), 0),
    ],
)
def test_minutes_left_rounds_up_and_is_never_negative(left: timedelta, minutes: int) -> None:
    assert minutes_left(NOON + left, NOON) == minutes
