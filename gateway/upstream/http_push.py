"""HTTP push: POST outbox events in batches to the central system's endpoint.

Body ``{"site_id": ..., "events": [envelope, ...]}`` with ``Authorization: Bearer <token>``.
The channel's cursor moves only after a 2xx answer; anything else (an error status, a
timeout, a refused connection) is retried with jittered exponential backoff, from the
same events. It shares the outbox with the MQTT relay, each with its own cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime
from typing import Any

import httpx
import structlog
from sqlite_utils import Database

from gateway.api.deps import Deps
from gateway.config import HttpPushConfig
from gateway.upstream import outbox

log = structlog.get_logger("gateway.upstream.http")
CHANNEL = "http"


class HttpPushRelay:
    def __init__(self, deps: Deps, config: HttpPushConfig, metrics: Any) -> None:
        self.deps, self.config, self.metrics = deps, config, metrics
        self._wake = asyncio.Event()
        deps.store.on_commit(self._wake.set)
        # What the console shows: did the last POST succeed, and if not, why.
        self.connected = False
        self.last_error: str | None = None

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        failures = 0
        async with httpx.AsyncClient(timeout=self.config.timeout_s, headers=headers) as client:
            self.metrics.reconnects.labels(CHANNEL).inc()
            while True:
                self._wake.clear()
                after = outbox.cursor(self.deps.store.reader, CHANNEL)
                batch = outbox.events_after(self.deps.store.reader, after, self.config.batch_size)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                    continue
                body = {
                    "site_id": self.deps.config.site.id,
                    "events": [outbox.envelope(row, self.deps.config.site.id) for row in batch],
                }
                try:
                    response = await client.post(self.config.url, json=body)
                    ok = 200 <= response.status_code < 300
                    problem = None if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as err:
                    ok, problem = False, str(err) or type(err).__name__
                self.connected, self.last_error = ok, problem
                if not ok:
                    failures += 1
                    delay = min(60.0, random.uniform(0, 1.5 ** min(12, failures)) / 2 + 0.2)
                    log.warning(
                        "http_push_failed",
                        error=problem,
                        retry_in=round(delay, 2),
                        events=len(batch),
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                last: int = batch[-1]["id"]
                now = self.deps.clock.now()

                def record(db: Database, last: int = last, now: datetime = now) -> None:
                    outbox.advance(db, CHANNEL, last, now)

                await self.deps.store.write(record)
                self.metrics.published.labels(CHANNEL).inc(len(batch))
