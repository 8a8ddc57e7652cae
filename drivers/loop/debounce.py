"""Debouncing of a loop detector's raw state."""

from __future__ import annotations

import time

MIN_READS = 3


class Debouncer:
    """A new state is accepted once it has been seen unchanged for ``hold_s``, over at least
    ``min_reads`` consecutive readings.

    Loop detectors chatter when a vehicle's edge crosses the loop; reporting each flip
    would start and cancel lane flows. The count of readings keeps a poller that stalls
    (a busy CPU, a slow bus) from accepting a level on the strength of a few readings far
    apart: pollers ask for half the readings their rate promises over the hold
    (:func:`reads_for`). Chatter faster than the polling cannot be seen at all: poll at
    least twice as fast as the loop can flip. The first reading is accepted at once (the
    lane must know the state at start-up), and so is every reading when ``hold_s`` is 0.
    """

    def __init__(self, hold_s: float, min_reads: int = MIN_READS) -> None:
        self.hold_s = hold_s
        self.min_reads = max(1, min_reads)
        self.state: bool | None = None
        self._candidate: bool | None = None
        self._since = 0.0
        self._reads = 0

    def feed(self, raw: bool, now: float | None = None) -> bool | None:
        """Returns the new stable state when it changed, else None."""
        now = time.monotonic() if now is None else now
        if self.state is None or (self.hold_s <= 0 and raw != self.state):
            self.state, self._candidate = raw, None
            return raw
        if raw == self.state:
            self._candidate = None
            return None
        if self._candidate != raw:
            self._candidate, self._since, self._reads = raw, now, 0
        self._reads += 1
        if now - self._since >= self.hold_s and self._reads >= self.min_reads:
            self.state, self._candidate = raw, None
            return raw
        return None


def reads_for(hold_s: float, poll_hz: float) -> int:
    """Readings a level must hold over: half of those ``poll_hz`` promises in ``hold_s``."""
    return max(MIN_READS, int(hold_s * poll_hz / 2))
