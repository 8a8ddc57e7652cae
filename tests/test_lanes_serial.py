"""Lanes on serial devices: a relay board barrier and a line-based loop detector, on ptys.

The test holds the device end of pseudo-terminals: it reads the exact bytes the gateway
sends to the relay board, and it writes the detector's text lines (and garbage).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.domain.lanes import Credential
from tests.conftest import ManualClock, Running, config_from, start_daemon
from tests.peers import Pty, assert_stays, wait_for

OPEN = bytes.fromhex("A00101A2")
CLOSE = bytes.fromhex("A00100A1")


@pytest.fixture
def relay() -> Iterator[Pty]:
    pty = Pty()
    yield pty
    pty.close()


@pytest.fixture
def detector() -> Iterator[Pty]:
    pty = Pty()
    yield pty
    pty.close()


def serial_lane(relay: Pty, detector: Pty) -> dict[str, Any]:
    return {
        "id": "exit-s",
        "kind": "exit",
        "mode": "free_exit",
        "barrier_timeout_s": 5,
        "barrier": {
            "driver": "serial_relay",
            "device": relay.path,
            "baudrate": 9600,
            "open_bytes": "A0 01 01 A2",
            "close_bytes": "A0 01 00 A1",
            "travel_s": 0.05,
        },
        "presence_loop": {
            "driver": "serial",
            "device": detector.path,
            "baudrate": 9600,
            "present": "^L1 ON$",
            "clear": "^L1 OFF$",
        },
        "safety_loop": {
            "driver": "serial",
            "device": detector.path,
            "baudrate": 9600,
            "present": "^L2 ON$",
            "clear": "^L2 OFF$",
        },
    }


@pytest.fixture
def serial_gw(tmp_path: Path, clock: ManualClock, relay: Pty, detector: Pty) -> Iterator[Running]:
    daemon, thread = start_daemon(
        config_from(tmp_path, lanes=[serial_lane(relay, detector)]), clock
    )
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    gw.user("operator@example.com", "operator")
    try:
        yield gw
    finally:
        daemon.request_stop()
        thread.join(15)


def status(gw: Running) -> dict[str, Any]:
    with gw.client("operator@example.com") as c:
        return dict(c.get("/lanes/exit-s").json())


def test_relay_bytes_and_detector_lines(serial_gw: Running, relay: Pty, detector: Pty) -> None:
    wait_for(
        lambda: status(serial_gw)["devices"]["presence_loop"] == "ok", what="detector port open"
    )
    detector.send(b"L1 ON\r\n")
    wait_for(lambda: status(serial_gw)["presence"], what="presence from the detector")
    assert serial_gw.daemon.lanes is not None
    serial_gw.call(
        serial_gw.daemon.lanes.present, "exit-s", Credential(kind="ticket", value="TKT-UNKNOWN0000")
    )
    # Free-exit mode lets even an unknown ticket out: the relay gets exactly its open bytes.
    sent = wait_for(lambda: relay.read_all(), what="relay bytes")
    assert sent == OPEN
    wait_for(lambda: status(serial_gw)["barrier"] == "open", what="assumed open after travel")
    detector.send(b"L2 ON\n")
    wait_for(lambda: status(serial_gw)["phase"] == "passing", what="passing")
    detector.send(b"L1 OFF\nL2 OFF\n")
    sent = wait_for(lambda: relay.read_all(), what="close bytes")
    assert sent == CLOSE


def test_garbage_on_the_line_is_ignored(serial_gw: Running, relay: Pty, detector: Pty) -> None:
    wait_for(
        lambda: status(serial_gw)["devices"]["presence_loop"] == "ok", what="detector port open"
    )
    detector.send(b"\xff\xfe\x00\x81garbage\n")  # not text
    detector.send(b"L1 O")  # half a line
    detector.send(b"X" * 600)  # a run without a line end
    detector.send(b"\nL9 ON\n")  # text that matches no pattern
    assert_stays(
        lambda: (s := status(serial_gw))["presence"] is False and s["fault"] is False,
        0.5,
        what="lane untouched by the noise",
    )
    detector.send(b"L1 ON\n")
    wait_for(lambda: status(serial_gw)["presence"], what="a good line still works")
    assert relay.read_all() == b""  # nothing was commanded by the noise


def test_lost_serial_port_is_a_fault(serial_gw: Running, relay: Pty, detector: Pty) -> None:
    wait_for(
        lambda: status(serial_gw)["devices"]["presence_loop"] == "ok", what="detector port open"
    )
    detector.close()  # the USB adapter is unplugged
    s = wait_for(lambda: (x := status(serial_gw))["fault"] and x, timeout=10, what="fault")
    assert s["devices"]["presence_loop"].startswith("fault")
    with serial_gw.client() as anon:
        assert anon.get("/levels").status_code == 200  # the rest of the daemon is untouched


def test_bad_device_config_names_the_key(tmp_path: Path, relay: Pty, detector: Pty) -> None:
    lane = serial_lane(relay, detector)
    lane["barrier"] = {**lane["barrier"], "open_bytes": "zz"}
    config = config_from(tmp_path, lanes=[lane])
    with pytest.raises(ConfigError, match=r"lanes\[exit-s\]\.barrier\.open_bytes"):
        start_daemon(config, ManualClock())
    lane = serial_lane(relay, detector)
    lane["presence_loop"] = {**lane["presence_loop"], "pattern": "x"}
    with pytest.raises(ConfigError, match="unknown key 'pattern'"):
        start_daemon(config_from(tmp_path, lanes=[lane]), ManualClock())
    with pytest.raises(ConfigError, match="kind must be one of"):
        config_from(tmp_path, lanes=[{**serial_lane(relay, detector), "kind": "sideways"}])


def test_clean_stop_sends_the_relay_its_shutdown_command(
    tmp_path: Path, clock: ManualClock, relay: Pty, detector: Pty
) -> None:
    # The relay's port closes when its driver is cancelled: the command has to go first.
    lane = {**serial_lane(relay, detector), "on_shutdown": "open"}
    daemon, thread = start_daemon(config_from(tmp_path, lanes=[lane]), clock)
    gw = Running(daemon=daemon, clock=clock, base_url=f"http://127.0.0.1:{daemon.port}")
    gw.user("operator@example.com", "operator")
    wait_for(lambda: status(gw)["devices"]["barrier"] == "ok", what="relay port open")
    assert relay.read_all() == b""
    daemon.request_stop()
    thread.join(15)
    assert not thread.is_alive()
    assert wait_for(lambda: relay.read_all(), what="open bytes at shutdown") == OPEN
