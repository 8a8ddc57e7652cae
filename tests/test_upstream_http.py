"""HTTP upstream: push to a failing endpoint, pull with paging and auth, retention, metrics.

The central system's push endpoint is a small ``http.server`` in a thread on a free port
that the test scripts (an error status, a dropped connection, a timeout, then 2xx); it
records what it received and, at each request, the channel's cursor in the database, so
that "the cursor moves only after a 2xx" is checked against what really happened.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import gateway.daemon
from gateway.domain.lanes import Credential
from gateway.store.outbox import append
from tests.api_kit import db_query, events_of, outbox_ids
from tests.conftest import ADMIN, ALICE, OPERATOR, ManualClock, Running, config_from, running
from tests.peers import Broker, free_port, wait_for

TOKEN = "push-token-0123456789"
SYNC_KEY = "sync-key-0123456789"
USERS = (ADMIN, OPERATOR, ALICE)
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.01},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


# -- the central system's push endpoint -------------------------------------------------------
@dataclass
class Received:
    action: str  # "ok", "timeout", "drop" or an HTTP status such as "500"
    authorization: str | None
    body: dict[str, Any]
    cursor: int  # the http channel's cursor in the database when the request arrived

    @property
    def sequences(self) -> list[int]:
        return [e["sequence"] for e in self.body["events"]]


class PushEndpoint:
    """POST handler that follows ``script`` request by request, then answers with ``mode``.

    Actions: ``ok`` (204), an HTTP status (``"500"``), ``drop`` (close the connection without
    answering), ``timeout`` (answer 200 only after the client has given up).
    """

    def __init__(self, db_path: str, *, port: int = 0, timeout_s: float = 2.0) -> None:
        self.db_path, self.timeout_s = db_path, timeout_s
        self.script: list[str] = []
        self.mode = "ok"
        self.received: list[Received] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint._lock:
                    action = endpoint.script.pop(0) if endpoint.script else endpoint.mode
                    endpoint.received.append(
                        Received(
                            action,
                            self.headers.get("Authorization"),
                            body,
                            endpoint.db_cursor(),
                        )
                    )
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "timeout":
                    time.sleep(endpoint.timeout_s + 0.5)
                status = 204 if action == "ok" else 200 if action == "timeout" else int(action)
                with contextlib.suppress(OSError):  # a timed-out client has gone
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="push-endpoint", daemon=True
        )
        self._thread.start()

    def db_cursor(self, channel: str = "http") -> int:
        return channel_cursor(self.db_path, channel)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # joins the handler threads
        self._thread.join(5)


# -- helpers ------------------------------------------------------------------------------
def channel_cursor(db_path: str, channel: str) -> int:
    found = db_query(
        db_path, "SELECT delivered_id FROM outbox_cursors WHERE channel = ?", (channel,)
    )
    return int(found[0][0]) if found else 0


def entries(gw: Running, count: int, prefix: str) -> None:
    """Vehicles entering through the API: each commit appends to the outbox."""
    with gw.client("operator@example.com") as op:
        for n in range(count):
            r = op.post("/sessions/entry", json={"license_plate": f"{prefix}{n}"})
            assert r.status_code == 201, r.text


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[PushEndpoint]:
    ep = PushEndpoint(str(tmp_path / "gateway.db"))
    yield ep
    ep.close()


@pytest.fixture
def fast_housekeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.daemon, "HOUSEKEEPING_INTERVAL", 0.05)


def push_config(tmp_path: Path, endpoint: PushEndpoint, **sections: Any) -> Any:
    http = {"url": endpoint.url, "token": TOKEN, "timeout_s": endpoint.timeout_s}
    return config_from(
        tmp_path, upstream={"http": {**http, **sections.pop("http", {})}}, **sections
    )


# -- push ---------------------------------------------------------------------------------
def test_push_survives_failures_and_delivers_everything_in_order(
    tmp_path: Path, endpoint: PushEndpoint
) -> None:
    # A timeout (the central stored the batch but answered too late), an error status, a
    # dropped connection, then success.
    endpoint.script = ["timeout", "500", "drop"]
    config = push_config(tmp_path, endpoint, http={"batch_size": 25})
    with running(config, ManualClock(), users=USERS) as gw:
        wait_for(lambda: endpoint.requests(), what="the first push")
        entries(gw, 80, "PUSH")  # while the first request hangs: a backlog builds up
        expected = outbox_ids(gw)
        assert len(expected) >= 80
        wait_for(
            lambda: endpoint.db_cursor() == expected[-1], timeout=30, what="the cursor at the end"
        )
        received = endpoint.requests()
        assert [r.action for r in received[:4]] == ["timeout", "500", "drop", "ok"]

        # The bearer token from config, every time; the site in the body.
        assert {r.authorization for r in received} == {f"Bearer {TOKEN}"}
        assert {r.body["site_id"] for r in received} == {"test-site"}

        # Batches: consecutive sequences, never more than batch_size, full while backlogged.
        for r in received:
            seqs = r.sequences
            assert 1 <= len(seqs) <= 25
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert any(len(r.sequences) == 25 for r in received)

        # The cursor moved only over batches answered with a 2xx: at every request it is
        # the end of the last accepted batch, and failed batches are sent again from there.
        acknowledged = 0
        for r in received:
            assert r.cursor == acknowledged, (r.action, r.cursor, acknowledged)
            assert r.sequences[0] == acknowledged + 1
            if r.action == "ok":
                acknowledged = r.sequences[-1]
        assert endpoint.db_cursor() == acknowledged == expected[-1]

        # What the central system stored (it may have kept what it answered late or never):
        # after dedup by event id, every event exactly once, in sequence order, no gap.
        stored = [
            e for r in received if r.action in ("ok", "timeout", "drop") for e in r.body["events"]
        ]
        seen: dict[str, dict[str, Any]] = {}
        for event in stored:
            seen.setdefault(event["event_id"], event)
        order = [e["sequence"] for e in seen.values()]
        assert order == expected
        assert len({e["event_id"] for e in seen.values()}) == len(expected)
        started = next(e for e in seen.values() if e["type"] == "session_started")
        assert set(started) == {"event_id", "sequence", "type", "occurred_at", "site_id", "data"}
        assert started["data"]["license_plate"].startswith("PUSH")

        # With the link healthy, a later event goes out on its own, accepted at once.
        before = len(received)
        entries(gw, 1, "LATE")
        wait_for(lambda: endpoint.db_cursor() == outbox_ids(gw)[-1], what="the late event")
        assert all(r.action == "ok" for r in endpoint.requests()[before:])


def test_push_cursor_stays_while_the_endpoint_refuses(
    tmp_path: Path, endpoint: PushEndpoint
) -> None:
    endpoint.mode = "503"
    with running(push_config(tmp_path, endpoint), ManualClock(), users=USERS) as gw:
        entries(gw, 5, "DOWN")
        wait_for(lambda: len(endpoint.requests()) >= 3, timeout=15, what="retries")
        assert channel_cursor(gw.daemon.config.database.path, "http") == 0
        assert {r.sequences[0] for r in endpoint.requests()} == {1}  # always from the start


def test_push_to_a_closed_port_retries_until_it_opens(tmp_path: Path) -> None:
    port = free_port()
    config = config_from(
        tmp_path,
        upstream={"http": {"url": f"http://127.0.0.1:{port}/ingest", "token": TOKEN}},
    )
    with running(config, ManualClock(), users=USERS) as gw:
        entries(gw, 3, "REFUSED")
        time.sleep(1.0)
        assert channel_cursor(gw.daemon.config.database.path, "http") == 0
        # The central system comes up on that port.
        ep = PushEndpoint(str(tmp_path / "gateway.db"), port=port)
        try:
            wait_for(lambda: ep.db_cursor() == outbox_ids(gw)[-1], timeout=30, what="delivered")
            assert [e for r in ep.requests() for e in r.sequences] == outbox_ids(gw)
        finally:
            ep.close()


# -- pull ---------------------------------------------------------------------------------
@pytest.fixture
def sync_gw(tmp_path: Path) -> Iterator[Running]:
    with running(
        config_from(tmp_path, sync={"api_key": SYNC_KEY}), ManualClock(), users=USERS
    ) as gw:
        yield gw


def test_pull_pages_through_the_whole_outbox(sync_gw: Running) -> None:
    now = sync_gw.clock.now()

    def many(db: Any) -> None:
        for n in range(300):
            append(db, "test_event", {"n": n}, now)

    sync_gw.store.write_sync(many)
    entries(sync_gw, 5, "PULL")
    expected = outbox_ids(sync_gw)
    assert len(expected) > 300
    pulled: list[dict[str, Any]] = []
    pages = 0
    after = 0
    with httpx.Client(base_url=sync_gw.base_url + "/api/v1") as c:
        while True:
            r = c.get(
                "/sync/events",
                params={"after": after, "limit": 37},
                headers={"X-Sync-Key": SYNC_KEY},
            )
            assert r.status_code == 200, r.text
            page = r.json()
            pages += 1
            assert page["site_id"] == "test-site"
            assert len(page["events"]) <= 37
            if page["events"]:
                assert page["next"] == page["events"][-1]["sequence"]
                assert page["events"][0]["sequence"] > after
            else:
                assert page["next"] == after
            pulled.extend(page["events"])
            after = page["next"]
            if not page["has_more"]:
                break
        assert pages == -(-len(expected) // 37)  # no empty page at the end
        assert [e["sequence"] for e in pulled] == expected
        assert len({e["event_id"] for e in pulled}) == len(expected)
        assert [e["data"]["n"] for e in pulled if e["type"] == "test_event"] == list(range(300))

        # Exactly `limit` left: no more; past the end: an empty page that keeps the cursor.
        r = c.get(
            "/sync/events",
            params={"after": expected[-11], "limit": 10},
            headers={"X-Sync-Key": SYNC_KEY},
        ).json()
        assert [e["sequence"] for e in r["events"]] == expected[-10:] and r["has_more"] is False
        r = c.get(
            "/sync/events", params={"after": expected[-1]}, headers={"X-Sync-Key": SYNC_KEY}
        ).json()
        assert r == {"site_id": "test-site", "events": [], "next": expected[-1], "has_more": False}
        # Defaults: from the start, 500 at most.
        r = c.get("/sync/events", headers={"X-Sync-Key": SYNC_KEY}).json()
        assert r["events"][0]["sequence"] == expected[0] and r["has_more"] is False


@pytest.mark.parametrize(
    ("who", "headers", "status"),
    [
        ("key", {"X-Sync-Key": SYNC_KEY}, 200),
        ("wrong key", {"X-Sync-Key": "nope"}, 401),
        ("empty key", {"X-Sync-Key": ""}, 401),
        ("nobody", {}, 401),
        ("garbage token", {"Authorization": "Bearer not-a-jwt"}, 401),
        ("basic auth", {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="}, 401),
        ("admin@example.com", None, 200),
        ("operator@example.com", None, 403),
        ("alice@example.com", None, 403),
    ],
)
def test_pull_auth(sync_gw: Running, who: str, headers: dict[str, str] | None, status: int) -> None:
    if headers is None:
        headers = {"Authorization": f"Bearer {sync_gw.tokens[who]}"}
    with httpx.Client(base_url=sync_gw.base_url + "/api/v1") as c:
        r = c.get("/sync/events", params={"after": 0, "limit": 5}, headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["events"]
    else:
        assert "events" not in r.json()


def test_pull_without_a_configured_key_refuses_every_key(tmp_path: Path) -> None:
    with running(config_from(tmp_path), ManualClock(), users=USERS) as gw:
        with httpx.Client(base_url=gw.base_url + "/api/v1") as c:
            assert c.get("/sync/events", headers={"X-Sync-Key": ""}).status_code == 401
            assert c.get("/sync/events", headers={"X-Sync-Key": "x"}).status_code == 401
        with gw.client("admin@example.com") as admin:
            assert admin.get("/sync/events").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        "after=-1",
        "limit=0",
        "limit=-5",
        "limit=99999",
        "limit=5001",
        "after=abc",
        "limit=abc",
        "after=",
        "after=1.5",
        "after=99999999999999999999999",
        "limit=99999999999999999999999",
    ],
)
def test_pull_bad_query_is_400(sync_gw: Running, params: str) -> None:
    for headers in ({"X-Sync-Key": SYNC_KEY}, {"X-Sync-Key": "nope"}, {}):
        r = httpx.get(f"{sync_gw.base_url}/api/v1/sync/events?{params}", headers=headers)
        assert r.status_code in (400, 401), r.text  # never a 500
        if headers.get("X-Sync-Key") == SYNC_KEY:
            assert r.status_code == 400, r.text
            assert "detail" in r.json()


def test_pull_largest_cursor_is_an_empty_page(sync_gw: Running) -> None:
    r = httpx.get(
        f"{sync_gw.base_url}/api/v1/sync/events",
        params={"after": 2**63 - 1, "limit": 5000},
        headers={"X-Sync-Key": SYNC_KEY},
    )
    assert r.status_code == 200 and r.json()["events"] == []


# -- retention and the backlog alarm ------------------------------------------------------
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_retention_prunes_what_every_channel_delivered(
    tmp_path: Path, endpoint: PushEndpoint, fast_housekeeping: None
) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(str(tmp_path / "broker"))  # not started: the MQTT channel is down
    config = push_config(
        tmp_path,
        endpoint,
        mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive": 5},
        sync={"retention_days": 1},
    )
    clock = ManualClock(T0)
    db = str(tmp_path / "gateway.db")
    try:
        with running(config, clock, users=USERS) as gw:
            entries(gw, 10, "A")
            a = outbox_ids(gw)
            wait_for(lambda: channel_cursor(db, "http") == a[-1], what="A pushed over HTTP")

            # Delivered over HTTP and two days old, but MQTT has delivered nothing: kept.
            clock.advance(days=2)
            time.sleep(0.5)
            assert outbox_ids(gw) == a

            # B: produced with HTTP down, then delivered over MQTT only.
            endpoint.mode = "500"
            entries(gw, 5, "B")
            b = [i for i in outbox_ids(gw) if i > a[-1]]
            broker.start()
            wait_for(lambda: channel_cursor(db, "mqtt") == b[-1], timeout=30, what="A+B over MQTT")
            assert channel_cursor(db, "http") == a[-1]

            # Two more days: A (delivered everywhere, old) goes; B (old, undelivered on HTTP)
            # stays, however old.
            clock.advance(days=2)
            wait_for(lambda: outbox_ids(gw)[0] > a[-1], what="A pruned")
            assert outbox_ids(gw) == b
            clock.advance(days=30)
            time.sleep(0.3)
            assert outbox_ids(gw) == b

            # HTTP back: B is delivered everywhere and pruned; C, delivered but young, stays.
            endpoint.mode = "ok"
            wait_for(
                lambda: channel_cursor(db, "http") == b[-1], timeout=60, what="B pushed over HTTP"
            )
            entries(gw, 3, "C")
            c = [i for i in outbox_ids(gw) if i > b[-1]]
            wait_for(
                lambda: min(channel_cursor(db, ch) for ch in ("http", "mqtt")) == c[-1],
                timeout=30,
                what="C delivered on both channels",
            )
            wait_for(lambda: outbox_ids(gw) == c, what="B pruned, C kept")
            time.sleep(0.3)
            assert outbox_ids(gw) == c
            # Sequences never restart after a prune (the central system orders by them).
            assert c[0] > b[-1]
    finally:
        broker.kill()


def test_nothing_is_pruned_while_nothing_was_delivered(
    tmp_path: Path, fast_housekeeping: None
) -> None:
    config = config_from(
        tmp_path,
        mqtt={"host": "127.0.0.1", "port": free_port(), "keepalive": 5},
        upstream={"http": {"url": f"http://127.0.0.1:{free_port()}/ingest"}},
        sync={"retention_days": 0},
    )
    clock = ManualClock(T0)
    with running(config, clock, users=USERS) as gw:
        entries(gw, 5, "KEEP")
        before = outbox_ids(gw)
        clock.advance(days=365)
        time.sleep(0.6)  # a dozen housekeeping rounds
        assert outbox_ids(gw) == before


def test_nothing_is_pruned_without_a_push_channel(tmp_path: Path, fast_housekeeping: None) -> None:
    # HTTP pull only: the outbox is the central system's only source; nothing counts as delivered.
    clock = ManualClock(T0)
    with running(config_from(tmp_path, sync={"retention_days": 0}), clock, users=USERS) as gw:
        entries(gw, 3, "PULLONLY")
        before = outbox_ids(gw)
        clock.advance(days=365)
        time.sleep(0.5)
        assert outbox_ids(gw) == before


def test_backlog_alarm_once_per_crossing_and_traffic_goes_on(
    tmp_path: Path, endpoint: PushEndpoint, fast_housekeeping: None
) -> None:
    endpoint.mode = "500"
    config = push_config(tmp_path, endpoint, sync={"backlog_alarm": 20})
    with running(config, ManualClock(T0), users=USERS) as gw:
        entries(gw, 25, "JAM")
        alarm = wait_for(lambda: events_of(gw, "outbox_backlog_alarm"), what="the alarm")
        assert alarm[0]["threshold"] == 20 and alarm[0]["undelivered"] > 20
        # The site keeps working, and the alarm is not repeated while the backlog stays high.
        entries(gw, 10, "STILL")
        assert httpx.get(gw.base_url + "/health").json()["status"] == "ok"
        time.sleep(0.5)
        assert len(events_of(gw, "outbox_backlog_alarm")) == 1

        # The central system comes back: the backlog drains (the alarm event with it) ...
        endpoint.mode = "ok"
        wait_for(lambda: endpoint.db_cursor() == outbox_ids(gw)[-1], timeout=60, what="drained")
        time.sleep(0.3)  # housekeeping sees the backlog under the threshold
        assert len(events_of(gw, "outbox_backlog_alarm")) == 1
        # ... and a new crossing raises a new alarm.
        endpoint.mode = "500"
        entries(gw, 25, "AGAIN")
        wait_for(lambda: len(events_of(gw, "outbox_backlog_alarm")) == 2, what="second alarm")
        time.sleep(0.3)
        assert len(events_of(gw, "outbox_backlog_alarm")) == 2


# -- metrics ------------------------------------------------------------------------------
def scrape(gw: Running) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = httpx.get(gw.base_url + "/metrics")  # no authentication
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The value of a sample; 0 when the labelled series does not exist yet."""
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics(tmp_path: Path, endpoint: PushEndpoint) -> None:
    endpoint.mode = "500"
    config = push_config(tmp_path, endpoint, lanes=[{"id": "exit-1", "kind": "exit", **SIM}])
    with running(config, ManualClock(), users=USERS) as gw:
        entries(gw, 3, "METRIC")
        total = len(outbox_ids(gw))
        time.sleep(0.3)
        m = scrape(gw)
        assert sample(m, "carpark_outbox_depth", channel="http") == total
        assert sample(m, "carpark_outbox_oldest_undelivered_seconds", channel="http") > 0
        assert sample(m, "carpark_outbox_events") == total
        assert sample(m, "carpark_events_published_total", channel="http") == 0
        assert sample(m, "carpark_upstream_reconnects_total", channel="http") == 1
        # Only the configured channels are reported.
        assert sample(m, "carpark_outbox_depth", channel="mqtt") == 0
        assert not any(k[0] == "carpark_outbox_depth" and ("channel", "mqtt") in k[1] for k in m)

        endpoint.mode = "ok"
        wait_for(lambda: endpoint.db_cursor() == outbox_ids(gw)[-1], timeout=30, what="pushed")
        m = scrape(gw)
        assert sample(m, "carpark_outbox_depth", channel="http") == 0
        assert sample(m, "carpark_outbox_oldest_undelivered_seconds", channel="http") == 0
        assert sample(m, "carpark_events_published_total", channel="http") == total

        # A lane decision: a plate presented at the idle exit lane (no session: refused).
        assert gw.daemon.lanes is not None
        wait_for(
            lambda: gw.daemon.lanes.get("exit-1").state.position == "closed", what="lane ready"
        )
        gw.call(gw.daemon.lanes.present, "exit-1", Credential(kind="plate", value="NOSUCH1"))

        def decisions() -> float:
            return sum(
                v
                for (name, labels), v in scrape(gw).items()
                if name == "carpark_lane_decisions_total" and ("lane", "exit-1") in labels
            )

        wait_for(lambda: decisions() == 1, what="a decision counted")
        m = scrape(gw)
        decided = [
            dict(labels)
            for (name, labels), v in m.items()
            if name == "carpark_lane_decisions_total" and v == 1
        ]
        assert decided == [{"lane": "exit-1", "allowed": "false", "reason": decided[0]["reason"]}]

        # API durations by route template (never the raw path, whose ids would explode the series).
        route = "/api/v1/sessions/entry"
        count = sample(
            m,
            "carpark_api_request_duration_seconds_count",
            method="POST",
            route=route,
            status="201",
        )
        assert count == 3
        inf = sample(
            m,
            "carpark_api_request_duration_seconds_bucket",
            method="POST",
            route=route,
            status="201",
            le="+Inf",
        )
        assert inf == count
        entries(gw, 2, "MORE")
        with gw.client("operator@example.com") as op:
            assert op.get("/lanes/exit-1").status_code == 200
            assert op.get("/lanes/nope").status_code == 404
        m = scrape(gw)
        assert (
            sample(
                m,
                "carpark_api_request_duration_seconds_count",
                method="POST",
                route=route,
                status="201",
            )
            == 5
        )
        templated = "/api/v1/lanes/{lane_id}"
        assert (
            sample(
                m,
                "carpark_api_request_duration_seconds_bucket",
                method="GET",
                route=templated,
                status="200",
                le="+Inf",
            )
            == 1
        )
        assert (
            sample(
                m,
                "carpark_api_request_duration_seconds_count",
                method="GET",
                route=templated,
                status="404",
            )
            == 1
        )
        routes = {
            dict(labels)["route"]
            for (name, labels) in m
            if name == "carpark_api_request_duration_seconds_count"
        }
        assert not any("exit-1" in r or "nope" in r for r in routes), routes
        assert (
            sample(
                m,
                "carpark_api_request_duration_seconds_count",
                method="GET",
                route="/metrics",
                status="200",
            )
            >= 1
        )


def test_metrics_mqtt_published_and_reconnects(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(str(tmp_path / "broker")).start()
    config = config_from(tmp_path, mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive": 5})
    db = str(tmp_path / "gateway.db")
    try:
        with running(config, ManualClock(), users=USERS) as gw:
            entries(gw, 3, "MQTT")
            wait_for(lambda: channel_cursor(db, "mqtt") == outbox_ids(gw)[-1], what="published")
            m = scrape(gw)
            assert sample(m, "carpark_upstream_reconnects_total", channel="mqtt") == 1
            assert sample(m, "carpark_events_published_total", channel="mqtt") == len(
                outbox_ids(gw)
            )
            assert sample(m, "carpark_outbox_depth", channel="mqtt") == 0

            broker.kill()
            entries(gw, 2, "OUTAGE")
            time.sleep(0.5)
            m = scrape(gw)
            assert sample(m, "carpark_outbox_depth", channel="mqtt") >= 2
            broker.start()
            wait_for(
                lambda: (
                    sample(scrape(gw), "carpark_upstream_reconnects_total", channel="mqtt") == 2
                ),
                timeout=30,
                what="reconnected",
            )
            wait_for(lambda: channel_cursor(db, "mqtt") == outbox_ids(gw)[-1], what="caught up")
            m = scrape(gw)
            assert sample(m, "carpark_outbox_depth", channel="mqtt") == 0
            assert sample(m, "carpark_events_published_total", channel="mqtt") >= len(
                outbox_ids(gw)
            )
    finally:
        broker.kill()
