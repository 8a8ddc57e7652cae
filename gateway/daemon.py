"""The composition root: builds the store, the API and the subsystems, and runs them supervised.

One event loop, one root TaskGroup, every task named. Start-up order: open and migrate
the database, start serving the API, then tell systemd we are ready. Shutdown (SIGTERM
or SIGINT) runs in a fixed order: stop accepting requests and let those in flight
finish, stop the subsystems, then close the database after its last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import structlog
import uvicorn
from sqlite_utils import Database

from drivers import build_lane_devices
from drivers.charger.ocpp_csms import Csms
from drivers.charger.simulated import StationChargers
from drivers.charger.simulated_ocpp import run_simulated_charge_point
from drivers.modbus import ModbusBus, build_buses
from drivers.serial_line import SerialLineHub
from drivers.site_simulator import SiteSimulator
from gateway.api.app import create_app
from gateway.api.deps import Deps
from gateway.config import PLACEHOLDER_SECRET, Config
from gateway.evidence import EvidenceStore
from gateway.lanes.decisions import Decider
from gateway.lanes.engine import Lane
from gateway.lanes.manager import LaneManager
from gateway.metrics import Metrics
from gateway.ports import Charger
from gateway.services import SYSTEM, Ctx, development, memberships, reservations, users
from gateway.store import Store
from gateway.store import outbox as store_outbox
from gateway.systemd import notify, watchdog_interval, watchdog_loop
from gateway.timeutil import Clock, SystemClock
from gateway.upstream import outbox
from gateway.upstream.commands import CommandHandler
from gateway.upstream.http_push import HttpPushRelay
from gateway.upstream.mqtt import MqttBridge

log = structlog.get_logger("gateway.daemon")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: it must not install its own signal handlers (we own SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.charger: Charger = StationChargers(None)
        self.csms: Csms | None = None
        self.mqtt: MqttBridge | None = None
        self.lanes: LaneManager | None = None
        self.deps: Deps | None = None
        self.metrics: Metrics | None = None
        self.store: Store | None = None
        self.server: uvicorn.Server | None = None
        self.ready = threading.Event()  # set once the API is serving (tests wait on it)
        self._stop: asyncio.Event | None = None
        self.demo_accounts: list[development.DemoAccount] = []
        self.simulator: SiteSimulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The bound API port (useful when configured as 0)."""
        assert self.server is not None and self.server.servers, "not serving yet"
        sock = self.server.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    def request_stop(self) -> None:
        """Thread-safe: ask the daemon to shut down in order."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self) -> None:
        # The event loop shares the interpreter with the store's writer thread: hand the GIL
        # over every millisecond (not 5), so a barrier command is not held up by a commit.
        sys.setswitchinterval(0.001)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
        cfg = self.config
        self.store = store = Store(cfg.database.path, busy_timeout_ms=cfg.database.busy_timeout_ms)
        buses: dict[str, ModbusBus] = {}
        try:
            applied = store.migrate()
            if applied:
                log.info("migrations_applied", names=applied)
            self.config = cfg = await self._prepare_site(store, cfg)
            channels = [
                name
                for name, on in (("mqtt", cfg.mqtt.enabled), ("http", cfg.upstream_http.enabled))
                if on
            ]
            self.metrics = metrics = Metrics(store, lambda: channels)
            if cfg.ocpp.enabled:
                self.charger = StationChargers(None)
            deps = Deps(
                store=store,
                config=cfg,
                clock=self.clock,
                charger=self.charger,
                metrics=metrics,
                stopping=self._stop,
            )
            # Devices are built (and their options checked) before anything starts serving.
            buses.update(build_buses(cfg.modbus))
            hubs: dict[str, SerialLineHub] = {}
            decider = Decider(deps, EvidenceStore(cfg.lpr.evidence_dir, cfg.lpr.evidence_quota_mb))
            lanes = [
                Lane(
                    spec,
                    build_lane_devices(spec, buses, hubs, cfg.lpr),
                    decider,
                    self.clock,
                    exit_window=timedelta(minutes=cfg.parking.exit_window_minutes),
                )
                for spec in cfg.lanes
            ]
            self.lanes = LaneManager(lanes, decider)
            deps = replace(deps, lanes=self.lanes)
            decider.metrics = metrics
            self.deps = deps
            upstream: list[tuple[str, Callable[[], Awaitable[None]]]] = []
            if cfg.mqtt.enabled:
                self.mqtt = bridge = MqttBridge(
                    deps, cfg.mqtt, CommandHandler(deps, self.lanes), metrics
                )
                deps.upstream["mqtt"] = bridge
                upstream.append(("mqtt", bridge.run))
            if cfg.simulation.enabled:
                self.simulator = SiteSimulator(deps, self.lanes, cfg.simulation)
                await self.simulator.seed()
            if cfg.ocpp.enabled:
                self.csms = csms = Csms(deps, cfg.ocpp, cfg.ocpp_chargers)
                assert isinstance(self.charger, StationChargers)
                self.charger.csms = csms
                await store.write(csms.bind_configured_stations)
                upstream.append(("ocpp", csms.run))
                for cp_id in cfg.simulation.chargers if cfg.simulation.enabled else ():
                    upstream.append(
                        (
                            f"simulated-charger[{cp_id}]",
                            partial(run_simulated_charge_point, csms.local_url, cp_id),
                        )
                    )
            if cfg.upstream_http.enabled:
                relay = HttpPushRelay(deps, cfg.upstream_http, metrics)
                deps.upstream["http"] = relay
                upstream.append(("http-push", relay.run))
            app = create_app(deps)
            self.server = server = _EmbeddedServer(
                uvicorn.Config(
                    app,
                    host=cfg.http.host,
                    port=cfg.http.port,
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                    limit_concurrency=cfg.http.limit_concurrency,
                    timeout_graceful_shutdown=10,
                    server_header=False,
                )
            )
            async with asyncio.TaskGroup() as tg:
                serving = tg.create_task(server.serve(), name="api")
                helpers = [
                    tg.create_task(self._announce_ready(server), name="ready"),
                    tg.create_task(
                        supervised("housekeeping", lambda: housekeeping(deps, channels)),
                        name="housekeeping",
                    ),
                ]
                for name, run in upstream:
                    helpers.append(tg.create_task(supervised(name, run), name=name))
                helpers.append(tg.create_task(self.lanes.run(), name="lanes"))
                if self.simulator is not None:
                    helpers.append(
                        tg.create_task(
                            supervised("simulator", self.simulator.run), name="simulator"
                        )
                    )
                interval = watchdog_interval()
                if interval:
                    helpers.append(tg.create_task(watchdog_loop(interval), name="watchdog"))
                stop_wait = tg.create_task(self._stop.wait(), name="stop-signal")
                await asyncio.wait([serving, stop_wait], return_when=asyncio.FIRST_COMPLETED)
                log.info("daemon_stopping")
                notify("STOPPING=1")
                server.should_exit = True
                await self.lanes.shutdown()
                for task in [*helpers, stop_wait]:
                    task.cancel()
        finally:
            for bus in buses.values():
                bus.close()
            store.close()
            self.ready.clear()
            log.info("daemon_stopped")

    async def _prepare_site(self, store: Store, cfg: Config) -> Config:
        """Development mode: this database's own secret and the demo accounts; production
        mode: no demo account stays usable (see :mod:`gateway.services.development`)."""
        now = self.clock.now()
        if not cfg.site.development:
            retired = await store.write(lambda db: development.retire_demo_accounts(db, now))
            if retired:
                log.warning("demo_accounts_deactivated", accounts=retired)
            return cfg
        if cfg.auth.secret_key == PLACEHOLDER_SECRET:
            key = await store.write(lambda db: development.secret_key(db, now))
            cfg = replace(cfg, auth=replace(cfg.auth, secret_key=key))
        offered: list[development.DemoAccount] = []
        hashes: dict[str, str] = {}
        if development.needs_demo_accounts(store.reader):
            offered = development.new_demo_passwords()
            hashes = await asyncio.to_thread(
                lambda: {a.email: users.hash_password(a.password) for a in offered}
            )
        self.demo_accounts = await store.write(
            lambda db: development.demo_accounts(db, now, offered, hashes)
        )
        return cfg

    async def _announce_ready(self, server: uvicorn.Server) -> None:
        # uvicorn exposes readiness only as a flag, not an event.
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        cfg = self.config
        host = cfg.http.host if cfg.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        base = f"http://{host}:{self.port}"
        log.info(
            "daemon_ready",
            host=cfg.http.host,
            port=self.port,
            site=cfg.site.id,
            database=cfg.database.path,
            console=f"{base}/console",
        )
        if cfg.site.development:
            # For the person who just typed `make run`: where to go and how to sign in.
            # Development mode only; a production journal has the log line above.
            lines = [
                "",
                f"  {cfg.site.name} is running (development mode)",
                f"  console   {base}/console",
                f"  API docs  {base}/docs",
                *(
                    f"  demo {a.role:<9}{a.email:<22}password {a.password}"
                    for a in self.demo_accounts
                ),
                "",
            ]
            print("\n".join(lines), flush=True)
        self.ready.set()  # after the banner: whoever waits for ready can read it
        notify("READY=1")


HOUSEKEEPING_INTERVAL = 60.0


async def housekeeping(deps: Deps, channels: list[str]) -> None:
    """What time alone changes: reservation no-shows, membership terms, the outbox's retention.

    Delivered events are pruned after ``sync.retention_days``; undelivered ones never are.
    When the undelivered backlog passes ``sync.backlog_alarm`` an ``outbox_backlog_alarm``
    event is raised (once per crossing) and the site keeps working: a car park does not
    stop because its central system is down.
    """
    alarmed = False
    while True:
        ctx = deps.ctx_for(SYSTEM)
        retention = timedelta(days=deps.config.sync.retention_days)
        threshold = deps.config.sync.backlog_alarm

        def sweep(
            db: Database,
            ctx: Ctx = ctx,
            alarmed: bool = alarmed,
            retention: timedelta = retention,
            threshold: int = threshold,
        ) -> tuple[int, int, int, bool]:
            no_shows, terms = reservations.mark_no_shows(db, ctx), memberships.sweep(db, ctx)
            pruned = outbox.prune(db, channels, ctx.now - retention)
            backlog = max((outbox.depth(db, c)[0] for c in channels), default=0)
            if backlog > threshold and not alarmed:
                store_outbox.append(
                    db,
                    "outbox_backlog_alarm",
                    {"undelivered": backlog, "threshold": threshold},
                    ctx.now,
                )
            return no_shows, terms, pruned, backlog > threshold

        no_shows, terms, pruned, alarmed = await deps.store.write(sweep)
        if no_shows or terms or pruned:
            log.info(
                "housekeeping_done", no_shows=no_shows, memberships=terms, pruned_events=pruned
            )
        await asyncio.sleep(HOUSEKEEPING_INTERVAL)


async def supervised(
    name: str, factory: Callable[[], Awaitable[None]], *, max_delay: float = 60.0
) -> None:
    """Run a long-lived task forever: log its crash, back off with jitter, start it again.

    Only cancellation ends it; a failing subsystem never takes the daemon down.
    """
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            await factory()
            attempt = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task_crashed", task=name, attempt=attempt)
        if time.monotonic() - started > max_delay:
            attempt = 0
        attempt += 1
        await asyncio.sleep(min(max_delay, random.uniform(0, 1.5 ** min(10, attempt))))


def run_daemon(config: Config, **kwargs: Any) -> None:
    asyncio.run(Daemon(config, **kwargs).run())
