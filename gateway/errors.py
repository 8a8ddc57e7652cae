"""Errors of the services, independent of HTTP; the API maps each class to a status code.

Every error carries a human-readable ``detail`` (what a kiosk or an operator reads) and
optional machine-readable extras (``amount_due``, ``ticket_number``) that clients use.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(GatewayError):
    """The thing named does not exist."""


class Forbidden(GatewayError):
    """The caller may not do this (wrong role, not the owner)."""


class Invalid(GatewayError):
    """The request is well-formed but breaks a rule about its own values."""


class Conflict(GatewayError):
    """The request clashes with the current state (duplicates, wrong status)."""


class PaymentRequired(GatewayError):
    """Something is owed; the extras say how much."""


class Unauthorized(GatewayError):
    """Wrong credentials."""


class Unavailable(GatewayError):
    """A device the request needs does not answer right now (503); nothing was changed."""
