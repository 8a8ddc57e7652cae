"""Console benchmark: what rendering the operator console costs the lanes' event loop.

    .venv/bin/python bench/console.py [--inside 2000] [--watchers 5] [--seconds 20]

The demo site runs as ``make run`` starts it (simulated lanes, OCPP chargers, traffic at
30 cars a minute) on a fresh database with ``--inside`` more vehicles parked. It prints:

* the time to render the whole console page, a full resync of the live stream (what a
  reconnecting browser gets) and one incremental round after a commit, on the loop;
* the event loop's lag (a 10 ms sleep's overshoot, sampled all along) with no console
  open and then with ``--watchers`` consoles streaming live: the cost every lane pays.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.console import live
from gateway.console.render import Renderer
from gateway.console.session import StaffSession
from gateway.logging import setup_logging
from gateway.services import SYSTEM, Actor, sessions
from gateway.timeutil import SystemClock
from tests.conftest import demo_config, start_daemon
from tests.console_kit import console_client, sign_in


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inside", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    setup_logging("warning", "console")
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    daemon, thread = start_daemon(demo_config(tmp, arrivals_per_minute=30), SystemClock())  # type: ignore[arg-type]
    loop, deps = daemon._loop, daemon.deps
    assert loop is not None and deps is not None

    def on_loop(fn):  # type: ignore[no-untyped-def]
        async def run():  # type: ignore[no-untyped-def]
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(60)

    ctx = deps.ctx_for(SYSTEM)
    for start in range(0, args.inside, 200):
        plates = [f"BENCH{n:05d}" for n in range(start, min(args.inside, start + 200))]

        def enter(db, plates=plates):  # type: ignore[no-untyped-def]
            for plate in plates:
                sessions.entry(db, ctx, license_plate=plate, entry_gate="bench")

        daemon.store.write_sync(enter)  # type: ignore[union-attr]
    print(f"site: demo + {args.inside} vehicles inside, traffic 30 cars/min")

    staff = StaffSession(
        Actor(id=1, role="admin", email="bench@example.com"), "Bench", "x" * 32, None
    )  # type: ignore[arg-type]
    renderer = Renderer(deps, staff)
    timings: dict[str, list[float]] = {"page": [], "resync": [], "round": []}
    for _ in range(30):
        for name, fn in (
            ("page", lambda: renderer.page("")),
            ("resync", lambda: Renderer(deps, staff).changes(set(), None)),
            ("round", lambda: renderer.changes({live.SITE}, 0 if not timings["round"] else 10**9)),
        ):
            started = time.perf_counter()
            on_loop(fn)
            timings[name].append((time.perf_counter() - started) * 1000)
    for name, values in timings.items():
        print(f"render {name:<7} p50 {pct(values, 0.5):6.1f} ms  p99 {pct(values, 0.99):6.1f} ms")

    def lag(seconds: float) -> list[float]:
        async def sample() -> list[float]:
            out = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                out.append((time.perf_counter() - before - 0.01) * 1000)
            return out

        return asyncio.run_coroutine_threadsafe(sample(), loop).result(seconds + 30)

    quiet = lag(args.seconds)
    account = daemon.demo_accounts[0]
    stop = threading.Event()
    received = [0] * args.watchers

    def watch(i: int) -> None:
        client = console_client(f"http://127.0.0.1:{daemon.port}")
        sign_in(client, account.email, account.password)
        with client.stream("GET", "/console/live", timeout=None) as stream:
            for chunk in stream.iter_bytes():
                received[i] += len(chunk)
                if stop.is_set():
                    return

    threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(args.watchers)]
    for t in threads:
        t.start()
    time.sleep(2)
    busy = lag(args.seconds)
    stop.set()
    for name, values in (("no console", quiet), (f"{args.watchers} consoles", busy)):
        print(
            f"loop lag {name:<11} p50 {pct(values, 0.5):5.2f} ms  p99 {pct(values, 0.99):5.2f} ms"
            f"  max {max(values):6.1f} ms  ({len(values)} samples)"
        )
    print(
        f"streamed {sum(received) / 1024:.0f} KiB to {args.watchers} consoles in {args.seconds:.0f} s"
    )
    daemon.request_stop()
    thread.join(20)


if __name__ == "__main__":
    main()
