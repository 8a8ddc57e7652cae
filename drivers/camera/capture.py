"""Frame capture: RTSP, HTTP MJPEG, USB/V4L devices, video files, folders of images.

A capture thread reads continuously and keeps only the newest frame: a lane must look at
what is in front of the barrier now, never at a backlog (old frames are dropped, never
queued). A stream that fails is reopened with backoff by the thread; the lane sees the
camera in fault meanwhile.
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


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    seq: int
    at: float  # time.monotonic() when captured
    name: str = ""  # the file name, for folder sources


class FrameSource:
    """Something frames come from; ``read`` returns None at a (recoverable) failure."""

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
        target: int | str = int(self.source) if self.source.isdigit() else self.source
        cap = cv2.VideoCapture(target)
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
    """The capture thread: always the newest frame, reconnect with backoff, health callbacks."""

    def __init__(
        self, source: FrameSource, *, name: str, on_health: Callable[[str | None], None]
    ) -> None:
        self.source, self.name, self.on_health = source, name, on_health
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"camera[{self.name}].capture", daemon=True
        )
        self._thread.start()

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
                self.on_health(f"camera {self.name}: {err}")
                self._stop.wait(min(30.0, random.uniform(0, 1.5 ** min(10, attempt)) / 2 + 0.2))
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
                if failures or attempt:
                    attempt = 0
                failures = 0
                self.on_health(None)
                image, name = got
                with self._lock:
                    self._seq += 1
                    self._frame = Frame(image=image, seq=self._seq, at=time.monotonic(), name=name)
            self.source.close()
            if not self._stop.is_set():
                attempt += 1
                self.on_health(f"camera {self.name}: stream lost")
                self._stop.wait(min(30.0, random.uniform(0, 1.5 ** min(10, attempt)) / 2 + 0.2))
        self.source.close()


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
