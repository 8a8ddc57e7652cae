"""Pushing the console's changes to the browsers watching it (server-sent events).

The hub listens where the MQTT bridge listens: the store's commits (a new event, a new
payment, a space taken) and each lane's state changes. A watcher (one open console) has
a *set of dirty panels*, not a queue of messages: a change marks a panel, the watcher's
stream renders what is marked when it next runs, and a burst of a hundred commits costs
one render. Nothing can overflow and nothing is lost, because what is sent is always the
current state, rendered for that watcher (its role and CSRF token).

A dropped connection is the browser's to repair: ``EventSource`` reconnects by itself
(after ``retry`` ms) and every new stream starts by sending every panel, so a console
that was away for a minute is whole again at once. Streams end when the daemon stops
(``Deps.stopping``), so they never hold up a shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

from litestar.response import ServerSentEventMessage

from gateway.api.deps import Deps

SITE = "site"  # the database changed: feed, occupancy, alarms, reads, chargers, sessions
CLOCK = "clock"  # time alone changed something: fees, the backlog's age
KEEPALIVE_S = 15.0  # a comment line, so proxies and the browser see the stream alive
CLOCK_S = 10.0
COALESCE_S = 0.1  # at most ten rounds a second per watcher
RETRY_MS = 2000


class Watcher:
    def __init__(self) -> None:
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()

    def mark(self, key: str) -> None:
        self.dirty.add(key)
        self.wake.set()

    def take(self) -> set[str]:
        taken, self.dirty = self.dirty, set()
        self.wake.clear()
        return taken


class Hub:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.watchers: set[Watcher] = set()
        deps.store.on_commit(self._committed)
        if deps.lanes is not None:
            for lane in deps.lanes.lanes.values():
                lane.listeners.append(self._lane_changed)

    def _committed(self) -> None:
        for watcher in self.watchers:
            watcher.mark(SITE)

    def _lane_changed(self, lane: Any) -> None:
        key = f"lane:{lane.spec.id}"
        for watcher in self.watchers:
            watcher.mark(key)

    async def stream(
        self,
        render: Callable[[set[str], int | None], tuple[list[ServerSentEventMessage], int]],
        until: datetime,
    ) -> AsyncGenerator[ServerSentEventMessage, None]:
        """One console's events. ``render(keys, after)`` turns dirty keys into messages
        (``after``: the last feed sequence sent, None for a full resync) and returns the
        new last sequence. The stream ends when the session does (``until``): the browser's
        reconnect then meets the sign-in check like any request."""
        watcher = Watcher()
        self.watchers.add(watcher)
        stopping = self.deps.stopping
        try:
            messages, after = render(set(), None)
            yield ServerSentEventMessage(event="hello", data="{}", retry=RETRY_MS)
            for message in messages:
                yield message
            loop = asyncio.get_running_loop()
            last_clock = loop.time()
            while True:
                waits = [asyncio.ensure_future(watcher.wake.wait())]
                if stopping is not None:
                    waits.append(asyncio.ensure_future(stopping.wait()))
                try:
                    await asyncio.wait(
                        waits,
                        timeout=min(KEEPALIVE_S, CLOCK_S),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiting in waits:
                        waiting.cancel()
                if (stopping is not None and stopping.is_set()) or datetime.now(UTC) >= until:
                    return
                if loop.time() - last_clock >= CLOCK_S:
                    last_clock = loop.time()
                    watcher.mark(CLOCK)
                if not watcher.dirty:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
                    continue
                await asyncio.sleep(COALESCE_S)
                messages, after = render(watcher.take(), after)
                for message in messages:
                    yield message
        finally:
            self.watchers.discard(watcher)


def panel(panel_id: str, html: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="panel", data=json.dumps({"id": panel_id, "html": html}))


def hint(name: str) -> ServerSentEventMessage:
    """Something the browser renders with its own parameters (the session search) changed."""
    return ServerSentEventMessage(event="stale", data=json.dumps({"panel": name}))


def feed(html: str, sequence: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        event="feed", id=sequence, data=json.dumps({"html": html, "sequence": sequence})
    )
