"""Money is ``Decimal`` rounded half-up to cents the moment an amount is produced."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal | int | str) -> Decimal:
    """Round half-up to cents (12.5 kWh x 0.25 = 3.125 -> 3.13, as the seed's example)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def show(value: Decimal) -> str:
    """Human form for breakdown lines: ``$5`` for whole amounts, ``$5.50`` otherwise."""
    q = cents(value)
    return f"${q:.0f}" if q == q.to_integral_value() else f"${q:.2f}"
