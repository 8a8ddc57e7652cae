"""Membership terms and the benefit a member's stay receives."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


def add_months(start: date, months: int) -> date:
    """Same day ``months`` calendar months later; a missing day becomes the month's last
    (Jan 31 + 1 month = Feb 28/29)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, kw_only=True)
class MemberBenefit:
    """What a plan gives one stay.

    ``included_minutes_left`` is the plan's allowance not yet used by the membership's
    stays completed before this one entered (None: the plan has no allowance). Included
    time is consumed before anything is charged; the discount percentage applies to what
    is still charged after it.
    """

    membership_id: int
    discount_percentage: Decimal
    included_minutes_left: int | None
    ev_charging_included: bool

    @property
    def has_allowance(self) -> bool:
        return self.included_minutes_left is not None and self.included_minutes_left > 0
