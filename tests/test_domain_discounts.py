"""When a code is usable and what it takes off (field reference 12.2 and 12.3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.discounts import Discount, DiscountType, discount_amount, unusable_reason

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def discount(**kw: Any) -> Discount:
    """A code usable now by anyone, unless ``kw`` says otherwise."""
    fields: dict[str, Any] = {
        "id": 1,
        "code": "SHOP20",
        "discount_type": "percentage",
        "value": Decimal("20"),
        "valid_from": NOW - timedelta(days=1),
        "valid_to": NOW + timedelta(days=1),
        "is_active": True,
        "max_uses": 10,
        "current_uses": 0,
        "max_uses_per_user": 1,
        "min_duration_hours": 2,
    }
    return Discount(**{**fields, **kw})


# Each case also fails every later check, so only the documented order gives its message.
FAILS_EVERYTHING_AFTER_ACTIVE = {
    "max_uses": 3,
    "current_uses": 3,
    "min_duration_hours": 5,
    "max_uses_per_user": 1,
}


@pytest.mark.parametrize(
    ("found", "message"),
    [
        (None, "Invalid discount code"),
        (
            discount(
                is_active=False,
                valid_from=NOW + timedelta(hours=1),
                **FAILS_EVERYTHING_AFTER_ACTIVE,
            ),
            "Discount is not active",
        ),
        (
            discount(valid_from=NOW + timedelta(hours=1), **FAILS_EVERYTHING_AFTER_ACTIVE),
            "Discount is not yet valid",
        ),
        (
            discount(
                valid_from=NOW - timedelta(days=2),
                valid_to=NOW - timedelta(days=1),
                **FAILS_EVERYTHING_AFTER_ACTIVE,
            ),
            "Discount has expired",
        ),
        (
            discount(max_uses=3, current_uses=3, min_duration_hours=5, max_uses_per_user=1),
            "Discount usage limit reached",
        ),
        (
            discount(max_uses=3, current_uses=4, min_duration_hours=5, max_uses_per_user=1),
            "Discount usage limit reached",
        ),
        (
            discount(min_duration_hours=5, max_uses_per_user=1),
            "Minimum parking duration not reached",
        ),
        (discount(max_uses_per_user=1), "Discount usage limit reached for this user"),
    ],
)
def test_checks_run_in_the_documented_order(found: Discount | None, message: str) -> None:
    # A 2-hour stay by a customer who has already used the code once.
    assert unusable_reason(found, NOW, stay_minutes=120, uses_by_payer=1) == message


@pytest.mark.parametrize(
    ("found", "kw"),
    [
        (discount(), {}),
        (discount(), {"stay_minutes": 120, "uses_by_payer": 0}),
        # Both ends of the validity are inclusive.
        (discount(valid_from=NOW), {}),
        (discount(valid_to=NOW), {}),
        # One use left; no limit at all.
        (discount(max_uses=3, current_uses=2), {}),
        (discount(max_uses=None, current_uses=10_000), {}),
        # A stay of exactly the minimum duration; no minimum; no session known.
        (discount(min_duration_hours=2), {"stay_minutes": 120}),
        (discount(min_duration_hours=None), {"stay_minutes": 0}),
        (discount(min_duration_hours=0), {"stay_minutes": 0}),
        (discount(min_duration_hours=5), {}),
        # Under the per-user limit; staff paying (no per-user count) are not limited.
        (discount(max_uses_per_user=3), {"uses_by_payer": 2}),
        (discount(max_uses_per_user=1), {"uses_by_payer": None}),
    ],
)
def test_usable_codes(found: Discount, kw: dict[str, Any]) -> None:
    assert unusable_reason(found, NOW, **kw) is None


@pytest.mark.parametrize(
    ("found", "kw", "message"),
    [
        (discount(valid_from=NOW + timedelta(microseconds=1)), {}, "Discount is not yet valid"),
        (discount(valid_to=NOW - timedelta(microseconds=1)), {}, "Discount has expired"),
        (
            discount(min_duration_hours=2),
            {"stay_minutes": 119},
            "Minimum parking duration not reached",
        ),
        (
            discount(max_uses_per_user=3),
            {"uses_by_payer": 3},
            "Discount usage limit reached for this user",
        ),
    ],
)
def test_boundaries_just_past_the_limit(found: Discount, kw: dict[str, Any], message: str) -> None:
    assert unusable_reason(found, NOW, **kw) == message


@pytest.mark.parametrize(
    ("discount_type", "value", "due", "hourly", "off"),
    [
        ("percentage", "20", "5.00", None, "1.00"),
        ("percentage", "20", "15.00", None, "3.00"),  # the seed's example
        ("percentage", "100", "5.00", None, "5.00"),
        ("percentage", "12.5", "1.00", None, "0.13"),  # 0.125 half-up, not 0.12
        ("percentage", "50", "0.05", None, "0.03"),  # 0.025 half-up
        ("percentage", "33", "10.00", None, "3.30"),
        ("fixed_amount", "50", "5.00", None, "5.00"),
        ("fixed_amount", "2", "5.00", None, "2.00"),
        ("fixed_amount", "2.345", "5.00", None, "2.35"),
        ("fixed_amount", "5", "5.00", None, "5.00"),
        ("free_hours", "1", "5.00", "5.00", "5.00"),
        ("free_hours", "2", "15.00", "5.00", "10.00"),
        ("free_hours", "3", "10.00", "5.00", "10.00"),  # never more than due
        ("free_hours", "0.5", "10.00", "2.25", "1.13"),  # 1.125 half-up
        ("free_hours", "1", "5.00", None, "0.00"),  # no hourly rate applies: nothing
        ("percentage", "20", "0.00", None, "0.00"),
        ("fixed_amount", "50", "0.00", None, "0.00"),
        ("free_hours", "1", "0.00", "5.00", "0.00"),
    ],
)
def test_what_a_code_takes_off(
    discount_type: DiscountType, value: str, due: str, hourly: str | None, off: str
) -> None:
    code = discount(discount_type=discount_type, value=Decimal(value))
    amount = discount_amount(code, Decimal(due), Decimal(hourly) if hourly else None)
    assert amount == Decimal(off)
    assert amount.as_tuple().exponent == -2


money = st.integers(min_value=0, max_value=100_000).map(lambda c: Decimal(c).scaleb(-2))


@given(
    st.sampled_from(["percentage", "fixed_amount", "free_hours"]),
    st.decimals(min_value=Decimal("0.001"), max_value=1000, places=3),
    money,
    st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=3)),
)
def test_discount_never_exceeds_due_and_is_cents(
    discount_type: DiscountType, value: Decimal, due: Decimal, hourly: Decimal | None
) -> None:
    if discount_type == "percentage":
        value = min(value, Decimal(100))
    code = replace(discount(), discount_type=discount_type, value=value)
    off = discount_amount(code, due, hourly)
    assert 0 <= off <= due
    assert off.as_tuple().exponent == -2


@given(st.decimals(min_value=Decimal("0.01"), max_value=100, places=2), money)
def test_percentage_is_due_times_value_over_100_half_up(pct: Decimal, due: Decimal) -> None:
    expected = (due * pct / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert discount_amount(discount(value=pct), due, None) == expected
