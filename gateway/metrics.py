"""Prometheus metrics (prometheus-client), one registry per daemon.

What a central operator watching hundreds of sites needs: is the site delivering its
events (outbox depth and oldest undelivered age per channel, publish rate, reconnects),
are its lanes deciding (decisions by reason), and is its API healthy (request durations).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.store import Store
from gateway.timeutil import parse
from gateway.upstream import outbox


class OutboxCollector(Collector):
    """Outbox depth and age, read from the database at scrape time (never stale)."""

    def __init__(self, store: Store, channels: Callable[[], list[str]]) -> None:
        self.store, self.channels = store, channels

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "carpark_outbox_depth", "Events not yet delivered on a channel", labels=["channel"]
        )
        age = GaugeMetricFamily(
            "carpark_outbox_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered on a channel",
            labels=["channel"],
        )
        total = GaugeMetricFamily("carpark_outbox_events", "Events held in the outbox")
        db = self.store.reader
        now = datetime.now(UTC)
        for channel in self.channels():
            count, oldest = outbox.depth(db, channel)
            depth.add_metric([channel], count)
            age.add_metric([channel], (now - parse(oldest)).total_seconds() if oldest else 0.0)
        total.add_metric([], float(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]))
        yield depth
        yield age
        yield total


class Metrics:
    def __init__(self, store: Store, channels: Callable[[], list[str]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(OutboxCollector(store, channels))
        self.published = Counter(
            "carpark_events_published",
            "Events delivered upstream",
            ["channel"],
            registry=self.registry,
        )
        self.reconnects = Counter(
            "carpark_upstream_reconnects",
            "Connections (re)established upstream",
            ["channel"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "carpark_lane_decisions",
            "Lane decisions",
            ["lane", "allowed", "reason"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "carpark_api_request_duration_seconds",
            "API request durations",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def instrument(self, app: Any) -> Any:
        """Time every HTTP request the application answers, by its route template.

        This wraps the whole ASGI application (outside Litestar's router), not a route's
        middleware stack: a 401 from the authentication middleware and the 404/405 of a
        path no route matches never reach a route's middleware, and they are exactly what
        credential stuffing or a scan looks like. Unmatched paths share the route label
        ``unmatched`` so a scan cannot grow the number of series.
        """
        histogram = self.requests

        async def instrumented(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = {"code": 500}

            async def capture(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                route = scope.get("path_template") or "unmatched"
                handler = getattr(scope.get("route_handler"), "handler_name", "")
                if handler == "handle_schema_path_not_found":  # the docs router's catch-all
                    route = "unmatched"
                histogram.labels(scope["method"], route, str(status["code"])).observe(
                    time.perf_counter() - started
                )

        return instrumented
