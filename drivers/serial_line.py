"""A serial port read as text lines, shared by the devices that listen on it.

pyserial is blocking, so a reader thread per port does the reading and hands complete
lines to the event loop. Bytes that are not ASCII text, and runs without a line end
longer than ``max_line``, are dropped with a log line: a noisy RS-232 cable must not
grow a buffer forever or crash the lane.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import serial
import structlog

from gateway.ports import DeviceUnavailable

log = structlog.get_logger("drivers.serial")


@dataclass
class LineSubscription:
    queue: asyncio.Queue[str | DeviceUnavailable] = field(
        default_factory=lambda: asyncio.Queue(maxsize=256)
    )

    def offer(self, item: str | DeviceUnavailable) -> None:
        if self.queue.full():  # a stalled consumer loses the oldest lines, never the loop
            self.queue.get_nowait()
        self.queue.put_nowait(item)


class SerialLineHub:
    def __init__(self, device: str, *, baudrate: int = 9600, max_line: int = 256) -> None:
        self.device, self.baudrate, self.max_line = device, baudrate, max_line
        self.subscriptions: list[LineSubscription] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> LineSubscription:
        sub = LineSubscription()
        self.subscriptions.append(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"serial[{self.device}].read"
            )
        return sub

    def unsubscribe(self, sub: LineSubscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        if not self.subscriptions and self._task is not None:
            self._task.cancel()
            self._task = None

    def _broadcast(self, item: str | DeviceUnavailable) -> None:
        for sub in list(self.subscriptions):
            sub.offer(item)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.subscriptions:
            stop = threading.Event()
            try:
                await asyncio.to_thread(self._read, loop, stop)
            except DeviceUnavailable as err:
                self._broadcast(err)
                await asyncio.sleep(1.0)
            finally:
                stop.set()

    def _read(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        try:
            port = serial.serial_for_url(self.device, baudrate=self.baudrate, timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceUnavailable(f"serial {self.device}: cannot open: {err}") from err
        buffer = bytearray()
        try:
            loop.call_soon_threadsafe(self._broadcast, "")  # the port is open: healthy
            while not stop.is_set():
                try:
                    chunk = port.read(256)
                except (serial.SerialException, OSError) as err:
                    raise DeviceUnavailable(f"serial {self.device}: read failed: {err}") from err
                if not chunk:
                    continue
                buffer.extend(chunk)
                while True:
                    end = next((i for i, b in enumerate(buffer) if b in (10, 13)), -1)
                    if end < 0:
                        break
                    raw, buffer = bytes(buffer[:end]), buffer[end + 1 :]
                    self._line(loop, raw)
                if len(buffer) > self.max_line:
                    log.warning("serial_garbage_dropped", device=self.device, size=len(buffer))
                    buffer.clear()
        finally:
            port.close()

    def _line(self, loop: asyncio.AbstractEventLoop, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            text = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            log.warning("serial_garbage_dropped", device=self.device, data=raw[:64].hex())
            return
        if not text.isprintable():
            log.warning("serial_garbage_dropped", device=self.device, data=raw[:64].hex())
            return
        loop.call_soon_threadsafe(self._broadcast, text)
