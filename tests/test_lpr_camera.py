"""Camera lanes on real photographs: the folder camera, detection + OCR, and the lane logic.

The lanes use the real pipeline (LPD-YuNet + fast-plate-ocr) on labelled photographs of
``../shared/lpr`` (copied into a temporary folder per lane, never into the repository),
with simulated loops and barriers so that the test plays the vehicle.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, LprConfig, lpr_directory
from tests.conftest import (
    ADMIN,
    OPERATOR,
    ManualClock,
    Running,
    config_from,
    running,
    start_daemon,
)
from tests.peers import wait_for

LPR_DIR = lpr_directory(LprConfig().directory).resolve()  # ../shared/lpr: models and photographs
EU = LPR_DIR / "data" / "openalpr-eu"
pytestmark = pytest.mark.skipif(
    not EU.is_dir(), reason=f"no labelled images at {LPR_DIR} (../shared/lpr)"
)

SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.02},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}
CAR = "eu3.jpg"  # plate FWE50, read with confidence 1.00
CAR_PLATE = "FWE50"


def folder(tmp_path: Path, name: str, *images: str, garbage: bool = False) -> Path:
    target = tmp_path / name
    target.mkdir()
    for image in images:
        shutil.copy(EU / image, target / image)
    if garbage:
        (target / "0-broken.jpg").write_bytes(b"this is not a jpeg")
    return target


def camera(path: Path, **extra: Any) -> dict[str, Any]:
    return {"driver": "folder", "folder": str(path), "fps": 4, "min_reads": 2, **extra}


@pytest.fixture
def lanes(tmp_path: Path) -> dict[str, Path]:
    return {
        "entry": folder(tmp_path, "entry", CAR, garbage=True),
        "exit": folder(tmp_path, "exit", CAR),
    }


@pytest.fixture
def cam_gw(tmp_path: Path, clock: ManualClock, lanes: dict[str, Path]) -> Iterator[Running]:
    config = config_from(
        tmp_path,
        lanes=[
            {"id": "entry-1", "kind": "entry", **SIM, "camera": camera(lanes["entry"])},
            {"id": "exit-1", "kind": "exit", **SIM, "camera": camera(lanes["exit"])},
        ],
        lpr={"directory": str(LPR_DIR), "evidence_dir": str(tmp_path / "evidence")},
    )
    with running(config, clock, users=(ADMIN, OPERATOR)) as gw:
        yield gw


def lane(gw: Running, lane_id: str) -> Any:
    assert gw.daemon.lanes is not None
    return gw.daemon.lanes.get(lane_id)


def arrive(gw: Running, lane_id: str) -> None:
    gw.call(lane(gw, lane_id).devices.presence_loop.set, True)


def leave(gw: Running, lane_id: str, through: bool = True) -> None:
    devices = lane(gw, lane_id).devices
    if through:
        wait_for(lambda: lane(gw, lane_id).state.position == "open", timeout=20, what="open")
        gw.call(devices.safety_loop.set, True)
        wait_for(lambda: lane(gw, lane_id).state.phase == "passing", what="passing")
    gw.call(devices.presence_loop.set, False)
    gw.call(devices.safety_loop.set, False)
    wait_for(lambda: lane(gw, lane_id).state.phase == "idle", what="lane idle")


def decision(gw: Running, lane_id: str, timeout: float = 30) -> Any:
    return wait_for(
        lambda: lane(gw, lane_id).state.last_decision, timeout=timeout, what=f"{lane_id} decision"
    )


def test_camera_entry_creates_the_session_and_exit_opens_when_paid(cam_gw: Running) -> None:
    arrive(cam_gw, "entry-1")
    d = decision(cam_gw, "entry-1")
    assert d.allowed and d.reason == "entry" and d.credential.value == CAR_PLATE
    assert d.credential.read_id is not None
    leave(cam_gw, "entry-1")
    with cam_gw.client("operator@example.com") as op:
        session = op.get(f"/sessions/{d.session_id}").json()
        assert (
            session["vehicle"]["license_plate"] == CAR_PLATE and session["entry_gate"] == "entry-1"
        )
        reads = op.get("/plate-reads", params={"lane_id": "entry-1"}).json()["reads"]
        assert reads[0]["plate"] == CAR_PLATE and reads[0]["session_id"] == d.session_id
        assert reads[0]["confident"] is True and reads[0]["confidence"] >= 0.9
        wait_for(
            lambda: (
                op.get(f"/plate-reads/{reads[0]['id']}/image", params={"kind": "crop"}).status_code
                == 200
            ),
            what="crop stored",
        )
        with cam_gw.client("admin@example.com") as admin:
            admin.post(
                "/rates",
                json={
                    "name": "h",
                    "amount": 4.0,
                    "grace_period_minutes": 0,
                    "effective_from": "2024-01-01T00:00:00Z",
                },
            )
        cam_gw.clock.advance(minutes=45)
        assert (
            op.post(
                "/payments",
                json={"session_id": d.session_id, "payment_method": "card", "amount": 4.0},
            ).status_code
            == 201
        )
    arrive(cam_gw, "exit-1")
    out = decision(cam_gw, "exit-1")
    assert out.allowed and out.reason == "paid" and out.session_id == d.session_id
    leave(cam_gw, "exit-1")
    with cam_gw.client("operator@example.com") as op:
        wait_for(
            lambda: op.get(f"/sessions/{d.session_id}").json()["status"] == "completed", what="exit"
        )


def test_unpaid_exit_is_refused(cam_gw: Running) -> None:
    with cam_gw.client("admin@example.com") as admin:
        admin.post(
            "/rates",
            json={
                "name": "h",
                "amount": 4.0,
                "grace_period_minutes": 0,
                "effective_from": "2024-01-01T00:00:00Z",
            },
        )
        assert admin.post("/sessions/entry", json={"license_plate": CAR_PLATE}).status_code == 201
    arrive(cam_gw, "exit-1")
    d = decision(cam_gw, "exit-1")
    assert not d.allowed and d.reason == "unpaid"
    assert lane(cam_gw, "exit-1").state.position != "open"


@pytest.mark.parametrize(
    ("inside", "expected"), [(["FWE5O"], "near"), (["FWE51", "FWE58"], "ambiguous")]
)
def test_one_character_misread_matches_only_when_unique(
    cam_gw: Running, inside: list[str], expected: str
) -> None:
    """The camera reads FWE50; the car inside was registered one character off."""
    with cam_gw.client("admin@example.com") as admin:
        sessions = [
            admin.post("/sessions/entry", json={"license_plate": plate}).json() for plate in inside
        ]
    arrive(cam_gw, "exit-1")
    d = decision(cam_gw, "exit-1")
    if expected == "near":
        assert d.allowed and d.reason == "free" and d.session_id == sessions[0]["session"]["id"]
        leave(cam_gw, "exit-1")
    else:
        assert not d.allowed and d.reason == "plate_uncertain" and d.session_id is None
        assert lane(cam_gw, "exit-1").state.position != "open"


def test_denied_plate_never_opens(cam_gw: Running) -> None:
    with cam_gw.client("admin@example.com") as admin:
        assert (
            admin.post("/plate-lists", json={"plate": CAR_PLATE, "list": "deny"}).status_code == 201
        )
    arrive(cam_gw, "entry-1")
    d = decision(cam_gw, "entry-1")
    assert not d.allowed and d.reason == "denied"
    assert lane(cam_gw, "entry-1").state.position != "open"


def test_lost_stream_is_a_camera_fault_and_corrupt_model_stops_start_up(
    tmp_path: Path, clock: ManualClock
) -> None:
    # A video source that cannot be opened: the lane shows the camera fault, nothing else breaks.
    config = config_from(
        tmp_path,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                **SIM,
                "camera": {"driver": "opencv", "source": str(tmp_path / "missing.mp4")},
            }
        ],
        lpr={"directory": str(LPR_DIR)},
    )
    with running(config, clock) as gw:
        daemon = gw.daemon
        assert daemon.lanes is not None
        wait_for(
            lambda: "camera" in daemon.lanes.get("entry-1").state.faults,
            timeout=10,
            what="camera fault",
        )
        assert daemon.lanes.get("entry-1").devices_health["camera"].startswith("fault")
    broken = config_from(
        tmp_path,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                **SIM,
                "camera": {"driver": "folder", "folder": str(tmp_path)},
            }
        ],
        lpr={"directory": str(LPR_DIR), "detector_model": "models/no-such-detector.onnx"},
    )
    with pytest.raises(ConfigError, match=r"no-such-detector\.onnx"):
        start_daemon(broken, clock)


def test_continuous_camera_without_a_loop(tmp_path: Path, clock: ManualClock) -> None:
    cars = folder(tmp_path, "street", CAR, "eu8.jpg")
    config = config_from(
        tmp_path,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                **SIM,
                "camera": {**camera(cars, fps=2), "mode": "continuous", "min_reads": 1},
            }
        ],
        lpr={"directory": str(LPR_DIR), "evidence_dir": str(tmp_path / "ev")},
    )
    with running(config, clock, users=(OPERATOR,)) as gw:

        def plates() -> set[str]:
            with gw.client("operator@example.com") as op:
                return {r["plate"] for r in op.get("/plate-reads").json()["reads"]}

        found = wait_for(
            lambda: (p := plates()) and {CAR_PLATE, "WSQ3021"} <= p and p,
            timeout=40,
            what="reads without a loop",
        )
        assert {CAR_PLATE, "WSQ3021"} <= found
