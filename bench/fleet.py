"""Fleet sizing: events per visit, bytes per event, events per site per day.

    .venv/bin/python bench/fleet.py [--seconds 90] [--arrivals 30] [--visits-per-hour 200]

The demo site (``config/gateway.toml``: one entry and one exit lane on simulated barriers
and loops) runs as ``make run`` runs it, with its simulated traffic sped up: vehicles
arrive at ``--arrivals`` per minute, park 2-6 s, 70 % pay before the exit and the others
are refused there, pay and try again (as the demo does). OCPP and its simulated chargers
are off, so the figures are those of parking visits alone. Nothing is estimated: the
outbox is read afterwards and every event counted, and its size taken as the MQTT
payload the relay publishes (``gateway.upstream.outbox.envelope_bytes``) plus its topic.

Printed: visits completed, events per visit (with the kinds), bytes per event (payload,
and payload + topic as on the wire), and the events and bytes per site and day at
``--visits-per-hour`` visits per lane and hour for a site with one entry and one exit
lane (each visit passes both), the figure to size a clustered broker for a fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

# bench/ itself off the path: bench/ocpp.py would shadow the ocpp library.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from gateway.config import build_config
from gateway.daemon import Daemon
from gateway.logging import setup_logging
from gateway.upstream.outbox import envelope_bytes

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--arrivals", type=float, default=30.0, help="vehicles per minute")
    parser.add_argument("--visits-per-hour", type=float, default=200.0, help="per lane")
    args = parser.parse_args()
    raw: dict[str, Any] = tomllib.loads((ROOT / "config/gateway.toml").read_text())
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    raw["database"]["path"] = str(workdir / "fleet.db")
    raw["http"]["port"] = 0
    raw["ocpp"]["enabled"] = False
    raw["simulation"].update(
        arrivals_per_minute=args.arrivals, dwell_min_s=2, dwell_max_s=6, chargers=[]
    )
    for lane in raw["lanes"]:
        lane["barrier"]["travel_s"] = 0.3
    setup_logging("warning", "json")
    daemon = Daemon(build_config(raw, source="bench"))
    thread = threading.Thread(target=lambda: asyncio.run(daemon.run()), name="daemon")
    thread.start()
    if not daemon.ready.wait(60):
        raise SystemExit("the daemon did not start")
    time.sleep(args.seconds)
    daemon.request_stop()
    thread.join(60)

    import sqlite3

    conn = sqlite3.connect(workdir / "fleet.db")
    rows = conn.execute(
        "SELECT id, event_id, type, occurred_at, payload FROM outbox ORDER BY id"
    ).fetchall()
    site = raw["site"]["id"]
    keys = ("id", "event_id", "type", "occurred_at", "payload")
    events = [dict(zip(keys, r, strict=True)) for r in rows]
    # Each event goes to its visit: by session_id, or (vehicle_registered) by the vehicle
    # of the session. A visit counts when it completed (its session_completed is there).
    vehicle_session: dict[int, int] = {}
    for e in events:
        data = json.loads(e["payload"])
        e["data"] = data
        if e["type"] == "session_started":
            vehicle_session.setdefault(data["vehicle_id"], data["session_id"])
    completed = {e["data"]["session_id"] for e in events if e["type"] == "session_completed"}
    if not completed:
        raise SystemExit("no visit completed: run longer")
    of_visits: list[dict[str, Any]] = []
    others = collections.Counter()
    for e in events:
        sid = e["data"].get("session_id")
        if sid is None and e["type"] == "vehicle_registered":
            sid = vehicle_session.get(e["data"]["vehicle_id"])
        if sid in completed:
            of_visits.append(e)
        elif sid is None:
            others[e["type"]] += 1
    visits = len(completed)
    per_visit = len(of_visits) / visits
    kinds = collections.Counter(e["type"] for e in of_visits)
    sizes = [len(envelope_bytes(e, site)) for e in of_visits]
    topics = [len(f"carpark/{site}/events/{e['type']}") for e in of_visits]
    wire = [s + t + 4 for s, t in zip(sizes, topics, strict=True)]  # + fixed header, packet id
    print(f"visits completed: {visits} in {args.seconds:.0f} s")
    print(f"events per visit: {per_visit:.2f}")
    for kind, n in kinds.most_common():
        print(f"    {kind}: {n / visits:.2f} per visit")
    if others:
        print(f"events of no visit (the site's set-up, refusals of unknown plates): {dict(others)}")
    print(
        f"bytes per event: payload mean {statistics.mean(sizes):.0f}, p50"
        f" {statistics.median(sizes):.0f}, max {max(sizes)}; on the wire (topic and MQTT"
        f" header) mean {statistics.mean(wire):.0f}"
    )
    per_day = args.visits_per_hour * 24 * per_visit
    print(
        f"at {args.visits_per_hour:.0f} visits per lane and hour (one entry + one exit lane):"
        f" {per_day:,.0f} events per site per day, {per_day * statistics.mean(wire) / 1e6:.1f} MB;"
        f" {per_day / 86400:.2f} events/s per site on average"
    )
    conn.close()
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
