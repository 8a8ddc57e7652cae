"""Upstream over a clustered broker: three NATS servers (JetStream, MQTT listener).

The gateway is configured with the three nodes (``[mqtt] hosts``) and MQTT 3.1.1, the
only version NATS speaks; the central system is a persistent-session QoS 1 subscriber on
another node than the gateway's. The node the gateway is connected to is killed (-9) in
the middle of a burst, and in the other test the whole cluster is down for 30 s; either
way the central receives every event, with no gap in ``sequence`` after dedup by
``event_id``. (Order of first arrival is not asserted across a failover: a resend may
follow an event the dead node had already forwarded. The central orders by ``sequence``.)

The cluster is started per test on free loopback ports (never the machine's own NATS on
4222). The 30 s outage test mostly waits, so it costs one xdist worker, not the suite.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.nats_peer import NatsCluster
from tests.peers import Central, wait_for

PREFIX = "carpark/test-site"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    # Generous: a fresh cluster sets JetStream and MQTT up in seconds, more on a loaded machine.
    c = NatsCluster(tmp_path / "nats")
    try:
        yield c.start(timeout=90)
    finally:
        c.close()  # also when it never became ready: no node outlives the test


@contextmanager
def gateway(tmp_path: Path, hosts: list[str]) -> Iterator[Running]:
    config = config_from(
        tmp_path,
        mqtt={"hosts": hosts, "protocol": "3.1.1", "keepalive": 5},
    )
    clock = ManualClock()
    daemon, thread = start_daemon(config, clock)
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    gw.user("operator@example.com", "operator")
    try:
        yield gw
    finally:
        daemon.request_stop()
        thread.join(15)


def central_on(cluster: NatsCluster, index: int) -> Central:
    c = Central(cluster.nodes[index].mqtt_port, f"{PREFIX}/events/#", protocol="3.1.1")
    wait_for(lambda: c.client.is_connected(), timeout=10, what="central connected")
    time.sleep(0.5)  # the SUBACK: the session's consumer exists before events flow
    return c


def subscribed(cluster: NatsCluster, index: int, topic: str, client_id: str) -> Central:
    """A client whose subscription the node accepted. After a node loss NATS refuses new
    QoS 1 subscriptions (SUBACK 0x80) until JetStream can create their consumers again;
    the gateway reconnects on such a refusal too (its bridge), a test client retries."""
    deadline = time.monotonic() + 60
    while True:
        c = Central(cluster.nodes[index].mqtt_port, topic, client_id, "3.1.1")
        with contextlib.suppress(AssertionError):
            wait_for(lambda c=c: c.suback is not None, timeout=15, what="SUBACK")
        if c.suback and not any(code.is_failure for code in c.suback):
            return c
        c.close()
        assert time.monotonic() < deadline, "no subscription accepted in 60 s"
        time.sleep(1)


def outbox_sequences(gw: Running) -> list[int]:
    reader = gw.store.reader
    return [r[0] for r in reader.execute("SELECT id FROM outbox ORDER BY id").fetchall()]


def assert_every_event(central: Central, gw: Running, timeout: float) -> dict[str, Any]:
    """Every outbox event at the central once after dedup by event_id, no gap in sequence."""
    expected = set(outbox_sequences(gw))

    def complete() -> bool:
        return {e["sequence"] for e in central.events()} >= expected

    wait_for(complete, timeout=timeout, interval=0.2, what=f"{len(expected)} events at central")
    unique = {e["event_id"]: e for e in central.events()}
    sequences = sorted(e["sequence"] for e in unique.values())
    assert sequences == list(range(1, max(sequences) + 1)), "a gap in the sequence"
    assert len(sequences) == len(set(sequences)), "two event_ids for one sequence"
    assert set(sequences) == expected
    return unique


def entries(gw: Running, count: int, prefix: str, pause: float = 0.0) -> None:
    with gw.client("operator@example.com") as op:
        for n in range(count):
            r = op.post("/sessions/entry", json={"license_plate": f"{prefix}{n}"})
            assert r.status_code == 201, r.text
            if pause:
                time.sleep(pause)


def test_node_killed_mid_burst_fails_over_to_another_node(
    tmp_path: Path, cluster: NatsCluster
) -> None:
    central = central_on(cluster, 2)
    try:
        # The gateway starts on node 1; node 3 is the central's.
        with gateway(tmp_path, cluster.hosts()) as gw:
            bridge = gw.daemon.mqtt
            assert bridge is not None
            wait_for(lambda: bridge.connected, timeout=10, what="gateway connected")
            first = bridge.host
            assert first == cluster.hosts()[0]
            done = threading.Event()

            def produce() -> None:
                entries(gw, 300, "FAIL", pause=0.005)  # a steady ~150 entries/s at most
                done.set()

            worker = threading.Thread(target=produce)
            worker.start()
            wait_for(lambda: len(central.events()) > 150, timeout=30, what="events flowing")
            cluster.node_on(int(first.rsplit(":", 1)[1])).kill()
            killed_at = time.monotonic()
            wait_for(
                lambda: bridge.connected and bridge.host not in (None, first),
                timeout=40,
                what="failover to another node",
            )
            failover_s = time.monotonic() - killed_at
            worker.join(60)
            assert done.is_set()
            unique = assert_every_event(central, gw, timeout=60)
            assert sum(e["type"] == "session_started" for e in unique.values()) == 300
            # Bounded by JetStream, not the bridge: when the dead node led the MQTT streams,
            # the others elect new leaders first (nats-server 2.9: 4-9 s raft elections).
            assert failover_s < 25, f"failover took {failover_s:.1f} s"
            # Commands over 3.1.1 on the new node: the result on cmd/<name>/result only.
            results = subscribed(cluster, 2, f"{PREFIX}/cmd/#", "central-cmd")
            try:
                body = {"request_id": "n-1", "name": "NATS plan", "duration_months": 1, "price": 0}
                results.publish(f"{PREFIX}/cmd/upsert_plan", json.dumps(body))
                reply = wait_for(
                    lambda: results.on(f"{PREFIX}/cmd/upsert_plan/result"),
                    timeout=10,
                    what="command result",
                )
                assert json.loads(reply[0][1])["status"] == "ok"
            finally:
                results.close()
    finally:
        central.close()


def test_whole_cluster_down_for_30_s_loses_nothing(tmp_path: Path, cluster: NatsCluster) -> None:
    central = central_on(cluster, 1)
    try:
        with gateway(tmp_path, cluster.hosts()) as gw:
            bridge = gw.daemon.mqtt
            assert bridge is not None
            entries(gw, 20, "BEFORE")
            wait_for(lambda: len(central.events()) >= 40, timeout=20, what="first events")
            cluster.kill_all()
            down_at = time.monotonic()
            wait_for(lambda: not bridge.connected, timeout=10, what="gateway sees the outage")
            entries(gw, 200, "DOWN")  # committed while no node is up
            time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
            assert not bridge.connected
            cluster.start(timeout=90, healthy=False)
            unique = assert_every_event(central, gw, timeout=90)
            plates = [
                e["data"]["license_plate"]
                for e in unique.values()
                if e["type"] == "session_started"
            ]
            assert sum(p.startswith("DOWN") for p in plates) == 200
            # The retained status is back to online on the restarted cluster.
            late = Central(cluster.nodes[2].mqtt_port, f"{PREFIX}/status", "late", "3.1.1")
            try:
                wait_for(
                    lambda: any(m[1] == b"online" and m[2] for m in late.on(f"{PREFIX}/status")),
                    timeout=10,
                    what="retained online",
                )
            finally:
                late.close()
    finally:
        central.close()


@pytest.mark.parametrize(
    ("mqtt", "endpoints"),
    [
        ({"host": "broker", "port": 1884}, [("broker", 1884)]),
        (
            {"hosts": ["a:1883", "b", "[::1]:8883"], "port": 1999},
            [("a", 1883), ("b", 1999), ("::1", 8883)],
        ),
        ({"hosts": "a:1, b:2"}, [("a", 1), ("b", 2)]),  # as CARPARK_MQTT_HOSTS gives it
    ],
)
def test_mqtt_hosts_config(tmp_path: Path, mqtt: dict[str, Any], endpoints: list[Any]) -> None:
    assert config_from(tmp_path, mqtt=mqtt).mqtt.endpoints == endpoints


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"host": "a", "hosts": ["b:1"]}, "not both"),
        ({"hosts": ["a:x"]}, "'a:x' is not host:port"),
        ({"hosts": ["a:70000"]}, "no valid TCP port"),
        ({"hosts": [":1883"]}, "is not host:port"),
        ({"host": "a", "protocol": "4"}, 'mqtt.protocol must be "5" or "3.1.1"'),
        ({"host": "a", "protocol": 5}, "mqtt.protocol: expected str"),
    ],
)
def test_bad_mqtt_hosts_config_is_named(tmp_path: Path, mqtt: dict[str, Any], message: str) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from(tmp_path, mqtt=mqtt)


def test_reconnect_delay_fails_over_fast_then_backs_off_with_jitter() -> None:
    from gateway.upstream.mqtt import reconnect_delay

    first_round = [reconnect_delay(n, 3) for n in (1, 2, 3) for _ in range(200)]
    assert all(0.05 <= d <= 0.3 for d in first_round)
    later = [reconnect_delay(30, 3) for _ in range(500)]
    assert all(0.2 <= d <= 0.2 + 1.5**8 / 3 for d in later)
    assert max(later) > 3 and len({round(d, 3) for d in later}) > 100  # spread, not in step
    assert max(reconnect_delay(1000, 3) for _ in range(500)) <= 0.2 + 1.5**8 / 3
