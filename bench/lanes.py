"""Lane benchmark: credential at an exit lane -> open-coil write at the Modbus controller.

    .venv/bin/python bench/lanes.py [--exits 1000] [--active 10000]

The daemon runs as it does in production (store, services, lane engine, Modbus driver)
on a fresh database holding ``--active`` vehicles inside, all paid; the barrier
controller is a pymodbus TCP server on loopback (the same peer the tests use). A queue
of cars stands on the presence loop; for each exit the benchmark presents a plate (as the
camera would), times until the open coil's write reaches the controller, then drives the
car through (safety loop on, off) and waits for the close command.

The time is taken in this process for both ends (``time.perf_counter`` when the plate is
handed to the lane, and when the controller's request handler sees the coil write), so
it includes the event-loop hops, the decision (session lookup, fee, payments) and the
Modbus round trip, but not the camera.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

# bench/ holds ocpp.py: keep this folder off sys.path so ``import ocpp`` is the library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.domain.lanes import Credential
from gateway.logging import setup_logging
from gateway.timeutil import iso
from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.peers import CLOSE_COIL, OPEN_COIL, PRESENCE, SAFETY, BarrierController, wait_for


def seed(db_path: str, active: int, now: datetime) -> list[str]:
    """``active`` paid vehicles inside, written the way the services would have."""
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
            "INSERT INTO rates (name, rate_type, amount, grace_period_minutes, effective_from, created_at,"
            " updated_at) VALUES ('Hourly', 'hourly', '5.00', 15, '2024-01-01T00:00:00.000000+00:00', ?, ?)",
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
                "INSERT INTO sessions (id, vehicle_id, ticket_number, status, entry_time, created_at,"
                " updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?)",
                [n, n, f"TKT-{n:012X}", entry, ts, ts],
            )
            conn.execute(
                "INSERT INTO payments (session_id, amount, tendered, payment_method, status,"
                " discount_amount, tax_amount, total_amount, receipt_number, paid_at, created_at,"
                " updated_at) VALUES (?, '25.00', '25.00', 'card', 'completed', '0.00', '0.00', '25.00',"
                " ?, ?, ?, ?)",
                [n, f"RCP-{uuid.uuid4().hex[:12].upper()}", ts, ts, ts],
            )
    conn.close()
    return plates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exits", type=int, default=1000)
    parser.add_argument("--active", type=int, default=10_000)
    args = parser.parse_args()

    setup_logging("warning", "json")
    tmp = Path(tempfile.mkdtemp(prefix="carpark-bench-lanes-"))
    controller = BarrierController(travel_s=0.002).start()
    lane = {
        "id": "exit-1",
        "kind": "exit",
        "barrier_timeout_s": 5,
        "barrier": {
            "driver": "modbus",
            "bus": "io",
            "unit": 1,
            "open_coil": OPEN_COIL,
            "close_coil": CLOSE_COIL,
            "command": "pulse",
            "pulse_ms": 20,
            "opened_input": 0,
            "closed_input": 1,
            "poll_hz": 200,
        },
        "presence_loop": {
            "driver": "modbus",
            "bus": "io",
            "unit": 1,
            "input": PRESENCE,
            "poll_hz": 200,
            "debounce_ms": 0,
        },
        "safety_loop": {
            "driver": "modbus",
            "bus": "io",
            "unit": 1,
            "input": SAFETY,
            "poll_hz": 200,
            "debounce_ms": 0,
        },
    }
    config = config_from(
        tmp,
        modbus={
            "io": {
                "transport": "tcp",
                "host": "127.0.0.1",
                "port": controller.port,
                "timeout_s": 0.5,
            }
        },
        lanes=[lane],
        logging={"level": "warning", "format": "json"},
    )
    # Wall-clock time: the payments above are inside their exit window for the whole run.
    clock = ManualClock(datetime.now(UTC))
    daemon, thread = start_daemon(config, clock)
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    started = time.perf_counter()
    plates = seed(config.database.path, args.active, clock.now())
    print(f"carpark-gateway lane benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"set-up: {args.active} paid vehicles inside ({time.perf_counter() - started:.1f} s); Modbus TCP peer "
        f"on 127.0.0.1:{controller.port}; inputs polled at 200 Hz"
    )
    assert daemon.lanes is not None
    lane_obj = daemon.lanes.get("exit-1")
    controller.presence(True)  # a queue of cars: someone is always on the presence loop
    wait_for(lambda: lane_obj.state.presence, what="presence")

    latencies: list[float] = []
    refused = 0
    for n in range(args.exits):
        plate = plates[(n * 7919) % len(plates)]  # spread over the table, no repeats
        opens_before = len(controller.writes_of(OPEN_COIL))
        closes_before = len(controller.writes_of(CLOSE_COIL))
        t0 = time.perf_counter()
        gw.call(lane_obj.present, Credential(kind="plate", value=plate))
        try:
            wait_for(
                lambda n=opens_before: len(controller.writes_of(OPEN_COIL)) > n,
                timeout=5,
                interval=0.0002,
            )
        except AssertionError:
            refused += 1
            continue
        latencies.append((controller.writes_of(OPEN_COIL)[opens_before].at - t0) * 1000)
        wait_for(lambda: lane_obj.state.position == "open", timeout=5, interval=0.001)
        controller.safety(True)
        wait_for(lambda: lane_obj.state.phase == "passing", timeout=5, interval=0.001)
        controller.safety(False)
        wait_for(
            lambda n=closes_before: len(controller.writes_of(CLOSE_COIL)) > n,
            timeout=5,
            interval=0.001,
        )
        wait_for(lambda: lane_obj.state.position == "closed", timeout=5, interval=0.001)

    daemon.request_stop()
    thread.join(15)
    controller.stop()
    conn = sqlite3.connect(config.database.path)
    completed = conn.execute("SELECT COUNT(*) FROM sessions WHERE status = 'completed'").fetchone()[
        0
    ]
    conn.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"exits: {len(latencies)} opened, {refused} refused, {completed} sessions completed by the lane"
    )
    print(
        f"credential -> open-coil write at the controller: p50 {q[49]:.2f} ms  p90 {q[89]:.2f} ms  "
        f"p99 {q[98]:.2f} ms  max {latencies[-1]:.2f} ms  mean {statistics.fmean(latencies):.2f} ms"
    )
    print(f"target p99 <= 20 ms: {'MET' if q[98] <= 20 else 'NOT MET'}")


if __name__ == "__main__":
    main()
