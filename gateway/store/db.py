"""The SQLite store: one file, WAL, durable commits, one writer.

Why this shape:

* ``synchronous=FULL`` in WAL mode makes every COMMIT reach the disk before we answer,
  so an acknowledged payment survives a power cut (sqlite-utils' ``enable_wal()`` does
  not set it, so we do).
* All writes go through a single writer thread holding the only write connection. SQLite
  has one writer anyway; doing it in one thread means no ``database is locked`` retries,
  commands are serialised in arrival order, and the fsync never blocks the event loop.
* Each command runs in ``BEGIN IMMEDIATE`` .. ``COMMIT`` together with the outbox rows it
  appends (see :mod:`gateway.store.outbox`), so the central system never misses a change.
* Reads use their own connection on the event-loop thread: in WAL mode they never wait
  for the writer, and the short indexed queries of the API cost less than a thread hop.
  Long reports use :meth:`Store.read_in_thread` so they do not stall the lanes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlite_utils import Database
from sqlite_utils.utils import dedupe_keys

from gateway.store.migrations import MIGRATIONS

T = TypeVar("T")
log = structlog.get_logger(__name__)


class ReadOnlyDatabase(Database):
    """A read connection: SQLite refuses writes on it, so ``query()`` needs no savepoint.

    sqlite-utils 4 runs every ``query()`` inside ``SAVEPOINT`` .. ``RELEASE`` so that a
    statement which turns out to write can be undone; that is two more statements (and a
    keyword scan of the SQL in Python) for every read. Our read connections are opened
    with ``PRAGMA query_only``, so SQLite itself refuses any write and the guard can go:
    the API's hot paths make 5 to 10 reads per request.
    """

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> Generator[dict[str, Any], None, None]:
        if self._tracer:
            self._tracer(sql, params)
        cursor = self.conn.execute(sql) if params is None else self.conn.execute(sql, params)
        if cursor.description is None:
            raise ValueError(
                "query() can only be used with SQL that returns rows - "
                "use execute() for other statements"
            )
        keys = dedupe_keys(d[0] for d in cursor.description)
        return (dict(zip(keys, row, strict=True)) for row in cursor)


def connect(path: str | Path, *, busy_timeout_ms: int = 5000, read_only: bool = False) -> Database:
    """Open the database with the pragmas every connection of ours needs.

    ``read_only`` connections refuse writes (``PRAGMA query_only``); the store's readers are.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
        return ReadOnlyDatabase(conn)
    return Database(conn)


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    pending = [m.name for m in MIGRATIONS.pending(db)]
    MIGRATIONS.apply(db)
    return pending


class Store:
    """The database as the rest of the daemon sees it."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._busy = busy_timeout_ms
        self._writer_db = connect(path, busy_timeout_ms=busy_timeout_ms)
        self._reader = connect(path, busy_timeout_ms=busy_timeout_ms, read_only=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="store-reader")
        self._thread_local = threading.local()
        self._closed = False
        self._commit_listeners: list[Callable[[], None]] = []

    # -- schema ---------------------------------------------------------------
    def migrate(self) -> list[str]:
        return migrate(self._writer_db)

    # -- writes ---------------------------------------------------------------
    def _run_write(self, fn: Callable[[Database], T]) -> T:
        db = self._writer_db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn`` as one transaction in the writer thread; returns after the durable commit."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._writer, self._run_write, fn)
        for listener in self._commit_listeners:
            listener()
        return result

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` on the event loop after every commit of :meth:`write` (relays wake up)."""
        self._commit_listeners.append(listener)

    def write_sync(self, fn: Callable[[Database], T]) -> T:
        """The same for synchronous callers (CLI, tests, benchmarks' setup)."""
        return self._writer.submit(self._run_write, fn).result()

    # -- reads ----------------------------------------------------------------
    @property
    def reader(self) -> Database:
        """The event loop's read connection (never used from another thread)."""
        return self._reader

    def _thread_reader(self) -> Database:
        db: Database | None = getattr(self._thread_local, "db", None)
        if db is None:
            db = connect(self.path, busy_timeout_ms=self._busy, read_only=True)
            self._thread_local.db = db
        return db

    async def read_in_thread(self, fn: Callable[[Database], T]) -> T:
        """For reads that scan many rows (reports), off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._thread_reader()))

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._writer_db.conn.close()
        self._reader.conn.close()
        log.info("store_closed", path=self.path)
