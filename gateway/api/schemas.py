"""Request bodies as msgspec Structs: the field reference's types and bounds, checked on decode.

msgspec refuses wrong types (``"yes"`` for a bool, a string for an int) and missing fields
before a handler runs; the few rules it cannot express (money bounds, blank strings,
cross-field rules) are checked in ``__post_init__`` so they fail the same way, with the
field named. Unknown fields are ignored, as the reference asks.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

MAX_MONEY = Decimal("1000000")


def _text(max_length: int) -> object:
    return Meta(min_length=1, max_length=max_length, pattern=r"\S")


Text20 = Annotated[str, _text(20)]
Text50 = Annotated[str, _text(50)]
Text100 = Annotated[str, _text(100)]
Text255 = Annotated[str, _text(255)]
PlateText = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"\S")]
Opt10 = Annotated[str, Meta(max_length=10)] | None
Opt30 = Annotated[str, Meta(max_length=30)] | None
Opt50 = Annotated[str, Meta(max_length=50)] | None
Opt100 = Annotated[str, Meta(max_length=100)] | None
Opt255 = Annotated[str, Meta(max_length=255)] | None
Opt500 = Annotated[str, Meta(max_length=500)] | None
Id = Annotated[int, Meta(ge=1, le=2**62)]
NonNegInt = Annotated[int, Meta(ge=0, le=10**9)]
Email = Annotated[str, Meta(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, Meta(min_length=8, max_length=128)]
TimeOfDay = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")]

SizeCategory = Literal["small", "medium", "large", "extra_large"]
SpaceType = Literal["standard", "compact", "handicapped", "ev_charging", "motorcycle"]
SpaceStatus = Literal["available", "occupied", "reserved", "maintenance", "out_of_service"]
RateType = Literal["hourly", "daily", "flat"]
PaymentMethod = Literal["cash", "card", "mobile"]
PaymentStatus = Literal["pending", "completed", "failed", "refunded"]
DiscountType = Literal["percentage", "fixed_amount", "free_hours"]


def check_money(value: Decimal | None, name: str, *, positive: bool = False) -> None:
    if value is None:
        return
    if not value.is_finite() or value < 0 or (positive and value == 0) or value > MAX_MONEY:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"`{name}` must be a number {bound} and at most {MAX_MONEY}")


def check_number(
    value: Decimal | None, name: str, *, low: Decimal, high: Decimal, low_open: bool = False
) -> None:
    if value is None:
        return
    if not value.is_finite() or value > high or value < low or (low_open and value == low):
        raise ValueError(f"`{name}` must be between {low} and {high}")


# -- auth -------------------------------------------------------------------------------


class RegisterIn(Struct):
    email: Email
    password: Password
    full_name: Text255
    phone: Opt50 = None


class LoginForm(Struct):
    username: Annotated[str, Meta(min_length=1, max_length=255)]
    password: Annotated[str, Meta(min_length=1, max_length=128)]


# -- vehicles ---------------------------------------------------------------------------


class VehicleTypeIn(Struct):
    name: Text50
    size_category: SizeCategory = "medium"
    description: Opt255 = None


class VehicleIn(Struct):
    license_plate: PlateText
    vehicle_type_id: Id
    make: Opt50 = None
    model: Opt50 = None
    color: Opt30 = None
    is_ev: bool = False
    user_id: Id | None = None


class VehicleUpdate(Struct, omit_defaults=True):
    make: Opt50 | msgspec.UnsetType = msgspec.UNSET
    model: Opt50 | msgspec.UnsetType = msgspec.UNSET
    color: Opt30 | msgspec.UnsetType = msgspec.UNSET
    is_ev: bool | msgspec.UnsetType = msgspec.UNSET
    vehicle_type_id: Id | msgspec.UnsetType = msgspec.UNSET


# -- structure --------------------------------------------------------------------------


class LevelIn(Struct):
    name: Text50
    floor_number: Annotated[int, Meta(ge=-100, le=500)]
    is_underground: bool = False
    max_height_m: Decimal | None = None

    def __post_init__(self) -> None:
        check_number(
            self.max_height_m, "max_height_m", low=Decimal(0), high=Decimal(100), low_open=True
        )


class LevelUpdate(Struct):
    name: Text50 | msgspec.UnsetType = msgspec.UNSET
    floor_number: Annotated[int, Meta(ge=-100, le=500)] | msgspec.UnsetType = msgspec.UNSET
    is_underground: bool | msgspec.UnsetType = msgspec.UNSET
    max_height_m: Decimal | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.max_height_m, Decimal):
            check_number(
                self.max_height_m, "max_height_m", low=Decimal(0), high=Decimal(100), low_open=True
            )


class ZoneIn(Struct):
    level_id: Id
    name: Text50
    description: Opt255 = None
    total_spaces: NonNegInt = 0
    color_code: Opt10 = None


class ZoneUpdate(Struct):
    name: Text50 | msgspec.UnsetType = msgspec.UNSET
    description: Opt255 | msgspec.UnsetType = msgspec.UNSET
    total_spaces: NonNegInt | msgspec.UnsetType = msgspec.UNSET
    color_code: Opt10 | msgspec.UnsetType = msgspec.UNSET


class SpaceIn(Struct):
    zone_id: Id
    space_number: Text20
    space_type: SpaceType = "standard"
    floor: Annotated[int, Meta(ge=-100, le=500)] | None = None
    row: Opt10 = None
    is_ev_charging: bool = False
    is_handicapped: bool = False


class SpaceUpdate(Struct):
    status: SpaceStatus | msgspec.UnsetType = msgspec.UNSET
    space_type: SpaceType | msgspec.UnsetType = msgspec.UNSET
    is_ev_charging: bool | msgspec.UnsetType = msgspec.UNSET
    is_handicapped: bool | msgspec.UnsetType = msgspec.UNSET
    row: Opt10 | msgspec.UnsetType = msgspec.UNSET


# -- sessions ---------------------------------------------------------------------------


class EntryIn(Struct):
    license_plate: PlateText
    entry_gate: Opt50 = None
    lpr_image: Opt255 = None
    entry_time: datetime | None = None


class ExitIn(Struct):
    ticket_number: Annotated[str, Meta(min_length=1, max_length=50)] | None = None
    license_plate: PlateText | None = None
    exit_gate: Opt50 = None

    def __post_init__(self) -> None:
        if not self.ticket_number and not self.license_plate:
            raise ValueError("give `ticket_number` or `license_plate`")


class AssignSpaceIn(Struct):
    space_id: Id


# -- rates ------------------------------------------------------------------------------


class RateIn(Struct):
    name: Text100
    amount: Decimal
    effective_from: datetime
    rate_type: RateType = "hourly"
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")] = "USD"
    vehicle_type_id: Id | None = None
    zone_id: Id | None = None
    grace_period_minutes: Annotated[int, Meta(ge=0, le=1440)] = 15
    effective_to: datetime | None = None
    peak_multiplier: Decimal = Decimal("1.0")
    peak_start_time: TimeOfDay | None = None
    peak_end_time: TimeOfDay | None = None
    min_duration_minutes: NonNegInt | None = None
    max_duration_minutes: NonNegInt | None = None

    def __post_init__(self) -> None:
        check_money(self.amount, "amount")
        check_number(
            self.peak_multiplier,
            "peak_multiplier",
            low=Decimal(0),
            high=Decimal(100),
            low_open=True,
        )


class RateUpdate(Struct):
    name: Text100 | msgspec.UnsetType = msgspec.UNSET
    amount: Decimal | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    grace_period_minutes: Annotated[int, Meta(ge=0, le=1440)] | msgspec.UnsetType = msgspec.UNSET
    effective_to: datetime | msgspec.UnsetType | None = msgspec.UNSET
    peak_multiplier: Decimal | msgspec.UnsetType = msgspec.UNSET
    peak_start_time: TimeOfDay | msgspec.UnsetType | None = msgspec.UNSET
    peak_end_time: TimeOfDay | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.amount, Decimal):
            check_money(self.amount, "amount")
        if isinstance(self.peak_multiplier, Decimal):
            check_number(
                self.peak_multiplier,
                "peak_multiplier",
                low=Decimal(0),
                high=Decimal(100),
                low_open=True,
            )


# -- payments and discounts ---------------------------------------------------------------


class PaymentIn(Struct):
    session_id: Id
    payment_method: PaymentMethod
    amount: Decimal
    discount_code: Annotated[str, Meta(max_length=50)] | None = None

    def __post_init__(self) -> None:
        check_money(self.amount, "amount")


class ValidateExitIn(Struct):
    ticket_number: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"\S")]


class DiscountIn(Struct):
    code: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^\s*[A-Za-z0-9_\-]+\s*$")]
    name: Text100
    value: Decimal
    valid_from: datetime
    valid_to: datetime
    discount_type: DiscountType = "percentage"
    max_uses: Annotated[int, Meta(ge=1)] | None = None
    max_uses_per_user: Annotated[int, Meta(ge=1)] = 1
    min_duration_hours: NonNegInt | None = None
    partner_name: Opt100 = None

    def __post_init__(self) -> None:
        check_money(self.value, "value", positive=True)


class DiscountUpdate(Struct):
    name: Text100 | msgspec.UnsetType = msgspec.UNSET
    value: Decimal | msgspec.UnsetType = msgspec.UNSET
    valid_from: datetime | msgspec.UnsetType = msgspec.UNSET
    valid_to: datetime | msgspec.UnsetType = msgspec.UNSET
    max_uses: Annotated[int, Meta(ge=1)] | msgspec.UnsetType | None = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.value, Decimal):
            check_money(self.value, "value", positive=True)


class DiscountValidateIn(Struct):
    code: Annotated[str, Meta(min_length=1, max_length=50)]
    session_id: Id | None = None


def given(struct: Struct) -> dict[str, object]:
    """The fields a client actually sent in an update body (UNSET ones are left out)."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not msgspec.UNSET
    }


_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


def normal_time(text: str | None) -> str | None:
    """``HH:MM`` or ``HH:MM:SS`` as stored: always ``HH:MM:SS``."""
    if text is None:
        return None
    match = _TIME.match(text)
    assert match is not None  # the TimeOfDay pattern already checked it
    return f"{match[1]}:{match[2]}:{match[3] or '00'}"
