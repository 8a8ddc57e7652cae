"""Upstream benchmark: drain an outbox backlog over MQTT, then the publish latency under load.

    .venv/bin/python bench/upstream.py [--backlog 100000] [--rate 200] [--seconds 20]
                                       [--profile drain.txt] [--keep]
    .venv/bin/python bench/upstream.py --cluster [--backlog 20000] [--rate 200] [--outage 30]
                                       [--outage-backlog 10000]

Everything is real and local: a Mosquitto started here (the tests' ``Broker``), the
daemon as a subprocess exactly as production runs it (``python -m gateway run`` with a
TOML config whose ``[mqtt]`` points at that broker), and a central subscriber in this
process (a paho MQTT 5 client at QoS 1 that only timestamps and keeps the payloads; they
are checked after the clock stops).

1. Drain: the backlog is written straight into the outbox table (the schema of
   ``gateway/store/migrations.py``) while no daemon and no broker run, as if the link had
   been down for days. Then the broker and the subscriber start, then the daemon. Printed:
   the drain rate (events/s between the first and the last event received) and the time
   until the backlog is empty (the subscriber holds every event, and the daemon's
   ``mqtt`` cursor reaches the last one), from the MQTT connection and from the process
   start. Every event is checked: once after dedup by ``event_id``, in sequence order, no gap.
2. Steady load: vehicles enter through the API (``POST /api/v1/sessions/entry``, two
   events per new plate, committed in one transaction) at ``--rate`` events/s for
   ``--seconds``. The publish latency of each event is taken two ways: from the return of
   the API call that committed it (what the brief calls commit time; an event may even
   arrive before its HTTP response), and from its ``occurred_at`` (stamped by the service
   before the commit, so an upper bound that includes the durable commit). p50/p99/max.

``--cluster`` runs the same daemon against a 3-node NATS cluster (JetStream, MQTT 3.1.1
listener; the tests' ``NatsCluster`` on free loopback ports) with ``[mqtt] hosts`` set to
the three nodes, and the subscriber on the third node. First the ``--backlog`` is drained
on the fresh cluster (as in 1.), then:

3. Failover: entries at ``--rate`` events/s; the node the daemon is connected to (from its
   ``mqtt_connected`` log line) is killed (-9). Printed: from the death to the daemon's
   connection to another node, and to the first event acknowledged by that node (the
   first move of the daemon's durable ``mqtt`` cursor after the reconnection).
4. Outage: all three nodes killed for ``--outage`` seconds while entries go on and a
   ``--outage-backlog`` is added to the outbox (as a longer outage would leave it); then the
   cluster restarts. Printed: the drain rate (first -> last event received) and the time
   from the cluster being up to the backlog being empty. Every event is checked after both
   phases: once after dedup by ``event_id``, no gap in ``sequence``.

Targets on 2 cores: drain >= 5,000 events/s; steady p99 <= 50 ms. The three processes share
the machine's cores, so the CPU seconds each used are printed too: a busy machine shows in
them (and in the load average) rather than silently in the rate. ``--profile`` records the
daemon's stacks with py-spy during the drain (collapsed-stack text, one line per stack).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from litestar.security.jwt import Token
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.services.users import hash_password
from gateway.timeutil import iso, parse
from tests.peers import Broker, free_port

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
SITE = "bench"


# -- the central system -------------------------------------------------------------------
class Subscriber:
    """Receives the events at QoS 1 and keeps (receive time, payload); parses nothing on the way."""

    def __init__(self, port: int, protocol: str = "5") -> None:
        self.received: list[tuple[float, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-central",
            protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
            clean_session=None if protocol == "5" else False,  # 3.1.1: a persistent session
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.max_inflight_messages_set(1000)

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            client.subscribe(f"carpark/{SITE}/events/#", qos=1)

        def on_subscribe(client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
            self._subscribed.set()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            self.received.append((time.time(), message.payload))  # list.append: atomic

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise SystemExit("the subscriber could not subscribe")

    def count(self) -> int:
        return len(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- the daemon ---------------------------------------------------------------------------
@dataclass
class Daemon:
    workdir: Path
    broker_port: int
    port: int = field(default_factory=free_port)
    hosts: list[str] = field(default_factory=list)  # a cluster's nodes (MQTT 3.1.1) instead
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def config(self) -> Path:
        return self.workdir / "gateway.toml"

    @property
    def database(self) -> Path:
        return self.workdir / "bench.db"

    @property
    def log(self) -> Path:
        return self.workdir / "daemon.log"

    def write_config(self) -> None:
        self.config.write_text(
            f'[site]\nid = "{SITE}"\ndevelopment = false\n'
            f'[http]\nhost = "127.0.0.1"\nport = {self.port}\ndocs = false\n'
            f'[auth]\nsecret_key = "{SECRET}"\n'
            f'[database]\npath = "{self.database}"\n'
            + (
                f'[mqtt]\nhosts = {json.dumps(self.hosts)}\nprotocol = "3.1.1"\nkeepalive = 10\n'
                if self.hosts
                else f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\nkeepalive = 30\n'
            )
            + '[logging]\nlevel = "info"\nformat = "json"\n',
            encoding="utf-8",
        )

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("CARPARK_")}

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config), "migrate"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"migrate failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        with self.log.open("w") as log:
            self.started_at = time.time()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise SystemExit("daemon did not become ready")

    def log_time(self, event: str) -> float | None:
        """When the daemon logged ``event`` first (its JSON lines carry a UTC timestamp)."""
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == event:
                    return parse(record["timestamp"].replace("Z", "+00:00")).timestamp()
        return None

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_of(self.proc.pid)

    def cursor(self) -> int:
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT delivered_id FROM outbox_cursors WHERE channel = 'mqtt'"
            ).fetchone()
            return int(row[0]) if row else 0
        finally:
            conn.close()

    def last_sequence(self) -> int:
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0])
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def seed(database: Path, backlog: int, operator: bool = True) -> float:
    """The backlog, written as the services would have (one row per event), and an operator."""
    conn = sqlite3.connect(database, timeout=30)
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(days=2)
    with conn:
        if operator:
            conn.execute(
                "INSERT INTO users (email, password_hash, full_name, role, created_at, updated_at)"
                " VALUES ('bench@example.com', ?, 'Bench', 'operator', ?, ?)",
                [hash_password("bench-password"), iso(base), iso(base)],
            )
        conn.executemany(
            "INSERT INTO outbox (event_id, type, occurred_at, payload) VALUES (?, ?, ?, ?)",
            (
                (
                    str(uuid.uuid4()),
                    "session_started",
                    iso(base + timedelta(seconds=n)),
                    json.dumps(
                        {
                            "session_id": n,
                            "ticket_number": f"TKT-{n:012X}",
                            "vehicle_id": n,
                            "license_plate": f"BL{n:06d}",
                            "space_id": None,
                            "entry_time": iso(base + timedelta(seconds=n)),
                            "entry_gate": "entry-1",
                            "reservation_id": None,
                        }
                    ),
                )
                for n in range(1, backlog + 1)
            ),
        )
    conn.close()
    return time.perf_counter() - started


def check_delivery(payloads: list[bytes], first: int, last: int) -> tuple[int, int]:
    """Once after dedup, in order, no gap; returns (unique, duplicates)."""
    seen: set[str] = set()
    order: list[int] = []
    for payload in payloads:
        event = json.loads(payload)
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        order.append(event["sequence"])
    window = [s for s in order if first <= s <= last]
    if window != list(range(first, last + 1)):
        missing = sorted(set(range(first, last + 1)) - set(window))
        raise SystemExit(
            f"delivery check failed: {len(window)} of {last - first + 1}, missing {missing[:10]},"
            f" in order: {window == sorted(window)}"
        )
    return len(order), len(payloads) - len(order)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- phases -------------------------------------------------------------------------------
def cpu_of(pid: int) -> float:
    """user + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(
    daemon: Daemon, broker: Broker, central: Subscriber, backlog: int, profile: str | None
) -> None:
    broker_cpu, own_cpu, wall = cpu_of(broker.proc.pid), time.process_time(), time.time()
    daemon.start()
    spy = None
    if profile:  # collapsed stacks of the daemon's threads while it drains
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(daemon.proc.pid if daemon.proc else 0),
                "--format",
                "raw",
                "--threads",
                "--output",
                profile,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + max(120, backlog / 500)
    while central.count() < backlog:
        if time.monotonic() > deadline:
            raise SystemExit(f"drain stalled at {central.count()} of {backlog}")
        assert daemon.proc is not None
        if daemon.proc.poll() is not None:
            raise SystemExit(f"daemon exited:\n{daemon.log.read_text()[-3000:]}")
        time.sleep(0.01)
    received = list(central.received)
    first, last = received[0][0], received[backlog - 1][0]
    while daemon.cursor() < backlog:  # the acknowledgements recorded: the backlog is empty
        time.sleep(0.005)
    empty = time.time()
    cpu = daemon.cpu_seconds()
    broker_cpu = cpu_of(broker.proc.pid) - broker_cpu
    own_cpu = time.process_time() - own_cpu
    wall = empty - wall
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        print(f"py-spy profile of the drain (collapsed stacks): {profile}")
    connected = daemon.log_time("mqtt_connected") or first
    unique, duplicates = check_delivery([p for _, p in received], 1, backlog)
    print(f"drain: {backlog} events, checked: {unique} unique, in order, no gap, {duplicates} dup")
    print(f"drain rate: {backlog / (last - first):,.0f} events/s (first -> last event received)")
    print(
        f"backlog empty after: {empty - connected:.2f} s from the MQTT connection"
        f" ({backlog / (empty - connected):,.0f} events/s), {empty - daemon.started_at:.2f} s"
        " from the daemon's start (process start-up and migrations included)"
    )
    print(f"first event received {first - connected:.3f} s after the connection")
    print(
        f"CPU seconds over those {wall:.1f} s: daemon {cpu:.1f} (start-up included;"
        f" {backlog / cpu:,.0f} events per daemon CPU-second), broker {broker_cpu:.1f},"
        f" subscriber {own_cpu:.1f}"
    )


def steady(daemon: Daemon, central: Subscriber, rate: float, seconds: float) -> None:
    token = Token(sub="1", exp=datetime.now(UTC) + timedelta(hours=1)).encode(SECRET, "HS256")
    base = f"http://127.0.0.1:{daemon.port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    returned: dict[str, float] = {}
    api_ms: list[float] = []
    lock = threading.Lock()

    def enter(client: httpx.Client, plate: str) -> None:
        sent = time.perf_counter()
        r = client.post("/sessions/entry", json={"license_plate": plate})
        done = time.time()
        if r.status_code != 201:
            raise SystemExit(f"entry failed: {r.status_code} {r.text}")
        with lock:
            returned[plate] = done
            api_ms.append((time.perf_counter() - sent) * 1000)

    # Warm-up, and how many events an entry commits (the first one also makes a vehicle type).
    with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
        for n in range(10):
            enter(c, f"WARM{n:03d}")
        time.sleep(0.5)
        mark = central.count()
        for n in range(10, 30):
            enter(c, f"WARM{n:03d}")
        time.sleep(0.5)
    per_request = (central.count() - mark) / 20
    per_second = rate / per_request
    api_ms.clear()
    warm = len(returned)
    first_sequence = daemon.last_sequence() + 1

    mark = central.count()
    workers = 4
    interval = workers / per_second
    stop_at = time.perf_counter() + seconds
    behind = [0]

    def produce(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
            due = time.perf_counter() + worker * interval / workers
            n = 0
            while due < stop_at:
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -interval:
                    behind[0] += 1
                enter(c, f"S{worker}X{n:05d}")
                n += 1
                due += interval

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(workers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # the tail
    received = central.received[mark:]
    last_sequence = daemon.last_sequence()
    unique, duplicates = check_delivery([p for _, p in received], first_sequence, last_sequence)
    from_return: list[float] = []
    from_occurred: list[float] = []
    for at, payload in received:
        event = json.loads(payload)
        plate = event["data"].get("license_plate")
        if plate in returned:
            from_return.append((at - returned[plate]) * 1000)
            from_occurred.append((at - parse(event["occurred_at"]).timestamp()) * 1000)
    requests = len(returned) - warm
    print(
        f"steady: {requests} entries in {elapsed:.1f} s = {unique / elapsed:.0f} events/s"
        f" ({per_request:.1f} events per entry; late schedule slots: {behind[0]});"
        f" checked: {unique} events, in order, no gap, {duplicates} dup"
    )
    print(
        f"publish latency from the API call's return: p50 {statistics.median(from_return):.1f} ms,"
        f" p99 {pct(from_return, 0.99):.1f} ms, max {max(from_return):.1f} ms"
        f" ({sum(1 for v in from_return if v < 0)} of {len(from_return)} arrived before the"
        " HTTP response)"
    )
    print(
        f"publish latency from occurred_at (before the commit): p50"
        f" {statistics.median(from_occurred):.1f} ms, p99 {pct(from_occurred, 0.99):.1f} ms,"
        f" max {max(from_occurred):.1f} ms"
    )
    print(
        f"API POST /sessions/entry: p50 {statistics.median(api_ms):.1f} ms,"
        f" p99 {pct(api_ms, 0.99):.1f} ms"
    )


class Entries:
    """Vehicles entering through the API at a steady rate in a thread, until stopped."""

    def __init__(self, daemon: Daemon, rate: float, prefix: str) -> None:
        token = Token(sub="1", exp=datetime.now(UTC) + timedelta(hours=1)).encode(SECRET, "HS256")
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{daemon.port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        self.interval = 2 / rate  # two events per entry of a new plate
        self.stop = threading.Event()
        self.count = 0
        self.prefix = prefix  # new plates each phase: one still inside would be refused
        self.failure: str | None = None
        self.thread = threading.Thread(target=self.run, name="entries")
        self.thread.start()

    def run(self) -> None:
        due = time.perf_counter()
        while not self.stop.is_set():
            plate = f"{self.prefix}{self.count:06d}"
            r = self.client.post("/sessions/entry", json={"license_plate": plate})
            if r.status_code != 201:
                self.failure = f"entry failed: {r.status_code} {r.text}"
                return
            self.count += 1
            due += self.interval
            self.stop.wait(max(0.0, due - time.perf_counter()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.close()
        if self.failure:
            raise SystemExit(self.failure)


def connected_node(daemon: Daemon, after: float = 0.0) -> tuple[int, float] | None:
    """The MQTT port of the node the daemon connected to last (after ``after``), and when."""
    found = None
    for line in daemon.log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "mqtt_connected":
                at = parse(record["timestamp"].replace("Z", "+00:00")).timestamp()
                if at > after:
                    found = (int(record["port"]), at)
    return found


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def check_all(daemon: Daemon, central: Subscriber) -> tuple[int, int]:
    """Every outbox event at the central: once after dedup by event_id, no gap (any order)."""
    last = daemon.last_sequence()
    wait(
        lambda: len({json.loads(p)["sequence"] for _, p in central.received}) >= last,
        120,
        "every event at the central",
        0.2,
    )
    by_id = {}
    for _, payload in central.received:
        event = json.loads(payload)
        by_id[event["event_id"]] = event["sequence"]
    sequences = sorted(by_id.values())
    if sequences != list(range(1, last + 1)):
        raise SystemExit(f"delivery check failed: {len(sequences)} unique of {last}")
    return len(sequences), len(central.received) - len(sequences)


def cluster(args: argparse.Namespace, workdir: Path) -> None:
    from tests.nats_peer import NatsCluster

    nats = NatsCluster(workdir / "nats")
    daemon = Daemon(workdir, 0, hosts=nats.hosts())
    central: Subscriber | None = None
    entries: Entries | None = None
    try:
        daemon.write_config()
        daemon.migrate()
        seed(daemon.database, args.backlog)
        started = time.monotonic()
        nats.start(timeout=60)
        print(f"cluster: 3 nodes up in {time.monotonic() - started:.1f} s (MQTT set up on each)")
        central = Subscriber(nats.nodes[2].mqtt_port, protocol="3.1.1")
        # -- drain a backlog on the fresh cluster -------------------------------------------
        daemon.start()
        daemon.wait_ready()
        node = wait(lambda: connected_node(daemon), 30, "the daemon's connection")
        wait(lambda: daemon.cursor() >= args.backlog, 900, "the first backlog drained", 0.01)
        empty = time.time()
        times = [at for at, _ in central.received[: args.backlog]]
        print(
            f"drain on the fresh cluster: {args.backlog} events at"
            f" {(args.backlog - 1) / (times[-1] - times[0]):,.0f} events/s (first -> last"
            f" received); backlog empty {empty - node[1]:.1f} s after the connection"
        )
        # -- failover ---------------------------------------------------------------------
        entries = Entries(daemon, args.rate, "F")
        wait(lambda: central.count() > 2 * args.rate, 30, "events flowing", 0.05)
        victim = nats.node_on(node[0])
        cursor_before = daemon.cursor()
        victim.kill()
        died = time.time()
        other = wait(lambda: connected_node(daemon, died), 60, "a connection to another node")
        cursor_at = daemon.cursor()
        wait(lambda: daemon.cursor() > cursor_at, 60, "the first acknowledgement after it")
        acked = time.time()
        print(
            f"failover: node {victim.name} killed at {cursor_before} events acknowledged;"
            f" connected to another node after {other[1] - died:.3f} s, first event"
            f" acknowledged by it after {acked - died:.3f} s"
        )
        time.sleep(2)
        entries.close()
        entries = None
        unique, duplicates = check_all(daemon, central)
        print(f"failover checked: {unique} events, no gap after dedup, {duplicates} duplicates")
        victim.start()  # back for the next phase (its replicas catch up in the background)
        wait(victim.mqtt_listening, 60, f"{victim.name} listening", 0.1)
        time.sleep(3)
        # -- the whole cluster down ---------------------------------------------------------
        entries = Entries(daemon, args.rate, "O")
        time.sleep(1)
        nats.kill_all()
        down = time.monotonic()
        took = seed(daemon.database, args.outage_backlog, operator=False)
        time.sleep(max(0.0, args.outage - (time.monotonic() - down)))
        entries.close()
        entries = None
        backlog = daemon.last_sequence() - daemon.cursor()
        received_before = central.count()
        print(
            f"outage: {args.outage:.0f} s with all nodes down; {backlog} events undelivered"
            f" ({args.outage_backlog} of them added in {took:.1f} s, the rest through the API)"
        )
        restart = time.time()
        nats.start(timeout=120, healthy=False)
        up = time.time()
        last = daemon.last_sequence()
        wait(lambda: daemon.cursor() >= last, 600, "the backlog drained", 0.01)
        empty = time.time()
        unique, duplicates = check_all(daemon, central)
        after = [at for at, _ in central.received[received_before:]]
        rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else 0.0
        print(
            f"drain on the cluster: {len(after)} events received at {rate:,.0f} events/s"
            f" (first -> last); cluster up {up - restart:.1f} s after the restart began,"
            f" backlog empty {empty - up:.1f} s after the cluster was up"
            f" ({backlog / (empty - up):,.0f} events/s including the reconnection)"
        )
        print(f"outage checked: {unique} events, no gap after dedup, {duplicates} duplicates")
    finally:
        if entries is not None:
            entries.close()
        daemon.stop()
        if central is not None:
            central.close()
        nats.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the daemon during the drain")
    parser.add_argument("--cluster", action="store_true", help="failover on a 3-node NATS cluster")
    parser.add_argument("--outage", type=float, default=30.0, help="--cluster: seconds all down")
    parser.add_argument(
        "--outage-backlog", type=int, default=10_000, help="--cluster: events added in the outage"
    )
    args = parser.parse_args()
    print(
        f"cpus: {os.cpu_count()}, python {sys.version.split()[0]},"
        f" load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    if args.cluster:
        try:
            cluster(args, workdir)
        finally:
            if not args.keep:
                import shutil

                shutil.rmtree(workdir, ignore_errors=True)
        return
    (workdir / "broker").mkdir()
    broker = Broker(str(workdir / "broker"))
    daemon = Daemon(workdir, broker.port)
    central: Subscriber | None = None
    try:
        daemon.write_config()
        daemon.migrate()
        took = seed(daemon.database, args.backlog)
        print(f"backlog: {args.backlog} events written in {took:.1f} s (broker and daemon down)")
        broker.start()
        central = Subscriber(broker.port)
        drain(daemon, broker, central, args.backlog, args.profile)
        daemon.wait_ready()
        steady(daemon, central, args.rate, args.seconds)
    finally:
        daemon.stop()
        if central is not None:
            central.close()
        broker.stop()
        if args.keep:
            print(f"work directory: {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
