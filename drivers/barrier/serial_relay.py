"""A barrier that takes a dry contact, switched by a USB/RS-232 relay board.

Relay boards speak fixed byte sequences (configured as hex, e.g. ``"A0 01 01 A2"``) and
report nothing back, so the position reported is the driver's belief: ``unknown`` until
the first command, ``moving`` for ``travel_s`` after each command, then the commanded
position (kept across a reconnect of the port, and re-reported every ``REPORT_S``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import serial

from gateway.config import ConfigError, Options
from gateway.ports import REPORT_S, DeviceLink, DeviceUnavailable


def _hex(where: str, text: str) -> bytes:
    try:
        data = bytes.fromhex(text)
    except ValueError as err:
        raise ConfigError(f"{where}: not hex bytes: {text!r}") from err
    if not data:
        raise ConfigError(f"{where}: empty byte sequence")
    return data


class SerialRelayBarrier:
    def __init__(
        self,
        device: str,
        *,
        baudrate: int,
        open_bytes: bytes,
        close_bytes: bytes,
        release_bytes: bytes | None,
        pulse_ms: float,
        travel_s: float,
        timeout_s: float = 1.0,
    ) -> None:
        self.device, self.baudrate = device, baudrate
        self.open_bytes, self.close_bytes, self.release_bytes = (
            open_bytes,
            close_bytes,
            release_bytes,
        )
        self.pulse_s, self.travel_s, self.timeout_s = pulse_ms / 1000, travel_s, timeout_s
        self._port: serial.SerialBase | None = None
        self._lock = asyncio.Lock()
        self._link: DeviceLink | None = None
        self._moving: asyncio.Task[None] | None = None
        self._belief = "unknown"

    @classmethod
    def from_config(cls, table: Mapping[str, Any], where: str) -> SerialRelayBarrier:
        o = Options(table, where)
        o.text("driver")
        release = o.text("release_bytes", None)
        barrier = cls(
            o.text("device"),
            baudrate=o.integer("baudrate", 9600, low=300, high=921600),
            open_bytes=_hex(f"{where}.open_bytes", o.text("open_bytes")),
            close_bytes=_hex(f"{where}.close_bytes", o.text("close_bytes")),
            release_bytes=_hex(f"{where}.release_bytes", release) if release else None,
            pulse_ms=o.number("pulse_ms", 500.0, low=10, high=10_000),
            travel_s=o.number("travel_s", 3.0, low=0, high=60),
        )
        o.done()
        return barrier

    def _open_port(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(
                self.device,
                baudrate=self.baudrate,
                timeout=self.timeout_s,
                write_timeout=self.timeout_s,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceUnavailable(f"relay {self.device}: cannot open: {err}") from err

    async def run(self, link: DeviceLink) -> None:
        async with self._lock:
            self._port = await asyncio.to_thread(self._open_port)
        self._link = link
        link.healthy()
        link.report(self._belief)
        try:
            while True:  # the board says nothing; notice a vanished USB adapter
                for _ in range(int(REPORT_S)):
                    await asyncio.sleep(1.0)
                    port = self._port
                    if port is None or not port.is_open:
                        raise DeviceUnavailable(f"relay {self.device}: port closed")
                link.report(self._belief)
        finally:
            self._link = None
            if self._port is not None:
                self._port.close()
                self._port = None

    async def _send(self, data: bytes) -> None:
        async with self._lock:
            port = self._port
            if port is None:
                raise DeviceUnavailable(f"relay {self.device}: not connected")
            try:
                async with asyncio.timeout(self.timeout_s * 2):
                    await asyncio.to_thread(self._write, port, data)
            except (serial.SerialException, OSError, TimeoutError) as err:
                port.close()
                raise DeviceUnavailable(f"relay {self.device}: write failed: {err}") from err

    @staticmethod
    def _write(port: serial.SerialBase, data: bytes) -> None:
        port.write(data)
        port.flush()

    async def _command(self, data: bytes, position: str) -> None:
        await self._send(data)
        if self.release_bytes is not None:
            await asyncio.sleep(self.pulse_s)
            await self._send(self.release_bytes)
        if self._moving is not None:
            self._moving.cancel()
        self._belief = "moving"
        if self._link is not None:
            self._link.report("moving")

        async def arrive() -> None:
            await asyncio.sleep(self.travel_s)
            self._belief = position
            if self._link is not None:
                self._link.report(position)

        self._moving = asyncio.get_running_loop().create_task(
            arrive(), name=f"relay[{self.device}].travel"
        )

    async def open(self) -> None:
        await self._command(self.open_bytes, "open")

    async def close(self) -> None:
        await self._command(self.close_bytes, "closed")
