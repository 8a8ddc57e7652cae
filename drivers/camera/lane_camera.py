"""The camera of a lane: armed by the presence loop, reads until one confident plate.

Capture runs in its thread (newest frame only); detection and OCR run in a worker thread
of their own, so the event loop never waits for OpenCV. While the lane's presence loop is
occupied the worker reads every new frame, and all reads of that presence are grouped
and voted into one :class:`~gateway.domain.plate_reads.PlateVote`; the first confident
vote is handed to the lane. A camera without a loop runs continuously, gated by motion,
and groups reads separated by less than a few seconds.

Smart cameras (``driver = "smart"``) recognise plates on board and post their reads to
``POST /api/v1/lpr/reads``; those reads go through the same grouping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import structlog

from drivers.camera.capture import (
    STALL_S,
    Capture,
    FolderSource,
    FrameSource,
    MotionGate,
    OpenCVSource,
)
from gateway.config import ConfigError, LprConfig, Options
from gateway.domain.plate_reads import (
    SURE_CHARACTER,
    Observation,
    PlateRules,
    PlateVote,
    ReadGrouper,
)
from gateway.domain.plates import InvalidPlate, normalize_plate

log = structlog.get_logger("drivers.camera")
HEALTH_POLL_S = 0.2


@dataclass(frozen=True)
class Evidence:
    frame: np.ndarray | None
    crop: np.ndarray | None


@dataclass(frozen=True)
class CameraRead:
    """A voted read, ready for the lane: what was read, how sure, and the pictures."""

    camera_id: str
    source: str  # camera | smart_camera
    vote: PlateVote
    confident: bool
    triggered_at: float  # time.perf_counter() when the group started (presence, first read)
    evidence: Evidence


ReadSink = Callable[[CameraRead], None]


class LaneCamera:
    """One lane's camera (or smart camera). ``run`` reports health like the other devices."""

    def __init__(
        self,
        camera_id: str,
        *,
        source: FrameSource | None,
        pipeline: Any | None,
        rules: PlateRules,
        roi: tuple[int, int, int, int] | None,
        continuous: bool,
        min_confidence: float,
        min_reads: int,
        api_key: str | None,
        stall_s: float = STALL_S,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.pipeline = (
            pipeline  # detection + OCR (drivers.camera.lpr.LprPipeline), None for smart cameras
        )
        self.rules = rules
        self.roi = roi
        self.continuous = continuous
        self.api_key = api_key
        self.stall_s = stall_s
        self.grouper = ReadGrouper(min_confidence=min_confidence, min_reads=min_reads)
        self.sink: ReadSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed = threading.Event()
        self._group_started = 0.0
        self._health: str | None = "starting"
        self._lock = threading.Lock()  # the grouper is fed from the worker thread and the API

    @property
    def smart(self) -> bool:
        return self.source is None

    # -- lane side ------------------------------------------------------------------------
    def set_armed(self, armed: bool) -> None:
        """The presence loop: a vehicle is in front of the barrier (or has left)."""
        with self._lock:
            if armed and not self._armed.is_set():
                self._group_started = time.perf_counter()
                self.grouper.arm()
                self._armed.set()
            elif not armed and self._armed.is_set():
                self._armed.clear()
                final = self.grouper.disarm()
                if final is not None:
                    # Never confident enough: kept for the operator, not used for a decision.
                    self._emit(final, confident=False, started=self._group_started)

    async def run(self, link: Any) -> None:
        self._loop = asyncio.get_running_loop()
        if self.smart:
            link.healthy()
            await asyncio.Event().wait()
        assert self.source is not None and self.pipeline is not None
        capture = Capture(self.source, name=self.camera_id, stall_s=self.stall_s)
        stop = threading.Event()
        worker = threading.Thread(
            target=self._work,
            args=(capture, self.pipeline, stop),
            daemon=True,
            name=f"camera[{self.camera_id}].lpr",
        )
        capture.start()
        worker.start()
        reported: str | None = "starting"
        try:
            while True:
                # Level-triggered: the capture's health is re-read every tick, so a stall
                # that no thread reports (a camera frozen mid-stream) is seen as well. The
                # capture thread reconnects by itself; the lane only hears about it.
                problem = capture.problem()
                if problem != reported and (problem is not None or capture.newest()):
                    reported = self._health = problem
                    if problem is None:
                        link.healthy()
                    else:
                        link.lost(problem)
                await asyncio.sleep(HEALTH_POLL_S)
        finally:
            stop.set()
            # The capture thread may sit in a stream's read for its timeout: never on the loop.
            await asyncio.to_thread(capture.stop)
            await asyncio.to_thread(worker.join, 5)

    # -- smart cameras --------------------------------------------------------------------
    def external_read(
        self,
        plate: str,
        confidence: float,
        at: datetime,
        image: np.ndarray | None,
        crop: np.ndarray | None = None,
    ) -> None:
        """A read from a smart camera (already OCRed on board), with its pictures if any."""
        observation = Observation(
            text=plate, confidence=confidence, at=at, evidence=Evidence(image, crop)
        )
        with self._lock:
            if not self._armed.is_set() and not self.continuous:
                # No vehicle on the loop (yet): smart cameras often read before the loop triggers.
                self._group_started = time.perf_counter()
                self.grouper.arm()
                self._armed.set()
            result = self.grouper.add(observation, continuous=self.continuous)
            if result is not None:
                self._emit(
                    result,
                    confident=True,
                    started=self._group_started or time.perf_counter(),
                    source="smart_camera",
                )

    # -- the worker thread ----------------------------------------------------------------
    def _work(self, capture: Capture, pipeline: Any, stop: threading.Event) -> None:
        last_seq = -1
        motion = MotionGate()
        while not stop.is_set():
            if not self.continuous and not self._armed.wait(0.1):
                continue
            frame = capture.newest()
            if frame is None or frame.seq == last_seq:
                stop.wait(0.005)
                continue
            last_seq = frame.seq
            if self.continuous and not motion.moving(frame.image):
                continue
            try:
                reads = pipeline.process(frame.image, roi=self.roi)
            except Exception:  # a frame OpenCV cannot digest must not stop the camera
                log.exception("camera_frame_failed", camera=self.camera_id)
                continue
            now = datetime.now(UTC)
            for read in reads:
                text, valid = self._conform(read.text, read.char_confidences)
                if text is None:
                    continue
                # Outside the site's formats: a doubtful read counts half; a confident one
                # (every character sure) is a plate from elsewhere and counts in full.
                sure = min(read.char_confidences, default=0.0) >= SURE_CHARACTER
                confidence = float(read.confidence) * (1.0 if valid or sure else 0.5)
                observation = Observation(
                    text=text,
                    confidence=confidence,
                    at=now,
                    evidence=Evidence(frame.image, read.crop),
                )
                with self._lock:
                    if not self.continuous and not self._armed.is_set():
                        break
                    if self.continuous and self.grouper.last_at is None:
                        self._group_started = time.perf_counter()
                    result = self.grouper.add(observation, continuous=self.continuous)
                    if result is not None:
                        self._emit(result, confident=True, started=self._group_started)

    def _conform(self, raw: str, chars: tuple[float, ...] = ()) -> tuple[str | None, bool]:
        try:
            text = normalize_plate(raw)
        except InvalidPlate:
            return None, False
        # The OCR's text has no separators, so its confidences line up with the plate.
        return self.rules.conform(text, char_confidences=chars if len(chars) == len(text) else None)

    def _emit(
        self, result: PlateVote, *, confident: bool, started: float, source: str = "camera"
    ) -> None:
        evidence = (
            result.best.evidence
            if isinstance(result.best.evidence, Evidence)
            else Evidence(None, None)
        )
        read = CameraRead(
            camera_id=self.camera_id,
            source=source,
            vote=result,
            confident=confident,
            triggered_at=started,
            evidence=evidence,
        )
        sink, loop = self.sink, self._loop
        if sink is None or loop is None:
            return
        if threading.current_thread() is threading.main_thread() or _in_loop(loop):
            sink(read)
        else:
            loop.call_soon_threadsafe(sink, read)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def build_camera(
    table: Mapping[str, Any],
    where: str,
    lane_id: str,
    lpr: LprConfig,
    pipeline_factory: Callable[[], Any],
) -> LaneCamera:
    o = Options(table, where)
    driver = o.choice("driver", ("opencv", "folder", "smart"))
    camera_id = o.text("camera_id", f"{lane_id}-camera")
    source: FrameSource | None = None
    if driver == "opencv":
        source = OpenCVSource(o.text("source"), loop_file=o.flag("loop", False))
    elif driver == "folder":
        source = FolderSource(
            o.text("folder"), fps=o.number("fps", 5.0, low=0.1, high=120), loop=o.flag("loop", True)
        )
    roi_value = o.raw("roi")
    roi: tuple[int, int, int, int] | None = None
    if roi_value is not None:
        if (
            not isinstance(roi_value, list)
            or len(roi_value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in roi_value)
        ):
            raise ConfigError(f"{where}.roi must be [x, y, width, height] in pixels")
        roi = (roi_value[0], roi_value[1], roi_value[2], roi_value[3])
    camera = LaneCamera(
        camera_id,
        source=source,
        pipeline=None if driver == "smart" else pipeline_factory(),
        rules=PlateRules.from_patterns(lpr.formats),
        roi=roi,
        continuous=o.choice("mode", ("triggered", "continuous"), "triggered") == "continuous",
        min_confidence=o.number("min_confidence", lpr.min_confidence, low=0, high=1),
        # A smart camera has voted already and pushes once per vehicle; frames need two.
        min_reads=o.integer("min_reads", 1 if driver == "smart" else 2, low=1, high=50),
        api_key=o.text("api_key", None),
        stall_s=o.number("stall_s", STALL_S, low=0.5, high=60),
    )
    o.done()
    if driver == "smart" and camera.api_key is None:
        raise ConfigError(f"{where}.api_key is required for a smart camera")
    if camera.api_key is not None and len(camera.api_key) < 16:
        raise ConfigError(f"{where}.api_key must be at least 16 characters")
    return camera
