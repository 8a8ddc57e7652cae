"""Plate recognition: smart cameras' reads (generic, Hikvision, Axis), the read log with its
pictures, corrections, plate lists."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import msgspec
import numpy as np
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta, Struct

from drivers.camera.vendors import VendorFormatError, VendorRead, parse_axis, parse_hikvision
from gateway.api.auth import PUBLIC, admin, staff
from gateway.api.camera_auth import CameraKey, DigestNonces, identify
from gateway.api.deps import Deps
from gateway.api.errors import BODY, STAFF, errors
from gateway.api.params import Limit, OptQueryTime, Page, paged, query_time
from gateway.api.responses import (
    Message,
    PlateListEntry,
    PlateRead,
    PlateReadPage,
    ReadAccepted,
    typed,
)
from gateway.api.schemas import Body, PlateText, Update, given
from gateway.domain.plates import InvalidPlate, normalize_plate
from gateway.errors import GatewayError, Invalid, NotFound
from gateway.services import Actor, plates, require, rows
from gateway.timeutil import iso, utc

MAX_IMAGE_BYTES = 2 * 1024 * 1024


class SmartReadIn(Body):
    plate: PlateText
    confidence: Annotated[float, Meta(ge=0, le=1)]
    time: datetime | None = None
    image: Annotated[str, Meta(max_length=3 * 1024 * 1024)] | None = None  # base64 JPEG/PNG
    camera_id: Annotated[str, Meta(max_length=100)] | None = None


class CorrectionIn(Body):
    plate: PlateText


class ListEntryIn(Body):
    plate: PlateText
    list: Literal["allow", "deny"]
    lane_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    reason: Annotated[str, Meta(max_length=200)] | None = None
    valid_until: datetime | None = None


class ListEntryUpdate(Update):
    list: Literal["allow", "deny"] | msgspec.UnsetType = msgspec.UNSET
    reason: Annotated[str, Meta(max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    valid_until: datetime | msgspec.UnsetType | None = msgspec.UNSET


class VendorPushOut(Struct):
    """What a camera's push did: a read handed to the lane, or an event that holds none."""

    accepted: bool  # a plate read went to the lane
    lane_id: str
    camera_id: str
    plate: str | None = None
    ignored: str | None = None  # why no read: another event type, no plate recognised


class MalformedPush(GatewayError):
    """A camera's body that is not its vendor's format (400, like any malformed request)."""


# What the vendor routes answer besides 200: a body that is not the vendor's plate event
# (400), no or a wrong camera key (401, WWW-Authenticate carries a Digest challenge), a
# plate in the event that is not a plate (422).
PUSH_ERRORS = errors(400, 401, 413, 422)
# A Hikvision or Axis push holds pictures; a plain read at most one small one.
VENDOR_MAX_BODY = 20 * 1024 * 1024
# A read a camera pushes without a confidence counts as this (above min_confidence 0.6).
VENDOR_DEFAULT_CONFIDENCE = 0.9
_NONCES = DigestNonces()


def _camera_lane(deps: Deps, request: Request[Any, Any, Any]) -> Any:
    """The lane of the smart camera making this request (see gateway.api.camera_auth)."""
    lanes = {
        lane.spec.id: lane
        for lane in deps.lanes.lanes.values()
        if lane.camera is not None and lane.camera.api_key
    }
    camera = identify(
        [
            CameraKey(lane.camera.camera_id, lane.camera.api_key, lane_id)
            for lane_id, lane in lanes.items()
        ],
        method=request.method,
        path=request.url.path,
        headers=request.headers,
        query_key=request.query_params.get("key"),
        nonces=_NONCES,
    )
    return lanes[camera.lane_id]


class SmartCameraController(Controller):
    path = "/lpr"
    tags = ["Plate recognition"]

    @post("/reads", opt=PUBLIC, status_code=202, responses=errors(*BODY, 401, 422))
    async def smart_read(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        data: JSONBody[SmartReadIn],
    ) -> ReadAccepted:
        """A read from a camera that recognises plates on board (``X-API-Key``: its key)."""
        lane = _camera_lane(deps, request)
        plate = normalize_plate(data.plate)
        image = await asyncio.to_thread(_decode_image, data.image) if data.image else None
        at = utc(data.time) if data.time else deps.clock.now()
        lane.camera.external_read(plate, data.confidence, at, image)
        return ReadAccepted(accepted=True, lane_id=lane.spec.id, plate=plate)

    @post(
        "/hikvision",
        opt=PUBLIC,
        status_code=200,
        request_max_body_size=VENDOR_MAX_BODY,
        responses=PUSH_ERRORS,
    )
    async def hikvision(
        self, deps: NamedDependency[Deps], request: Request[Any, Any, Any]
    ) -> VendorPushOut:
        """Hikvision ISAPI ANPR push (``EventNotificationAlert`` XML, alone or multipart with
        its pictures). Point the camera's HTTP listening / alarm server at this path with
        ``?key=<the camera's key>``, or set its user to the ``camera_id`` and its password to
        the key (Basic or Digest). Non-ANPR events are answered 200 and ignored."""
        return await _vendor_push(deps, request, parse_hikvision)

    @post(
        "/axis",
        opt=PUBLIC,
        status_code=200,
        request_max_body_size=VENDOR_MAX_BODY,
        responses=PUSH_ERRORS,
    )
    async def axis(
        self, deps: NamedDependency[Deps], request: Request[Any, Any, Any]
    ) -> VendorPushOut:
        """AXIS License Plate Verifier "JSON over HTTP" push (JSON, or multipart with its
        picture), authenticated as the Hikvision route."""
        return await _vendor_push(deps, request, parse_axis)


async def _vendor_push(
    deps: Deps, request: Request[Any, Any, Any], parse: Callable[[bytes, str], VendorRead]
) -> VendorPushOut:
    lane = _camera_lane(deps, request)  # before reading the body: a stranger gets a 401
    body = await request.body()
    try:
        read = parse(body, request.headers.get("content-type", ""))
    except VendorFormatError as err:
        raise MalformedPush(
            f"not a {parse.__name__.removeprefix('parse_')} plate event: {err}"
        ) from err
    camera = lane.camera
    out = VendorPushOut(accepted=False, lane_id=lane.spec.id, camera_id=camera.camera_id)
    if read.ignored is not None or read.plate is None:
        out.ignored = read.ignored or "no plate"
        return out
    try:
        plate = normalize_plate(read.plate)
    except InvalidPlate as err:
        raise Invalid(f"plate {read.plate!r}: {err}", field="plate") from err
    frame, crop = await asyncio.to_thread(_pictures, read)
    confidence = VENDOR_DEFAULT_CONFIDENCE if read.confidence is None else read.confidence
    camera.external_read(plate, confidence, deps.clock.now(), frame, crop)
    out.accepted, out.plate = True, plate
    return out


def _pictures(read: VendorRead) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The frame and the crop a camera attached, decoded (an undecodable one is left out:
    the read still counts, the evidence is what is missing)."""
    decoded: list[np.ndarray | None] = []
    for kind in ("frame", "crop"):
        data = read.picture(kind)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        decoded.append(image)
    return decoded[0], decoded[1]


def _read_file(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _decode_image(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise Invalid("image must be base64", field="image") from err
    if len(raw) > MAX_IMAGE_BYTES:
        raise Invalid("image must be at most 2 MB", field="image")
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Invalid("image is not a JPEG or PNG picture", field="image")
    return image


class PlateReadController(Controller):
    path = "/plate-reads"
    tags = ["Plate recognition"]
    guards = [staff]

    @get("/", responses=errors(400, *STAFF, 422))
    async def list_reads(
        self,
        deps: NamedDependency[Deps],
        page: Page = 1,
        limit: Limit = 20,
        lane_id: FromQuery[str | None] = None,
        plate: FromQuery[str | None] = None,
        since: OptQueryTime = None,
        until: OptQueryTime = None,
    ) -> PlateReadPage:
        """Newest first. ``plate`` matches the read or its correction; an empty ``plate=``
        or ``lane_id=`` (a search form's blank field) is no filter."""
        start, end = query_time(since, "since"), query_time(until, "until")
        where: list[str] = []
        params: list[Any] = []
        if lane_id:
            where.append("lane_id = ?")
            params.append(lane_id)
        if plate and plate.strip():
            normal = normalize_plate(plate)
            where.append("(plate = ? OR corrected_from = ?)")
            params.extend([normal, normal])
        if start is not None:
            where.append("first_seen >= ?")
            params.append(iso(start))
        if end is not None:
            where.append("first_seen < ?")
            params.append(iso(end))
        page_ = paged(
            deps.db,
            key="reads",
            table="plate_reads",
            where=where,
            params=params,
            page=page,
            limit=limit,
            render=plates.read_view,
            order="id DESC",
        )
        return typed(PlateReadPage, page_)

    @get("/{read_id:int}", responses=errors(400, *STAFF, 404))
    async def get_read(self, deps: NamedDependency[Deps], read_id: FromPath[int]) -> PlateRead:
        return typed(
            PlateRead, plates.read_view(require(deps.db, "plate_reads", read_id, "plate read"))
        )

    @get(
        "/{read_id:int}/image",
        media_type="image/jpeg",
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type="image/jpeg",
                description="The JPEG picture",
                generate_examples=False,
            ),
            **errors(400, *STAFF, 404),
        },
    )
    async def image(
        self,
        deps: NamedDependency[Deps],
        read_id: FromPath[int],
        kind: FromQuery[Literal["frame", "crop"]] = "frame",
    ) -> Response[bytes]:
        row = require(deps.db, "plate_reads", read_id, "plate read")
        path = row[f"{kind}_path"]
        content = await asyncio.to_thread(_read_file, path) if path else None
        if content is None:
            raise NotFound(
                f"no {kind} picture for read {read_id} (none taken, or removed by the quota)"
            )
        return Response(content=content, media_type="image/jpeg")

    @put("/{read_id:int}", responses=errors(*BODY, *STAFF, 404, 422))
    async def correct(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        read_id: FromPath[int],
        data: JSONBody[CorrectionIn],
    ) -> PlateRead:
        plate = normalize_plate(data.plate)
        await deps.write(request, lambda db, ctx: plates.correct(db, ctx, read_id, plate))
        return typed(
            PlateRead, plates.read_view(require(deps.db, "plate_reads", read_id, "plate read"))
        )


class PlateListController(Controller):
    path = "/plate-lists"
    tags = ["Plate recognition"]
    guards = [admin]

    @get("/", responses=errors(400, *STAFF))
    async def list_entries(
        self,
        deps: NamedDependency[Deps],
        list_: Annotated[Literal["allow", "deny"] | None, QueryParameter(name="list")] = None,
    ) -> list[PlateListEntry]:
        if list_ is None:
            found = rows(deps.db, "SELECT * FROM plate_lists ORDER BY id")
        else:
            found = rows(deps.db, "SELECT * FROM plate_lists WHERE list = ? ORDER BY id", [list_])
        return [typed(PlateListEntry, plates.list_view(r)) for r in found]

    @post("/", status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def upsert(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[ListEntryIn],
    ) -> PlateListEntry:
        """Add a plate to the allow or deny list of a lane (or the whole site).

        A plate already listed for that lane is 409 (with its ``entry_id``): moving it to
        the other list is a ``PUT`` of that entry, so a deny is never lifted by accident.
        """
        plate = normalize_plate(data.plate)
        if data.lane_id is not None:
            deps.lanes.get(data.lane_id)
        until = utc(data.valid_until) if data.valid_until else None
        entry_id = await deps.write(
            request,
            lambda db, ctx: plates.add_list_entry(
                db,
                ctx,
                plate=plate,
                list_type=data.list,
                lane_id=data.lane_id,
                reason=data.reason,
                valid_until=until,
            ),
        )
        entry = require(deps.db, "plate_lists", entry_id, "plate list entry")
        return typed(PlateListEntry, plates.list_view(entry))

    @put("/{entry_id:int}", responses=errors(*BODY, *STAFF, 404, 422))
    async def update(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        entry_id: FromPath[int],
        data: JSONBody[ListEntryUpdate],
    ) -> PlateListEntry:
        """Move an entry to the other list, or change its reason or expiry."""
        changes = given(data)
        if changes.get("valid_until") is not None:
            changes["valid_until"] = utc(changes["valid_until"])  # type: ignore[arg-type]
        await deps.write(
            request, lambda db, ctx: plates.update_list_entry(db, ctx, entry_id, changes)
        )
        entry = require(deps.db, "plate_lists", entry_id, "plate list entry")
        return typed(PlateListEntry, plates.list_view(entry))

    @delete("/{entry_id:int}", status_code=200, responses=errors(400, *STAFF, 404))
    async def remove(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        entry_id: FromPath[int],
    ) -> Message:
        await deps.write(request, lambda db, ctx: plates.remove_list_entry(db, ctx, entry_id))
        return Message(message=f"plate list entry {entry_id} removed")
