"""API benchmark: the real daemon in a subprocess, loaded by separate client processes.

    .venv/bin/python bench/api.py [--duration 10] [--concurrency 32] [--processes 2]

Set-up, on a fresh database in a temporary directory:

* an admin and an operator made with ``carpark-gateway user create`` (as an installer does);
* the daemon started with ``python -m gateway --config FILE run`` (development = false, a
  real secret, logging at warning level);
* through the API: a $5/h rate (15 min grace), 4 levels x 5 zones x 50 = 1,000 spaces, and
  ``--active`` vehicles inside (entered up to 5 h ago, a third of them already paid);
* straight into SQLite (one transaction, the schema of gateway/store/migrations.py):
  10,000 past stays of 4,000 vehicles over 60 days, completed and paid, with the outbox
  events the services would have written.

Then two measurements of ``--duration`` seconds each (after ``--warmup``), with
``--concurrency`` keep-alive connections spread over ``--processes`` load-generator
processes, so that the client does not share the server's event loop or interpreter:

a. ``POST /payments/validate-exit`` on random active tickets (the exit kiosk's question);
b. the full cycle of a visit: entry -> calculate-fee -> pay -> exit (the exit must be 200).

The load generator speaks HTTP/1.1 over asyncio streams by default (``--client raw``): it
costs a few tens of microseconds per request, so nearly all of the machine's CPU that the
server can use is left to it. ``--client httpx`` uses httpx.AsyncClient instead, which is
several times more expensive per request and on a 2-core box measures the client too.

``--py-spy PREFIX`` records the server with py-spy during each phase (``PREFIX.<phase>.txt``,
collapsed stacks) and prints its top functions; py-spy is a one-off ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.timeutil import iso

ROOT = Path(__file__).resolve().parent.parent

SECRET = "bench-" + "0123456789abcdef" * 4
ADMIN = ("admin@bench.example", "bench-admin-password")
OPERATOR = ("operator@bench.example", "bench-operator-password")
HOURLY = 5  # dollars per started hour
GRACE_MINUTES = 15
LEVELS, ZONES_PER_LEVEL, SPACES_PER_ZONE = 4, 5, 50
PAST_STAYS, PAST_VEHICLES, PAST_DAYS = 10_000, 4_000, 60


# -- the daemon -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    workdir: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "gateway.toml"

    @property
    def database(self) -> Path:
        return self.workdir / "bench.db"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARPARK_")}
        env |= {
            "CARPARK_SECRET_KEY": SECRET,
            "CARPARK_DB": str(self.database),
            "CARPARK_HTTP_PORT": str(self.port),
        }
        return env

    def write_config(self) -> None:
        self.config.write_text(
            '[site]\nid = "bench"\ndevelopment = false\n'
            '[http]\nhost = "127.0.0.1"\ndocs = false\n'
            '[logging]\nlevel = "warning"\nformat = "json"\n',
            encoding="utf-8",
        )

    def cli(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "gateway", "--config", str(self.config), *args]
        done = subprocess.run(
            cmd, env=self.env(), cwd=self.workdir, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        log = (self.workdir / "daemon.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
            env=self.env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited:\n{(self.workdir / 'daemon.log').read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise SystemExit("daemon did not become ready")

    def cpu_seconds(self) -> float:
        """user + system CPU time of the daemon so far (all its threads)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- data -------------------------------------------------------------------------------


def login(client: httpx.Client, email: str, password: str) -> str:
    r = client.post("/auth/login", data={"username": email, "password": password})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    if r.status_code != status:
        raise SystemExit(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}")
    body: dict[str, Any] = r.json()
    return body


def build_site(
    api: httpx.Client, admin: dict[str, str], operator: dict[str, str], active: int
) -> list[str]:
    """Rate, structure and the vehicles now inside, through the API; returns their tickets."""
    _ok(
        api.post(
            "/rates",
            headers=admin,
            json={
                "name": "Standard hourly",
                "rate_type": "hourly",
                "amount": HOURLY,
                "grace_period_minutes": GRACE_MINUTES,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
    )
    zones = []
    for level_no in range(LEVELS):
        level = _ok(
            api.post(
                "/levels",
                headers=admin,
                json={"name": f"Level {level_no}", "floor_number": level_no},
            )
        )
        for zone_no in range(ZONES_PER_LEVEL):
            zone = _ok(
                api.post(
                    "/zones",
                    headers=admin,
                    json={"level_id": level["id"], "name": f"Zone {level_no}{chr(65 + zone_no)}"},
                )
            )
            zones.append(zone["id"])
    kinds = ["standard"] * 40 + ["compact"] * 6 + ["ev_charging"] * 2 + ["motorcycle"] * 2
    spaces = [
        {"zone_id": z, "space_number": f"{z}-{n:03d}", "space_type": kind}
        for z in zones
        for n, kind in enumerate(kinds[:SPACES_PER_ZONE])
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: _ok(api.post("/spaces", headers=admin, json=s)), spaces))

    now = datetime.now(UTC)

    def enter(n: int) -> str:
        entered = now - timedelta(minutes=random.randint(20, 300))
        body = _ok(
            api.post(
                "/sessions/entry",
                headers=operator,
                json={"license_plate": f"IN{n:05d}", "entry_time": entered.isoformat()},
            )
        )
        if n % 3 == 0:
            sid = body["session"]["id"]
            fee = _ok(api.get(f"/sessions/{sid}/calculate-fee"), 200)
            _ok(
                api.post(
                    "/payments",
                    headers=operator,
                    json={"session_id": sid, "payment_method": "card", "amount": fee["total"]},
                )
            )
        return str(body["ticket_number"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(enter, range(active)))


def load_history(path: Path) -> None:
    """10,000 completed, paid stays, as the services would have left them, in one transaction."""
    rng = random.Random(7)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("BEGIN IMMEDIATE")
    type_id = db.execute("SELECT id FROM vehicle_types WHERE name = 'Car'").fetchone()[0]
    space_ids = [r[0] for r in db.execute("SELECT id FROM spaces")]
    now = datetime.now(UTC) - timedelta(days=1)
    first_seen = iso(now - timedelta(days=PAST_DAYS + 1))
    vehicle_ids: list[int] = []
    for n in range(PAST_VEHICLES):
        cur = db.execute(
            "INSERT INTO vehicles (license_plate, vehicle_type_id, user_id, is_ev, created_at, updated_at)"
            " VALUES (?, ?, NULL, 0, ?, ?)",
            [f"PAST{n:05d}", type_id, first_seen, first_seen],
        )
        vehicle_ids.append(int(cur.lastrowid or 0))
    # Stays of one vehicle never overlap: each vehicle's stays are laid end to end in time.
    per_vehicle: dict[int, datetime] = {v: now - timedelta(days=PAST_DAYS) for v in vehicle_ids}
    stays = []
    for _ in range(PAST_STAYS):
        vehicle = rng.choice(vehicle_ids)
        entry = per_vehicle[vehicle] + timedelta(minutes=rng.randint(30, 8 * 60))
        minutes = rng.randint(5, 6 * 60)
        leave = entry + timedelta(minutes=minutes, seconds=rng.randint(0, 59))
        per_vehicle[vehicle] = leave
        stays.append((entry, leave, minutes, vehicle))
    stays.sort()
    tickets: set[str] = set()
    events: list[tuple[str, str, str, str]] = []
    for entry, leave, minutes, vehicle in stays:
        ticket = _unique("TKT-", tickets)
        space = rng.choice(space_ids)
        cur = db.execute(
            "INSERT INTO sessions (vehicle_id, space_id, reservation_id, ticket_number, status, entry_time,"
            " exit_time, entry_gate, exit_gate, created_at, updated_at)"
            " VALUES (?, ?, NULL, ?, 'completed', ?, ?, 'North', 'South', ?, ?)",
            [vehicle, space, ticket, iso(entry), iso(leave), iso(entry), iso(leave)],
        )
        sid = cur.lastrowid
        fee = 0 if minutes <= GRACE_MINUTES else math.ceil(minutes / 60) * HOURLY
        paid_at = leave - timedelta(minutes=3)
        events.append(
            _event(
                "session_started",
                entry,
                session_id=sid,
                ticket_number=ticket,
                vehicle_id=vehicle,
                space_id=space,
            )
        )
        if fee:
            receipt = _unique("RCP-", tickets)
            pid = db.execute(
                "INSERT INTO payments (session_id, user_id, amount, tendered, currency, payment_method,"
                " status, transaction_id, discount_id, discount_amount, tax_amount, total_amount,"
                " receipt_number, paid_at, created_at, updated_at)"
                " VALUES (?, NULL, ?, ?, 'USD', ?, 'completed', NULL, NULL, '0.00', '0.00', ?, ?, ?, ?, ?)",
                [
                    sid,
                    f"{fee}.00",
                    f"{fee}.00",
                    rng.choice(["card", "cash", "mobile"]),
                    f"{fee}.00",
                    receipt,
                    iso(paid_at),
                    iso(paid_at),
                    iso(paid_at),
                ],
            ).lastrowid
            events.append(
                _event(
                    "payment_completed", paid_at, payment_id=pid, session_id=sid, total_amount=fee
                )
            )
        events.append(
            _event(
                "session_completed", leave, session_id=sid, duration_minutes=minutes, fee_total=fee
            )
        )
    db.executemany(
        "INSERT INTO outbox (event_id, type, occurred_at, payload) VALUES (?, ?, ?, ?)", events
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


def _unique(prefix: str, seen: set[str]) -> str:
    while (value := prefix + secrets.token_hex(6).upper()) in seen:
        pass
    seen.add(value)
    return value


def _event(kind: str, at: datetime, **data: Any) -> tuple[str, str, str, str]:
    return (str(uuid.uuid4()), kind, iso(at), json.dumps(data))


# -- the load generator -----------------------------------------------------------------


class RawHttp:
    """One keep-alive HTTP/1.1 connection: just enough protocol for JSON requests."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        if b"transfer-encoding: chunked" in lower:
            raise RuntimeError("chunked responses are not supported by this client")
        at = lower.find(b"content-length:")
        length = int(lower[at + 15 : lower.index(b"\r\n", at)]) if at >= 0 else 0
        data = await self.reader.readexactly(length)
        if b"connection: close" in lower:
            await self.close()
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class HttpxHttp:
    """The same interface over httpx.AsyncClient (one connection per instance)."""

    def __init__(self, host: str, port: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30,
        )

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        r = await self.client.request(method, path, json=body, headers=headers)
        return r.status_code, r.json() if r.content else None

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class Job:
    phase: str  # "validate" | "cycle"
    client: str
    host: str
    port: int
    connections: int
    tickets: list[str]
    token: str
    start_at: float  # time.monotonic() values, shared by all processes on Linux
    measure_from: float
    end_at: float
    worker: int


class Recorder:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []

    def record(self, what: str, started: float, ended: float) -> None:
        if started >= self.job.measure_from and ended <= self.job.end_at:
            self.latencies.setdefault(what, []).append(ended - started)

    def error(self, what: str, status: int, body: Any) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1
        if len(self.samples) < 5:
            self.samples.append(f"{what}: {status} {json.dumps(body)[:200]}")


async def _validate_loop(conn: Any, job: Job, rec: Recorder, rng: random.Random) -> None:
    path = "/api/v1/payments/validate-exit"
    while (started := time.monotonic()) < job.end_at:
        status, body = await conn.request("POST", path, {"ticket_number": rng.choice(job.tickets)})
        ended = time.monotonic()
        if status != 200 or "can_exit" not in body:
            rec.error("validate-exit", status, body)
        else:
            rec.record("validate-exit", started, ended)


async def _cycle_loop(conn: Any, job: Job, rec: Recorder, index: int) -> None:
    auth = {"Authorization": f"Bearer {job.token}"}
    n = 0
    while (started := time.monotonic()) < job.end_at:
        n += 1
        entered = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
        plate = f"B{job.worker}C{index}N{n}"
        t0 = time.monotonic()
        status, body = await conn.request(
            "POST",
            "/api/v1/sessions/entry",
            {"license_plate": plate, "entry_time": entered},
            auth,
        )
        t1 = time.monotonic()
        if status != 201:
            rec.error("entry", status, body)
            continue
        rec.record("entry", t0, t1)
        sid, ticket = body["session"]["id"], body["ticket_number"]
        status, fee = await conn.request("GET", f"/api/v1/sessions/{sid}/calculate-fee")
        t2 = time.monotonic()
        if status != 200:
            rec.error("calculate-fee", status, fee)
            continue
        rec.record("calculate-fee", t1, t2)
        status, body = await conn.request(
            "POST",
            "/api/v1/payments",
            {"session_id": sid, "payment_method": "card", "amount": fee["total"]},
            auth,
        )
        t3 = time.monotonic()
        if status != 201:
            rec.error("pay", status, body)
            continue
        rec.record("pay", t2, t3)
        status, body = await conn.request(
            "POST", "/api/v1/sessions/exit", {"ticket_number": ticket}, auth
        )
        t4 = time.monotonic()
        if status != 200:
            rec.error("exit after payment", status, body)
            continue
        rec.record("exit", t3, t4)
        rec.record("cycle", started, t4)


async def _run_job(job: Job) -> dict[str, Any]:
    rec = Recorder(job)
    kind = RawHttp if job.client == "raw" else HttpxHttp
    conns = [kind(job.host, job.port) for _ in range(job.connections)]
    # Connect (and warm the connection) before the common start time.
    for conn in conns:
        await conn.request("GET", "/health")
    await asyncio.sleep(max(0.0, job.start_at - time.monotonic()))
    cpu0 = time.process_time()
    rng = random.Random(job.worker)
    if job.phase == "validate":
        loops = [_validate_loop(c, job, rec, random.Random(rng.random())) for c in conns]
    else:
        loops = [_cycle_loop(c, job, rec, i) for i, c in enumerate(conns)]
    await asyncio.gather(*loops)
    cpu = time.process_time() - cpu0
    for conn in conns:
        await conn.close()
    return {"latencies": rec.latencies, "errors": rec.errors, "samples": rec.samples, "cpu": cpu}


def _worker(job: Job, results: Any) -> None:
    try:
        results.put(asyncio.run(_run_job(job)))
    except BaseException as err:
        results.put({"crash": f"{type(err).__name__}: {err}"})
        raise


@dataclass
class PhaseResult:
    name: str
    seconds: float
    latencies: dict[str, list[float]]
    errors: dict[str, int]
    samples: list[str]
    client_cpu: float
    server_cpu: float


def run_phase(
    phase: str, server: Server, args: argparse.Namespace, tickets: list[str], token: str
) -> PhaseResult:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    per_process = [
        args.concurrency // args.processes + (1 if i < args.concurrency % args.processes else 0)
        for i in range(args.processes)
    ]
    start_at = time.monotonic() + 1.5 + 0.3 * args.processes  # time to spawn and connect
    measure_from = start_at + args.warmup
    end_at = measure_from + args.duration
    procs = []
    for worker, connections in enumerate(per_process):
        if connections == 0:
            continue
        job = Job(
            phase=phase,
            client=args.client,
            host="127.0.0.1",
            port=server.port,
            connections=connections,
            tickets=tickets,
            token=token,
            start_at=start_at,
            measure_from=measure_from,
            end_at=end_at,
            worker=worker,
        )
        proc = ctx.Process(target=_worker, args=(job, results), name=f"load-{phase}-{worker}")
        proc.start()
        procs.append(proc)
    spy = None
    time.sleep(max(0.0, measure_from - time.monotonic()))
    cpu0 = server.cpu_seconds()
    if args.py_spy:
        assert server.proc is not None
        spy = subprocess.Popen(
            [
                *(args.py_spy_bin, "record", "--pid", str(server.proc.pid)),
                *("--duration", str(max(1, int(args.duration)))),
                *("--rate", "200", "--format", "raw", "--threads"),
                *("--output", f"{args.py_spy}.{phase}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    time.sleep(max(0.0, end_at - time.monotonic()))
    server_cpu = server.cpu_seconds() - cpu0
    merged: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    samples: list[str] = []
    client_cpu = 0.0
    for _ in procs:
        out = results.get(timeout=60)
        if "crash" in out:
            raise SystemExit(f"load generator crashed: {out['crash']}")
        for what, values in out["latencies"].items():
            merged.setdefault(what, []).extend(values)
        for what, count in out["errors"].items():
            errors[what] = errors.get(what, 0) + count
        samples.extend(out["samples"])
        client_cpu += out["cpu"]
    for proc in procs:
        proc.join(10)
    if spy is not None:
        spy.wait(timeout=60)
    return PhaseResult(phase, args.duration, merged, errors, samples, client_cpu, server_cpu)


# -- report -----------------------------------------------------------------------------


def summarize_profile(path: Path, top: int = 25) -> None:
    """Top functions per thread of a py-spy ``--format raw`` recording (collapsed stacks)."""
    if not path.exists():
        print(f"  (no py-spy output at {path}: is ptrace allowed?)")
        return
    own: dict[str, Counter[str]] = {}
    total: dict[str, Counter[str]] = {}
    samples: Counter[str] = Counter()
    for text in path.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        frames = stack.split(";")
        # "thread (0x7f..): MainThread" -> "MainThread"; pool threads lose their number.
        thread = frames[0].split(": ", 1)[-1].rstrip("_0123456789")
        names = [re.sub(r":\d+\)$", ")", f) for f in frames[1:]] or ["<idle>"]
        n = int(count)
        samples[thread] += n
        own.setdefault(thread, Counter())[names[-1]] += n
        for name in set(names):
            total.setdefault(thread, Counter())[name] += n
    print(f"  py-spy samples per thread: {dict(samples.most_common())} ({path})")
    for thread, n in samples.most_common(2):
        print(f"  {thread}: top self time")
        for name, k in own[thread].most_common(top):
            print(f"    {k / n * 100:5.1f}%  {name}")
        print(f"  {thread}: top inclusive time (gateway and library entry points)")
        for name, k in total[thread].most_common(top * 3)[::1]:
            if "asyncio/" in name or "runpy" in name or "threading.py" in name:
                continue
            print(f"    {k / n * 100:5.1f}%  {name}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def line(what: str, values: list[float], seconds: float, unit: str = "req/s") -> str:
    if not values:
        return f"  {what:<15} no successful requests"
    ms = [v * 1000 for v in values]
    return (
        f"  {what:<15} {len(values) / seconds:8.1f} {unit:<9}"
        f" p50 {pct(ms, 50):6.2f} ms  p90 {pct(ms, 90):6.2f} ms  p99 {pct(ms, 99):6.2f} ms"
        f"  max {max(ms):7.2f} ms  mean {statistics.fmean(ms):6.2f} ms  (n={len(values)})"
    )


def report(res: PhaseResult, args: argparse.Namespace) -> None:
    done = len(res.latencies.get("validate-exit" if res.name == "validate" else "cycle", []))
    per = (
        f", {res.server_cpu / done * 1e6:.0f} us of server CPU per {'request' if res.name == 'validate' else 'cycle'}"
        if done
        else ""
    )
    cpu = (
        f"  CPU: server {res.server_cpu / res.seconds * 100:.0f}% of a core{per},"
        f" load generators {res.client_cpu / (res.seconds + args.warmup) * 100:.0f}%"
    )
    if res.name == "validate":
        print("(a) POST /payments/validate-exit, random active tickets")
        print(line("validate-exit", res.latencies.get("validate-exit", []), res.seconds))
    else:
        print("(b) full cycle: entry -> calculate-fee -> pay -> exit")
        print(line("cycle", res.latencies.get("cycle", []), res.seconds, "cycles/s"))
        for step in ("entry", "calculate-fee", "pay", "exit"):
            print(line(step, res.latencies.get(step, []), res.seconds))
        total = sum(
            len(res.latencies.get(s, [])) for s in ("entry", "calculate-fee", "pay", "exit")
        )
        print(f"  all requests    {total / res.seconds:8.1f} req/s")
    print(cpu)
    print(f"  errors: {res.errors or 'none'}")
    for sample in res.samples:
        print(f"    {sample}")


def load_reports_data(path: Path, reservations: int, sessions: int) -> tuple[list[int], str, str]:
    """Reservations and history for (c) and (d): ``reservations`` future bookings over the
    next two weeks, and completed stays until the table holds ``sessions`` rows."""
    rng = random.Random(11)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("BEGIN IMMEDIATE")
    now = datetime.now(UTC)
    ts = iso(now)
    type_id = db.execute("SELECT id FROM vehicle_types WHERE name = 'Car'").fetchone()[0]
    zones = [r[0] for r in db.execute("SELECT id FROM zones")]
    user = db.execute(
        "INSERT INTO users (email, password_hash, full_name, role, created_at, updated_at)"
        " VALUES ('booker@example.com', 'x', 'Booker', 'customer', ?, ?)",
        [ts, ts],
    ).lastrowid
    seen: set[str] = set()
    for n in range(reservations):
        vehicle = db.execute(
            "INSERT INTO vehicles (license_plate, vehicle_type_id, user_id, is_ev, created_at, updated_at)"
            " VALUES (?, ?, ?, 0, ?, ?)",
            [f"RSV{n:06d}", type_id, user, ts, ts],
        ).lastrowid
        start = now + timedelta(hours=1 + rng.random() * 14 * 24)
        end = start + timedelta(hours=rng.choice([1, 2, 3, 4, 8, 24]))
        db.execute(
            "INSERT INTO reservations (user_id, vehicle_id, zone_id, start_time, end_time, status,"
            " confirmation_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?, ?)",
            [
                user,
                vehicle,
                rng.choice(zones),
                iso(start),
                iso(end),
                _unique("RSV-", seen)[:12],
                ts,
                ts,
            ],
        )
    have = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    vehicles = [
        r[0] for r in db.execute("SELECT id FROM vehicles WHERE license_plate LIKE 'PAST%'")
    ]
    spaces = [r[0] for r in db.execute("SELECT id FROM spaces")]
    tickets: set[str] = set()
    for n in range(max(0, sessions - have)):
        entry = now - timedelta(days=60) + timedelta(seconds=n * 50)
        leave = entry + timedelta(minutes=rng.randint(5, 300))
        db.execute(
            "INSERT INTO sessions (vehicle_id, space_id, ticket_number, status, entry_time, exit_time,"
            " created_at, updated_at) VALUES (?, ?, ?, 'completed', ?, ?, ?, ?)",
            [
                rng.choice(vehicles),
                rng.choice(spaces),
                _unique("TKT-", tickets),
                iso(entry),
                iso(leave),
                iso(entry),
                iso(leave),
            ],
        )
    db.execute("COMMIT")
    db.close()
    return zones, iso(now + timedelta(days=3, hours=8)), iso(now + timedelta(days=3, hours=17))


def measure_reads(
    base_url: str,
    admin_token: str,
    zones: list[int],
    start: str,
    end: str,
    requests: int = 400,
    concurrency: int = 4,
) -> None:
    """(c) reservation availability and (d) the dashboard: latency under a few concurrent clients."""

    def timed(call: Any) -> list[float]:
        def one(i: int) -> float:
            t0 = time.perf_counter()
            r = call(i)
            assert r.status_code == 200, r.text
            return time.perf_counter() - t0

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(20)))  # warm-up
            return list(pool.map(one, range(requests)))

    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as api:
        availability = timed(
            lambda i: api.get(
                "/reservations/availability",
                params={"start_time": start, "end_time": end, "zone_id": zones[i % len(zones)]},
            )
        )
        site_wide = timed(
            lambda i: api.get(
                "/reservations/availability", params={"start_time": start, "end_time": end}
            )
        )
        dashboard = timed(
            lambda i: api.get(
                "/reports/dashboard", headers={"Authorization": f"Bearer {admin_token}"}
            )
        )
    print(
        f"(c) GET /reservations/availability over the reservations (window 9 h, {concurrency} clients)"
    )
    print("  " + line("per zone", availability, sum(availability) / concurrency))
    print("  " + line("site-wide", site_wide, sum(site_wide) / concurrency))
    print(f"(d) GET /reports/dashboard over the sessions ({concurrency} clients)")
    print("  " + line("dashboard", dashboard, sum(dashboard) / concurrency))
    for name, values in (("availability", availability + site_wide), ("dashboard", dashboard)):
        p99 = pct(values, 99) * 1000
        print(f"  target {name} p99 <= 50 ms: {p99:.1f} ms -> {'MET' if p99 <= 50 else 'MISSED'}")


def verdict(validate: PhaseResult | None, cycle: PhaseResult | None) -> None:
    print("targets (2-core machine):")
    if validate is not None:
        lat = validate.latencies.get("validate-exit", [])
        rps = len(lat) / validate.seconds
        p99 = pct(lat, 99) * 1000 if lat else math.inf
        ok = rps >= 2000 and p99 <= 25 and not validate.errors
        print(
            f"  validate-exit >= 2,000 req/s with p99 <= 25 ms: {rps:.0f} req/s, p99 {p99:.1f} ms"
            f" -> {'MET' if ok else 'MISSED'}"
        )
    if cycle is not None:
        cps = len(cycle.latencies.get("cycle", [])) / cycle.seconds
        ok = cps >= 150 and not cycle.errors
        print(f"  full cycles >= 150/s: {cps:.0f}/s -> {'MET' if ok else 'MISSED'}")


# -- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before that")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in all")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--active", type=int, default=600, help="vehicles inside for (a)")
    parser.add_argument(
        "--phases",
        default="validate,cycle,reports",
        help="comma-separated: validate, cycle, reports (availability and dashboard)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="record the server with py-spy during each phase, to PREFIX.<phase>.txt, and summarise",
    )
    parser.add_argument(
        "--py-spy-bin", default=shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="carpark-bench-"))
    server = Server(workdir)
    try:
        print(
            f"carpark-gateway API benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()},"
            f" client={args.client}, {args.processes} load processes, concurrency {args.concurrency},"
            f" {args.duration:g} s per phase after {args.warmup:g} s warm-up"
        )
        t0 = time.monotonic()
        server.write_config()
        server.cli("user", "create", "--email", ADMIN[0], "--password", ADMIN[1], "--role", "admin")
        server.cli(
            "user",
            "create",
            "--email",
            OPERATOR[0],
            "--password",
            OPERATOR[1],
            "--role",
            "operator",
        )
        server.start()
        assert server.proc is not None
        with httpx.Client(base_url=f"{server.base_url}/api/v1", timeout=30) as api:
            admin = {"Authorization": f"Bearer {login(api, *ADMIN)}"}
            operator_token = login(api, *OPERATOR)
            operator = {"Authorization": f"Bearer {operator_token}"}
            tickets = build_site(api, admin, operator, args.active)
            load_history(server.database)
            spaces = _ok(api.get("/spaces", params={"limit": 1}), 200)["total"]
        db = sqlite3.connect(server.database)
        counts = {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("spaces", "vehicles", "sessions", "payments", "outbox")
        }
        active = db.execute("SELECT COUNT(*) FROM sessions WHERE status = 'active'").fetchone()[0]
        db.close()
        assert spaces == counts["spaces"]
        print(
            f"set-up in {time.monotonic() - t0:.1f} s: daemon pid {server.proc.pid} on port"
            f" {server.port}; {counts['spaces']} spaces, {counts['vehicles']} vehicles,"
            f" {counts['sessions']} sessions ({active} active), {counts['payments']} payments,"
            f" {counts['outbox']} outbox events"
        )
        validate = cycle = None
        if "validate" in phases:
            validate = run_phase("validate", server, args, tickets, operator_token)
            report(validate, args)
            if args.py_spy:
                summarize_profile(Path(f"{args.py_spy}.validate.txt"))
        if "cycle" in phases:
            cycle = run_phase("cycle", server, args, tickets, operator_token)
            report(cycle, args)
            if args.py_spy:
                summarize_profile(Path(f"{args.py_spy}.cycle.txt"))
        verdict(validate, cycle)
        if "reports" in phases:
            zones, start, end = load_reports_data(server.database, 10_000, 100_000)
            with httpx.Client(base_url=f"{server.base_url}/api/v1", timeout=30) as api:
                admin_token = login(api, *ADMIN)
            db = sqlite3.connect(server.database)
            print(
                f"reports data: {db.execute('SELECT COUNT(*) FROM reservations').fetchone()[0]} reservations,"
                f" {db.execute('SELECT COUNT(*) FROM sessions').fetchone()[0]} sessions"
            )
            db.close()
            measure_reads(server.base_url, admin_token, zones, start, end)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
