"""Login flood benchmark: does password guessing slow the exit kiosk or the exit lane?

    .venv/bin/python bench/logins.py [--clients 32] [--duration 30] [--rounds 1]

The daemon runs as on a site (``python -m gateway --config <tmp> run``, JSON logs at
warning level) with the exit lane of ``bench/ocpp.py`` (Modbus TCP against the tests'
barrier controller in this process, a smart camera posting plates) and its seeded paid
vehicles. Two things are timed all along, each from this process:

* the exit kiosk: ``POST /payments/validate-exit`` on random tickets, one after another;
* the lane: a car on the presence loop, its plate posted by the camera, until the
  open-coil write reaches the controller (the lane decision and its I/O).

Phase A is quiet. In phase B, ``--clients`` HTTP clients in another process, each from
its own loopback address (127.0.0.10 and up, as separate machines would), send wrong
passwords to ``/auth/login`` for ``--duration`` seconds, each waiting for its answer
before the next try (ten accounts, unknown e-mails mixed in). The phases run A B A; the
two A blocks are pooled and their difference printed as the noise floor. The target:
both p99s under the flood within 20 % of their quiet values.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/ocpp.py is named like the ocpp library: load it by path, under another name.
_spec = importlib.util.spec_from_file_location("bench_ocpp", HERE / "ocpp.py")
assert _spec is not None and _spec.loader is not None
lanes = importlib.util.module_from_spec(_spec)
sys.modules["bench_ocpp"] = lanes  # its dataclasses look their module up
_spec.loader.exec_module(lanes)

OPERATOR = lanes.OPERATOR
ACCOUNTS = [f"driver{n}@bench.example" for n in range(10)]


def flood(url: str, clients: int, seconds: float, results: Any) -> None:
    """``clients`` sequential guessers, one loopback address each, for ``seconds``."""

    async def one(n: int, codes: Counter[int]) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + n}")
        rng = random.Random(n)
        async with httpx.AsyncClient(transport=transport, timeout=30) as c:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                who = rng.choice(ACCOUNTS) if rng.random() < 0.7 else f"x{rng.random()}@e.x"
                try:
                    r = await c.post(
                        url, data={"username": who, "password": f"guess-{rng.random()}"}
                    )
                    codes[r.status_code] += 1
                except httpx.HTTPError:
                    codes[0] += 1

    async def run() -> Counter[int]:
        codes: Counter[int] = Counter()
        await asyncio.gather(*(one(n, codes) for n in range(clients)))
        return codes

    results.put(dict(asyncio.run(run())))


class Kiosk(threading.Thread):
    """validate-exit on random tickets, one after another, until stopped."""

    def __init__(self, base: str, tickets: list[str]) -> None:
        super().__init__(name="kiosk", daemon=True)
        self.base, self.tickets = base, tickets
        self.samples: list[float] = []
        self.stopping = threading.Event()
        self.errors = 0

    def run(self) -> None:
        rng = random.Random(7)
        with httpx.Client(base_url=self.base, timeout=10) as c:
            while not self.stopping.is_set():
                t0 = time.perf_counter()
                r = c.post(
                    "/payments/validate-exit", json={"ticket_number": rng.choice(self.tickets)}
                )
                if r.status_code == 200:
                    self.samples.append((time.perf_counter() - t0) * 1000)
                else:
                    self.errors += 1
                self.stopping.wait(0.01)


def write_config(tmp: Path, http_port: int, modbus_port: int) -> Path:
    config = lanes.write_config(
        tmp, http_port=http_port, ocpp_port=lanes.free_port(), modbus_port=modbus_port, heartbeat=60
    )
    text = config.read_text(encoding="utf-8").replace(
        "[ocpp]\nenabled = true", "[ocpp]\nenabled = false"
    )
    config.write_text(text, encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each block")
    parser.add_argument("--rounds", type=int, default=1, help="B blocks (with rounds + 1 A blocks)")
    parser.add_argument("--active", type=int, default=10000, help="paid cars inside (one per exit)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="carpark-bench-logins-"))
    controller = lanes.Controller(travel_s=0.002).start()
    http_port = lanes.free_port()
    config = write_config(tmp, http_port, controller.port)
    lanes.gateway(config, "migrate")
    lanes.gateway(config, "user", "create", "--email", OPERATOR[0], "--password", OPERATOR[1],
                  "--role", "operator")  # fmt: skip
    for email in ACCOUNTS:
        lanes.gateway(
            config,
            "user",
            "create",
            "--email",
            email,
            "--password",
            "the-right-one-1",
            "--role",
            "customer",
        )
    plates = lanes.seed(tmp / "gateway.db", args.active, 0, datetime.now(UTC))
    tickets = [f"TKT-{n:012X}" for n in range(1, args.active + 1)]
    log_path = tmp / "daemon.log"
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed at the end
    daemon = subprocess.Popen(
        [lanes.PYTHON, "-m", "gateway", "--config", str(config), "run"],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{http_port}"
    base = f"{root}/api/v1"
    quiet: list[tuple[list[float], list[float]]] = []
    loud: list[tuple[list[float], list[float], dict[int, int]]] = []
    load_before = os.getloadavg()[0]
    try:
        api = lanes.operator_client(daemon, root, log_path)
        camera = httpx.Client(base_url=base, headers={"X-API-Key": lanes.CAMERA_KEY}, timeout=10)
        lane = lanes.LaneDriver(controller, api, camera)
        lane.wait_lane(
            lambda s: all(v == "ok" for v in s["devices"].values()) and s["barrier"] == "closed",
            "healthy",
            timeout=15,
        )
        spread = iter([plates[(n * 7919) % len(plates)] for n in range(len(plates))])
        lane.run([next(spread) for _ in range(20)])  # warm-up

        def block(flooding: bool) -> None:
            kiosk = Kiosk(base, tickets)
            results: Any = None
            process = None
            if flooding:
                ctx = mp.get_context("spawn")
                results = ctx.Queue()
                process = ctx.Process(
                    target=flood,
                    args=(f"{base}/auth/login", args.clients, args.duration, results),
                    name="flood",
                )
                process.start()
                time.sleep(1)  # the guessers are connected and trying
            kiosk.start()
            exits: list[float] = []
            started = time.monotonic()
            while time.monotonic() - started < args.duration - (1 if flooding else 0):
                latency = lane.exit_one(next(spread))
                if latency is not None:
                    exits.append(latency)
            kiosk.stopping.set()
            kiosk.join()
            if process is not None:
                codes = results.get(timeout=120)
                process.join(30)
                loud.append((kiosk.samples, exits, codes))
            else:
                quiet.append((kiosk.samples, exits))

        for n in range(2 * args.rounds + 1):
            block(flooding=n % 2 == 1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log_file.close()
        controller.stop()

    def pooled(blocks: list[Any], i: int) -> list[float]:
        return [v for b in blocks for v in b[i]]

    codes: Counter[int] = Counter()
    for _, _, c in loud:
        codes.update(c)
    print(
        f"carpark-gateway login flood benchmark: {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, load average {load_before:.2f} at the start, "
        f"{args.clients} guessers x {args.duration:.0f} s, {args.rounds} round(s)"
    )
    print(f"flood answers: {dict(sorted(codes.items()))} (401 = password checked, 429 = throttled)")
    for name, i in (("validate-exit", 0), ("lane decision (read -> open coil)", 1)):
        q, f = pooled(quiet, i), pooled(loud, i)
        print(f"{name}")
        print(f"  quiet: {lanes.describe(q)}")
        print(f"  flood: {lanes.describe(f)}")
        if len(quiet) >= 2:
            a, b = quiet[0][i], quiet[-1][i]
            print(
                f"  noise floor (first vs last quiet block p99): {lanes.pct(a, 99):.2f} vs {lanes.pct(b, 99):.2f} ms"
            )
        if q and f:
            change = (lanes.pct(f, 99) / lanes.pct(q, 99) - 1) * 100
            verdict = "MET" if change <= 20 else "NOT MET"
            print(f"  p99 change under the flood: {change:+.1f} % (target <= +20 %: {verdict})")
    print(f"daemon log: {log_path}")


if __name__ == "__main__":
    main()
