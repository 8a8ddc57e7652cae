"""What the console says: lane decisions and site events in words an operator understands.

The lanes and the outbox speak in reason codes (``unpaid``, ``grace_expired``) because
displays, the central system and the metrics need stable names. A person in the booth at
2 a.m. needs a sentence. This table is the only place that turns one into the other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.services.alarms import is_alarm

REFUSED = {
    "unpaid": "Not paid yet",
    "grace_expired": "Paid, but the time allowed to leave after paying has run out",
    "unknown": "No parking session for this ticket or plate",
    "charging": "Still charging: the charge must be stopped before the car can leave",
    "already_inside": "Already inside: this plate came in and never left (anti-passback)",
    "lane_closed": "The lane is locked closed",
    "unavailable": "The gateway did not answer in time",
    "plate_uncertain": "Plate not read with certainty: more than one car inside matches it",
    "denied": "The plate is on the deny list",
    "unreadable": "The plate could not be read",
    "unsupported": "This lane needs a licence plate",
    "error": "The decision failed (see the log)",
    "refused": "Refused",
}

ALLOWED = {
    "paid": "Paid",
    "free": "Nothing to pay",
    "member": "Covered by a membership",
    "entry": "Welcome: ticket issued",
    "operator": "Opened by an operator",
    "free_exit": "Free exit (lane mode)",
    "allow_list": "On the allow list",
    "anti_passback_soft": "Let in although already inside (soft anti-passback, alarm raised)",
    "locked_open": "Lane locked open",
}

MODES = {
    "normal": "Normal",
    "locked_open": "Locked open",
    "locked_closed": "Locked closed",
    "free_exit": "Free exit",
}

# Feed categories an operator filters by, and the event types in each.
CATEGORIES = {
    "decision": "Decisions",
    "passage": "Passages",
    "payment": "Payments",
    "session": "Sessions",
    "alarm": "Alarms and faults",
    "operator": "Operator actions",
    "plate": "Plate reads",
    "charging": "Charging",
    "system": "Other",
}
_CATEGORY_OF = {
    "lane_decision": "decision",
    "lane_grant_cancelled": "decision",
    "lane_passage": "passage",
    "payment_completed": "payment",
    "membership_payment_completed": "payment",
    "session_started": "session",
    "session_completed": "session",
    "session_cancelled": "session",
    "session_vehicle_corrected": "session",
    "lane_fault_cleared": "alarm",
    "lane_opened_by_operator": "operator",
    "lane_mode_changed": "operator",
    "alarm_acknowledged": "operator",
    "plate_read": "plate",
    "plate_read_corrected": "plate",
    "charging_started": "charging",
    "charging_completed": "charging",
    "charging_finalised": "charging",
    "charging_idle_fee": "charging",
    "charger_booted": "charging",
    "charger_offline": "charging",
    "ev_station_status_changed": "charging",
    "vehicle_registered": "session",
}
# Telemetry, not events a person follows: kept out of the feed (still in the outbox).
QUIET = frozenset({"charging_meter", "charger_status"})


def money(value: Any) -> str:
    if value is None:
        return "-"
    return f"${Decimal(str(value)):,.2f}"


def decision_text(decision: dict[str, Any] | None) -> str:
    """One line for a lane decision (the lane status's ``last_decision``)."""
    if not decision:
        return "No vehicle yet"
    reason = str(decision.get("reason") or "")
    if decision.get("allowed"):
        return ALLOWED.get(reason, reason.replace("_", " ").capitalize())
    text = REFUSED.get(reason, reason.replace("_", " ").capitalize())
    due = decision.get("amount_due")
    return f"{text}: {money(due)} due" if due else text


def category(event_type: str) -> str:
    if is_alarm(event_type):
        return "alarm"
    return _CATEGORY_OF.get(event_type, "system")


def _credential(data: dict[str, Any]) -> str:
    credential = data.get("credential") or {}
    return str(credential.get("value") or data.get("ticket_number") or data.get("plate") or "?")


def event_text(event_type: str, data: dict[str, Any]) -> str:
    """One line for an outbox event."""
    lane = data.get("lane_id")
    at = f"{lane}: " if lane else ""
    d = data
    match event_type:
        case "lane_decision":
            verb = "allowed" if d.get("allowed") else "refused"
            return f"{at}{_credential(d)} {verb}: {decision_text(d)}"
        case "lane_passage":
            way = "in" if d.get("kind") == "entry" else "out"
            why = (
                ""
                if d.get("reason") == "entry"
                else f" ({ALLOWED.get(d.get('reason') or '', d.get('reason'))})"
            )
            return f"{at}{_credential(d)} drove {way}{why}"
        case "lane_grant_cancelled":
            return (
                f"{at}grant ({d.get('reason')}) not used: {str(d.get('why', '')).replace('_', ' ')}"
            )
        case "lane_opened_by_operator":
            return f"{at}opened by {d.get('actor') or 'the central system'}: “{d.get('reason')}”"
        case "lane_mode_changed":
            return f"{at}mode {MODES.get(d.get('from') or '', d.get('from'))} → {MODES.get(d.get('mode') or '', d.get('mode'))} by {d.get('actor') or 'the central system'}"
        case "lane_fault":
            return f"{at}FAULT {str(d.get('device', '')).replace('_', ' ')}: {d.get('message')}"
        case "lane_fault_cleared":
            return f"{at}fault cleared: {str(d.get('device', '')).replace('_', ' ')}"
        case "payment_completed":
            return f"Payment {money(d.get('total_amount'))} ({d.get('payment_method')}) for {d.get('ticket_number')}"
        case "session_started":
            return f"{d.get('license_plate')} entered at {d.get('entry_gate')}: ticket {d.get('ticket_number')}"
        case "session_completed":
            return f"Ticket {d.get('ticket_number')} left at {d.get('exit_gate')} after {d.get('duration_minutes')} min, fee {money(d.get('fee_total'))}"
        case "session_cancelled":
            return (
                f"Session {d.get('session_id')} cancelled ({d.get('why') or d.get('reason') or ''})"
            )
        case "plate_read":
            confidence = d.get("confidence")
            share = f" {float(confidence):.0%}" if confidence is not None else ""
            return f"{at}read {d.get('plate')}{share}{'' if d.get('confident', True) else ' (uncertain)'}"
        case "plate_read_corrected":
            return f"Read #{d.get('read_id')} corrected {d.get('from')} → {d.get('to')}"
        case "anti_passback_violation":
            return f"{at}ALARM {d.get('plate')} entered although already inside (ticket {d.get('ticket_number')})"
        case "unauthorised_passage":
            return f"{at}ALARM a vehicle went through without a grant"
        case "barrier_open_without_grant":
            return f"{at}ALARM the barrier opened without a grant"
        case "plate_denied":
            return f"{at}ALARM {d.get('plate')} is on the deny list"
        case "outbox_backlog_alarm":
            return f"ALARM {d.get('undelivered')} events not delivered to the central system (threshold {d.get('threshold')})"
        case "alarm_acknowledged":
            return f"Alarm #{d.get('sequence')} ({str(d.get('type', '')).replace('_', ' ')}) acknowledged by {d.get('actor')}"
        case "vehicle_registered":
            source = f" (first seen: {d['source']})" if d.get("source") else ""
            return f"New vehicle {d.get('license_plate')}{source}"
        case "ev_station_status_changed":
            return f"Station {d.get('station_id')}: {str(d.get('from')).replace('_', ' ')} → {str(d.get('to')).replace('_', ' ')}"
        case "charging_started":
            return f"Charging started at station {d.get('station_id')}"
        case "charging_completed":
            return f"Charging at station {d.get('station_id')} done: {d.get('energy_kwh')} kWh, {money(d.get('cost'))}"
    facts = ", ".join(
        [
            f"{k.replace('_', ' ')} {v}"
            for k, v in d.items()
            if k != "lane_id" and isinstance(v, str | int | float) and not isinstance(v, bool)
        ][:3]
    )
    return f"{at}{event_type.replace('_', ' ')}" + (f": {facts}" if facts else "")


def tone(event_type: str, data: dict[str, Any]) -> str:
    """``alarm``, ``warn`` or ``ok``: how loud the feed shows it."""
    if is_alarm(event_type):
        return "alarm"
    if event_type == "lane_decision" and not data.get("allowed"):
        return "warn"
    if event_type in ("lane_grant_cancelled", "lane_opened_by_operator", "lane_mode_changed"):
        return "warn"
    return "ok"
