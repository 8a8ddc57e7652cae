"""Plate events pushed by LPR cameras that read plates on board, in their vendors' formats.

Installers buy cameras that recognise plates themselves and push each read over HTTP to a
server they name. Two formats are understood here, each mapped to one :class:`VendorRead`
(the plate, the camera's confidence, the pictures it attached); the API routes
``POST /api/v1/lpr/hikvision`` and ``POST /api/v1/lpr/axis`` feed it to the lane's smart
camera exactly like ``POST /api/v1/lpr/reads``.

**Hikvision ISAPI ANPR** (``EventNotificationAlert`` with ``eventType`` ANPR), as specified
in Hikvision's *Device Network SDK (Traffic) Developer Guide*, message
``XML_EventNotificationAlert_ANPR``, and sent by the cameras' "HTTP listening" / alarm
server push: the XML alone (``Content-Type: application/xml``), or a
``multipart/form-data`` body whose parts are the XML (``anpr.xml``) and the pictures it lists
in ``ANPR/pictureInfoList/pictureInfo`` (``fileName``, ``type``: ``licensePlatePicture`` is
the plate, ``detectionPicture``/``vehiclePicture`` the scene). Fields used: ``eventType``,
``eventState`` (``inactive`` is no read), ``dateTime``, ``channelID``, ``ANPR/licensePlate``,
``ANPR/confidenceLevel`` (0-100), ``ANPR/pictureInfoList``. Other event types that the
same camera pushes to the same address (motion, video loss, heartbeats) are answered 200
and ignored, so the camera does not retry them.

**Axis License Plate Verifier** (the ACAP by FF Group) "JSON over HTTP" push, as in FF
Group's *JSON Fields (Protocol 1.6)* reference: a JSON object, or with "Multipart
screenshot" on a ``multipart/form-data`` body of the JSON and one picture. Fields used:
``plateUTF8`` (else ``plateUnicode``/``plateText``), ``plateConfidence`` (a fraction, or a
percentage above 1), ``carState`` (``new``/``updated``/``lost``, all reads of one car: the
lane's grouping votes them), ``datetime`` (``YYYYMMDD HHMMSSFFF`` with an optional
``+-HHMM``), ``imageType`` (``plate`` is the crop, ``vehicle``/``frame`` the scene),
``sensorProviderID``, ``camera_info``.

A read carries the camera's own clock only for the record: decisions use the gateway's
clock (camera clocks on site are often wrong by minutes). A body that is not the format
is a :class:`VendorFormatError` (the API answers 400 with its message), never a 500.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

MAX_PICTURE_BYTES = 8 * 1024 * 1024


class VendorFormatError(ValueError):
    """The body is not the vendor's format; the message says what is wrong."""


@dataclass(frozen=True, kw_only=True)
class Picture:
    kind: str  # frame | crop
    data: bytes  # JPEG or PNG as sent
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class VendorRead:
    """One plate read pushed by a camera, or an event that carries none (``ignored``)."""

    vendor: str
    plate: str | None
    confidence: float | None
    camera_time: datetime | None = None
    device: str = ""  # the camera's own name or channel, for the log
    pictures: tuple[Picture, ...] = field(default=())
    ignored: str | None = None  # why this event is not a read

    def picture(self, kind: str) -> bytes | None:
        return next((p.data for p in self.pictures if p.kind == kind), None)


# -- multipart ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    name: str
    filename: str
    content_type: str
    data: bytes


def _parts(body: bytes, content_type: str) -> list[_Part]:
    """The parts of a ``multipart/*`` body (the standard library's MIME parser)."""
    if "boundary=" not in content_type.lower():
        raise VendorFormatError("multipart body without a boundary")
    message = message_from_bytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body,
        policy=policy.HTTP,
    )
    if not message.is_multipart():
        raise VendorFormatError("not a multipart body")
    parts: list[_Part] = []
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(
            _Part(
                name=str(part.get_param("name", "", header="content-disposition") or ""),
                filename=str(part.get_filename() or ""),
                content_type=part.get_content_type(),
                data=data,
            )
        )
    if not parts:
        raise VendorFormatError("multipart body without parts")
    return parts


def _is_picture(part: _Part) -> bool:
    label = (part.filename or part.name).lower()
    return part.content_type.startswith("image/") or label.endswith((".jpg", ".jpeg", ".png"))


def _checked(picture: Picture) -> Picture:
    if len(picture.data) > MAX_PICTURE_BYTES:
        raise VendorFormatError(f"picture {picture.name or picture.kind} is larger than 8 MB")
    return picture


# -- Hikvision ---------------------------------------------------------------------------

_HIK_PLATE_PICTURES = {"licenseplatepicture", "plateimage", "platepicture"}
_HIK_NO_PLATE = {"", "unknown", "none", "noplate"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: Element | None, name: str) -> str:
    found = _child(element, name)
    return (found.text or "").strip() if found is not None else ""


def _iso_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_hikvision(body: bytes, content_type: str) -> VendorRead:
    """An ISAPI ``EventNotificationAlert`` push (XML, or multipart with its pictures)."""
    pictures: list[tuple[_Part, str]] = []
    if content_type.lower().startswith("multipart/"):
        parts = _parts(body, content_type)
        xml_parts = [
            p
            for p in parts
            if p.content_type in ("application/xml", "text/xml")
            or (p.filename or p.name).lower().endswith(".xml")
        ]
        if not xml_parts:
            raise VendorFormatError("multipart body without the EventNotificationAlert XML part")
        xml = xml_parts[0].data
        pictures = [(p, (p.filename or p.name)) for p in parts if _is_picture(p)]
    else:
        xml = body
    try:
        root = SafeET.fromstring(xml)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as err:
        raise VendorFormatError(f"not well-formed XML: {err}") from err
    if _local(root.tag) != "EventNotificationAlert":
        raise VendorFormatError(f"expected <EventNotificationAlert>, got <{_local(root.tag)}>")
    event = _text(root, "eventType")
    device = _text(root, "channelName") or _text(root, "ipAddress") or _text(root, "channelID")
    camera_time = _iso_time(_text(root, "dateTime"))
    if event.upper() != "ANPR":
        return VendorRead(
            vendor="hikvision",
            plate=None,
            confidence=None,
            device=device,
            ignored=f"eventType {event or '(none)'} is not ANPR",
        )
    if _text(root, "eventState").lower() == "inactive":
        return VendorRead(
            vendor="hikvision",
            plate=None,
            confidence=None,
            device=device,
            ignored="eventState inactive",
        )
    anpr = _child(root, "ANPR")
    if anpr is None:
        raise VendorFormatError("ANPR event without its <ANPR> element")
    plate = _text(anpr, "licensePlate")
    confidence: float | None = None
    level = _text(anpr, "confidenceLevel")
    if level:
        try:
            confidence = float(level) / 100
        except ValueError as err:
            raise VendorFormatError(f"confidenceLevel {level!r} is not a number") from err
        if not 0 <= confidence <= 1:
            raise VendorFormatError(f"confidenceLevel {level!r} is not 0-100")
    # The XML says which attached file is which; a name that says it is the fallback.
    kinds: dict[str, str] = {}
    for info in _child(anpr, "pictureInfoList") or []:
        name, kind = _text(info, "fileName"), _text(info, "type").lower()
        if name:
            kinds[name.lower()] = "crop" if kind in _HIK_PLATE_PICTURES else "frame"
    found: list[Picture] = []
    for part, label in pictures:
        stem = label.lower().rsplit(".", 1)[0]
        kind = kinds.get(label.lower()) or (
            "crop" if any(s in stem for s in _HIK_PLATE_PICTURES) else "frame"
        )
        found.append(_checked(Picture(kind=kind, data=part.data, name=label)))
    if plate.lower() in _HIK_NO_PLATE:
        return VendorRead(
            vendor="hikvision",
            plate=None,
            confidence=confidence,
            camera_time=camera_time,
            device=device,
            pictures=tuple(found),
            ignored="no plate recognised",
        )
    return VendorRead(
        vendor="hikvision",
        plate=plate,
        confidence=confidence,
        camera_time=camera_time,
        device=device,
        pictures=tuple(found),
    )


# -- Axis License Plate Verifier ----------------------------------------------------------

_AXIS_TIME = re.compile(r"^(\d{8}) (\d{6})(\d{3})?\s*(?:([+-])(\d{2})(\d{2}))?$")


def _axis_time(text: str) -> datetime | None:
    match = _AXIS_TIME.match(text.strip())
    if not match:
        return None
    day, clock, millis, sign, hours, minutes = match.groups()
    tz: timezone = UTC
    if sign:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        tz = timezone(offset if sign == "+" else -offset)
    try:
        value = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=tz)
    except ValueError:
        return None
    return value + timedelta(milliseconds=int(millis or 0))


def parse_axis(body: bytes, content_type: str) -> VendorRead:
    """An AXIS License Plate Verifier JSON push (JSON alone, or multipart with a picture)."""
    pictures: list[_Part] = []
    if content_type.lower().startswith("multipart/"):
        parts = _parts(body, content_type)
        documents = [
            p
            for p in parts
            if p.content_type == "application/json"
            or (p.filename or p.name).lower().endswith(".json")
            or (not _is_picture(p) and p.data.lstrip().startswith(b"{"))
        ]
        if not documents:
            raise VendorFormatError("multipart body without the JSON event part")
        raw = documents[0].data
        pictures = [p for p in parts if _is_picture(p)]
    else:
        raw = body
    try:
        event: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VendorFormatError(f"not JSON: {err}") from err
    if not isinstance(event, dict):
        raise VendorFormatError("the event must be a JSON object")
    plate = next(
        (
            event[key].strip()
            for key in ("plateUTF8", "plateUnicode", "plateText")
            if isinstance(event.get(key), str) and event[key].strip()
        ),
        "",
    )
    confidence: float | None = None
    raw_confidence = event.get("plateConfidence")
    if raw_confidence is not None:
        if isinstance(raw_confidence, bool) or not isinstance(raw_confidence, int | float | str):
            raise VendorFormatError("plateConfidence must be a number")
        try:
            confidence = float(raw_confidence)
        except ValueError as err:
            raise VendorFormatError("plateConfidence must be a number") from err
        confidence = confidence / 100 if confidence > 1 else confidence
        if not 0 <= confidence <= 1:
            raise VendorFormatError("plateConfidence must be 0-1 (or a percentage)")
    info: dict[str, Any] = (
        event["camera_info"] if isinstance(event.get("camera_info"), dict) else {}
    )
    device = str(
        event.get("sensorProviderID") or info.get("SerialNumber") or info.get("ProdShortName") or ""
    )
    kind = "crop" if str(event.get("imageType", "")).lower() == "plate" else "frame"
    found = tuple(
        _checked(Picture(kind=kind, data=p.data, name=p.filename or p.name)) for p in pictures
    )
    camera_time = _axis_time(str(event.get("datetime", "")))
    if not plate:
        return VendorRead(
            vendor="axis",
            plate=None,
            confidence=confidence,
            camera_time=camera_time,
            device=device,
            pictures=found,
            ignored="no plate in the event",
        )
    return VendorRead(
        vendor="axis",
        plate=plate,
        confidence=confidence,
        camera_time=camera_time,
        device=device,
        pictures=found,
    )
