"""OCPP load benchmark: 50 chargers talking to the gateway while the exit lane decides.

    .venv/bin/python bench/ocpp.py [--chargers 50] [--exits 300] [--duration 30]
    .venv/bin/python bench/ocpp.py --rounds 5 --exits 1000 --duration 60   # steadier p99

The daemon runs as a separate process exactly as on a site (``python -m gateway --config
<tmp> run``, JSON logs at warning level) on a fresh database holding ``--active`` paid
vehicles inside and ``--chargers`` EV stations bound to charge points CP-0001.. (connector
1). It has one exit lane on Modbus TCP, against the tests' pymodbus barrier controller
running in this process, and a smart camera on that lane (``min_reads = 1``), so this
process presents plates the way a smart camera does: ``POST /api/v1/lpr/reads`` with its
``X-API-Key``.

Each exit: a car drives onto the presence loop, the camera posts its plate, the barrier
opens (the open-coil write reaching the controller is the end of the measured latency:
both ends are ``time.perf_counter`` in this process), the car leaves the presence loop
onto the safety loop, clears it, and the barrier closes. The latency therefore includes
the HTTP request, the read being recorded, the decision (session lookup, fee, payments,
linking the read), the event-loop hops and the Modbus round trip.

Phase A: exits with no charger connected. Phase B: ``--chargers`` OCPP 1.6J charge
points in another process (one asyncio loop, the ``ocpp`` library's ChargePoint over
``websockets``) connect at once; each sends BootNotification, StatusNotification,
StartTransaction (an RFID tag from ``[ocpp] id_tags``), then MeterValues every second
(random phase) and a Heartbeat every ``heartbeat_interval``, for at least ``--duration``
seconds, while the same exits run; each charger times its calls (send -> CallResult).
The phases run as A B A: the second A block (after the chargers left) is pooled with
the first, and the difference between the two A blocks is printed as the noise floor,
because other load on the machine moves a p99 of a few hundred samples by tens of
percent. ``--rounds N`` alternates N B blocks with N + 1 A blocks for a steadier figure.
``--load heartbeat`` makes the chargers send a Heartbeat instead of MeterValues: the same
traffic without database writes (a diagnostic).

CPU is utime + stime of a process (all its threads) from ``/proc/<pid>/stat`` over wall
time; the bench's own processes (the Modbus peer and HTTP client here, the chargers) share
the machine with the gateway, which a site's external devices would not.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called ocpp.py: keep its directory off sys.path so ``import ocpp`` is the library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
ROOT = _HERE.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import random
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.peers import (
    CLOSE_COIL,
    OPEN_COIL,
    PRESENCE,
    SAFETY,
    BarrierController,
    free_port,
)

PYTHON = str(ROOT / ".venv" / "bin" / "python")
LANE = "exit-1"
CAMERA_KEY = "bench-camera-key-0123456789"
ID_TAG = "BENCH-RFID-1"
OPERATOR = ("bench-operator@example.com", "bench-password-1")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


# -- the site --------------------------------------------------------------------------------


def write_config(
    tmp: Path, *, http_port: int, ocpp_port: int, modbus_port: int, heartbeat: int
) -> Path:
    modbus = "{ driver = 'modbus', bus = 'io', unit = 1"
    text = f"""
[site]
id = "bench-site"
development = true

[http]
host = "127.0.0.1"
port = {http_port}
docs = false

[database]
path = "{tmp / "gateway.db"}"

[auth]
secret_key = "bench-secret-0123456789abcdef0123456789abcdef"

[logging]
level = "warning"
format = "json"

[lpr]
evidence_dir = "{tmp / "evidence"}"

[ocpp]
enabled = true
host = "127.0.0.1"
port = {ocpp_port}
heartbeat_interval = {heartbeat}
auto_register = true
id_tags = ["{ID_TAG}"]

[modbus.io]
transport = "tcp"
host = "127.0.0.1"
port = {modbus_port}
timeout_s = 0.5

[[lanes]]
id = "{LANE}"
name = "Bench exit"
kind = "exit"
barrier_timeout_s = 5
barrier = {modbus}, open_coil = {OPEN_COIL}, close_coil = {CLOSE_COIL}, command = "pulse", pulse_ms = 20, opened_input = 0, closed_input = 1, poll_hz = 200 }}
presence_loop = {modbus}, input = {PRESENCE}, poll_hz = 200, debounce_ms = 0 }}
safety_loop = {modbus}, input = {SAFETY}, poll_hz = 200, debounce_ms = 0 }}
camera = {{ driver = "smart", api_key = "{CAMERA_KEY}", min_reads = 1 }}
"""
    path = tmp / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


def seed(db_path: Path, active: int, chargers: int, now: datetime) -> list[str]:
    """``active`` paid vehicles inside, and ``chargers`` stations bound to CP-0001.. connector 1."""
    conn = sqlite3.connect(db_path)
    ts = iso(now)
    plates = [f"B{n:06d}" for n in range(active)]
    with conn:
        conn.execute(
            "INSERT INTO vehicle_types (name, size_category, created_at, updated_at)"
            " VALUES ('Car', 'medium', ?, ?)",
            [ts, ts],
        )
        conn.execute(
            "INSERT INTO rates (name, rate_type, amount, grace_period_minutes, effective_from,"
            " created_at, updated_at) VALUES ('Hourly', 'hourly', '5.00', 15,"
            " '2024-01-01T00:00:00.000000+00:00', ?, ?)",
            [ts, ts],
        )
        for n, plate in enumerate(plates, start=1):
            entry = iso(now - timedelta(minutes=30 + n % 240))
            conn.execute(
                "INSERT INTO vehicles (id, license_plate, vehicle_type_id, created_at, updated_at)"
                " VALUES (?, ?, 1, ?, ?)",
                [n, plate, ts, ts],
            )
            conn.execute(
                "INSERT INTO sessions (id, vehicle_id, ticket_number, status, entry_time,"
                " created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?)",
                [n, n, f"TKT-{n:012X}", entry, ts, ts],
            )
            conn.execute(
                "INSERT INTO payments (session_id, amount, tendered, payment_method, status,"
                " discount_amount, tax_amount, total_amount, receipt_number, paid_at, created_at,"
                " updated_at) VALUES (?, '25.00', '25.00', 'card', 'completed', '0.00', '0.00',"
                " '25.00', ?, ?, ?, ?)",
                [n, f"RCP-{uuid.uuid4().hex[:12].upper()}", ts, ts, ts],
            )
        conn.execute(
            "INSERT INTO levels (id, name, floor_number, created_at, updated_at)"
            " VALUES (1, 'Level 1', 1, ?, ?)",
            [ts, ts],
        )
        conn.execute(
            "INSERT INTO zones (id, level_id, name, total_spaces, created_at, updated_at)"
            " VALUES (1, 1, 'EV', ?, ?, ?)",
            [chargers, ts, ts],
        )
        for n in range(1, chargers + 1):
            conn.execute(
                "INSERT INTO spaces (id, zone_id, space_number, space_type, is_ev_charging,"
                " created_at, updated_at) VALUES (?, 1, ?, 'ev_charging', 1, ?, ?)",
                [n, f"EV-{n:03d}", ts, ts],
            )
            conn.execute(
                "INSERT INTO ev_stations (id, space_id, charger_type, power_kw, connector_type,"
                " price_per_kwh, installed_at, status, created_at, updated_at, ocpp_id,"
                " connector_id) VALUES (?, ?, 'level2', '7.2', 'type2', '0.35', ?, 'available',"
                " ?, ?, ?, 1)",
                [n, n, date.today().isoformat(), ts, ts, charger_id(n)],
            )
    conn.close()
    return plates


def charger_id(n: int) -> str:
    return f"CP-{n:04d}"


def gateway(config: Path, *args: str, **kwargs: Any) -> Any:
    return subprocess.run(
        [PYTHON, "-m", "gateway", "--config", str(config), *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        **kwargs,
    )


# -- CPU accounting --------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuWindow:
    """CPU seconds of some processes (and of the whole machine) over a stretch of wall time."""

    pids: dict[str, int]
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds; "machine": busy core-seconds
    _t0: float = 0.0
    _cpu0: dict[str, float] = field(default_factory=dict)
    _machine0: tuple[int, int] = (0, 0)

    def start(self) -> CpuWindow:
        self._t0 = time.perf_counter()
        self._cpu0 = {name: proc_cpu_s(pid) for name, pid in self.pids.items()}
        self._machine0 = machine_busy()
        return self

    @property
    def started(self) -> float:
        return self._t0

    def stop(self) -> CpuWindow:
        self.wall = time.perf_counter() - self._t0
        self.cpu = {name: proc_cpu_s(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        busy, total = machine_busy()
        share = (busy - self._machine0[0]) / max(1, total - self._machine0[1])
        self.cpu["machine"] = share * self.wall * (os.cpu_count() or 1)
        return self


def cpu_line(name: str, windows: list[CpuWindow]) -> str:
    """Percent of one core over the windows together (CPU seconds / wall seconds)."""
    wall = sum(w.wall for w in windows)
    names = [k for k in windows[0].cpu if k != "machine"]
    share = {k: sum(w.cpu.get(k, 0.0) for w in windows) / wall * 100 for k in [*names, "machine"]}
    ncpu = os.cpu_count() or 1
    others = ", ".join(f"{k} {share[k]:.1f} %" for k in names if k != "gateway")
    return (
        f"gateway CPU, {name}: {share['gateway']:.1f} % of one core = "
        f"{share['gateway'] / ncpu:.1f} % of the machine over {wall:.1f} s  "
        f"(the bench's own processes: {others}; whole machine busy {share['machine'] / ncpu:.1f} %)"
    )


# -- the barrier controller --------------------------------------------------------------------


class Controller(BarrierController):
    """The tests' controller, waking this process up on coil writes instead of being polled."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.written = threading.Condition()

    async def _action(
        self,
        fc: int,
        start: int,
        address: int,
        count: int,
        regs: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        await super()._action(fc, start, address, count, regs, set_values)
        if fc in (5, 15) and set_values is not None:
            with self.written:
                self.written.notify_all()

    def wait_write(self, coil: int, before: int, timeout: float = 5.0) -> bool:
        with self.written:
            return self.written.wait_for(lambda: len(self.writes_of(coil)) > before, timeout)


# -- the lane ------------------------------------------------------------------------------------


class LaneDriver:
    """Cars through the exit lane, as the loops, the camera and the barrier see them."""

    def __init__(self, controller: Controller, api: httpx.Client, camera: httpx.Client) -> None:
        self.controller, self.api, self.camera = controller, api, camera
        self.refused: Counter[str] = Counter()

    def status(self) -> dict[str, Any]:
        r = self.api.get(f"/lanes/{LANE}")
        r.raise_for_status()
        return dict(r.json())

    def wait_lane(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise RuntimeError(f"lane not {what} after {timeout} s: {status}")
            time.sleep(0.002)

    def exit_one(self, plate: str) -> float | None:
        """One car out; the ms from posting its plate to the open-coil write, None if refused."""
        c = self.controller
        c.presence(True)
        self.wait_lane(
            lambda s: s["presence"] and s["phase"] == "idle" and s["barrier"] == "closed",
            "armed",
        )
        opens, closes = len(c.writes_of(OPEN_COIL)), len(c.writes_of(CLOSE_COIL))
        t0 = time.perf_counter()
        r = self.camera.post("/lpr/reads", json={"plate": plate, "confidence": 0.99})
        if r.status_code != 202:
            raise RuntimeError(f"smart camera read refused: {r.status_code} {r.text}")
        if not c.wait_write(OPEN_COIL, opens, timeout=5):
            status = self.status()
            decision = status.get("last_decision") or {}
            self.refused[str(decision.get("reason"))] += 1
            c.presence(False)
            self.wait_lane(lambda s: not s["presence"] and s["phase"] == "idle", "idle")
            return None
        latency = (c.writes_of(OPEN_COIL)[opens].at - t0) * 1000
        self.wait_lane(lambda s: s["barrier"] == "open", "open")
        c.presence(False)  # the car rolls off the presence loop onto the safety loop
        c.safety(True)
        self.wait_lane(lambda s: s["phase"] == "passing", "passing")
        c.safety(False)
        if not c.wait_write(CLOSE_COIL, closes, timeout=5):
            raise RuntimeError("the barrier was never told to close")
        self.wait_lane(
            lambda s: s["barrier"] == "closed" and not s["presence"] and s["phase"] == "idle",
            "closed",
        )
        return latency

    def run(self, plates: list[str]) -> list[float]:
        out = []
        for plate in plates:
            latency = self.exit_one(plate)
            if latency is not None:
                out.append(latency)
        return out


# -- the chargers (a separate process) ----------------------------------------------------------


def charger_fleet(
    url: str,
    ids: list[str],
    id_tag: str,
    stop: Any,
    ready: Any,
    results: Any,
    load: str = "meter",
) -> None:
    """Run the charge points until ``stop`` is set, then put their timings on ``results``.

    ``load``: what each charger sends every second, ``meter`` (MeterValues, the benchmark)
    or ``heartbeat`` (a Heartbeat instead: the same traffic without database writes, to tell
    the cost of the writes from that of the messages).
    """
    asyncio.run(_fleet(url, ids, id_tag, stop, ready, results, load))


async def _fleet(
    url: str, ids: list[str], id_tag: str, stop: Any, ready: Any, results: Any, load: str
) -> None:
    import websockets
    from ocpp.v16 import ChargePoint, call
    from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus

    # (charger, action, stage, sent at (perf_counter), ms); stage: setup | steady | teardown
    samples: list[tuple[str, str, str, float, float]] = []
    errors: Counter[str] = Counter()
    stopping = asyncio.Event()
    booted = 0

    class BenchCharger(ChargePoint):  # type: ignore[misc]
        async def timed(self, payload: Any, stage: str) -> Any:
            action = type(payload).__name__
            t0 = time.perf_counter()
            try:
                response = await self.call(payload, suppress=False)
            except Exception as err:
                errors[f"{action}: {type(err).__name__}"] += 1
                return None
            samples.append((self.id, action, stage, t0, (time.perf_counter() - t0) * 1000))
            return response

    def now() -> str:
        return datetime.now(UTC).isoformat()

    async def status(cp: BenchCharger, value: str, stage: str) -> None:
        await cp.timed(
            call.StatusNotification(
                connector_id=1,
                error_code=ChargePointErrorCode.no_error,
                status=value,
                timestamp=now(),
            ),
            stage,
        )

    async def one(cp_id: str) -> None:
        nonlocal booted
        async with websockets.connect(f"{url}/ocpp/{cp_id}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            cp = BenchCharger(cp_id, ws, response_timeout=30)
            reader = asyncio.create_task(cp.start())
            try:
                boot = await cp.timed(
                    call.BootNotification(
                        charge_point_model="Bench 7", charge_point_vendor="carpark-bench"
                    ),
                    "setup",
                )
                heartbeat = float(boot.interval) if boot is not None else 60.0
                await status(cp, ChargePointStatus.available, "setup")
                await status(cp, ChargePointStatus.preparing, "setup")
                register = random.randint(100_000, 900_000)
                started = await cp.timed(
                    call.StartTransaction(
                        connector_id=1, id_tag=id_tag, meter_start=register, timestamp=now()
                    ),
                    "setup",
                )
                transaction = started.transaction_id if started is not None else 0
                if not transaction:
                    errors["StartTransaction: refused"] += 1
                await status(cp, ChargePointStatus.charging, "setup")
                booted += 1
                if booted == len(ids):
                    ready.set()
                loop = asyncio.get_running_loop()
                # Real chargers' clocks are independent: a random phase within the first second.
                next_meter = loop.time() + random.random()
                next_beat = loop.time() + heartbeat * random.random()
                while not stopping.is_set():
                    due = min(next_meter, next_beat)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), max(0.0, due - loop.time()))
                    if stopping.is_set():
                        break
                    if loop.time() >= next_meter and load == "heartbeat":
                        next_meter += 1.0
                        await cp.timed(call.Heartbeat(), "steady")
                    elif loop.time() >= next_meter:
                        next_meter += 1.0
                        register += 2  # 7.2 kW: 2 Wh a second
                        await cp.timed(
                            call.MeterValues(
                                connector_id=1,
                                transaction_id=transaction or None,
                                meter_value=[
                                    {
                                        "timestamp": now(),
                                        "sampled_value": [
                                            {
                                                "value": str(register),
                                                "measurand": "Energy.Active.Import.Register",
                                                "unit": "Wh",
                                            }
                                        ],
                                    }
                                ],
                            ),
                            "steady",
                        )
                    if loop.time() >= next_beat:
                        next_beat += heartbeat
                        await cp.timed(call.Heartbeat(), "steady")
                if transaction:
                    await cp.timed(
                        call.StopTransaction(
                            meter_stop=register,
                            timestamp=now(),
                            transaction_id=transaction,
                            reason="Local",
                        ),
                        "teardown",
                    )
                    await status(cp, ChargePointStatus.available, "teardown")
            finally:
                reader.cancel()

    async def watch_stop() -> None:
        while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing.Event, not an asyncio one
            await asyncio.sleep(0.1)
        stopping.set()

    watcher = asyncio.create_task(watch_stop())
    outcomes = await asyncio.gather(*(one(cp_id) for cp_id in ids), return_exceptions=True)
    watcher.cancel()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            errors[f"connection: {type(outcome).__name__}: {outcome}"[:120]] += 1
    ready.set()  # even if some never booted: the parent must not wait forever
    results.put({"samples": samples, "errors": dict(errors)})


# -- figures ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (inclusive method), p in (0, 100)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(p * 10) - 1]


def describe(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {pct(values, 50):.2f} ms  p99 {pct(values, 99):.2f} ms  max {max(values):.2f} ms"
        f"  (n={len(values)})"
    )


@dataclass
class Fleet:
    """One phase-B block's chargers: the process, its timings and the measured window."""

    process: Any
    stop: Any
    results: Any
    setup_s: float = 0.0
    window: CpuWindow | None = None  # the steady state (after all booted), exits included
    exits: CpuWindow | None = None  # while the lane exits ran
    alone: CpuWindow | None = None  # after the exits, until the block's minimum length
    report: dict[str, Any] = field(default_factory=dict)


def start_fleet(url: str, ids: list[str], load: str) -> Fleet:
    ctx = mp.get_context("spawn")
    stop, ready, results = ctx.Event(), ctx.Event(), ctx.Queue()
    process = ctx.Process(
        target=charger_fleet,
        args=(url, ids, ID_TAG, stop, ready, results, load),
        name="chargers",
    )
    started = time.perf_counter()
    process.start()
    if not ready.wait(120):
        process.terminate()
        raise RuntimeError("the chargers did not all boot within 120 s")
    fleet = Fleet(process, stop, results)
    fleet.setup_s = time.perf_counter() - started
    return fleet


def stop_fleet(fleet: Fleet) -> None:
    fleet.stop.set()
    try:
        fleet.report = fleet.results.get(timeout=60)
    except queue.Empty as err:
        raise RuntimeError("the chargers did not report") from err
    fleet.process.join(15)


def operator_client(daemon: Any, root: str, log_path: Path) -> httpx.Client:
    """Once the daemon answers /health: an API client logged in as the bench's operator."""
    deadline = time.monotonic() + 30
    while True:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited ({daemon.returncode}); see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{root}/health", timeout=1).status_code == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("the daemon did not answer /health within 30 s")
        time.sleep(0.1)
    base = f"{root}/api/v1"
    login = httpx.post(
        f"{base}/auth/login", data={"username": OPERATOR[0], "password": OPERATOR[1]}
    )
    login.raise_for_status()
    token = login.json()["access_token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--exits", type=int, default=300, help="timed exits in each phase")
    parser.add_argument("--warmup", type=int, default=20, help="exits before phase A, not timed")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of charger load in phase B, at least"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split the phases into blocks run as A B A B .. A (rounds B blocks) so that slow"
        " changes of the machine's other load fall on both phases alike",
    )
    parser.add_argument("--active", type=int, default=3000)
    parser.add_argument("--heartbeat", type=int, default=10)
    parser.add_argument(
        "--load",
        choices=("meter", "heartbeat"),
        default="meter",
        help="what each charger sends every second (heartbeat: no database writes, diagnostic)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (db, daemon log)")
    args = parser.parse_args()
    block = max(1, args.exits // args.rounds)
    if args.active < args.warmup + (2 * args.rounds + 1) * block:
        parser.error("--active must cover the warm-up and all the phases' exits")

    tmp = Path(tempfile.mkdtemp(prefix="carpark-bench-ocpp-"))
    controller = Controller(travel_s=0.002).start()
    http_port, ocpp_port = free_port(), free_port()
    config = write_config(
        tmp,
        http_port=http_port,
        ocpp_port=ocpp_port,
        modbus_port=controller.port,
        heartbeat=args.heartbeat,
    )
    gateway(config, "migrate")
    gateway(config, "user", "create", "--email", OPERATOR[0], "--password", OPERATOR[1], "--role",
            "operator")  # fmt: skip
    started = time.perf_counter()
    plates = seed(tmp / "gateway.db", args.active, args.chargers, datetime.now(UTC))
    seeded_s = time.perf_counter() - started

    log_path = tmp / "daemon.log"
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed at the end
    daemon = subprocess.Popen(
        [PYTHON, "-m", "gateway", "--config", str(config), "run"],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    a_blocks: list[tuple[list[float], CpuWindow]] = []
    b_blocks: list[tuple[list[float], Fleet]] = []
    refused: dict[str, Counter[str]] = {"A": Counter(), "B": Counter()}
    fleet: Fleet | None = None
    load_before = os.getloadavg()[0]
    try:
        root = f"http://127.0.0.1:{http_port}"
        base = f"{root}/api/v1"
        api = operator_client(daemon, root, log_path)
        camera = httpx.Client(base_url=base, headers={"X-API-Key": CAMERA_KEY}, timeout=10)
        lane = LaneDriver(controller, api, camera)
        lane.wait_lane(
            lambda s: all(v == "ok" for v in s["devices"].values()) and s["barrier"] == "closed",
            "healthy",
            timeout=15,
        )
        spread = iter([plates[(n * 7919) % len(plates)] for n in range(len(plates))])

        def take(n: int) -> list[str]:
            return [next(spread) for _ in range(n)]

        lane.run(take(args.warmup))
        pids = {"gateway": daemon.pid, "bench": os.getpid()}
        time.sleep(1)
        idle = CpuWindow(pids).start()  # the lane's inputs polled at 200 Hz, nothing else
        time.sleep(5)
        idle.stop()
        ids = [charger_id(n) for n in range(1, args.chargers + 1)]
        url = f"ws://127.0.0.1:{ocpp_port}"
        for n in range(2 * args.rounds + 1):
            if n % 2 == 0:  # phase A: no charger connected
                time.sleep(1)  # the previous block's chargers are gone
                window = CpuWindow(pids).start()
                latencies = lane.run(take(block))
                a_blocks.append((latencies, window.stop()))
                refused["A"] += lane.refused
            else:  # phase B: the chargers, booted, then charging while the same exits run
                fleet = start_fleet(url, ids, args.load)
                all_pids = {**pids, "chargers": fleet.process.pid}
                fleet.window = CpuWindow(all_pids).start()
                fleet.exits = CpuWindow(all_pids).start()
                latencies = lane.run(take(block))
                fleet.exits.stop()
                minimum = args.duration / args.rounds
                if time.perf_counter() - fleet.window.started < minimum - 1:
                    fleet.alone = CpuWindow(all_pids).start()
                    while time.perf_counter() - fleet.window.started < minimum:
                        time.sleep(0.05)
                    fleet.alone.stop()
                fleet.window.stop()
                stop_fleet(fleet)
                b_blocks.append((latencies, fleet))
                refused["B"] += lane.refused
                fleet = None
            lane.refused.clear()
    finally:
        if fleet is not None and fleet.process.is_alive():
            fleet.process.terminate()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log_file.close()
        controller.stop()

    conn = sqlite3.connect(tmp / "gateway.db")
    completed = conn.execute("SELECT COUNT(*) FROM sessions WHERE status = 'completed'").fetchone()
    charges = conn.execute(
        "SELECT COUNT(*), SUM(meter_last_wh - meter_start_wh) FROM charging_sessions"
    ).fetchone()
    conn.close()
    log_lines = log_path.read_text(encoding="utf-8").splitlines()
    levels = Counter(
        level
        for line in log_lines
        for level in ("warning", "error", "critical")
        if f'"level": "{level}"' in line or f'"level":"{level}"' in line
    )

    print(
        f"carpark-gateway OCPP benchmark: {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"set-up: {args.active} paid vehicles inside, {args.chargers} OCPP stations bound to "
        f"CP-0001..; seeded in {seeded_s:.1f} s; daemon as a subprocess; exit lane on Modbus TCP "
        f"(inputs polled at 200 Hz) with a smart camera; phases run as "
        + " ".join("A" if n % 2 == 0 else "B" for n in range(2 * args.rounds + 1))
        + f", {block} exits a block; chargers send "
        + ("MeterValues" if args.load == "meter" else "a Heartbeat (diagnostic)")
        + f" every second and a Heartbeat every {args.heartbeat} s"
    )

    fleets = [f for _, f in b_blocks]
    samples = [s for f in fleets for s in f.report["samples"] if s[2] == "steady" and f.window
               and f.window.started <= s[3] <= f.window.started + f.window.wall]  # fmt: skip
    b_wall = sum(f.window.wall for f in fleets if f.window)
    errors = Counter[str]()
    for f in fleets:
        errors.update(f.report["errors"])
    latencies = [s[4] for s in samples]
    setup = [s[4] for f in fleets for s in f.report["samples"] if s[2] == "setup"]
    by_action = Counter(s[1] for f in fleets for s in f.report["samples"] if s[2] == "setup")
    print(
        f"\nOCPP: {args.chargers} chargers connected at once, booted and charging in "
        + ", ".join(f"{f.setup_s:.1f} s" for f in fleets)
        + f" ({', '.join(f'{n} {a}' for a, n in sorted(by_action.items()))}); "
        f"errors: {dict(errors) or 'none'}"
    )
    print(f"  set-up calls (boot storm):         {describe(setup)}")
    print(f"  steady state ({b_wall:.0f} s), all calls:  {describe(latencies)}")
    for action in ("MeterValues", "Heartbeat"):
        values = [s[4] for s in samples if s[1] == action]
        if values:
            print(f"    {action + ':':<13}                   {describe(values)}")
    print(f"  OCPP calls/s in steady state: {len(samples) / b_wall:.1f}")
    ocpp_p99 = pct(latencies, 99) if latencies else float("inf")
    print(
        f"  target OCPP p99 <= 100 ms: {'MET' if ocpp_p99 <= 100 else 'NOT MET'} "
        f"({ocpp_p99:.1f} ms)"
    )

    print()
    print(cpu_line("idle (Modbus polling only)", [idle]))
    print(cpu_line("phase A (exits, no chargers)", [w for _, w in a_blocks]))
    print(cpu_line("phase B (the same exits + chargers)", [f.exits for f in fleets if f.exits]))
    alone = [f.alone for f in fleets if f.alone]
    if alone:
        print(cpu_line("phase B (chargers alone, after the exits)", alone))
    print(cpu_line("phase B (whole)", [f.window for f in fleets if f.window]))

    lat_a = [x for lat, _ in a_blocks for x in lat]
    lat_b = [x for lat, _ in b_blocks for x in lat]
    even = [x for lat, _ in a_blocks[0::2] for x in lat]
    odd = [x for lat, _ in a_blocks[1::2] for x in lat]
    print(
        f"\nlane exits: A {len(lat_a)} opened, refused {dict(refused['A']) or 'none'}; "
        f"B {len(lat_b)} opened, refused {dict(refused['B']) or 'none'}; "
        f"{completed[0]} sessions completed by the lane"
    )
    print("lane decision latency (plate POST sent -> open-coil write at the controller):")
    print(f"  phase A (no chargers):  {describe(lat_a)}")
    print(f"  phase B ({args.chargers} chargers):  {describe(lat_b)}")
    if lat_a and lat_b:
        change = (pct(lat_b, 99) / pct(lat_a, 99) - 1) * 100
        p50_change = (pct(lat_b, 50) / pct(lat_a, 50) - 1) * 100
        print(f"  p99 change B vs A: {change:+.1f} %  (p50 {p50_change:+.1f} %)")
        print(f"  target lane p99 unchanged within 20 %: {'MET' if change <= 20 else 'NOT MET'}")
    if even and odd:
        a_names = ["A" if k == 0 else f"A{k + 1}" for k in range(len(a_blocks))]
        drift = (pct(odd, 99) / pct(even, 99) - 1) * 100
        print(
            f"  noise floor: p99 of A blocks {'+'.join(a_names[1::2])} vs "
            f"{'+'.join(a_names[0::2])} (no chargers either time): {drift:+.1f} %"
        )
    print(
        f"database: {charges[0]} charging sessions, {(charges[1] or 0) / 1000:.1f} kWh metered; "
        f"daemon log: {len(log_lines)} lines ({dict(levels) or 'no warnings'})"
        + (f", kept in {tmp}" if args.keep else "")
    )
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
