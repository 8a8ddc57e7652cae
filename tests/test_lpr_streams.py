"""Camera lanes on real network streams: RTSP and MJPEG over HTTP, served by Debian's ffmpeg.

The clip is made from a labelled photograph (``eu3.jpg``, plate FWE50) and looped; the lane
runs the OpenCV capture (FFmpeg backend) and the real detector and OCR. Faults are played
on the camera side: the stream killed, the stream frozen with its connection left open
(SIGSTOP), the stream back. The lane must show the camera fault within 5 s and read plates
again by itself.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import LprConfig, lpr_directory
from tests.camera_peers import MjpegCamera, RtspCamera, make_clip
from tests.conftest import ManualClock, Running, config_from, running
from tests.peers import wait_for

LPR_DIR = lpr_directory(LprConfig().directory).resolve()
PHOTO = LPR_DIR / "data" / "openalpr-eu" / "eu3.jpg"
PLATE = "FWE50"
FAULT_WITHIN_S = 5.0
pytestmark = pytest.mark.skipif(
    not PHOTO.is_file() or shutil.which("ffmpeg") is None,
    reason="needs ../shared/lpr and ffmpeg (make system-deps)",
)
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.02},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip([PHOTO], tmp_path_factory.mktemp("clip") / "lane.mp4")


def lane_gw(tmp_path: Path, clock: ManualClock, url: str) -> Any:
    config = config_from(
        tmp_path,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                **SIM,
                "camera": {"driver": "opencv", "source": url, "min_reads": 2},
            }
        ],
        lpr={"directory": str(LPR_DIR), "evidence_dir": str(tmp_path / "evidence")},
    )
    return running(config, clock)


class Lane:
    """The test plays the vehicle and watches the lane's reads and camera health."""

    def __init__(self, gw: Running) -> None:
        assert gw.daemon.lanes is not None
        self.gw, self.lane = gw, gw.daemon.lanes.get("entry-1")
        self.reads: list[str] = []
        self.lane.read_listeners.append(lambda _lane, read, _id: self.reads.append(read.vote.text))

    @property
    def camera(self) -> str:
        return str(self.lane.devices_health.get("camera", ""))

    def faulted(self) -> bool:
        return "camera" in self.lane.state.faults and self.camera.startswith("fault")

    def reads_a_plate(self, timeout: float = 30) -> None:
        """A vehicle arrives, its plate is read and voted, and it leaves."""
        before = len(self.reads)
        self.gw.call(self.lane.devices.presence_loop.set, True)
        wait_for(lambda: len(self.reads) > before, timeout=timeout, what="a voted plate read")
        assert self.reads[-1] == PLATE, self.reads
        self.gw.call(self.lane.devices.presence_loop.set, False)
        wait_for(lambda: not self.lane.state.presence, what="presence off")

    def fault_within(self, seconds: float) -> float:
        started = time.monotonic()
        wait_for(self.faulted, timeout=seconds + 2, interval=0.05, what="camera fault")
        elapsed = time.monotonic() - started
        assert elapsed <= seconds, f"the camera fault took {elapsed:.1f} s"
        return elapsed

    def healthy(self, timeout: float = 30) -> None:
        wait_for(
            lambda: self.camera == "ok" and "camera" not in self.lane.state.faults,
            timeout=timeout,
            what="camera healthy",
        )


@pytest.fixture
def rtsp(clip: Path, tmp_path: Path) -> Iterator[RtspCamera]:
    camera = RtspCamera(clip, tmp_path)
    camera.start()
    yield camera
    camera.kill()


@pytest.fixture
def mjpeg(clip: Path) -> Iterator[MjpegCamera]:
    camera = MjpegCamera(clip)
    camera.start()
    yield camera
    camera.kill()


def test_rtsp_stream_reads_plates_and_survives_the_camera_going_away(
    rtsp: RtspCamera, tmp_path: Path, clock: ManualClock
) -> None:
    with lane_gw(tmp_path, clock, rtsp.url) as gw:
        lane = Lane(gw)
        lane.healthy()
        lane.reads_a_plate()
        rtsp.kill()  # the camera is unplugged: ffmpeg ends, the RTSP connection closes
        lane.fault_within(FAULT_WITHIN_S)
        assert (
            gw.daemon.lanes is not None
            and "camera" in gw.daemon.lanes.get("entry-1").status()["faults"]
        )
        rtsp.start()  # back, on the same address
        lane.healthy()
        lane.reads_a_plate()
        rtsp.stall()  # frozen mid-stream: the TCP connection stays open, no packet comes
        lane.fault_within(FAULT_WITHIN_S)
        rtsp.resume()
        lane.healthy()
        lane.reads_a_plate()


def test_mjpeg_stream_stall_and_restart_are_faults_that_heal(
    mjpeg: MjpegCamera, tmp_path: Path, clock: ManualClock
) -> None:
    with lane_gw(tmp_path, clock, mjpeg.url) as gw:
        lane = Lane(gw)
        lane.healthy()
        lane.reads_a_plate()
        mjpeg.stall()
        lane.fault_within(FAULT_WITHIN_S)
        mjpeg.resume()
        lane.healthy()
        lane.reads_a_plate()
        mjpeg.kill()
        lane.fault_within(FAULT_WITHIN_S)
        mjpeg.start()
        lane.healthy()
        lane.reads_a_plate()
