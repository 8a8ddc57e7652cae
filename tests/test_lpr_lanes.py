"""Plate reads driving lanes: smart cameras, fuzzy matching, plate lists, evidence, corrections.

The lanes run on simulated barriers and loops (set by the test through the daemon's loop);
reads come from a smart camera through ``POST /api/v1/lpr/reads`` with its key, exactly
as a camera on the network would send them. The camera-with-OCR path is tested in
``test_lpr_camera.py`` with real photographs.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import ADMIN, OPERATOR, ManualClock, Running, config_from, running
from tests.peers import wait_for

KEY_IN = "entry-camera-key-0123456789"
KEY_OUT = "exit-camera-key-0123456789"
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.02},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


@pytest.fixture
def lpr_gw(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    lanes = [
        {
            "id": "entry-1",
            "kind": "entry",
            **SIM,
            "camera": {"driver": "smart", "camera_id": "cam-in", "api_key": KEY_IN, "min_reads": 1},
        },
        {
            "id": "exit-1",
            "kind": "exit",
            **SIM,
            "camera": {
                "driver": "smart",
                "camera_id": "cam-out",
                "api_key": KEY_OUT,
                "min_reads": 1,
            },
        },
    ]
    config = config_from(
        tmp_path,
        lanes=lanes,
        lpr={"evidence_dir": str(tmp_path / "evidence"), "evidence_quota_mb": 1},
    )
    with running(config, clock, users=(ADMIN, OPERATOR)) as gw:
        yield gw


def loops(gw: Running, lane_id: str) -> tuple[Any, Any]:
    assert gw.daemon.lanes is not None
    devices = gw.daemon.lanes.get(lane_id).devices
    return devices.presence_loop, devices.safety_loop


def arrive(gw: Running, lane_id: str) -> None:
    presence, _ = loops(gw, lane_id)
    gw.call(presence.set, True)
    wait_for(lambda: status(gw, lane_id)["presence"], what="presence")


def drive_through(gw: Running, lane_id: str) -> None:
    presence, safety = loops(gw, lane_id)
    wait_for(lambda: status(gw, lane_id)["barrier"] == "open", what="open")
    gw.call(safety.set, True)
    wait_for(lambda: status(gw, lane_id)["phase"] == "passing", what="passing")
    gw.call(presence.set, False)
    gw.call(safety.set, False)
    wait_for(lambda: status(gw, lane_id)["phase"] == "idle", what="passed")


def status(gw: Running, lane_id: str) -> dict[str, Any]:
    with gw.client("operator@example.com") as c:
        return dict(c.get(f"/lanes/{lane_id}").json())


def smart_read(
    gw: Running,
    key: str,
    plate: str,
    confidence: float = 0.97,
    image: bytes | None = None,
    **extra: Any,
) -> Any:
    body: dict[str, Any] = {"plate": plate, "confidence": confidence, **extra}
    if image is not None:
        body["image"] = base64.b64encode(image).decode()
    with gw.client() as anon:
        return anon.post("/lpr/reads", json=body, headers={"X-API-Key": key})


def decision(gw: Running, lane_id: str, plate: str) -> dict[str, Any]:
    def latest() -> dict[str, Any] | None:
        d = status(gw, lane_id)["last_decision"]
        return d if d and d["credential"]["value"] == plate else None

    return dict(wait_for(latest, what=f"decision for {plate}"))


def db(gw: Running) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{gw.daemon.config.database.path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def enter(gw: Running, plate: str) -> dict[str, Any]:
    arrive(gw, "entry-1")
    assert smart_read(gw, KEY_IN, plate).status_code == 202
    d = decision(gw, "entry-1", plate)
    assert d["allowed"], d
    drive_through(gw, "entry-1")
    return d


def test_smart_camera_entry_and_paid_exit(lpr_gw: Running) -> None:
    jpeg = cv2.imencode(".jpg", np.full((120, 240, 3), 90, np.uint8))[1].tobytes()
    arrive(lpr_gw, "entry-1")
    r = smart_read(lpr_gw, KEY_IN, "ab-123 cd", image=jpeg)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "lane_id": "entry-1", "plate": "AB123CD"}
    d = decision(lpr_gw, "entry-1", "AB123CD")
    assert d["allowed"] and d["reason"] == "entry"
    drive_through(lpr_gw, "entry-1")
    with db(lpr_gw) as conn:
        read = conn.execute("SELECT * FROM plate_reads ORDER BY id").fetchone()
    assert (
        read["plate"] == "AB123CD"
        and read["source"] == "smart_camera"
        and read["session_id"] == d["session_id"]
    )
    assert read["decision"] == "entry"
    wait_for(
        lambda: db(lpr_gw).execute("SELECT frame_path FROM plate_reads").fetchone()[0],
        what="evidence",
    )
    with lpr_gw.client("operator@example.com") as op:
        listed = op.get("/plate-reads", params={"plate": "AB123CD"}).json()
        assert listed["total"] == 1 and listed["reads"][0]["has_frame"] is True
        picture = op.get(f"/plate-reads/{read['id']}/image")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR).shape == (
            120,
            240,
            3,
        )
        assert (
            op.get(f"/plate-reads/{read['id']}/image", params={"kind": "crop"}).status_code == 404
        )

    # Pay, and the exit camera's read opens the exit.
    lpr_gw.clock.advance(minutes=90)
    with lpr_gw.client("admin@example.com") as admin:
        assert (
            admin.post(
                "/rates",
                json={
                    "name": "h",
                    "amount": 2.0,
                    "grace_period_minutes": 0,
                    "effective_from": "2024-01-01T00:00:00Z",
                },
            ).status_code
            == 201
        )
        assert (
            admin.post(
                "/payments",
                json={"session_id": d["session_id"], "payment_method": "card", "amount": 4.0},
            ).status_code
            == 201
        )
    arrive(lpr_gw, "exit-1")
    assert smart_read(lpr_gw, KEY_OUT, "AB123CD").status_code == 202
    out = decision(lpr_gw, "exit-1", "AB123CD")
    assert out["allowed"] and out["reason"] == "paid"
    drive_through(lpr_gw, "exit-1")
    wait_for(
        lambda: (
            db(lpr_gw)
            .execute("SELECT status FROM sessions WHERE id = ?", [d["session_id"]])
            .fetchone()[0]
            == "completed"
        ),
        what="exit recorded",
    )


def test_the_same_plate_returning_is_a_new_read(lpr_gw: Running) -> None:
    enter(lpr_gw, "RET1")
    with lpr_gw.client("operator@example.com") as op:
        active = op.get("/sessions/active").json()["sessions"]
        assert (
            op.post(
                "/sessions/exit", json={"ticket_number": active[0]["ticket_number"]}
            ).status_code
            == 200
        )
    enter(lpr_gw, "RET1")  # the gate fires again for the returning car
    with db(lpr_gw) as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM plate_reads WHERE plate = 'RET1'").fetchone()[0] == 2
        )
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM sessions WHERE vehicle_id ="
                " (SELECT id FROM vehicles WHERE license_plate = 'RET1')"
            ).fetchone()[0]
            == 2
        )


def test_one_character_misread_matches_only_when_unique(lpr_gw: Running) -> None:
    enter(lpr_gw, "XY4521")
    arrive(lpr_gw, "exit-1")
    smart_read(lpr_gw, KEY_OUT, "XY452I")  # 1 read as I
    d = decision(lpr_gw, "exit-1", "XY452I")
    assert (
        d["reason"] == "free" and d["allowed"]
    )  # within the grace period: free, and the right session
    with lpr_gw.client("operator@example.com") as op:
        session = op.get(f"/sessions/{d['session_id']}").json()
    assert session["vehicle"]["license_plate"] == "XY4521"
    drive_through(lpr_gw, "exit-1")

    # Two cars inside one edit away from the read: refused as uncertain, nothing opens.
    enter(lpr_gw, "KL7700")
    enter(lpr_gw, "KL7708")
    arrive(lpr_gw, "exit-1")
    smart_read(lpr_gw, KEY_OUT, "KL770B")
    d = decision(lpr_gw, "exit-1", "KL770B")
    assert d == {**d, "allowed": False, "reason": "plate_uncertain", "session_id": None}
    assert status(lpr_gw, "exit-1")["barrier"] == "closed"


def test_deny_list_never_opens_and_allow_list_opens_without_payment(lpr_gw: Running) -> None:
    with lpr_gw.client("admin@example.com") as admin:
        r = admin.post("/plate-lists", json={"plate": "bad 1", "list": "deny", "reason": "banned"})
        assert r.status_code == 201, r.text
        assert (
            admin.post(
                "/plate-lists", json={"plate": "VIP1", "list": "allow", "lane_id": "exit-1"}
            ).status_code
            == 201
        )
        assert admin.post("/plate-lists", json={"plate": "X", "list": "maybe"}).status_code == 400
        assert (
            admin.post(
                "/plate-lists", json={"plate": "X", "list": "allow", "lane_id": "nope"}
            ).status_code
            == 404
        )
        assert (
            admin.post(
                "/rates",
                json={
                    "name": "h",
                    "amount": 2.0,
                    "grace_period_minutes": 0,
                    "effective_from": "2024-01-01T00:00:00Z",
                },
            ).status_code
            == 201
        )
    arrive(lpr_gw, "entry-1")
    smart_read(lpr_gw, KEY_IN, "BAD1")
    d = decision(lpr_gw, "entry-1", "BAD1")
    assert d["allowed"] is False and d["reason"] == "denied"
    assert status(lpr_gw, "entry-1")["barrier"] == "closed"
    presence, _ = loops(lpr_gw, "entry-1")
    lpr_gw.call(presence.set, False)
    wait_for(lambda: not status(lpr_gw, "entry-1")["presence"], what="the denied car left")

    enter(lpr_gw, "VIP1")
    lpr_gw.clock.advance(hours=3)
    arrive(lpr_gw, "exit-1")
    smart_read(lpr_gw, KEY_OUT, "VIP1")
    d = decision(lpr_gw, "exit-1", "VIP1")
    assert d["allowed"] and d["reason"] == "allow_list"
    drive_through(lpr_gw, "exit-1")

    def exit_recorded() -> Any:  # written by the passage's own task, just after the lane moved on
        with db(lpr_gw) as conn:
            return conn.execute(
                "SELECT payload FROM outbox WHERE type = 'session_completed'"
            ).fetchone()

    completed = wait_for(exit_recorded, what="the exit recorded")
    with db(lpr_gw) as conn:
        types = [r[0] for r in conn.execute("SELECT type FROM outbox")]
    assert "plate_denied" in types
    assert json.loads(completed[0])["waived_because"] == "allow_list"


def test_smart_camera_bad_input(lpr_gw: Running) -> None:
    assert smart_read(lpr_gw, "wrong-key", "ABC1").status_code == 401
    with lpr_gw.client() as anon:
        assert anon.post("/lpr/reads", json={"plate": "ABC1", "confidence": 0.9}).status_code == 401
    for body in (
        {"plate": "ABC1"},
        {"plate": "ABC1", "confidence": 1.5},
        {"plate": "", "confidence": 0.9},
        {"plate": "A*C", "confidence": 0.9},
        {"plate": "ABC1", "confidence": 0.9, "image": "%%%"},
        {"plate": "ABC1", "confidence": 0.9, "image": base64.b64encode(b"not a picture").decode()},
    ):
        with lpr_gw.client() as anon:
            r = anon.post("/lpr/reads", json=body, headers={"X-API-Key": KEY_IN})
        assert r.status_code in (400, 422), (body, r.text)
    with db(lpr_gw) as conn:
        assert conn.execute("SELECT COUNT(*) FROM plate_reads").fetchone()[0] == 0


def test_operator_corrects_a_misread_and_the_session_follows(lpr_gw: Running) -> None:
    d = enter(lpr_gw, "MISREAD1")
    with db(lpr_gw) as conn:
        read_id = conn.execute("SELECT id FROM plate_reads WHERE plate = 'MISREAD1'").fetchone()[0]
    with lpr_gw.client("operator@example.com") as op:
        r = op.put(f"/plate-reads/{read_id}", json={"plate": "MISREAD7"})
        assert r.status_code == 200, r.text
        assert r.json()["plate"] == "MISREAD7" and r.json()["corrected_from"] == "MISREAD1"
        session = op.get(f"/sessions/{d['session_id']}").json()
        assert session["vehicle"]["license_plate"] == "MISREAD7"
        assert op.put(f"/plate-reads/{read_id}", json={"plate": ""}).status_code == 400
        assert op.put("/plate-reads/999", json={"plate": "X1"}).status_code == 404
        assert (
            op.get("/plate-reads", params={"plate": "MISREAD1"}).json()["total"] == 1
        )  # found by the old text
    with lpr_gw.client() as anon:
        assert anon.get("/plate-reads").status_code == 401


def test_evidence_quota_deletes_the_oldest(lpr_gw: Running, tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    big = cv2.imencode(".png", noise)[1].tobytes()  # ~1.4 MB as PNG; stored as JPEG of ~0.4 MB
    for n in range(4):
        arrive(lpr_gw, "entry-1")
        assert smart_read(lpr_gw, KEY_IN, f"Q{n}", image=big[: 2 * 1024 * 1024]).status_code == 202
        decision(lpr_gw, "entry-1", f"Q{n}")
        drive_through(lpr_gw, "entry-1")
    wait_for(
        lambda: (
            db(lpr_gw)
            .execute("SELECT COUNT(*) FROM plate_reads WHERE evidence_bytes > 0")
            .fetchone()[0]
            < 4
        ),
        what="quota enforced",
    )
    with db(lpr_gw) as conn:
        total = conn.execute("SELECT SUM(evidence_bytes) FROM plate_reads").fetchone()[0]
        kept = [
            r[0]
            for r in conn.execute(
                "SELECT plate FROM plate_reads WHERE evidence_bytes > 0 ORDER BY id"
            )
        ]
    assert total <= 1024 * 1024
    assert kept and kept[-1] == "Q3"  # the newest is kept, the oldest went first
    files = list((tmp_path / "evidence").rglob("*.jpg"))
    assert len(files) == len(kept)
