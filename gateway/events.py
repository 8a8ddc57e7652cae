"""The event contract: every outbox event type, and the shape of its ``data``.

This table is the single place that says what the central system receives. The AsyncAPI
document (:mod:`gateway.upstream.asyncapi`, served at ``/asyncapi.json``) publishes one
channel per entry, ``carpark/{site_id}/events/<type>``, with the JSON Schema msgspec
generates from the entry's Struct; the test suite checks every event any test produces,
and every message the gateway publishes, against that document (``tests/conftest.py``).
A Struct here forbids unknown fields, so a service that adds a key to an event without
adding it here fails the tests that produce it; so does an event type missing here.

To add an event type:

1. Write a Struct for its ``data`` below, fields as the service writes them (optional
   keys as ``X | UnsetType = UNSET``, nullable ones as ``X | None``), with
   ``forbid_unknown_fields=True``, and a docstring saying when it happens (the docstring
   becomes the channel's description).
2. Decorate it with ``@event("the_type")``.
3. If the change is incompatible for consumers (a key removed or retyped), raise
   :data:`EVENT_SCHEMA_VERSION`; adding an event type or an optional key does not.

Nothing else: the document, ``carpark/<site>/info`` (``event_schema_version``) and the
contract tests follow from this module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from msgspec import UNSET, Struct, UnsetType, field

# Raised on an incompatible change of any event's data (see above); part of the
# AsyncAPI document's version and of the retained carpark/<site>/info.
EVENT_SCHEMA_VERSION = "1"

EVENTS: dict[str, type[Struct]] = {}

T = TypeVar("T", bound=type[Struct])


def event(name: str) -> Callable[[T], T]:
    def register(cls: T) -> T:
        if name in EVENTS:
            raise ValueError(f"event type {name!r} registered twice")
        EVENTS[name] = cls
        return cls

    return register


class Data(Struct, forbid_unknown_fields=True):
    """Base of every event's data."""


Changes = dict[str, Any]  # the changed columns and their new values, as the API took them


class Credential(Struct, forbid_unknown_fields=True):
    kind: str  # plate | ticket | ...
    value: str


# -- accounts and vehicles ------------------------------------------------------------------
@event("user_created")
class UserCreated(Data):
    """An account was made (registration, the CLI, an admin)."""

    user_id: int
    email: str
    role: Literal["customer", "operator", "admin"]


@event("vehicle_type_created")
class VehicleTypeCreated(Data):
    vehicle_type_id: int
    name: str
    size_category: str


@event("vehicle_registered")
class VehicleRegistered(Data):
    """A vehicle is known to the site: registered by its owner, or first seen at a gate,
    in a corrected read or on a central membership (``source``, ownerless)."""

    vehicle_id: int
    license_plate: str
    user_id: int | None
    vehicle_type_id: int
    is_ev: bool
    source: str | UnsetType = UNSET


@event("vehicle_claimed")
class VehicleClaimed(Data):
    """An ownerless vehicle (first seen at a gate) was registered by its driver."""

    vehicle_id: int
    user_id: int


@event("vehicle_updated")
class VehicleUpdated(Data):
    vehicle_id: int
    changes: Changes


@event("vehicle_removed")
class VehicleRemoved(Data):
    vehicle_id: int
    license_plate: str


# -- structure --------------------------------------------------------------------------------
@event("level_created")
class LevelCreated(Data):
    level_id: int
    name: str
    floor_number: int
    is_underground: bool
    max_height_m: float | None


@event("level_updated")
class LevelUpdated(Data):
    level_id: int
    changes: Changes


@event("zone_created")
class ZoneCreated(Data):
    zone_id: int
    level_id: int
    name: str
    description: str | None
    total_spaces: int
    color_code: str | None


@event("zone_updated")
class ZoneUpdated(Data):
    zone_id: int
    changes: Changes


@event("space_created")
class SpaceCreated(Data):
    space_id: int
    zone_id: int
    space_number: str
    space_type: str
    floor: int | None
    row: str | None
    is_ev_charging: bool
    is_handicapped: bool


@event("space_updated")
class SpaceUpdated(Data):
    space_id: int
    changes: Changes


@event("space_status_changed")
class SpaceStatusChanged(Data):
    """A space became available, occupied, reserved or maintenance (``by``: the user who
    changed it, when a person did)."""

    space_id: int
    zone_id: int
    from_: str = field(name="from")
    to: str
    by: int | None


# -- sessions and payments ----------------------------------------------------------------------
@event("session_started")
class SessionStarted(Data):
    """A vehicle entered (a lane, or an operator through the API)."""

    session_id: int
    ticket_number: str
    vehicle_id: int
    license_plate: str
    space_id: int | None
    entry_time: datetime
    entry_gate: str | None
    reservation_id: int | None


@event("session_space_assigned")
class SessionSpaceAssigned(Data):
    session_id: int
    from_space_id: int | None
    space_id: int


@event("session_vehicle_corrected")
class SessionVehicleCorrected(Data):
    """A misread plate was corrected and the session moved to the right vehicle."""

    session_id: int
    from_vehicle_id: int
    to_vehicle_id: int
    plate: str
    read_id: int


@event("session_completed")
class SessionCompleted(Data):
    """The vehicle left; ``amount_waived`` and ``waived_because`` when it left without
    paying all (allow list, free exit, an operator)."""

    session_id: int
    ticket_number: str
    vehicle_id: int
    exit_time: datetime
    exit_gate: str | None
    duration_minutes: int
    fee_total: float
    amount_waived: float
    waived_because: str | None


@event("session_cancelled")
class SessionCancelled(Data):
    """An entry nobody used (the vehicle backed away from the open barrier)."""

    session_id: int
    ticket_number: str
    why: str


@event("payment_completed")
class PaymentCompleted(Data):
    payment_id: int
    session_id: int
    ticket_number: str
    amount: float
    discount_id: int | None
    discount_amount: float
    total_amount: float
    payment_method: str
    paid_at: datetime
    user_id: int | None


# -- rates, discounts ---------------------------------------------------------------------------
@event("rate_created")
class RateCreated(Data):
    rate_id: int
    name: str
    rate_type: str
    amount: float
    currency: str
    vehicle_type_id: int | None
    zone_id: int | None
    grace_period_minutes: int
    effective_from: datetime
    effective_to: datetime | None
    peak_multiplier: float
    peak_start_time: str | None
    peak_end_time: str | None
    min_duration_minutes: int | None
    max_duration_minutes: int | None


@event("rate_updated")
class RateUpdated(Data):
    rate_id: int
    changes: Changes


@event("rate_deactivated")
class RateDeactivated(Data):
    rate_id: int


@event("discount_created")
class DiscountCreated(Data):
    discount_id: int
    code: str
    name: str
    discount_type: str
    value: float
    valid_from: datetime
    valid_to: datetime
    max_uses: int | None
    max_uses_per_user: int | None
    min_duration_hours: float | None
    partner_name: str | None


@event("discount_updated")
class DiscountUpdated(Data):
    discount_id: int
    changes: Changes


@event("discount_deactivated")
class DiscountDeactivated(Data):
    discount_id: int


# -- reservations -------------------------------------------------------------------------------
@event("reservation_created")
class ReservationCreated(Data):
    reservation_id: int
    confirmation_number: str
    vehicle_id: int
    zone_id: int | None
    space_id: int | None
    start_time: datetime
    end_time: datetime
    user_id: int


@event("reservation_updated")
class ReservationUpdated(Data):
    reservation_id: int
    start_time: datetime
    end_time: datetime
    zone_id: int | None
    space_id: int | None
    special_requests: str | None
    updated_at: datetime


@event("reservation_cancelled")
class ReservationCancelled(Data):
    reservation_id: int
    reason: str | None


@event("reservation_checked_in")
class ReservationCheckedIn(Data):
    reservation_id: int
    confirmation_number: str
    session_id: int


@event("reservation_no_show")
class ReservationNoShow(Data):
    reservation_id: int
    confirmation_number: str


# -- memberships --------------------------------------------------------------------------------
@event("membership_plan_created")
class MembershipPlanCreated(Data):
    plan_id: int
    name: str
    description: str | None
    duration_months: int
    price: float
    currency: str
    vehicle_limit: int
    included_hours: int | None
    discount_percentage: float
    priority_reservation: bool
    ev_charging_included: bool
    is_active: bool


@event("membership_plan_updated")
class MembershipPlanUpdated(Data):
    plan_id: int
    changes: Changes


@event("membership_started")
class MembershipStarted(Data):
    """A customer subscribed at this site."""

    membership_id: int
    user_id: int
    plan_id: int
    vehicle_ids: list[int]
    start_date: date
    end_date: date
    auto_renew: bool


@event("membership_upserted")
class MembershipUpserted(Data):
    """The central system created or replaced a membership (``upsert_membership``)."""

    membership_id: int
    external_id: str
    created: bool
    plan_id: int
    plan: str
    plates: list[str]
    vehicle_ids: list[int]
    valid_from: date
    valid_to: date
    status: Literal["active", "suspended", "cancelled", "expired"]


@event("membership_renewed")
class MembershipRenewed(Data):
    """A term was added (by its member, or ``automatic`` by the sweep), or an ended
    membership restarted (then with its new ``start_date`` and ``status``)."""

    membership_id: int
    end_date: date
    start_date: date | UnsetType = UNSET
    status: str | UnsetType = UNSET
    cancelled_at: datetime | UnsetType | None = UNSET
    automatic: bool | UnsetType = UNSET


@event("membership_expired")
class MembershipExpired(Data):
    membership_id: int


@event("membership_cancelled")
class MembershipCancelled(Data):
    """Cancelled by its member, or by the central system (then with ``external_id``)."""

    membership_id: int
    external_id: str | UnsetType = UNSET


@event("membership_payment_completed")
class MembershipPaymentCompleted(Data):
    membership_payment_id: int
    membership_id: int
    amount: float
    receipt_number: str


# -- lanes and plates ---------------------------------------------------------------------------
@event("lane_decision")
class LaneDecision(Data):
    """A lane decided on a credential: allowed or refused, and why."""

    lane_id: str
    allowed: bool
    reason: str
    session_id: int | None
    ticket_number: str | None
    amount_due: float | None
    credential: Credential | None


@event("lane_passage")
class LanePassage(Data):
    """The granted vehicle went through the barrier."""

    lane_id: str
    kind: Literal["entry", "exit"]
    reason: str
    session_id: int | None
    ticket_number: str | None
    credential: Credential | None


@event("lane_grant_cancelled")
class LaneGrantCancelled(Data):
    """An open barrier nobody drove through."""

    lane_id: str
    reason: str
    why: str
    session_id: int | None


@event("lane_opened_by_operator")
class LaneOpenedByOperator(Data):
    lane_id: str
    reason: str
    actor: str


@event("lane_mode_changed")
class LaneModeChanged(Data):
    lane_id: str
    mode: str
    from_: str = field(name="from")
    actor: str


@event("lane_fault")
class LaneFault(Data):
    """A device of the lane stopped answering or reported a fault."""

    lane_id: str
    device: str
    message: str


@event("lane_fault_cleared")
class LaneFaultCleared(Data):
    lane_id: str
    device: str


@event("barrier_open_without_grant")
class BarrierOpenWithoutGrant(Data):
    """The barrier was found open with no grant (at start-up, after a controller fault, or
    lifted by hand): the lane closes it as soon as the safety loop is clear."""

    lane_id: str
    message: str
    mode: str
    safety: bool


@event("unauthorised_passage")
class UnauthorisedPassage(Data):
    """A vehicle passed without a grant (tailgating, or through a barrier stuck open); its
    session, if one was found, is not completed."""

    lane_id: str
    message: str
    kind: Literal["entry", "exit"]
    plate: str | None
    credential: Credential | None
    refused_because: str | None
    session_id: int | None
    ticket_number: str | None


@event("anti_passback_violation")
class AntiPassbackViolation(Data):
    """An entry for a vehicle already inside, let in by a soft anti-passback lane."""

    lane_id: str
    plate: str
    ticket_number: str | None


@event("plate_denied")
class PlateDenied(Data):
    lane_id: str
    plate: str


@event("plate_read")
class PlateRead(Data):
    """A camera's voted read of one vehicle."""

    read_id: int
    lane_id: str
    camera_id: str
    source: str
    plate: str
    confidence: float
    confident: bool
    alternatives: list[Any]


@event("plate_read_corrected")
class PlateReadCorrected(Data):
    read_id: int
    from_: str = field(name="from")
    to: str
    by: int | None


@event("plate_list_updated")
class PlateListUpdated(Data):
    entry_id: int
    plate: str
    list: Literal["allow", "deny"]
    lane_id: str | None
    reason: str | None
    valid_until: datetime | None


@event("plate_list_removed")
class PlateListRemoved(Data):
    entry_id: int
    plate: str
    list: Literal["allow", "deny"]
    lane_id: str | None


# -- EV charging ----------------------------------------------------------------------------------
@event("ev_station_created")
class EvStationCreated(Data):
    station_id: int
    space_id: int
    charger_type: str
    power_kw: float
    connector_type: str
    price_per_kwh: float
    installed_at: str | None
    manufacturer: str | None
    serial_number: str | None
    ocpp_id: str | None
    connector_id: int | None


@event("ev_station_updated")
class EvStationUpdated(Data):
    station_id: int
    changes: Changes


@event("ev_station_status_changed")
class EvStationStatusChanged(Data):
    station_id: int
    from_: str = field(name="from")
    to: str


@event("charging_started")
class ChargingStarted(Data):
    """A charge began: started from the API (with the vehicle and its power limit) or at
    the charger with an RFID tag (with the OCPP transaction's details)."""

    charge_id: int
    station_id: int
    vehicle_id: int | UnsetType | None = UNSET
    parking_session_id: int | UnsetType | None = UNSET
    power_kw: float | UnsetType | None = UNSET
    charge_point_id: str | UnsetType = UNSET
    connector_id: int | UnsetType = UNSET
    id_tag: str | UnsetType = UNSET
    meter_start_wh: int | UnsetType = UNSET
    started_at: datetime | UnsetType = UNSET


@event("charging_meter")
class ChargingMeter(Data):
    charge_id: int
    energy_kwh: float
    meter_wh: int
    at: datetime


@event("charging_completed")
class ChargingCompleted(Data):
    """The charge ended; ``provisional`` when the charger's final figures are still due."""

    charge_id: int
    station_id: int
    vehicle_id: int | None
    parking_session_id: int | None
    energy_kwh: float
    cost: float
    end_time: datetime
    reason: str
    provisional: bool


@event("charging_finalised")
class ChargingFinalised(Data):
    """The charger's late StopTransaction replaced provisional figures."""

    charge_id: int
    energy_kwh: float
    cost: float


@event("charging_idle_fee")
class ChargingIdleFee(Data):
    charge_id: int
    idle_fee: float
    minutes: int


@event("charger_booted")
class ChargerBooted(Data):
    charge_point_id: str
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None


@event("charger_offline")
class ChargerOffline(Data):
    charge_point_id: str


@event("charger_status")
class ChargerStatus(Data):
    """A connector's OCPP StatusNotification."""

    charge_point_id: str
    connector_id: int
    status: str
    error_code: str | None


@event("charger_stop_unmatched")
class ChargerStopUnmatched(Data):
    charge_point_id: str
    transaction_id: int
    meter_stop_wh: int | None
    reason: str | None


# -- the gateway itself ---------------------------------------------------------------------------
@event("alarm_acknowledged")
class AlarmAcknowledged(Data):
    """A person acknowledged an alarm (an earlier event, by its ``sequence``) at the console."""

    sequence: int
    type: str  # the alarm's event type
    lane_id: str | None
    actor: str | None
    note: str | None


@event("outbox_backlog_alarm")
class OutboxBacklogAlarm(Data):
    """The undelivered backlog passed ``[sync] backlog_alarm`` (the site keeps working)."""

    undelivered: int
    threshold: int
