"""Promo codes and partner validations: when a code is usable and what it takes off.

The checks run in a fixed order and the first failure is the message a kiosk shows, so
the order is part of the contract (field reference 12.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from gateway.domain.money import ZERO, cents

DiscountType = Literal["percentage", "fixed_amount", "free_hours"]


@dataclass(frozen=True, kw_only=True)
class Discount:
    id: int
    code: str
    discount_type: DiscountType
    value: Decimal
    valid_from: datetime
    valid_to: datetime
    is_active: bool
    max_uses: int | None
    current_uses: int
    max_uses_per_user: int
    min_duration_hours: int | None


def unusable_reason(
    discount: Discount | None,
    now: datetime,
    *,
    stay_minutes: int | None = None,
    uses_by_payer: int | None = None,
) -> str | None:
    """Why the code cannot be used now, or None when it can.

    ``stay_minutes`` is given when a session is known; ``uses_by_payer`` only when a
    customer pays (staff paying at a booth are not limited per user).
    """
    if discount is None:
        return "Invalid discount code"
    if not discount.is_active:
        return "Discount is not active"
    if discount.valid_from > now:
        return "Discount is not yet valid"
    if discount.valid_to < now:
        return "Discount has expired"
    if discount.max_uses is not None and discount.current_uses >= discount.max_uses:
        return "Discount usage limit reached"
    if (
        stay_minutes is not None
        and discount.min_duration_hours is not None
        and stay_minutes < discount.min_duration_hours * 60
    ):
        return "Minimum parking duration not reached"
    if uses_by_payer is not None and uses_by_payer >= discount.max_uses_per_user:
        return "Discount usage limit reached for this user"
    return None


def discount_amount(discount: Discount, due: Decimal, hourly_amount: Decimal | None) -> Decimal:
    """What the code takes off ``due`` (never more than it), half-up to cents."""
    if due <= 0:
        return ZERO
    if discount.discount_type == "percentage":
        off = cents(due * discount.value / 100)
    elif discount.discount_type == "fixed_amount":
        off = cents(discount.value)
    else:  # free_hours: priced at the hourly rate of the stay; nothing without one
        off = cents(discount.value * hourly_amount) if hourly_amount is not None else ZERO
    return min(off, due)
