"""Logins under attack: failed-login throttling, and argon2 kept away from the lanes.

Two things protect the site when someone tries passwords against the login form:

* :class:`LoginThrottle` counts failed logins per account and per client address over a
  sliding window. Past the limit the login is answered 429 with ``Retry-After`` (without
  checking the password, so guessing stops even for the right one); a successful login
  resets its account's count. Failures (401) and refusals (429) are answered no sooner
  than ``login_failure_delay_ms`` after the request arrived: a client that tries
  passwords one after the other then makes at most one try per delay, whatever it sends,
  and waiting costs the event loop nothing.
* :class:`PasswordHasher` runs argon2 (tens of milliseconds of CPU and 64 MiB of memory a
  try) in its own threads, at most ``password_hash_workers`` at once, scheduled only when
  the CPU is otherwise idle (SCHED_IDLE). Logins beyond that wait their turn (bounded by uvicorn's
  ``limit_concurrency``), so a flood slows the logins, never the lanes.

Locking an account for a while is the price of stopping guessing; the account's owner
waits at most ``login_window_minutes`` (the CLI still works for staff).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from litestar.exceptions import TooManyRequestsException

from gateway.config import AuthConfig
from gateway.errors import Unauthorized
from gateway.services import users
from gateway.timeutil import Clock

T = TypeVar("T")

MAX_TRACKED = 100_000
"""Keys (accounts and addresses) remembered at most; past it the longest-quiet key is
forgotten first. Forgetting only ever lets a client try again sooner."""


class LoginThrottle:
    """Failed logins per key in a sliding window; pure apart from its own memory.

    Keys are strings such as ``account:alice@example.com`` and ``address:10.0.0.7``;
    time is passed in, so the rules are tested without waiting.
    """

    def __init__(self, *, per_account: int, per_address: int, window: timedelta) -> None:
        self.limits = {"account": per_account, "address": per_address}
        self.window = window
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    @staticmethod
    def keys(account: str, address: str) -> tuple[str, str]:
        return f"account:{account.strip().lower()}", f"address:{address}"

    def _limit(self, key: str) -> int:
        return self.limits[key.partition(":")[0]]

    def retry_after(self, keys: tuple[str, ...], now: datetime) -> int | None:
        """Seconds until a login for these keys may be tried again, or None: not blocked."""
        waits = []
        for key in keys:
            failures = self._failures.get(key)
            limit = self._limit(key)
            if limit <= 0 or failures is None or len(failures) < limit:
                continue
            oldest = failures[-limit]
            remaining = (oldest + self.window - now).total_seconds()
            if remaining > 0:
                waits.append(max(1, math.ceil(remaining)))
        return max(waits) if waits else None

    def failed(self, keys: tuple[str, ...], now: datetime) -> None:
        for key in keys:
            limit = self._limit(key)
            failures = self._failures.pop(key, None) or deque(maxlen=max(1, limit))
            failures.append(now)
            self._failures[key] = failures  # most recently failed last
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, account_key: str) -> None:
        self._failures.pop(account_key, None)


def _lower_priority() -> None:
    """Run this worker thread (and the threads argon2 starts from it) only when the CPU
    has nothing else to do: Linux's SCHED_IDLE, else nice 10.

    Both belong to each thread on Linux, so the event loop's thread keeps its own: when the
    loop wants a core it gets it at once, and a flood of logins waits instead of the lanes.
    """
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):  # not allowed here: try the nice
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    with contextlib.suppress(OSError):  # not allowed either: the normal priority, then
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class PasswordHasher:
    """argon2 hashing and verification off the event loop, ``workers`` at a time."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._slots: asyncio.Semaphore | None = None
        self.waiting = 0  # logins queued for a worker (read by tests and the bench)

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread once one is free.

        The semaphore keeps waiting logins out of the pool's own (unbounded) queue, so a
        login whose client gave up while waiting costs no hashing at all; the pool's size
        bounds the threads hashing at once even when a request is cancelled mid-hash.
        """
        if self._slots is None:  # made on the loop that uses it
            self._slots = asyncio.Semaphore(self.workers)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Logins:
    """The login form's checks, in the order that keeps a flood cheap: throttle (no
    hashing), argon2 in a worker, then the count of failures."""

    def __init__(self, config: AuthConfig, clock: Clock) -> None:
        self.clock = clock
        self.throttle = LoginThrottle(
            per_account=config.login_max_failures_per_account,
            per_address=config.login_max_failures_per_address,
            window=timedelta(minutes=config.login_window_minutes),
        )
        self.hasher = PasswordHasher(config.password_hash_workers)
        self.delay = config.login_failure_delay_ms / 1000

    async def check(
        self,
        email: str,
        password: str,
        address: str,
        lookup: Callable[[str], dict[str, Any] | None],
    ) -> dict[str, Any]:
        """The user row for good credentials; 429 or 401 (after the delay) otherwise."""
        started = time.monotonic()
        keys = self.throttle.keys(email, address)
        wait = self.throttle.retry_after(keys, self.clock.now())
        if wait is not None:
            await self._pause(started)
            raise TooManyRequestsException(
                detail=f"too many failed logins; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        user = lookup(email)
        if await self.hasher.run(lambda: users.password_matches(user, password)):
            assert user is not None
            self.throttle.succeeded(keys[0])
            return user
        self.throttle.failed(keys, self.clock.now())
        await self._pause(started)
        raise Unauthorized("Incorrect e-mail or password")

    async def _pause(self, started: float) -> None:
        await asyncio.sleep(max(0.0, started + self.delay - time.monotonic()))

    def close(self) -> None:
        self.hasher.close()
