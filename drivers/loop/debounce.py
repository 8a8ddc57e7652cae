"""Debouncing of a loop detector's raw state."""

from __future__ import annotations

import time


class Debouncer:
    """A new state is accepted once it has been seen unchanged for ``hold_s``.

    Loop detectors chatter when a vehicle's edge crosses the loop; reporting each flip
    would start and cancel lane flows. The first reading is accepted at once (the lane
    must know the state at start-up).
    """

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.state: bool | None = None
        self._candidate: bool | None = None
        self._since = 0.0

    def feed(self, raw: bool, now: float | None = None) -> bool | None:
        """Returns the new stable state when it changed, else None."""
        now = time.monotonic() if now is None else now
        if self.state is None:
            self.state = raw
            return raw
        if raw == self.state:
            self._candidate = None
            return None
        if self._candidate != raw:
            self._candidate, self._since = raw, now
        if now - self._since >= self.hold_s:
            self.state, self._candidate = raw, None
            return raw
        return None
