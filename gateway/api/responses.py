"""Response bodies as msgspec Structs: what the server sends, as ``/openapi.json`` tells it.

The read model (:mod:`gateway.services.views`) renders rows as plain dicts; each handler
hands its dict to :func:`typed`, which converts it to the Struct its signature declares
(``msgspec.convert``, strict), so the document and the bytes cannot drift apart: a view
that lost or retyped a field fails there, in the tests, not in a generated client.

Wire formats are those of the field reference: money is a JSON number with cents,
timestamps are the stored UTC ISO 8601 strings (documented as ``date-time``), calendar
dates ``YYYY-MM-DD``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from gateway.api.schemas import (
    ChargerType,
    ChargingStatus,
    DiscountType,
    MembershipStatus,
    PaymentMethod,
    PaymentStatus,
    RateType,
    ReservationStatus,
    SizeCategory,
    SpaceStatus,
    SpaceType,
    StationStatus,
)

T = TypeVar("T", bound=Struct)


def typed(kind: type[T], value: Any) -> T:
    """A view (dict) as the response Struct the handler declares."""
    return msgspec.convert(value, kind)


def _schema(**extra: Any) -> Meta:
    # Litestar copies ``extra_json_schema["extra"]`` over the schema it generates.
    return Meta(extra_json_schema={"extra": extra})


Timestamp = Annotated[str, _schema(format="date-time")]
Day = Annotated[str, _schema(format="date")]
Money = Annotated[float, Meta(description="money: a JSON number with two decimals")]
SessionStatus = Literal["active", "completed", "cancelled"]
Role = Literal["customer", "operator", "admin"]


class Resource(Struct, kw_only=True):
    id: int
    created_at: Timestamp
    updated_at: Timestamp


# -- errors -------------------------------------------------------------------------------


class FieldError(Struct):
    field: str | None
    message: str | None
    source: str | None = None


class ErrorBody(Struct, kw_only=True):
    """Every error answer: ``detail`` for people; validation errors list each problem.

    Some errors carry machine-readable extras next to ``detail``: 402 ``amount_due``
    (and ``session_id``, ``ticket_number``), 409 the ``ticket_number`` or entry it
    clashes with, lane refusals a ``reason``.
    """

    detail: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    amount_due: float | msgspec.UnsetType = msgspec.UNSET
    session_id: int | msgspec.UnsetType = msgspec.UNSET
    ticket_number: str | msgspec.UnsetType = msgspec.UNSET
    reason: str | msgspec.UnsetType = msgspec.UNSET


# -- auth and system ------------------------------------------------------------------------


class User(Resource, kw_only=True):
    email: str
    full_name: str
    phone: str | None
    role: Role
    is_active: bool
    is_verified: bool


class TokenOut(Struct):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)


class Registered(Struct):
    user: User
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)


class Health(Struct):
    status: Literal["ok"]
    version: str
    site: str


class Message(Struct):
    message: str


# -- structure and vehicles ---------------------------------------------------------------


class VehicleType(Resource, kw_only=True):
    name: str
    size_category: SizeCategory
    description: str | None


class Vehicle(Resource, kw_only=True):
    license_plate: str
    vehicle_type_id: int
    user_id: int | None
    make: str | None
    model: str | None
    color: str | None
    is_ev: bool
    vehicle_type: VehicleType


class VehiclePage(Struct):
    vehicles: list[Vehicle]
    total: int
    page: int
    limit: int


class Level(Resource, kw_only=True):
    name: str
    floor_number: int
    is_underground: bool
    max_height_m: float | None


class Zone(Resource, kw_only=True):
    level_id: int
    name: str
    description: str | None
    total_spaces: int
    color_code: str | None
    level: Level


class ZoneAvailability(Struct):
    zone_id: int
    total: int
    available: int
    occupied: int
    reserved: int
    maintenance: int
    out_of_service: int
    occupancy_rate: float


class Space(Resource, kw_only=True):
    zone_id: int
    space_number: str
    space_type: SpaceType
    floor: int | None
    row: str | None
    is_ev_charging: bool
    is_handicapped: bool
    status: SpaceStatus
    zone: Zone


class SpacePage(Struct):
    spaces: list[Space]
    total: int
    page: int
    limit: int


# -- sessions and fees ----------------------------------------------------------------------


class Session(Resource, kw_only=True):
    vehicle_id: int
    space_id: int | None
    reservation_id: int | None
    ticket_number: str
    status: SessionStatus
    entry_time: Timestamp
    exit_time: Timestamp | None
    entry_gate: str | None
    exit_gate: str | None
    notes: str | None
    vehicle: Vehicle
    space: Space | None


class SessionPage(Struct):
    sessions: list[Session]
    total: int
    page: int
    limit: int


class Entry(Struct):
    session: Session
    ticket_number: str
    space_assigned: Space | None


class Exit(Struct):
    session: Session
    payment_due: Money
    duration_minutes: int
    fee_total: Money


class FeeLine(Struct):
    description: str
    amount: Money


class FeeCalculation(Struct):
    session_id: int
    duration_minutes: int
    base_fee: Money
    discounts: Money
    tax: Money
    ev_charging: Money
    total: Money
    breakdown: list[FeeLine]


# -- rates, payments, discounts -------------------------------------------------------------


class Rate(Resource, kw_only=True):
    name: str
    rate_type: RateType
    amount: Money
    currency: str
    vehicle_type_id: int | None
    zone_id: int | None
    grace_period_minutes: int
    effective_from: Timestamp
    effective_to: Timestamp | None
    peak_multiplier: float
    peak_start_time: str | None
    peak_end_time: str | None
    min_duration_minutes: int | None
    max_duration_minutes: int | None
    is_active: bool


class Payment(Resource, kw_only=True):
    session_id: int
    user_id: int | None
    amount: Money
    amount_tendered: Money | None
    currency: str
    payment_method: PaymentMethod
    status: PaymentStatus
    transaction_id: str | None
    discount_id: int | None
    discount_amount: Money
    tax_amount: Money
    total_amount: Money
    receipt_number: str
    paid_at: Timestamp | None


class PaymentPage(Struct):
    payments: list[Payment]
    total: int
    page: int
    limit: int
    total_amount: Money


class ValidateExit(Struct):
    session_id: int
    ticket_number: str
    is_paid: bool
    can_exit: bool
    time_remaining_minutes: int | None
    amount_due: Money
    fee_total: Money
    status: SessionStatus


class Discount(Resource, kw_only=True):
    code: str
    name: str
    discount_type: DiscountType
    value: float
    valid_from: Timestamp
    valid_to: Timestamp
    max_uses: int | None
    max_uses_per_user: int
    min_duration_hours: int | None
    partner_name: str | None
    current_uses: int
    is_active: bool


class DiscountValidation(Struct):
    is_valid: bool
    discount: Discount | None
    discount_amount: Money | None
    message: str | None


# -- reservations and memberships -------------------------------------------------------------


class Reservation(Resource, kw_only=True):
    user_id: int
    vehicle_id: int
    space_id: int | None
    zone_id: int | None
    start_time: Timestamp
    end_time: Timestamp
    status: ReservationStatus
    confirmation_number: str
    special_requests: str | None
    reservation_fee: Money | None
    is_paid: bool
    cancelled_at: Timestamp | None
    cancellation_reason: str | None
    session_id: int | None
    vehicle: Vehicle
    space: Space | None


class ReservationCreated(Struct):
    reservation: Reservation
    confirmation_number: str


class ReservationCancelled(Struct):
    reservation: Reservation
    refund_amount: Money | None


class ReservationPage(Struct):
    reservations: list[Reservation]
    total: int
    page: int
    limit: int


class CheckIn(Struct):
    session_id: int
    ticket_number: str
    space_assigned: Space | None
    reservation: Reservation


class Availability(Struct):
    available_spaces: list[Space]
    total_available: int
    zone_id: int | None
    capacity: int
    reserved_peak: int
    walk_ins: int
    bookable: int


class Plan(Resource, kw_only=True):
    name: str
    description: str | None
    duration_months: int
    price: Money
    currency: str
    vehicle_limit: int
    included_hours: int | None
    discount_percentage: float
    priority_reservation: bool
    ev_charging_included: bool
    is_active: bool


class Membership(Resource, kw_only=True):
    user_id: int
    plan_id: int
    vehicle_ids: list[int]
    start_date: Day
    end_date: Day
    status: MembershipStatus
    auto_renew: bool
    payment_method: PaymentMethod | None
    payment_method_id: str | None
    used_hours: float
    plan: Plan


class MembershipPaid(Struct):
    membership: Membership
    payment_id: int | None


class MembershipPage(Struct):
    memberships: list[Membership]
    total: int
    page: int
    limit: int


class MembershipUsage(Struct):
    membership_id: int
    hours_used: float
    hours_remaining: float | None
    sessions_count: int
    savings_to_date: Money
    days_remaining: int
    status: MembershipStatus


# -- EV charging and reports ----------------------------------------------------------------


class Station(Resource, kw_only=True):
    space_id: int
    charger_type: ChargerType
    power_kw: float
    connector_type: str
    price_per_kwh: float
    installed_at: Day | None
    manufacturer: str | None
    serial_number: str | None
    status: StationStatus
    last_maintenance: Day | None
    ocpp_id: str | None
    connector_id: int | None
    space: Space | None


class Charge(Resource, kw_only=True):
    station_id: int
    vehicle_id: int
    parking_session_id: int | None
    start_time: Timestamp
    end_time: Timestamp | None
    energy_kwh: float
    cost: Money
    idle_fee: Money
    status: ChargingStatus
    max_power_requested: float | None


class ChargeStopped(Struct):
    session: Charge
    energy_used: float
    cost: Money
    duration_minutes: int
    provisional: bool


class ChargePage(Struct):
    sessions: list[Charge]
    total: int
    page: int
    limit: int


class Dashboard(Struct):
    total_spaces: int
    occupied_spaces: int
    available_spaces: int
    reserved_spaces: int
    maintenance_spaces: int
    occupancy_rate: float
    active_sessions: int
    today_entries: int
    today_exits: int
    today_revenue: Money
    active_ev_charging: int
    pending_reservations: int
    active_memberships: int
    ev_stations_total: int
    ev_stations_available: int
    day: Day


# -- lanes and plate recognition --------------------------------------------------------------


class CredentialOut(Struct):
    kind: Literal["plate", "ticket"]
    value: str


class LaneDecision(Struct):
    allowed: bool
    reason: str
    session_id: int | None
    ticket_number: str | None
    amount_due: float | None
    message: str
    credential: CredentialOut | None
    at: Timestamp | None


class LaneAlarm(Struct):
    """A surprise the lane raised (``barrier_open_without_grant``, ``unauthorised_passage``),
    the newest last; the rest of its outbox event's data rides along."""

    type: str
    at: Timestamp
    message: str
    plate: str | None = None
    session_id: int | None = None
    ticket_number: str | None = None
    refused_because: str | None = None


class LaneStatus(Struct):
    id: str
    name: str
    kind: Literal["entry", "exit"]
    mode: str
    barrier: str  # what the barrier reports: open, closed, moving, unknown
    wanted: Literal["open", "closed"] | None  # where the lane wants it; None until ready
    ready: bool  # the barrier and the presence loop have reported since start
    presence: bool
    safety: bool
    phase: str
    fault: bool
    faults: list[str]
    alarms: list[LaneAlarm]
    devices: dict[str, str]
    display: str
    last_decision: LaneDecision | None


class LaneOpening(Struct):
    lane_id: str
    status: Literal["opening"]
    reason: str


class LaneMode(Struct):
    lane_id: str
    mode: Literal["normal", "locked_open", "locked_closed", "free_exit"]


class ReadAccepted(Struct):
    accepted: bool
    lane_id: str
    plate: str


class Alternative(Struct):
    plate: str
    share: float


class PlateRead(Resource, kw_only=True):
    lane_id: str | None
    camera_id: str | None
    source: str
    plate: str
    confidence: float
    confident: bool
    reads: int
    alternatives: list[Alternative]
    first_seen: Timestamp
    last_seen: Timestamp
    has_frame: bool
    has_crop: bool
    session_id: int | None
    decision: str | None
    corrected_from: str | None


class PlateReadPage(Struct):
    reads: list[PlateRead]
    total: int
    page: int
    limit: int


class PlateListEntry(Resource, kw_only=True):
    plate: str
    list: Literal["allow", "deny"]
    lane_id: str | None
    reason: str | None
    valid_until: Timestamp | None


# -- sync -------------------------------------------------------------------------------------


class Event(Struct):
    event_id: str
    sequence: int
    type: str
    occurred_at: Timestamp
    site_id: str
    data: dict[str, Any]


class Events(Struct):
    site_id: str
    events: list[Event]
    next: int
    has_more: bool
