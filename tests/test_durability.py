"""kill -9 in the middle of a write load: every acknowledged write survives the restart.

The real daemon runs as a subprocess (``python -m gateway --config FILE run``) over a SQLite
file in ``tmp_path``. Client threads enter vehicles and pay for them as fast as the daemon
answers, and record every write it acknowledged (201). After ~1.5 s the daemon gets SIGKILL
while requests are in flight; it is started again on the same file and must still have
every acknowledged session and payment, each with its outbox event (one transaction per
command), and the file must pass ``PRAGMA integrity_check``.

What SIGKILL proves: nothing is acknowledged before its COMMIT, and a torn write load
leaves a database that opens, recovers its WAL and is consistent. It does not simulate a
power cut (the kernel still holds what the process wrote); ``synchronous = FULL`` is what
covers that case, and it is checked here as the daemon's setting.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

SECRET = "durability-secret-0123456789abcdef0123456789"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"
CLIENT_THREADS = 6
LOAD_SECONDS = 1.5
START_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Site:
    """The daemon's files, and how to run its command line and start it."""

    root: Path
    config: Path = field(init=False)
    database: Path = field(init=False)

    def __post_init__(self) -> None:
        self.database = self.root / "gateway.db"
        self.config = self.root / "gateway.toml"
        self.config.write_text(
            "\n".join(
                [
                    "[site]",
                    'id = "durability-test"',
                    "development = false",
                    "[http]",
                    'host = "127.0.0.1"',
                    "docs = false",
                    "[database]",
                    f"path = {json.dumps(str(self.database))}",
                    "[logging]",
                    'level = "warning"',
                    'format = "json"',
                    "",
                ]
            ),
            encoding="utf-8",
        )

    def env(self, port: int | None = None) -> dict[str, str]:
        # Only our own CARPARK_* settings: a developer's shell must not redirect the database.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARPARK_")}
        env["CARPARK_SECRET_KEY"] = SECRET
        if port is not None:
            env["CARPARK_HTTP_PORT"] = str(port)
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self, name: str) -> Daemon:
        port = _free_port()
        log = (self.root / f"{name}.log").open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
            env=self.env(port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child holds its own descriptor
        daemon = Daemon(
            proc=proc, base_url=f"http://127.0.0.1:{port}", log=self.root / f"{name}.log"
        )
        daemon.wait_ready()
        return daemon


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"daemon not ready after {START_TIMEOUT} s:\n{self.log.read_text()}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.base_url}/api/v1", headers=headers, timeout=10)

    def stop(self) -> int:
        """SIGTERM, the orderly shutdown systemd uses; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=10)


@dataclass
class Acknowledged:
    """What the daemon acknowledged, and what the clients saw go wrong before the kill."""

    sessions: dict[int, str] = field(default_factory=dict)  # session id -> ticket
    payments: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (session, receipt)
    unexpected: list[str] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _hammer(
    daemon: Daemon, token: str, worker: int, acked: Acknowledged, killed: threading.Event
) -> None:
    """Enter a new vehicle, pay for it, repeat; stop at the first transport error (the kill)."""
    entered = (datetime.now(UTC) - timedelta(minutes=100)).isoformat()
    with daemon.client(token) as client:
        for n in range(1_000_000):
            try:
                with acked.lock:
                    acked.in_flight += 1
                try:
                    r = client.post(
                        "/sessions/entry",
                        json={"license_plate": f"K{worker}X{n}", "entry_time": entered},
                    )
                finally:
                    with acked.lock:
                        acked.in_flight -= 1
                if r.status_code != 201:
                    if not killed.is_set():
                        acked.unexpected.append(f"entry {r.status_code}: {r.text}")
                    return
                body = r.json()
                session_id = body["session"]["id"]
                with acked.lock:
                    acked.sessions[session_id] = body["ticket_number"]

                with acked.lock:
                    acked.in_flight += 1
                try:
                    r = client.post(
                        "/payments",
                        json={"session_id": session_id, "payment_method": "card", "amount": 20.0},
                    )
                finally:
                    with acked.lock:
                        acked.in_flight -= 1
                if r.status_code != 201:
                    if not killed.is_set():
                        acked.unexpected.append(f"payment {r.status_code}: {r.text}")
                    return
                payment = r.json()
                with acked.lock:
                    acked.payments[payment["id"]] = (session_id, payment["receipt_number"])
            except httpx.TransportError as err:
                if not killed.is_set():
                    acked.unexpected.append(f"transport error before the kill: {err!r}")
                return


def _events(db: sqlite3.Connection, event_type: str, key: str) -> set[int]:
    return {
        int(row[0])
        for row in db.execute(
            "SELECT json_extract(payload, ?) FROM outbox WHERE type = ?", [f"$.{key}", event_type]
        )
    }


@pytest.mark.timeout(60)
def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    site = Site(tmp_path)
    created = site.cli(
        "user", "create", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, "--role", "admin"
    )
    assert created.returncode == 0, created.stderr

    daemons: list[Daemon] = []
    try:
        first = site.start("first")
        daemons.append(first)
        with first.client() as anon:
            r = anon.post("/auth/login", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
        with first.client(token) as admin:
            level = admin.post("/levels", json={"name": "L1", "floor_number": 1}).json()
            zone = admin.post("/zones", json={"level_id": level["id"], "name": "A"}).json()
            for n in range(10):
                r = admin.post("/spaces", json={"zone_id": zone["id"], "space_number": f"A-{n}"})
                assert r.status_code == 201, r.text
            r = admin.post(
                "/rates",
                json={
                    "name": "Hourly",
                    "rate_type": "hourly",
                    "amount": 5.0,
                    "effective_from": "2024-01-01T00:00:00Z",
                },
            )
            assert r.status_code == 201, r.text

        acked = Acknowledged()
        killed = threading.Event()
        threads = [
            threading.Thread(
                target=_hammer, args=(first, token, i, acked, killed), name=f"hammer-{i}"
            )
            for i in range(CLIENT_THREADS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        with acked.lock:
            in_flight_at_kill = acked.in_flight
            killed.set()
            os.kill(first.proc.pid, signal.SIGKILL)
        first.kill()  # reaps it
        for thread in threads:
            thread.join(15)
        assert not any(t.is_alive() for t in threads), "a client thread hung after the kill"
        assert first.proc.returncode == -signal.SIGKILL

        assert not acked.unexpected, acked.unexpected[:5]
        assert in_flight_at_kill > 0, "the kill did not land in the middle of the load"
        assert len(acked.sessions) >= 20 and len(acked.payments) >= 20, (
            f"too little load to mean anything: {len(acked.sessions)} sessions, "
            f"{len(acked.payments)} payments"
        )

        # -- restart on the same file: the public API still knows every acknowledged write --
        second = site.start("second")
        daemons.append(second)
        with second.client(token) as admin:  # same secret: the old token is still good
            newest_sessions = sorted(acked.sessions)[-20:]
            for session_id in newest_sessions:
                r = admin.get(f"/sessions/{session_id}")
                assert r.status_code == 200, r.text
                assert r.json()["ticket_number"] == acked.sessions[session_id]
            newest_payments = sorted(acked.payments)[-20:]
            for payment_id in newest_payments:
                r = admin.get(f"/payments/{payment_id}")
                assert r.status_code == 200, r.text
                assert r.json()["receipt_number"] == acked.payments[payment_id][1]
            # And the restarted daemon carries on: the last paid vehicle may leave.
            session_id, _ = acked.payments[newest_payments[-1]]
            r = admin.post("/sessions/exit", json={"ticket_number": acked.sessions[session_id]})
            assert r.status_code == 200, r.text
        assert second.stop() == 0, second.log.read_text()

        # -- the file itself, after an orderly shutdown --
        db = sqlite3.connect(site.database)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

            tickets = dict(db.execute("SELECT id, ticket_number FROM sessions"))
            missing = {s: t for s, t in acked.sessions.items() if tickets.get(s) != t}
            assert not missing, f"{len(missing)} acknowledged sessions lost: {list(missing)[:5]}"

            receipts = {
                pid: (sid, receipt)
                for pid, sid, receipt in db.execute(
                    "SELECT id, session_id, receipt_number FROM payments WHERE status = 'completed'"
                )
            }
            lost = {p: v for p, v in acked.payments.items() if receipts.get(p) != v}
            assert not lost, f"{len(lost)} acknowledged payments lost: {list(lost)[:5]}"

            # One transaction per command: every row has its event, acknowledged or not,
            # and no event names a row that did not commit.
            started = _events(db, "session_started", "session_id")
            assert set(acked.sessions) <= started
            assert started == set(tickets)
            paid = _events(db, "payment_completed", "payment_id")
            assert set(acked.payments) <= paid
            assert paid == set(receipts)
            # The outbox sequence is commit order: a session starts before it is paid for.
            started_at = dict(
                db.execute(
                    "SELECT json_extract(payload, '$.session_id'), id FROM outbox"
                    " WHERE type = 'session_started'"
                )
            )
            for session_id, seq in db.execute(
                "SELECT json_extract(payload, '$.session_id'), id FROM outbox"
                " WHERE type = 'payment_completed'"
            ):
                assert started_at[session_id] < seq
        finally:
            db.close()
    finally:
        for daemon in daemons:
            daemon.kill()


def _check_daemon_pragmas(path: Path) -> dict[str, Any]:
    from gateway.store.db import connect

    db = connect(path)
    try:
        return {
            "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": db.execute("PRAGMA synchronous").fetchone()[0],
        }
    finally:
        db.conn.close()


def test_store_connections_are_durable(tmp_path: Path) -> None:
    """The setting that makes an acknowledged commit survive a power cut, not only a kill."""
    assert _check_daemon_pragmas(tmp_path / "x.db") == {"journal_mode": "wal", "synchronous": 2}
