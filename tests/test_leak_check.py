"""The leak check of tests/conftest.py fails a test that leaves a thread or a daemon task
behind (run on inner test files, so that failing is what is asserted)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER_CONFTEST = "from tests.conftest import no_leaked_threads_or_tasks  # noqa: F401\n"

INNER_TESTS = """
import asyncio
import threading

from tests.conftest import _run_checked


def test_leaves_a_thread() -> None:
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(30,), name="forgotten", daemon=True).start()


def test_stops_its_thread() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, args=(30,), name="tidy", daemon=True)
    worker.start()
    stop.set()


class LeakyDaemon:
    async def run(self) -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(30), name="stray")


def test_daemon_leaves_a_task() -> None:
    asyncio.run(_run_checked(LeakyDaemon()))
"""


def test_leftover_threads_and_tasks_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*threads left running: ?'forgotten'?*",
            "*tasks left pending when the daemon stopped: ?'stray: *",
        ]
    )
