"""Request bodies as msgspec Structs: the field reference's types and bounds, checked on decode.

msgspec refuses wrong types (``"yes"`` or ``1`` for a bool, a string for an int) and missing
fields before a handler runs (strictly, see :func:`strict_json_body`); the few rules it
cannot express (money bounds, blank strings, cross-field rules) are checked in
``__post_init__`` so they fail the same way, with the field named. Unknown fields are
ignored, as the reference asks.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import BodyKwarg
from msgspec import Meta, Struct

from gateway.domain.money import cents
from gateway.errors import Invalid

MAX_MONEY = Decimal("1000000")


def _bounds(**schema: float) -> Meta:
    """JSON Schema bounds of a ``Decimal`` field, for the OpenAPI document (Litestar copies
    ``extra_json_schema["extra"]`` onto the field's schema). The checks themselves are in
    the Structs' ``__post_init__``; the two say the same thing."""
    return Meta(extra_json_schema={"extra": schema})


Amount = Annotated[Decimal, _bounds(minimum=0, maximum=1_000_000)]
# Above 0 once rounded to cents: 0.005 is the least (it rounds to 0.01).
PositiveAmount = Annotated[Decimal, _bounds(minimum=0.005, maximum=1_000_000)]
Percent = Annotated[Decimal, _bounds(minimum=0, maximum=100)]
Factor = Annotated[Decimal, _bounds(exclusiveMinimum=0, maximum=100)]
Metres = Annotated[Decimal, _bounds(exclusiveMinimum=0, maximum=100)]
Kilowatts = Annotated[Decimal, _bounds(exclusiveMinimum=0, maximum=1000)]
UnitPrice = Annotated[Decimal, _bounds(minimum=0, maximum=1000)]


# Whitespace, spelled out: Python's ``\s`` and JSON Schema's (ECMA-262) differ on a few
# characters (U+001C..U+001F, U+0085, U+FEFF), so ``\S`` in the document would let a
# generated client send a "blank" string this server refuses. Both engines read this
# class the same way: whitespace to either of them.
SPACE = "\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{SPACE}]"


def _text(max_length: int) -> object:
    return Meta(min_length=1, max_length=max_length, pattern=NOT_BLANK)


Text20 = Annotated[str, _text(20)]
Text50 = Annotated[str, _text(50)]
Text100 = Annotated[str, _text(100)]
Text255 = Annotated[str, _text(255)]
PlateText = Annotated[str, Meta(min_length=1, max_length=40, pattern=NOT_BLANK)]
Opt10 = Annotated[str, Meta(max_length=10)] | None
Opt30 = Annotated[str, Meta(max_length=30)] | None
Opt50 = Annotated[str, Meta(max_length=50)] | None
Opt100 = Annotated[str, Meta(max_length=100)] | None
Opt255 = Annotated[str, Meta(max_length=255)] | None
Opt500 = Annotated[str, Meta(max_length=500)] | None
# The bounds spelled out too: Litestar writes them as floats (4.611686018427388e+18).
ID_BOUNDS = {"minimum": 1, "maximum": 2**62}  # no "type": it also lands on Optional's oneOf
Id = Annotated[int, Meta(ge=1, le=2**62, extra_json_schema={"extra": ID_BOUNDS})]
# ``minimum: 0`` spelled out: Litestar drops a bound of 0 from optional fields' schemas.
_MIN0 = {"extra": {"minimum": 0}}
NonNegInt = Annotated[int, Meta(ge=0, le=10**9, extra_json_schema=_MIN0)]
GraceMinutes = Annotated[int, Meta(ge=0, le=1440, extra_json_schema=_MIN0)]
IncludedHours = Annotated[int, Meta(ge=0, le=100_000, extra_json_schema=_MIN0)]
Email = Annotated[
    str,
    Meta(min_length=3, max_length=255, pattern=f"^[^@{SPACE}]+@[^@{SPACE}]+\\.[^@{SPACE}]+$"),
]
Password = Annotated[str, Meta(min_length=8, max_length=128, pattern=NOT_BLANK)]
TimeOfDay = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")]

SizeCategory = Literal["small", "medium", "large", "extra_large"]
SpaceType = Literal["standard", "compact", "handicapped", "ev_charging", "motorcycle"]
SpaceStatus = Literal["available", "occupied", "reserved", "maintenance", "out_of_service"]
RateType = Literal["hourly", "daily", "flat"]
PaymentMethod = Literal["cash", "card", "mobile"]
PaymentStatus = Literal["pending", "completed", "failed", "refunded"]
DiscountType = Literal["percentage", "fixed_amount", "free_hours"]


# -- the rules every body follows ----------------------------------------------------------

FIRST_YEAR, LAST_YEAR = 2000, 2099


def check_year(value: date, name: str) -> None:
    """Dates and times a client sends are written in the years 2000..2099 (else 422).

    A validity window "from year 1 to 9999" or an entry back-dated to year 1 is a typo or
    a probe, never a real car park's data (and 9999-12-31T23:59-01:00 is not even
    representable in UTC). The year as written: any offset then keeps the UTC time within
    1999..2100, which every reader can store and compare.
    """
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise Invalid(f"{name} must be in the years {FIRST_YEAR}..{LAST_YEAR}", field=name)


def check_times(struct: Struct) -> None:
    """:func:`check_year` for every date and time field of a body."""
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, date):  # datetime is a date too
            check_year(value, name)


class Body(Struct):
    """A request body. Subclasses with rules of their own call ``super().__post_init__()``.

    Its dates and times are checked by :func:`check_times` after decoding (a request rule,
    422), by ``strict_json_body`` for the API and by the command handler for MQTT.
    """

    def __post_init__(self) -> None:
        pass


class Update(Body):
    """A PUT body: every field optional, only the given ones change, and at least one must
    be given (an empty update is a client's mistake: 400, and no event with no changes)."""


def money_in(value: Decimal, name: str, *, positive: bool = False) -> Decimal:
    """A money value as it is stored: checked, then rounded half-up to cents.

    The one rule for every amount a client (or the central system) sends: rates,
    plan prices, discount values, payments. ``2.675`` is kept as ``2.68`` and echoed
    so, instead of being stored with ten decimals and rounded differently by each
    reader. ``positive`` amounts must still be above 0 once rounded (0.001 is 0.00).
    """
    bound = "> 0" if positive else ">= 0"
    problem = f"`{name}` must be a number {bound} and at most {MAX_MONEY}"
    if not value.is_finite() or value < 0 or value > MAX_MONEY:
        raise ValueError(problem)
    rounded = cents(value)
    if positive and rounded == 0:
        raise ValueError(problem)
    return rounded


def check_number(
    value: Decimal | None, name: str, *, low: Decimal, high: Decimal, low_open: bool = False
) -> None:
    if value is None:
        return
    if not value.is_finite() or value > high or value < low or (low_open and value == low):
        raise ValueError(f"`{name}` must be between {low} and {high}")


# -- auth -------------------------------------------------------------------------------


class RegisterIn(Body):
    email: Email
    password: Password
    full_name: Text255
    phone: Opt50 = None


class LoginForm(Body):
    username: Annotated[str, Meta(min_length=1, max_length=255)]
    password: Annotated[str, Meta(min_length=1, max_length=128)]


# -- vehicles ---------------------------------------------------------------------------


class VehicleTypeIn(Body):
    name: Text50
    size_category: SizeCategory = "medium"
    description: Opt255 = None


class VehicleIn(Body):
    license_plate: PlateText
    vehicle_type_id: Id
    make: Opt50 = None
    model: Opt50 = None
    color: Opt30 = None
    is_ev: bool = False
    user_id: Id | None = None


class VehicleUpdate(Update, omit_defaults=True):
    make: Opt50 | msgspec.UnsetType = msgspec.UNSET
    model: Opt50 | msgspec.UnsetType = msgspec.UNSET
    color: Opt30 | msgspec.UnsetType = msgspec.UNSET
    is_ev: bool | msgspec.UnsetType = msgspec.UNSET
    vehicle_type_id: Id | msgspec.UnsetType = msgspec.UNSET


# -- structure --------------------------------------------------------------------------


class LevelIn(Body):
    name: Text50
    floor_number: Annotated[int, Meta(ge=-100, le=500)]
    is_underground: bool = False
    max_height_m: Metres | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(
            self.max_height_m, "max_height_m", low=Decimal(0), high=Decimal(100), low_open=True
        )


class LevelUpdate(Update):
    name: Text50 | msgspec.UnsetType = msgspec.UNSET
    floor_number: Annotated[int, Meta(ge=-100, le=500)] | msgspec.UnsetType = msgspec.UNSET
    is_underground: bool | msgspec.UnsetType = msgspec.UNSET
    max_height_m: Metres | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.max_height_m, Decimal):
            check_number(
                self.max_height_m, "max_height_m", low=Decimal(0), high=Decimal(100), low_open=True
            )


class ZoneIn(Body):
    level_id: Id
    name: Text50
    description: Opt255 = None
    total_spaces: NonNegInt = 0
    color_code: Opt10 = None


class ZoneUpdate(Update):
    name: Text50 | msgspec.UnsetType = msgspec.UNSET
    description: Opt255 | msgspec.UnsetType = msgspec.UNSET
    total_spaces: NonNegInt | msgspec.UnsetType = msgspec.UNSET
    color_code: Opt10 | msgspec.UnsetType = msgspec.UNSET


class SpaceIn(Body):
    zone_id: Id
    space_number: Text20
    space_type: SpaceType = "standard"
    floor: Annotated[int, Meta(ge=-100, le=500)] | None = None
    row: Opt10 = None
    is_ev_charging: bool = False
    is_handicapped: bool = False


class SpaceUpdate(Update):
    status: SpaceStatus | msgspec.UnsetType = msgspec.UNSET
    space_type: SpaceType | msgspec.UnsetType = msgspec.UNSET
    is_ev_charging: bool | msgspec.UnsetType = msgspec.UNSET
    is_handicapped: bool | msgspec.UnsetType = msgspec.UNSET
    row: Opt10 | msgspec.UnsetType = msgspec.UNSET


# -- sessions ---------------------------------------------------------------------------


class EntryIn(Body):
    license_plate: PlateText
    entry_gate: Opt50 = None
    lpr_image: Opt255 = None
    entry_time: datetime | None = None


class ExitIn(Body):
    ticket_number: Annotated[str, Meta(min_length=1, max_length=50, pattern=NOT_BLANK)] | None = (
        None
    )
    license_plate: PlateText | None = None
    exit_gate: Opt50 = None

    @property
    def names_a_session(self) -> bool:
        """One of the two is given (a request rule: 422 when neither is)."""
        return bool(self.ticket_number or self.license_plate)


class AssignSpaceIn(Body):
    space_id: Id


# -- rates ------------------------------------------------------------------------------


class RateIn(Body):
    name: Text100
    amount: Amount
    effective_from: datetime
    rate_type: RateType = "hourly"
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")] = "USD"
    vehicle_type_id: Id | None = None
    zone_id: Id | None = None
    grace_period_minutes: GraceMinutes = 15
    effective_to: datetime | None = None
    peak_multiplier: Factor = Decimal("1.0")
    peak_start_time: TimeOfDay | None = None
    peak_end_time: TimeOfDay | None = None
    min_duration_minutes: NonNegInt | None = None
    max_duration_minutes: NonNegInt | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.amount = money_in(self.amount, "amount")
        check_number(
            self.peak_multiplier,
            "peak_multiplier",
            low=Decimal(0),
            high=Decimal(100),
            low_open=True,
        )


class RateUpdate(Update):
    name: Text100 | msgspec.UnsetType = msgspec.UNSET
    amount: Amount | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    grace_period_minutes: GraceMinutes | msgspec.UnsetType = msgspec.UNSET
    effective_to: datetime | msgspec.UnsetType | None = msgspec.UNSET
    peak_multiplier: Factor | msgspec.UnsetType = msgspec.UNSET
    peak_start_time: TimeOfDay | msgspec.UnsetType | None = msgspec.UNSET
    peak_end_time: TimeOfDay | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.amount, Decimal):
            self.amount = money_in(self.amount, "amount")
        if isinstance(self.peak_multiplier, Decimal):
            check_number(
                self.peak_multiplier,
                "peak_multiplier",
                low=Decimal(0),
                high=Decimal(100),
                low_open=True,
            )


# -- payments and discounts ---------------------------------------------------------------


class PaymentIn(Body):
    session_id: Id
    payment_method: PaymentMethod
    amount: Amount
    discount_code: Annotated[str, Meta(max_length=50)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.amount = money_in(self.amount, "amount")


class ValidateExitIn(Body):
    ticket_number: Annotated[str, Meta(min_length=1, max_length=50, pattern=NOT_BLANK)]


class DiscountIn(Body):
    code: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^\s*[A-Za-z0-9_\-]+\s*$")]
    name: Text100
    value: PositiveAmount
    valid_from: datetime
    valid_to: datetime
    discount_type: DiscountType = "percentage"
    max_uses: Annotated[int, Meta(ge=1)] | None = None
    max_uses_per_user: Annotated[int, Meta(ge=1)] = 1
    min_duration_hours: NonNegInt | None = None
    partner_name: Opt100 = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.value = money_in(self.value, "value", positive=True)


class DiscountUpdate(Update):
    name: Text100 | msgspec.UnsetType = msgspec.UNSET
    value: PositiveAmount | msgspec.UnsetType = msgspec.UNSET
    valid_from: datetime | msgspec.UnsetType = msgspec.UNSET
    valid_to: datetime | msgspec.UnsetType = msgspec.UNSET
    max_uses: Annotated[int, Meta(ge=1)] | msgspec.UnsetType | None = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.value, Decimal):
            self.value = money_in(self.value, "value", positive=True)


class DiscountValidateIn(Body):
    code: Annotated[str, Meta(min_length=1, max_length=50)]
    session_id: Id | None = None


# -- reservations, memberships, EV charging (field reference 13-17) ----------------------------
# -- reservations ---------------------------------------------------------------------------

ReservationStatus = Literal[
    "pending", "confirmed", "checked_in", "completed", "cancelled", "no_show"
]


class ReservationIn(Body):
    vehicle_id: Id
    start_time: datetime
    end_time: datetime
    zone_id: Id | None = None
    space_id: Id | None = None
    special_requests: Opt500 = None


class ReservationUpdate(Update):
    start_time: datetime | msgspec.UnsetType = msgspec.UNSET
    end_time: datetime | msgspec.UnsetType = msgspec.UNSET
    zone_id: Id | msgspec.UnsetType = msgspec.UNSET
    space_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    special_requests: Opt500 | msgspec.UnsetType = msgspec.UNSET


# -- memberships ----------------------------------------------------------------------------

MembershipStatus = Literal["active", "expired", "suspended", "cancelled"]


class PlanIn(Body):
    name: Text100
    duration_months: Annotated[int, Meta(ge=1, le=120)]
    price: Amount
    description: Annotated[str, Meta(max_length=2000)] | None = None
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")] = "USD"
    vehicle_limit: Annotated[int, Meta(ge=1, le=100)] = 1
    included_hours: IncludedHours | None = None
    discount_percentage: Percent = Decimal(0)
    priority_reservation: bool = False
    ev_charging_included: bool = False
    is_active: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.price = money_in(self.price, "price")
        check_number(
            self.discount_percentage, "discount_percentage", low=Decimal(0), high=Decimal(100)
        )


class PlanUpdate(Update):
    name: Text100 | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, Meta(max_length=2000)] | msgspec.UnsetType | None = msgspec.UNSET
    duration_months: Annotated[int, Meta(ge=1, le=120)] | msgspec.UnsetType = msgspec.UNSET
    price: Amount | msgspec.UnsetType = msgspec.UNSET
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")] | msgspec.UnsetType = msgspec.UNSET
    vehicle_limit: Annotated[int, Meta(ge=1, le=100)] | msgspec.UnsetType = msgspec.UNSET
    included_hours: IncludedHours | msgspec.UnsetType | None = msgspec.UNSET
    discount_percentage: Percent | msgspec.UnsetType = msgspec.UNSET
    priority_reservation: bool | msgspec.UnsetType = msgspec.UNSET
    ev_charging_included: bool | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.price, Decimal):
            self.price = money_in(self.price, "price")
        if isinstance(self.discount_percentage, Decimal):
            check_number(
                self.discount_percentage, "discount_percentage", low=Decimal(0), high=Decimal(100)
            )


class SubscribeIn(Body):
    plan_id: Id
    vehicle_ids: Annotated[
        list[Id],
        # The items' bounds spelled out: Litestar documents list items without them.
        Meta(
            max_length=100, extra_json_schema={"extra": {"items": {"type": "integer", **ID_BOUNDS}}}
        ),
    ] = msgspec.field(default_factory=list)
    auto_renew: bool = False
    payment_method: PaymentMethod | None = None


# -- EV charging ----------------------------------------------------------------------------

ChargerType = Literal["level1", "level2", "dc_fast"]
# The field reference's four statuses plus those a real charger reports (OCPP): a car
# plugged in but not charging (occupied), charging, and maintenance set by staff.
StationStatus = Literal[
    "available", "in_use", "occupied", "charging", "faulted", "offline", "maintenance"
]
ChargingStatus = Literal["started", "charging", "completed", "interrupted"]


def _price_per_kwh(value: Decimal) -> Decimal:
    """A unit price is kept to 4 decimals, rounded half-up like money (the cost of a
    charge, energy x price, is then rounded to cents)."""
    check_number(value, "price_per_kwh", low=Decimal(0), high=Decimal(1000))
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


class StationIn(Body):
    space_id: Id
    power_kw: Kilowatts
    connector_type: Text50
    price_per_kwh: UnitPrice
    charger_type: ChargerType = "level2"
    installed_at: date | None = None
    manufacturer: Opt100 = None
    serial_number: Opt100 = None
    ocpp_id: (
        Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")] | None
    ) = None
    connector_id: Annotated[int, Meta(ge=1, le=99)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.power_kw, "power_kw", low=Decimal(0), high=Decimal(1000), low_open=True)
        self.price_per_kwh = _price_per_kwh(self.price_per_kwh)


class StationUpdate(Update):
    status: StationStatus | msgspec.UnsetType = msgspec.UNSET
    price_per_kwh: UnitPrice | msgspec.UnsetType = msgspec.UNSET
    power_kw: Kilowatts | msgspec.UnsetType = msgspec.UNSET
    last_maintenance: date | msgspec.UnsetType = msgspec.UNSET
    ocpp_id: (
        Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
        | msgspec.UnsetType
        | None
    ) = msgspec.UNSET
    connector_id: Annotated[int, Meta(ge=1, le=99)] | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.power_kw, Decimal):
            check_number(
                self.power_kw, "power_kw", low=Decimal(0), high=Decimal(1000), low_open=True
            )
        if isinstance(self.price_per_kwh, Decimal):
            self.price_per_kwh = _price_per_kwh(self.price_per_kwh)


class ChargeStartIn(Body):
    station_id: Id
    vehicle_id: Id
    parking_session_id: Id | None = None
    max_power_requested: Kilowatts | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(
            self.max_power_requested,
            "max_power_requested",
            low=Decimal(0),
            high=Decimal(1000),
            low_open=True,
        )


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


@functools.cache
def _number_fields(target: type[Struct]) -> frozenset[str]:
    """The fields typed ``Decimal``: JSON numbers on the wire (1.1), never strings."""
    info = msgspec.inspect.type_info(target)
    assert isinstance(info, msgspec.inspect.StructType)
    names = set()
    for f in info.fields:
        members = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        kinds = [m.type if isinstance(m, msgspec.inspect.Metadata) else m for m in members]
        if any(isinstance(k, msgspec.inspect.DecimalType) for k in kinds):
            names.add(f.encode_name)
    return frozenset(names)


def _invalid_body(request: Request[Any, Any, Any], key: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"Validation failed for {request.method} {request.url.path}",
        extra=[{"key": key, "message": message, "source": "body"}],
    )


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    """Decode a handler's JSON body strictly, before litestar converts it leniently.

    * The body must be sent as ``application/json`` (415 otherwise). Litestar parses any
      body as JSON whatever its type, so a cross-site ``text/plain`` form post (which a
      browser sends without a preflight) would otherwise be read as a JSON command.
    * It must be UTF-8 (400 otherwise), also inside fields the handler ignores.
    * Litestar converts request data with msgspec's ``strict=False`` (right for query
      strings, where everything is text), which would take ``1`` or ``"true"`` for a bool
      and ``"5"`` for an int in a JSON body; msgspec also takes ``"2.5"`` for a
      ``Decimal``. The field reference refuses those (1.1), so the body is checked here
      first with the handler's own Struct.
    * An update (:class:`Update`) must change something.

    Registered as ``before_request``: it runs after authentication and the role guards, so
    401 and 403 still come first.
    """
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None or not isinstance(field.kwarg_definition, BodyKwarg):
        return
    if field.kwarg_definition.media_type != RequestEncodingType.JSON:
        return
    content_type = request.headers.get("content-type")
    if content_type is None and not await request.body():
        pass  # no body at all: litestar answers 400 for the missing body
    elif not _is_json(content_type or ""):
        raise HTTPException(
            status_code=415, detail="Unsupported media type: send the body as application/json"
        )
    target = field.annotation
    if not (isinstance(target, type) and issubclass(target, Struct)):
        return
    body = await request.body()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_body(request, "data", "the body is not valid UTF-8") from None
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # malformed JSON: litestar's own parsing answers it with 400
    try:
        data = msgspec.convert(_integral(raw), target, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at ")
        key = where.strip("`").removeprefix("$").lstrip(".")
        if not key:  # a __post_init__ rule: its message starts with the field's name
            named = re.match(r"`(\w+)`", message)
            key = named[1] if named else "data"
        raise _invalid_body(request, key, message) from None
    check_times(data)
    if isinstance(data, Update) and not given(data):
        names = ", ".join(target.__struct_fields__)
        raise _invalid_body(request, "data", f"nothing to update: give at least one of {names}")
    for name in sorted(_number_fields(target)):
        if isinstance(raw.get(name), str):
            raise _invalid_body(request, name, "Expected `number`, got `str`")


def _integral(value: Any) -> Any:
    """``56.0`` as ``56``: an integer in JSON Schema (and to Litestar's own decoding), so a
    client generated from the document may send it; ``56.5`` still fails an ``int``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
