"""Shared fixtures: a real daemon on a free port over a real SQLite file, and HTTP clients.

The daemon runs in a thread with its own event loop, exactly as ``carpark-gateway run``
builds it (store, migrations, Litestar app inside uvicorn), so API tests make real HTTP
requests. Time is a :class:`ManualClock` the test moves forward; that is how the fee
rules are exercised without sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import (
    AuthConfig,
    Config,
    DatabaseConfig,
    HttpConfig,
    SiteConfig,
    build_config,
)
from gateway.daemon import Daemon
from gateway.services import users

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "password123"
_HASHES: dict[str, str] = {}

# Accounts for ``running(..., users=...)``: (email, role) or (email, role, full name).
ADMIN = ("admin@example.com", "admin")
OPERATOR = ("operator@example.com", "operator")
ALICE = ("alice@example.com", "customer")


def password_hash(password: str = PASSWORD) -> str:
    """argon2 is slow on purpose; hash each test password once per run."""
    if password not in _HASHES:
        _HASHES[password] = users.hash_password(password)
    return _HASHES[password]


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    return Config(
        site=SiteConfig(id="test-site", development=False),
        http=HttpConfig(host="127.0.0.1", port=0),
        database=DatabaseConfig(path=str(tmp_path / "gateway.db")),
        # Failed logins answer at once here; the delay has its own test (test_api_security).
        auth=AuthConfig(secret_key=SECRET, login_failure_delay_ms=0),
        **overrides,
    )


@dataclass
class Running:
    daemon: Daemon
    clock: ManualClock
    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.daemon.store

    def user(self, email: str, role: str = "customer", name: str = "Test User") -> int:
        """Create an account directly (as the CLI does) and remember a token for it."""
        uid = self.store.write_sync(
            lambda db: users.create_user(
                db,
                email=email,
                password_hash=password_hash(),
                full_name=name,
                role=role,
                phone=None,
                now=self.clock.now(),
            )
        )
        self.user_ids[email] = uid
        self.tokens[email] = self.token_for(uid)
        return int(uid)

    def token_for(self, user_id: int) -> str:
        from litestar.security.jwt import Token

        exp = datetime.now(UTC) + timedelta(minutes=30)
        return Token(sub=str(user_id), exp=exp).encode(SECRET, "HS256")

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the daemon's event loop (lanes are not thread-safe)."""
        loop = self.daemon._loop
        assert loop is not None
        loop.call_soon_threadsafe(fn, *args)

    def client(self, email: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[email]}"} if email else {}
        return httpx.Client(base_url=self.base_url + "/api/v1", headers=headers, timeout=10)


def config_from(tmp_path: Path, **sections: Any) -> Config:
    """A test config built the way a TOML file is read (lanes, modbus, ... as raw tables)."""
    raw: dict[str, Any] = {
        "site": {"id": "test-site", "development": False},
        "http": {"host": "127.0.0.1", "port": 0},
        "database": {"path": str(tmp_path / "gateway.db")},
        "auth": {"secret_key": SECRET},
        **sections,
    }
    return build_config(raw)


# Tasks still pending when a daemon's run() returned: the leak check fails the test.
LEAKED_TASKS: list[str] = []


async def _run_checked(daemon: Daemon) -> None:
    """The daemon's whole life, then a look for tasks it left behind (asyncio.run would
    cancel them silently)."""
    try:
        await daemon.run()
    finally:
        current = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        LEAKED_TASKS.extend(f"{t.get_name()}: {t.get_coro()!r}" for t in left)


def start_daemon(config: Config, clock: ManualClock) -> tuple[Daemon, threading.Thread]:
    daemon = Daemon(config, clock=clock)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_run_checked(daemon))
        except BaseException as err:  # surfaced below
            errors.append(err)

    thread = threading.Thread(target=target, name="daemon", daemon=True)
    thread.start()
    for _ in range(200):
        if daemon.ready.wait(0.05) or errors or not thread.is_alive():
            break
    if errors:
        raise errors[0]
    assert daemon.ready.is_set(), "daemon did not become ready"
    return daemon, thread


@contextmanager
def running(
    config: Config, clock: ManualClock, *, users: Iterable[tuple[str, ...]] = ()
) -> Iterator[Running]:
    """A started daemon with the given accounts, stopped (and checked stopped) on leaving."""
    daemon, thread = start_daemon(config, clock)
    try:
        gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
        for user in users:
            gw.user(*user)
        yield gw
    finally:
        daemon.request_stop()
        thread.join(15)
        assert not thread.is_alive(), "daemon did not stop"


# Worker threads that pools start on demand: the daemon's store, asyncio's default
# executor, AnyIO's threads for Litestar's sync handlers, the logins' argon2 workers.
POOL_WORKERS = ("store-reader_", "store-writer_", "asyncio_", "AnyIO worker thread", "argon2_")


def _leftover_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    if any(t.name == "daemon" and t.is_alive() for t in before):
        # A daemon of a wider-scoped fixture (a module's demo site) outlives this test and
        # starts pool workers when it needs them: those are its own, stopped with it.
        left = [t for t in left if not t.name.startswith(POOL_WORKERS)]
    return left


@pytest.fixture(autouse=True)
def no_leaked_threads_or_tasks() -> Iterator[None]:
    """Fails a test that leaves a thread running, or whose daemon ended with tasks still
    pending (pymodbus' own suite checks every test the same way). A thread gets a moment
    to finish: stopping one is allowed to take a poll interval."""
    before = set(threading.enumerate())
    LEAKED_TASKS.clear()
    yield
    deadline = time.monotonic() + 3.0
    while (left := _leftover_threads(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    tasks, LEAKED_TASKS[:] = list(LEAKED_TASKS), []
    assert not left, f"threads left running: {sorted(t.name for t in left)}"
    assert not tasks, f"tasks left pending when the daemon stopped: {tasks}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))


@pytest.fixture
def gw(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    users = [
        ("admin@example.com", "admin", "Site Admin"),
        ("operator@example.com", "operator", "Gate Operator"),
        ("alice@example.com", "customer", "Alice Driver"),
        ("bob@example.com", "customer", "Bob Driver"),
    ]
    with running(make_config(tmp_path), clock, users=users) as gw:
        yield gw


@pytest.fixture
def admin(gw: Running) -> Iterator[httpx.Client]:
    with gw.client("admin@example.com") as c:
        yield c


@pytest.fixture
def operator(gw: Running) -> Iterator[httpx.Client]:
    with gw.client("operator@example.com") as c:
        yield c


@pytest.fixture
def alice(gw: Running) -> Iterator[httpx.Client]:
    with gw.client("alice@example.com") as c:
        yield c


@pytest.fixture
def bob(gw: Running) -> Iterator[httpx.Client]:
    with gw.client("bob@example.com") as c:
        yield c


@pytest.fixture
def anon(gw: Running) -> Iterator[httpx.Client]:
    with gw.client() as c:
        yield c


@pytest.fixture
def site(gw: Running, admin: httpx.Client) -> dict[str, Any]:
    """A small site: one level, two zones, six spaces, a $5/h rate with 15 min grace."""
    level = admin.post("/levels", json={"name": "Level 1", "floor_number": 1}).json()
    zone_a = admin.post("/zones", json={"level_id": level["id"], "name": "Zone A"}).json()
    zone_b = admin.post("/zones", json={"level_id": level["id"], "name": "Zone B"}).json()
    spaces = []
    for n, (zone, stype) in enumerate(
        [
            (zone_a, "standard"),
            (zone_a, "standard"),
            (zone_a, "compact"),
            (zone_a, "ev_charging"),
            (zone_b, "standard"),
            (zone_b, "motorcycle"),
        ],
        start=1,
    ):
        r = admin.post(
            "/spaces", json={"zone_id": zone["id"], "space_number": f"S-{n}", "space_type": stype}
        )
        assert r.status_code == 201, r.text
        spaces.append(r.json())
    rate = admin.post(
        "/rates",
        json={
            "name": "Standard Hourly",
            "rate_type": "hourly",
            "amount": 5.0,
            "grace_period_minutes": 15,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    ).json()
    return {"level": level, "zone_a": zone_a, "zone_b": zone_b, "spaces": spaces, "rate": rate}


def demo_config(tmp_path: Path, travel_s: float | None = None, **simulation: Any) -> Config:
    """The embedded demo site (config/gateway.toml) as ``make run`` starts it, on free ports
    and a fresh database, with its traffic's parameters (and its barriers' travel time)
    optionally changed."""
    import tomllib

    raw = tomllib.loads((Path(__file__).parent.parent / "config" / "gateway.toml").read_text())
    raw["database"]["path"] = str(tmp_path / "demo.db")
    raw["http"]["port"] = 0
    raw["ocpp"]["port"] = 0
    raw.setdefault("lpr", {})["evidence_dir"] = str(tmp_path / "evidence")
    raw["simulation"].update(simulation)
    if travel_s is not None:
        for lane in raw["lanes"]:
            lane["barrier"]["travel_s"] = travel_s
    return build_config(raw)


@pytest.fixture(autouse=True)
def event_contract(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every event any test makes, and every MQTT message the gateway publishes, must be
    what /asyncapi.json says (tests/contract.py), checked when the test ends."""
    import aiomqtt

    from gateway.store import outbox as store_outbox
    from gateway.upstream import outbox as relay_outbox
    from tests import contract

    events: list[tuple[str, dict[str, Any]]] = []
    published: list[tuple[str, bytes, int, bool, bool]] = []
    append, publish = store_outbox.append, aiomqtt.Client.publish

    def recording_append(db: Any, event_type: str, data: Any, occurred_at: datetime) -> int:
        sequence = append(db, event_type, data, occurred_at)
        row = db.execute(
            "SELECT id, event_id, type, occurred_at, payload FROM outbox WHERE id = ?", [sequence]
        ).fetchone()
        keys = ("id", "event_id", "type", "occurred_at", "payload")
        events.append(
            (event_type, relay_outbox.envelope(dict(zip(keys, row, strict=True)), "site"))
        )
        return sequence

    async def recording_publish(
        self: Any,
        topic: str,
        payload: Any = None,
        qos: int = 0,
        retain: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        body = payload if isinstance(payload, bytes) else str(payload or "").encode()
        response = kwargs.get("properties") is not None
        published.append((topic, body, qos, retain, response))
        await publish(self, topic, payload, qos, retain, *args, **kwargs)

    monkeypatch.setattr(store_outbox, "append", recording_append)
    monkeypatch.setattr(aiomqtt.Client, "publish", recording_publish)
    yield
    problems: list[str] = []
    for event_type, envelope in events:
        problems += contract.event_problems(event_type, envelope)
    for topic, body, qos, retain, response in {p: None for p in published}:
        problems += contract.publish_problems(topic, body, qos, retain, response)
    if problems:
        unique = list(dict.fromkeys(problems))
        pytest.fail(
            f"{len(unique)} message(s) break the AsyncAPI contract:\n  " + "\n  ".join(unique[:20]),
            pytrace=False,
        )
