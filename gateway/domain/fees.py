"""What a stay costs, and what is still owed at the barrier.

Everything here is a pure function of plain values so that the rules the drivers and the
API both depend on can be tested exhaustively. The rules follow the field reference of the
car-parking API (sections 9 and 11.3):

* For each rate type the most specific applicable rate wins (vehicle type and zone, then
  vehicle type, then zone, then generic; ties go to the latest ``effective_from``, then the
  highest id).
* A flat rate prices the stay when it is at least as specific as the hourly rate.
* Hourly: started hours (at least one past the grace period), capped per 24 hours by a
  daily rate when one applies.
* A stay within the grace period is free; past it, the whole stay is billed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from gateway.domain.memberships import MemberBenefit
from gateway.domain.money import ZERO, cents, show

RateType = Literal["hourly", "daily", "flat"]
MINUTES_PER_DAY = 1440


@dataclass(frozen=True, kw_only=True)
class Rate:
    id: int
    rate_type: RateType
    amount: Decimal
    grace_period_minutes: int = 0
    vehicle_type_id: int | None = None
    zone_id: int | None = None
    effective_from: datetime
    effective_to: datetime | None = None
    is_active: bool = True
    peak_multiplier: Decimal = Decimal(1)
    peak_start_time: time | None = None
    peak_end_time: time | None = None

    def specificity(self, vehicle_type_id: int | None, zone_id: int | None) -> int | None:
        """1 (most specific) .. 4 (generic), or None when the rate's scope does not match."""
        if self.vehicle_type_id is not None and self.vehicle_type_id != vehicle_type_id:
            return None
        if self.zone_id is not None and (zone_id is None or self.zone_id != zone_id):
            return None
        if self.vehicle_type_id is not None:
            return 1 if self.zone_id is not None else 2
        return 3 if self.zone_id is not None else 4

    def effective_at(self, at: datetime) -> bool:
        return (
            self.is_active
            and self.effective_from <= at
            and (self.effective_to is None or self.effective_to >= at)
        )

    def in_peak(self, at: datetime) -> bool:
        """Whether ``at`` (UTC) falls in the peak window; a window may wrap midnight."""
        if self.peak_start_time is None or self.peak_end_time is None:
            return False
        t = (at.astimezone(UTC) if at.tzinfo else at).time()
        start, end = self.peak_start_time, self.peak_end_time
        if start <= end:
            return start <= t < end
        return t >= start or t < end


@dataclass(frozen=True, kw_only=True)
class ChosenRates:
    """The winning rate of each type for one stay, with the specificity it won at."""

    hourly: Rate | None = None
    daily: Rate | None = None
    flat: Rate | None = None
    specificity: dict[RateType, int] = field(default_factory=dict)

    @property
    def pricing_rate(self) -> Rate | None:
        """The rate that prices the stay (and whose grace period applies)."""
        if self.flat is not None and (
            self.hourly is None or self.specificity["flat"] <= self.specificity["hourly"]
        ):
            return self.flat
        return self.hourly or self.daily


def choose_rates(
    rates: Iterable[Rate], *, vehicle_type_id: int | None, zone_id: int | None, at: datetime
) -> ChosenRates:
    best: dict[RateType, tuple[int, float, int, Rate]] = {}
    for rate in rates:
        if not rate.effective_at(at):
            continue
        spec = rate.specificity(vehicle_type_id, zone_id)
        if spec is None:
            continue
        # Lower sorts first: most specific, then latest effective_from, then highest id.
        key = (spec, -rate.effective_from.timestamp(), -rate.id, rate)
        current = best.get(rate.rate_type)
        if current is None or key[:3] < current[:3]:
            best[rate.rate_type] = key
    return ChosenRates(
        hourly=best["hourly"][3] if "hourly" in best else None,
        daily=best["daily"][3] if "daily" in best else None,
        flat=best["flat"][3] if "flat" in best else None,
        specificity={t: v[0] for t, v in best.items()},
    )


@dataclass(frozen=True)
class FeeLine:
    description: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class ParkingPrice:
    base_fee: Decimal
    lines: tuple[FeeLine, ...]
    within_grace: bool
    grace_period_minutes: int
    hourly_amount: Decimal | None  # after any peak multiplier; used by free-hours discounts


def duration_minutes(entry: datetime, end: datetime) -> int:
    """Whole minutes from entry to the end of the stay, rounded down, never negative."""
    return max(0, int((end - entry).total_seconds() // 60))


def started_hours(minutes: int) -> int:
    return max(1, math.ceil(minutes / 60))


def price_parking(
    minutes: int, chosen: ChosenRates, end: datetime, *, grace: bool = True
) -> ParkingPrice:
    """The parking fee of a stay of ``minutes`` ending at ``end``, with its breakdown lines.

    ``grace=False`` prices a part of a stay that is already past its grace period (what a
    member's included time leaves to pay): the grace period is for short stays only.
    """
    rate = chosen.pricing_rate
    if rate is None:
        return ParkingPrice(
            base_fee=ZERO,
            lines=(FeeLine("No applicable rate", ZERO),),
            within_grace=False,
            grace_period_minutes=0,
            hourly_amount=None,
        )
    hourly_amount = _hourly_amount(chosen.hourly, end) if chosen.hourly else None
    grace_minutes = rate.grace_period_minutes
    if grace and grace_minutes > 0 and minutes <= grace_minutes:
        return ParkingPrice(
            base_fee=ZERO,
            lines=(FeeLine(f"Within grace period ({grace_minutes} min)", ZERO),),
            within_grace=True,
            grace_period_minutes=grace_minutes,
            hourly_amount=hourly_amount,
        )
    if rate is chosen.flat:
        amount = cents(rate.amount)
        lines: tuple[FeeLine, ...] = (FeeLine(f"Flat rate ({show(amount)})", amount),)
    elif rate is chosen.hourly:
        assert hourly_amount is not None
        lines = _hourly_lines(minutes, hourly_amount, chosen.daily)
    else:
        daily = cents(rate.amount)
        days = max(1, math.ceil(minutes / MINUTES_PER_DAY))
        lines = (FeeLine(f"Daily rate ({days} day(s) @ {show(daily)}/day)", cents(days * daily)),)
    return ParkingPrice(
        base_fee=cents(sum((line.amount for line in lines), ZERO)),
        lines=lines,
        within_grace=False,
        grace_period_minutes=grace_minutes,
        hourly_amount=hourly_amount,
    )


def _hourly_amount(hourly: Rate, end: datetime) -> Decimal:
    if hourly.in_peak(end):
        return cents(hourly.amount * hourly.peak_multiplier)
    return cents(hourly.amount)


def _hourly_lines(minutes: int, hourly: Decimal, daily_rate: Rate | None) -> tuple[FeeLine, ...]:
    hours = started_hours(minutes)
    plain = cents(hours * hourly)
    plain_line = FeeLine(f"Parking ({hours} hour(s) @ {show(hourly)}/hr)", plain)
    if daily_rate is None:
        return (plain_line,)
    daily = cents(daily_rate.amount)
    full_days, rest = divmod(minutes, MINUTES_PER_DAY)
    rest_hours = math.ceil(rest / 60) if minutes > 0 else 1  # a 0-minute billed stay is one hour
    rest_cost = cents(rest_hours * hourly)
    capped = full_days * daily + min(rest_cost, daily)
    if plain <= capped:
        return (plain_line,)
    lines: list[FeeLine] = []
    if full_days:
        lines.append(
            FeeLine(
                f"Daily rate ({full_days} day(s) @ {show(daily)}/day)", cents(full_days * daily)
            )
        )
    if rest_hours:
        if rest_cost <= daily:
            lines.append(
                FeeLine(f"Remaining time ({rest_hours} hour(s) @ {show(hourly)}/hr)", rest_cost)
            )
        else:
            lines.append(FeeLine(f"Daily maximum ({show(daily)}/day)", daily))
    return tuple(lines)


@dataclass(frozen=True, kw_only=True)
class Fee:
    """The seed's FeeCalculation, in decimals."""

    duration_minutes: int
    base_fee: Decimal
    discounts: Decimal
    tax: Decimal
    ev_charging: Decimal
    total: Decimal
    breakdown: tuple[FeeLine, ...]
    within_grace: bool
    grace_period_minutes: int
    hourly_amount: Decimal | None
    membership_id: int | None = None  # the membership whose benefit the fee includes


@dataclass(frozen=True)
class ChargeLine:
    """A completed charging session billed with the stay."""

    energy_kwh: Decimal
    cost: Decimal
    idle_fee: Decimal = ZERO


def calculate_fee(
    *,
    entry: datetime,
    end: datetime,
    rates: Sequence[Rate],
    vehicle_type_id: int | None,
    zone_id: int | None,
    member: MemberBenefit | None = None,
    charges: Sequence[ChargeLine] = (),
) -> Fee:
    """The whole fee of a stay: parking, the member's benefit, and charging billed with it.

    ``member`` is the benefit of a plan: its included time is consumed first, then its
    discount percentage applies to what is still charged.
    """
    minutes = duration_minutes(entry, end)
    chosen = choose_rates(rates, vehicle_type_id=vehicle_type_id, zone_id=zone_id, at=end)
    parking = price_parking(minutes, chosen, end)
    lines = list(parking.lines)
    pct = member.discount_percentage if member else None
    charged = parking.base_fee
    discounts = ZERO
    if member is not None and member.has_allowance and charged > 0:
        # Included time first: the member pays only for what the stay exceeds it by. The stay
        # is past its grace period (charged > 0), so the rest is billed without one (9.2).
        assert member.included_minutes_left is not None
        rest = minutes - member.included_minutes_left
        after = price_parking(rest, chosen, end, grace=False).base_fee if rest > 0 else ZERO
        included = max(ZERO, charged - after)
        covered_hours = min(minutes, member.included_minutes_left) / 60
        lines.append(FeeLine(f"Membership included hours ({covered_hours:.2f} h)", -included))
        discounts += included
        charged -= included
    if pct and charged > 0:
        off = min(charged, cents(charged * pct / 100))
        lines.append(FeeLine(f"Membership discount ({pct.normalize():f}%)", -off))
        discounts += off
    ev_total = ZERO
    for charge in charges:
        label = "EV charging" + (
            " (included in membership)" if member and member.ev_charging_included else ""
        )
        cost = ZERO if member and member.ev_charging_included else cents(charge.cost)
        lines.append(FeeLine(f"{label} ({charge.energy_kwh.normalize():f} kWh)", cost))
        ev_total += cost
        if charge.idle_fee > 0 and not (member and member.ev_charging_included):
            lines.append(FeeLine("EV idle fee", cents(charge.idle_fee)))
            ev_total += cents(charge.idle_fee)
    total = max(ZERO, parking.base_fee - discounts + ev_total)
    return Fee(
        duration_minutes=minutes,
        base_fee=parking.base_fee,
        discounts=discounts,
        tax=ZERO,
        ev_charging=ev_total,
        total=cents(total),
        breakdown=tuple(lines),
        within_grace=parking.within_grace,
        grace_period_minutes=parking.grace_period_minutes,
        hourly_amount=parking.hourly_amount,
        membership_id=member.membership_id if member else None,
    )


@dataclass(frozen=True, kw_only=True)
class PaymentRecord:
    """What the exit rules need to know of a completed payment."""

    amount: Decimal  # the fee it covered, before any code's discount
    paid_at: datetime
    ev_covered: Decimal = ZERO  # the charging part of that fee


@dataclass(frozen=True, kw_only=True)
class ExitStatus:
    is_paid: bool
    amount_due: Decimal
    in_exit_window: bool
    window_ends: datetime | None


def fee_covered(payments: Iterable[PaymentRecord]) -> Decimal:
    return cents(sum((p.amount for p in payments), ZERO))


def exit_status(
    fee_total: Decimal,
    payments: Sequence[PaymentRecord],
    now: datetime,
    exit_window: timedelta,
    *,
    ev_charging: Decimal = ZERO,
) -> ExitStatus:
    """What is owed at the barrier now (11.3): inside the exit window of the last payment
    the parking fee may not grow, but charging billed after it is still owed (17.2);
    outside it, whatever the fee has grown beyond what payments covered.

    Only a payment that settled something opens a window: a record covering 0.00 (the
    API refuses to take one, but an older database or the central system may hold one)
    would otherwise turn the grace period into grace + exit window for free.
    """
    settled = [p for p in payments if p.amount > 0]
    latest = max((p.paid_at for p in settled), default=None)
    window_ends = latest + exit_window if latest is not None else None
    in_window = window_ends is not None and now <= window_ends
    if in_window:
        covered_ev = max((p.ev_covered for p in settled), default=ZERO)
        due = max(ZERO, cents(ev_charging - covered_ev))
    else:
        due = max(ZERO, cents(fee_total - fee_covered(settled)))
    return ExitStatus(
        is_paid=bool(settled), amount_due=due, in_exit_window=in_window, window_ends=window_ends
    )


def minutes_left(until: datetime, now: datetime) -> int:
    """Whole minutes left until ``until``, rounded up, never negative."""
    return max(0, math.ceil((until - now).total_seconds() / 60))
