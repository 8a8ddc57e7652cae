"""Plate events pushed by vendor LPR cameras: Hikvision ISAPI ANPR and AXIS License Plate Verifier.

The payloads are built here from the vendors' public documentation (each field's source is
named beside it) and sent over real HTTP to a running daemon, authenticated the ways the
cameras do: the camera's key in the URL or a header, HTTP Basic, or HTTP Digest answered
by httpx's own Digest implementation (a real client of the challenge, as a camera is).
The pictures are crops of a labelled photograph.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from drivers.camera.vendors import VendorFormatError, parse_axis, parse_hikvision
from gateway.config import LprConfig, lpr_directory
from tests.conftest import ADMIN, OPERATOR, ManualClock, Running, config_from, running
from tests.peers import assert_stays, wait_for

HIK_ID, HIK_KEY = "hik-entry", "hikvision-key-0123456789"
AXIS_ID, AXIS_KEY = "axis-exit", "axis-camera-key-0123456789"
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.02},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}
PHOTO = lpr_directory(LprConfig().directory).resolve() / "data" / "openalpr-eu" / "eu3.jpg"


def hikvision_xml(plate: str, *, event: str = "ANPR", confidence: str = "96") -> bytes:
    """``XML_EventNotificationAlert_ANPR`` of Hikvision's Device Network SDK (Traffic)
    Developer Guide: every element below is one of that message's, with a value of the
    documented type; the namespace and version attribute are the documented ones."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
  <ipAddress>192.168.1.64</ipAddress>
  <portNo>80</portNo>
  <protocol>HTTP</protocol>
  <macAddress>44:19:b6:00:00:01</macAddress>
  <channelID>1</channelID>
  <dateTime>2026-03-10T09:00:00+01:00</dateTime>
  <activePostCount>1</activePostCount>
  <eventType>{event}</eventType>
  <eventState>active</eventState>
  <eventDescription>ANPR</eventDescription>
  <channelName>Entry lane</channelName>
  <ANPR>
    <country>3</country>
    <licensePlate>{plate}</licensePlate>
    <line>1</line>
    <direction>forward</direction>
    <confidenceLevel>{confidence}</confidenceLevel>
    <plateType>unknown</plateType>
    <plateColor>white</plateColor>
    <vehicleType>vehicle</vehicleType>
    <pictureInfoList>
      <pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type><dataType>0</dataType></pictureInfo>
      <pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type><dataType>0</dataType></pictureInfo>
    </pictureInfoList>
  </ANPR>
  <UUID>4c7a1b8e-0000-4000-8000-000000000001</UUID>
  <picNum>2</picNum>
</EventNotificationAlert>
""".encode()


def axis_event(plate: str, confidence: float = 0.93, **extra: Any) -> dict[str, Any]:
    """FF Group's *JSON Fields (Protocol 1.6)* of the AXIS License Plate Verifier push."""
    return {
        "packetCounter": 17,  # "Counter of packets. Starts from 1"
        "datetime": "20260310 090000123+0100",  # "YYYYMMDD HHMMSSFFF", optional "+-HHMM"
        "plateUTF8": plate,
        "plateUnicode": plate,
        "plateCountry": "DEU",  # ISO 3166 alpha-3
        "plateConfidence": confidence,
        "carState": "new",  # new | updated | lost
        "imageType": "plate",  # plate | mmrcrop | vehicle | frame
        "plateImageType": "jpeg",
        "carMoveDirection": "in",
        "plateCoordinates": [120, 300, 140, 32],  # left, top, width, height
        "carID": 1087595,
        "sensorProviderID": "exit-lane-axis",
        "roiID": 1,
        **extra,
    }


def multipart(*parts: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of (name, filename, content type, data) parts."""
    boundary = "MIME_boundary_15"
    chunks = []
    for name, filename, kind, data in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        chunks.append(head.encode() + f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def pictures() -> tuple[bytes, bytes, tuple[int, int]]:
    """(scene JPEG, plate JPEG, plate crop's (h, w)) from a real photograph."""
    image = cv2.imread(str(PHOTO)) if PHOTO.is_file() else None
    if image is None:
        image = np.full((480, 640, 3), 90, np.uint8)
    plate = image[200:260, 200:380]
    return (
        cv2.imencode(".jpg", image)[1].tobytes(),
        cv2.imencode(".jpg", plate)[1].tobytes(),
        (plate.shape[0], plate.shape[1]),
    )


@pytest.fixture
def gw(tmp_path: Path, clock: ManualClock) -> Iterator[Running]:
    lanes = [
        {
            "id": "entry-1",
            "kind": "entry",
            **SIM,
            "camera": {"driver": "smart", "camera_id": HIK_ID, "api_key": HIK_KEY},
        },
        {
            "id": "exit-1",
            "kind": "exit",
            **SIM,
            "camera": {"driver": "smart", "camera_id": AXIS_ID, "api_key": AXIS_KEY},
        },
    ]
    config = config_from(tmp_path, lanes=lanes, lpr={"evidence_dir": str(tmp_path / "ev")})
    with running(config, clock, users=(ADMIN, OPERATOR)) as gw:
        yield gw


def post(
    gw: Running,
    route: str,
    body: bytes,
    kind: str,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> httpx.Response:
    with httpx.Client(base_url=gw.base_url + "/api/v1", timeout=10) as camera:
        headers = {"Content-Type": kind, **(headers or {})}
        return camera.post(route, content=body, headers=headers, **options)


def reads(gw: Running) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{gw.daemon.config.database.path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    with conn:
        return list(conn.execute("SELECT * FROM plate_reads ORDER BY id"))


def decided(gw: Running, lane_id: str, plate: str) -> Any:
    assert gw.daemon.lanes is not None
    lane = gw.daemon.lanes.get(lane_id)
    return wait_for(
        lambda: (d := lane.state.last_decision) and d.credential.value == plate and d,
        what=f"{lane_id} decision on {plate}",
    )


def drive_through(gw: Running, lane_id: str) -> None:
    assert gw.daemon.lanes is not None
    lane = gw.daemon.lanes.get(lane_id)
    # One change at a time, each seen by the lane (simulated loops report levels, not pulses).
    for role, value in (
        ("presence", True),
        ("safety", True),
        ("presence", False),
        ("safety", False),
    ):
        gw.call(getattr(lane.devices, f"{role}_loop").set, value)
        wait_for(lambda r=role, v=value: getattr(lane.state, r) == v, what=f"{role} {value}")
    wait_for(lambda: lane.state.phase == "idle" and not lane.state.presence, what="lane idle")


def test_hikvision_xml_alone_with_the_key_in_the_url(gw: Running) -> None:
    r = post(
        gw, "/lpr/hikvision", hikvision_xml("B-MW 1234"), "application/xml", params={"key": HIK_KEY}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": True,
        "lane_id": "entry-1",
        "camera_id": HIK_ID,
        "plate": "BMW1234",
        "ignored": None,
    }
    d = decided(gw, "entry-1", "BMW1234")
    assert d.allowed and d.reason == "entry"
    row = wait_for(lambda: reads(gw), what="read stored")[0]
    assert row["plate"] == "BMW1234" and row["lane_id"] == "entry-1"
    assert abs(row["confidence"] - 0.96) < 1e-6  # confidenceLevel 96 of 100


def test_hikvision_multipart_with_pictures_and_digest_auth(
    gw: Running, pictures: tuple[bytes, bytes, tuple[int, int]]
) -> None:
    scene, plate, (h, w) = pictures
    body, kind = multipart(
        ("anpr.xml", "anpr.xml", "application/xml", hikvision_xml("FWE50")),
        ("licensePlatePicture.jpg", "licensePlatePicture.jpg", "image/jpeg", plate),
        ("detectionPicture.jpg", "detectionPicture.jpg", "image/jpeg", scene),
    )
    r = post(gw, "/lpr/hikvision", body, kind, auth=httpx.DigestAuth(HIK_ID, HIK_KEY))
    assert r.status_code == 200 and r.json()["accepted"] is True, r.text
    d = decided(gw, "entry-1", "FWE50")
    with gw.client("operator@example.com") as op:
        crop = wait_for(
            lambda: (
                (
                    c := op.get(
                        f"/plate-reads/{d.credential.read_id}/image", params={"kind": "crop"}
                    )
                ).status_code
                == 200
                and c
            ),
            what="crop stored",
        )
        frame = op.get(f"/plate-reads/{d.credential.read_id}/image", params={"kind": "frame"})
    # The licensePlatePicture is the crop, the detectionPicture the frame (by pictureInfoList).
    stored_crop = cv2.imdecode(np.frombuffer(crop.content, np.uint8), cv2.IMREAD_COLOR)
    stored_frame = cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR)
    assert stored_crop.shape[:2] == (h, w)
    assert stored_frame.shape[:2] == cv2.imdecode(np.frombuffer(scene, np.uint8), 1).shape[:2]


def test_other_hikvision_events_are_answered_and_ignored(gw: Running) -> None:
    for xml in (hikvision_xml("FWE50", event="VMD"), hikvision_xml("unknown")):
        r = post(gw, "/lpr/hikvision", xml, "application/xml", headers={"X-API-Key": HIK_KEY})
        assert r.status_code == 200 and r.json()["accepted"] is False and r.json()["ignored"]
    assert_stays(lambda: reads(gw) == [], seconds=1.0, what="no read")


def test_axis_json_and_multipart_with_basic_auth(
    gw: Running, pictures: tuple[bytes, bytes, tuple[int, int]]
) -> None:
    with gw.client("admin@example.com") as admin:
        assert admin.post("/sessions/entry", json={"license_plate": "KA-XY 77"}).status_code == 201
    r = post(
        gw,
        "/lpr/axis",
        json.dumps(axis_event("KAXY77", 93.0)).encode(),  # a percentage is accepted too
        "application/json",
        auth=httpx.BasicAuth(AXIS_ID, AXIS_KEY),
    )
    assert r.status_code == 200 and r.json()["plate"] == "KAXY77", r.text
    d = decided(gw, "exit-1", "KAXY77")
    assert d.reason == "free" and d.allowed  # no rate: nothing owed
    drive_through(gw, "exit-1")  # the next read is the next vehicle's
    _scene, plate, (h, w) = pictures
    body, kind = multipart(
        ("json", "event.json", "application/json", json.dumps(axis_event("ZZ999")).encode()),
        ("image", "plate.jpg", "image/jpeg", plate),
    )
    r = post(gw, "/lpr/axis", body, kind, headers={"X-API-Key": AXIS_KEY})
    assert r.status_code == 200 and r.json()["accepted"] is True, r.text
    row = wait_for(lambda: [x for x in reads(gw) if x["plate"] == "ZZ999"], what="read")[0]
    assert abs(row["confidence"] - 0.93) < 1e-6
    wait_for(lambda: reads(gw)[-1]["crop_path"], what="crop stored")
    stored = cv2.imread(reads(gw)[-1]["crop_path"])
    assert stored.shape[:2] == (h, w)


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({}, "a camera key is required"),
        ({"params": {"key": "not-a-camera-key"}}, "unknown camera key"),
        ({"headers": {"X-API-Key": AXIS_KEY + "x"}}, "unknown camera key"),
        ({"auth": httpx.BasicAuth(HIK_ID, AXIS_KEY)}, "wrong camera id or key"),
        ({"auth": httpx.DigestAuth(HIK_ID, "wrong-password-0123")}, "wrong camera id or key"),
        ({"auth": httpx.DigestAuth("no-such-camera", HIK_KEY)}, "wrong camera id or key"),
        ({"headers": {"Authorization": "Basic %%%"}}, "malformed Basic"),
        ({"headers": {"Authorization": 'Digest username="hik-entry"'}}, "incomplete Digest"),
    ],
)
def test_pushes_that_do_not_authenticate_are_refused(
    gw: Running, auth: dict[str, Any], expected: str
) -> None:
    r = post(gw, "/lpr/hikvision", hikvision_xml("FWE50"), "application/xml", **auth)
    assert r.status_code == 401 and expected in r.json()["detail"], r.text
    assert r.headers["www-authenticate"].startswith('Digest realm="carpark-gateway", qop="auth"')
    assert_stays(lambda: reads(gw) == [], seconds=0.3, what="no read")


def test_a_replayed_digest_request_is_refused(gw: Running) -> None:
    with httpx.Client(base_url=gw.base_url + "/api/v1", timeout=10) as camera:
        first = camera.post(
            "/lpr/hikvision",
            content=hikvision_xml("AB123"),
            headers={"Content-Type": "application/xml"},
            auth=httpx.DigestAuth(HIK_ID, HIK_KEY),
        )
        assert first.status_code == 200, first.text
        authorization = first.request.headers["authorization"]
        again = camera.post(
            "/lpr/hikvision",
            content=hikvision_xml("AB123"),
            headers={"Content-Type": "application/xml", "Authorization": authorization},
        )
    assert again.status_code == 401 and "replayed" in again.json()["detail"]


@pytest.mark.parametrize(
    ("route", "body", "kind", "expected"),
    [
        ("/lpr/hikvision", b"<EventNotificationAlert", "application/xml", "not well-formed"),
        ("/lpr/hikvision", b"<Other/>", "application/xml", "expected <EventNotificationAlert>"),
        ("/lpr/hikvision", hikvision_xml("AB1", confidence="high"), "text/xml", "confidenceLevel"),
        ("/lpr/hikvision", hikvision_xml("A*1"), "application/xml", "plate"),
        (
            "/lpr/hikvision",
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><EventNotificationAlert>&a;</EventNotificationAlert>',
            "application/xml",
            "not well-formed",  # entities are refused (defusedxml), never expanded
        ),
        ("/lpr/hikvision", b"--x--\r\n", "multipart/form-data", "boundary"),
        ("/lpr/axis", b"[1, 2]", "application/json", "JSON object"),
        ("/lpr/axis", b"{", "application/json", "not JSON"),
        (
            "/lpr/axis",
            json.dumps(axis_event("AB1", -3)).encode(),
            "application/json",
            "plateConfidence",
        ),
    ],
)
def test_malformed_pushes_are_400s_and_change_nothing(
    gw: Running, route: str, body: bytes, kind: str, expected: str
) -> None:
    key = HIK_KEY if "hikvision" in route else AXIS_KEY
    r = post(gw, route, body, kind, headers={"X-API-Key": key})
    assert r.status_code == (422 if expected == "plate" else 400) and expected in r.text, r.text
    assert_stays(lambda: reads(gw) == [], seconds=0.3, what="no read")


def test_parsers_on_documented_variants() -> None:
    read = parse_hikvision(hikvision_xml("AB12CD", confidence="100"), "application/xml")
    assert (read.plate, read.confidence, read.device) == ("AB12CD", 1.0, "Entry lane")
    assert read.camera_time is not None and read.camera_time.utcoffset() is not None
    no_ns = b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>X1</licensePlate></ANPR></EventNotificationAlert>"
    assert parse_hikvision(no_ns, "application/xml").confidence is None  # then 0.9 at the API
    axis = parse_axis(json.dumps(axis_event("", carState="lost")).encode(), "application/json")
    assert axis.plate is None and axis.ignored
    axis = parse_axis(json.dumps(axis_event("ÄB1", 0.5)).encode(), "application/json")
    assert axis.plate == "ÄB1" and axis.confidence == 0.5
    assert (
        axis.camera_time is not None
        and axis.camera_time.isoformat() == "2026-03-10T09:00:00.123000+01:00"
    )
    with pytest.raises(VendorFormatError):
        parse_hikvision(
            b"<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>",
            "text/xml",
        )
