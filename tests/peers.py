"""Real protocol peers for the tests: a Modbus barrier controller, a serial pty.

``BarrierController`` is a pymodbus server whose registers behave like a barrier
controller with a loop detector card: writing the open coil makes the arm leave its
"closed" limit switch at once, travel for ``travel_s`` and then close its "opened"
switch, as the hardware would; the test sets the loop inputs. For fault injection it
has a fault input (while it is on, the controller takes commands and does nothing, as a
real one in fault does), ``ignore_commands`` (the same without the fault input), a link
that can drop and come back on the same port with its state (``drop``/``restore``),
and an arm that can be lifted by hand. Every coil write is recorded with the safety
loop's input at that moment, so a test can assert that no close ever reached it onto an
occupied loop. It runs in its own thread and event loop so the daemon under test talks
to it over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

OPEN_COIL, CLOSE_COIL = 0, 1
OPENED, CLOSED, FAULT, PRESENCE, SAFETY = 0, 1, 2, 3, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CoilWrite:
    coil: int
    value: bool
    at: float  # time.perf_counter() when it reached the controller
    safety: bool = False  # the safety loop's input at that moment
    obeyed: bool = True  # False: the controller was in fault or ignoring commands


@dataclass
class BarrierController:
    port: int = field(default_factory=free_port)
    unit: int = 1
    travel_s: float = 0.05
    inputs: list[bool] = field(
        default_factory=lambda: [False, True, False, False, False, False, False, False]
    )
    writes: list[CoilWrite] = field(default_factory=list)
    frozen: bool = False  # a jammed barrier: takes commands, never moves
    ignore_commands: bool = False
    serial_port: str | None = None  # RTU on this serial device instead of TCP

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._written = threading.Condition()  # notified after each coil write
        self._arrival: asyncio.TimerHandle | None = None
        self._chatter: tuple[int, float, float, float] | None = None  # input, hz, from, until
        self.reads = 0  # discrete-input reads served
        self.first_read_at: float | None = None  # perf_counter of the first read after start

    # -- the physical side ------------------------------------------------------------
    def set_input(self, index: int, value: bool) -> None:
        with self._lock:
            self.inputs[index] = value

    def presence(self, value: bool) -> None:
        self.set_input(PRESENCE, value)

    def safety(self, value: bool) -> None:
        self.set_input(SAFETY, value)

    def chatter(self, index: int, hz: float, seconds: float) -> None:
        """The input flips ``hz`` times a second for ``seconds`` (a square wave of the
        clock, so a stalled test thread cannot stretch it), then stays clear."""
        now = time.perf_counter()
        with self._lock:
            self._chatter = (index, hz, now, now + seconds)
            self.inputs[index] = False

    def _effective(self, now: float) -> list[bool]:
        inputs = list(self.inputs)
        if self._chatter is not None:
            index, hz, since, until = self._chatter
            if now < until:
                inputs[index] = int((now - since) * hz) % 2 == 0
        return inputs

    def chattering(self) -> bool:
        with self._lock:
            return self._chatter is not None and time.perf_counter() < self._chatter[3]

    def fault(self, value: bool) -> None:
        """The controller's fault relay: while on, it ignores its command inputs."""
        self.set_input(FAULT, value)

    def by_hand(self, to_open: bool) -> None:
        """Someone moves the arm (a maintenance crank): no command involved."""
        with self._lock:
            self.inputs[OPENED], self.inputs[CLOSED] = to_open, not to_open

    @property
    def position(self) -> str:
        with self._lock:
            if self.inputs[OPENED]:
                return "open"
            return "closed" if self.inputs[CLOSED] else "moving"

    def writes_of(self, coil: int, value: bool = True) -> list[CoilWrite]:
        with self._lock:
            return [w for w in self.writes if w.coil == coil and w.value == value]

    def closes_onto_the_loop(self) -> list[CoilWrite]:
        """Close commands that reached the controller while its safety loop was occupied."""
        return [w for w in self.writes_of(CLOSE_COIL) if w.safety]

    def wait_write(self, coil: int, before: int, timeout: float = 5.0) -> bool:
        """Wait until ``writes_of(coil)`` holds more than ``before`` writes (woken by the
        writes, not polling); False on timeout."""
        with self._written:
            return self._written.wait_for(lambda: len(self.writes_of(coil)) > before, timeout)

    def _travel(self, to_open: bool) -> None:
        assert self._loop is not None
        with self._lock:
            if self.inputs[OPENED if to_open else CLOSED]:
                return  # already there
            self.inputs[OPENED] = self.inputs[CLOSED] = False
        if self._arrival is not None:
            self._arrival.cancel()

        def arrive() -> None:
            with self._lock:
                self.inputs[OPENED], self.inputs[CLOSED] = to_open, not to_open

        self._arrival = self._loop.call_later(self.travel_s, arrive)

    async def _action(
        self,
        fc: int,
        start: int,
        address: int,
        count: int,
        regs: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if fc == 2:  # read discrete inputs: bit n of word n // 16
            with self._lock:
                self.reads += 1
                now = time.perf_counter()
                if self.first_read_at is None:
                    self.first_read_at = now
                words = [0] * len(regs)
                for n, bit in enumerate(self._effective(now)):
                    words[n // 16] |= int(bit) << (n % 16)
            regs[:] = words[: len(regs)]
        elif fc in (5, 15) and set_values is not None:
            now = time.perf_counter()
            for offset, value in enumerate(set_values):
                coil = address + offset
                with self._lock:
                    obeyed = not (self.frozen or self.ignore_commands or self.inputs[FAULT])
                    safety = self._effective(now)[SAFETY]
                    self.writes.append(CoilWrite(coil, bool(value), now, safety, obeyed))
                if value and obeyed and coil in (OPEN_COIL, CLOSE_COIL):
                    self._travel(coil == OPEN_COIL)
            with self._written:
                self._written.notify_all()
        return None

    # -- the server ---------------------------------------------------------------------
    def start(self) -> BarrierController:
        ready = threading.Event()
        self.first_read_at = None

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
            regs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
            device = SimDevice(
                self.unit, simdata=(bits, list(bits), regs, list(regs)), action=self._action
            )
            if self.serial_port is not None:
                self._server = ModbusSerialServer(device, port=self.serial_port, baudrate=115200)
            else:
                self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
            await self._server.serve_forever(background=True)
            ready.set()
            self._stopped = asyncio.Event()
            await self._stopped.wait()

        self._thread = threading.Thread(
            target=lambda: asyncio.run(main()), name="modbus-peer", daemon=True
        )
        self._thread.start()
        assert ready.wait(5), "modbus peer did not start"
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        server = self._server
        asyncio.run_coroutine_threadsafe(server.shutdown(), self._loop).result(5)
        self._server = None
        self._loop.call_soon_threadsafe(self._stopped.set)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None
        self._arrival = None  # an arm in travel stops where it is (its loop is gone)

    def drop(self) -> None:
        """The link goes: the server stops; the barrier, its inputs and its log stay."""
        self.stop()

    def restore(self) -> BarrierController:
        """The link comes back on the same port."""
        return self.start()


class Pty:
    """A pseudo-terminal pair: the daemon opens ``path``; the test is the device on ``fd``."""

    def __init__(self) -> None:
        self.fd, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave  # kept open so the line stays up while the daemon reopens it
        os.set_blocking(self.fd, False)
        import tty

        tty.setraw(slave)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read_all(self, wait: float = 0.0) -> bytes:
        time.sleep(wait)
        chunks = []
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.fd, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def assert_stays(
    predicate, seconds: float, interval: float = 0.02, what: str = "condition"
) -> None:  # type: ignore[no-untyped-def]
    """Assert that ``predicate`` holds for the whole of ``seconds``, polling; fails the
    moment it breaks. How a test claims that something did *not* happen."""
    started = time.monotonic()
    while True:
        assert predicate(), f"{what} broke after {time.monotonic() - started:.2f} s"
        if time.monotonic() - started >= seconds:
            return
        time.sleep(interval)


class SerialLink:
    """Two linked pseudo-terminals made by socat: a null-modem cable between two ports."""

    def __init__(self, directory: str) -> None:
        import shutil
        import subprocess

        socat = shutil.which("socat")
        assert socat, "socat is required (make test installs it)"
        self.a, self.b = f"{directory}/ttyA", f"{directory}/ttyB"
        self.proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: os.path.exists(self.a) and os.path.exists(self.b), what="socat ptys")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Broker:
    """A real Mosquitto on a free port, which the test can stop, kill and restart.

    Persistence is on (saved every second and at a clean stop) so that the central
    subscriber's session, and the messages queued for it, survive a broker restart the
    way they do on a production broker.
    """

    def __init__(self, directory: str) -> None:
        import shutil

        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.dir = directory
        self.conf = os.path.join(directory, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                f"persistence_location {directory}/\nautosave_interval 1\nmax_queued_messages 0\n"
                "max_inflight_messages 0\nset_tcp_nodelay true\n"
                # As root, mosquitto would drop to its own user and fail to write its
                # persistence file in our temporary folder.
                + ("user root\n" if os.geteuid() == 0 else "")
            )
        self.proc: Any = None

    def start(self) -> Broker:
        import subprocess

        self.proc = subprocess.Popen(
            [self.binary, "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(up, what="mosquitto listening")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class Central:
    """The central system: a paho client with a persistent session, collecting messages.

    MQTT 5 by default (session expiry one hour); ``protocol="3.1.1"`` for brokers that
    speak only that (NATS), with ``clean_session=False``.
    """

    def __init__(
        self, port: int, topic: str, client_id: str = "central", protocol: str = "5"
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.messages: list[tuple[str, bytes, bool, Any]] = []
        self._lock = threading.Lock()
        v5 = protocol == "5"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        self.topic = topic
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600

        def on_connect(
            client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
        ) -> None:
            client.subscribe(self.topic, qos=1)

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            with self._lock:
                self.messages.append(
                    (message.topic, message.payload, message.retain, message.properties)
                )

        def on_subscribe(client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
            self.suback = list(codes)

        self.suback: list[Any] | None = None  # the broker's answer to the subscription
        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        if v5:
            self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def on(self, prefix: str) -> list[tuple[str, bytes, bool, Any]]:
        with self._lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def events(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(payload) for topic, payload, _, _ in self.on("") if "/events/" in topic]

    def publish(self, topic: str, payload: str | bytes, properties: Any = None) -> None:
        self.client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
