"""Frame capture: RTSP, HTTP MJPEG, USB/V4L devices, video files, folders of images.

A capture thread reads continuously and keeps only the newest frame: a lane must look at
what is in front of the barrier now, never at a backlog (old frames are dropped, never
queued). A stream that fails is reopened with backoff by the thread; the lane sees the
camera in fault meanwhile.

Health is a level, re-read by the lane every fraction of a second (:meth:`Capture.problem`),
not only an event from the thread: a stream that stalls without closing (a frozen camera,
a half-open TCP connection) leaves the thread blocked inside ``read`` and sends nothing, so
the newest frame's age is what tells. Network streams are opened through FFmpeg with an
open timeout and a read timeout, so a dead host or a stall also ends in a reconnect.
Reconnecting backs off with jitter but never waits more than ``_MAX_BACKOFF_S``: a lane
without its camera refuses cars, and asking a camera again is cheap.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import structlog

log = structlog.get_logger("drivers.camera")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
STALL_S = 3.0  # no new frame for this long (or 3 frame intervals of a slow source): a fault
OPEN_TIMEOUT_MS = 5000  # FFmpeg: connecting to a camera
READ_TIMEOUT_MS = 8000  # FFmpeg: a read that gets nothing ends, and the stream is reopened
_MAX_BACKOFF_S = 5.0
_NETWORK = ("rtsp://", "rtsps://", "http://", "https://")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    seq: int
    at: float  # time.monotonic() when captured
    name: str = ""  # the file name, for folder sources


class FrameSource:
    """Something frames come from; ``read`` returns None at a (recoverable) failure."""

    frame_interval_s = 0.0  # the source's own pace (a folder's 1/fps), for stall detection

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> tuple[np.ndarray, str] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OpenCVSource(FrameSource):
    """cv2.VideoCapture: ``rtsp://``, ``http://`` MJPEG, a device index (``"0"``) or a video file."""

    def __init__(self, source: str, *, loop_file: bool = False) -> None:
        self.source = source
        self.loop_file = loop_file
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self.source.isdigit():
            cap = cv2.VideoCapture(int(self.source))
        elif self.source.lower().startswith(_NETWORK):
            # RTSP (UDP, falling back to TCP when the camera refuses UDP) and MJPEG over HTTP.
            cap = cv2.VideoCapture(
                self.source,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    OPEN_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    READ_TIMEOUT_MS,
                ],
            )
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"cannot open video source {self.source!r}")
        self._cap = cap

    def read(self) -> tuple[np.ndarray, str] | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.loop_file and Path(self.source).is_file():
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._cap.read()
            if not ok or image is None:
                return None
        return image, ""

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderSource(FrameSource):
    """Images of a folder in name order, at ``fps``; unreadable files are skipped with a log line."""

    def __init__(self, folder: str, *, fps: float = 5.0, loop: bool = True) -> None:
        self.folder, self.fps, self.loop = Path(folder), fps, loop
        self.frame_interval_s = 1 / fps
        self._files: list[Path] = []
        self._index = 0
        self._next_at = 0.0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise OSError(f"not a folder: {self.folder}")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise OSError(f"no images in {self.folder}")
        self._index = 0

    def read(self) -> tuple[np.ndarray, str] | None:
        delay = self._next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_at = time.monotonic() + 1 / self.fps
        for _ in range(len(self._files)):
            if self._index >= len(self._files):
                if not self.loop:
                    return None
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(str(path))
            if image is not None:
                return image, path.name
            log.warning("camera_image_unreadable", file=str(path))
        return None

    def show(self, name: str) -> None:
        """Continue from this file (tests and demos point the folder camera at a car)."""
        for i, path in enumerate(self._files):
            if path.name == name:
                self._index = i
                return
        raise FileNotFoundError(name)


class Capture:
    """The capture thread: always the newest frame, reconnect with backoff, health as a level."""

    def __init__(
        self,
        source: FrameSource,
        *,
        name: str,
        on_health: Callable[[str | None], None] = lambda _problem: None,
        stall_s: float = STALL_S,
    ) -> None:
        self.source, self.name, self.on_health = source, name, on_health
        self.stall_s = max(stall_s, 3 * source.frame_interval_s)
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None  # what the thread last said (None: frames flow)
        self._started_at = 0.0

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"camera[{self.name}].capture", daemon=True
        )
        self._thread.start()

    def problem(self, now: float | None = None) -> str | None:
        """Why the camera is not delivering now, or None: the thread's own report, else the
        age of the newest frame (a stall that the thread, blocked in ``read``, cannot report)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            reported, frame = self._problem, self._frame
        if reported is not None:
            return reported
        last = frame.at if frame is not None else self._started_at
        if now - last > self.stall_s:
            what = "no frame yet" if frame is None else "stream stalled"
            return f"camera {self.name}: {what} ({now - last:.0f} s without a frame)"
        return None

    def _report(self, problem: str | None) -> None:
        with self._lock:
            self._problem = problem
        self.on_health(problem)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def newest(self) -> Frame | None:
        with self._lock:
            return self._frame

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self.source.open()
            except (OSError, cv2.error) as err:
                attempt += 1
                self._report(f"camera {self.name}: {err}")
                self._stop.wait(_backoff(attempt))
                continue
            failures = 0
            while not self._stop.is_set():
                try:
                    got = self.source.read()
                except cv2.error as err:
                    log.warning("camera_read_error", camera=self.name, error=str(err))
                    got = None
                if got is None:
                    failures += 1
                    if failures >= 5:
                        break  # the stream is gone: reopen it
                    self._stop.wait(0.05)
                    continue
                attempt = failures = 0
                image, name = got
                with self._lock:
                    self._seq += 1
                    self._frame = Frame(image=image, seq=self._seq, at=time.monotonic(), name=name)
                    healed, self._problem = self._problem is not None, None
                if healed:
                    self.on_health(None)
            self.source.close()
            if not self._stop.is_set():
                attempt += 1
                self._report(f"camera {self.name}: stream lost")
                self._stop.wait(_backoff(attempt))
        self.source.close()


def _backoff(attempt: int) -> float:
    """Jittered exponential backoff (the house rule), capped at ``_MAX_BACKOFF_S``."""
    return min(_MAX_BACKOFF_S, random.uniform(0, 1.5 ** min(10, attempt)) / 2 + 0.2)


class MotionGate:
    """Simple frame differencing, so a camera without a loop only reads when something moves."""

    def __init__(self, threshold: float = 8.0, size: int = 64) -> None:
        self.threshold, self.size = threshold, size
        self._last: np.ndarray | None = None

    def moving(self, image: np.ndarray) -> bool:
        small = cv2.cvtColor(cv2.resize(image, (self.size, self.size)), cv2.COLOR_BGR2GRAY).astype(
            np.float32
        )
        last, self._last = self._last, small
        if last is None:
            return True
        return float(np.mean(np.abs(small - last))) >= self.threshold
