"""Who is pushing a plate read: the smart camera's key, or its vendor's HTTP Basic/Digest auth.

LPR cameras cannot all send custom headers. A camera is therefore recognised by its
``api_key`` (``[lanes.camera] api_key``) given in any of the ways cameras can send it:

* ``X-API-Key: <key>`` (the generic API, scripts, cameras with custom headers);
* ``?key=<key>`` in the URL configured on the camera (cameras that only take a URL);
* HTTP Basic or Digest, user name = the camera's ``camera_id``, password = its key: the
  push authentication Hikvision's and Axis' HTTP notification settings offer. An
  unauthenticated push is answered 401 with both challenges, Digest first, so a camera
  set to Digest answers it (RFC 7616: MD5 or SHA-256, ``qop=auth``).

Digest nonces are stateless (a time stamp signed with a per-process secret, valid 5
minutes; older ones get ``stale=true`` so the camera retries at once), and each
(nonce, nc) is accepted once, so a captured request cannot be replayed to open a gate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.request import parse_http_list, parse_keqv_list

from gateway.errors import Unauthorized

REALM = "carpark-gateway"
NONCE_TTL_S = 300.0
_SEEN_MAX = 4096
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True)
class CameraKey:
    """What the API needs to know of a smart camera to authenticate it."""

    camera_id: str
    api_key: str
    lane_id: str


class CameraUnauthorized(Unauthorized):
    """401 with the challenges a camera needs to authenticate (``headers`` reach the reply)."""

    def __init__(self, detail: str, headers: Mapping[str, str]) -> None:
        super().__init__(detail)
        self.headers = dict(headers)


class DigestNonces:
    """Issues and checks Digest nonces; remembers the (nonce, nc) pairs already used."""

    def __init__(self, secret: bytes | None = None, ttl_s: float = NONCE_TTL_S) -> None:
        self._secret = secret or os.urandom(32)
        self.ttl_s = ttl_s
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, now: float | None = None) -> str:
        stamp = f"{now if now is not None else time.time():.3f}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return base64.b64encode(f"{stamp}:{mac}".encode()).decode()

    def check(self, nonce: str, now: float | None = None) -> str | None:
        """None when the nonce is ours and fresh, else "invalid" or "stale"."""
        try:
            stamp, mac = base64.b64decode(nonce, validate=True).decode().split(":", 1)
            issued = float(stamp)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return "invalid"
        expected = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(mac, expected):
            return "invalid"
        current = now if now is not None else time.time()
        return "stale" if not 0 <= current - issued <= self.ttl_s else None

    def first_use(self, nonce: str, nc: str) -> bool:
        with self._lock:
            if (nonce, nc) in self._seen:
                return False
            self._seen[(nonce, nc)] = None
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            return True

    def challenges(self, stale: bool = False) -> dict[str, str]:
        """One Digest challenge (MD5: what cameras implement); Basic is accepted whenever a
        camera sends it, and SHA-256 when a client picks it."""
        flag = ", stale=true" if stale else ""
        return {
            "WWW-Authenticate": (
                f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{self.issue()}"{flag}'
            )
        }


def identify(
    cameras: Iterable[CameraKey],
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query_key: str | None,
    nonces: DigestNonces,
) -> CameraKey:
    """The camera behind a request, or :class:`CameraUnauthorized` with the challenges."""
    known = [c for c in cameras if c.api_key]
    key = headers.get("x-api-key") or query_key
    if key:
        for camera in known:
            if hmac.compare_digest(camera.api_key.encode(), key.encode()):
                return camera
        raise CameraUnauthorized("unknown camera key", nonces.challenges())
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "basic":
        return _basic(known, credentials, nonces)
    if scheme.lower() == "digest":
        return _digest(known, credentials, method, path, nonces)
    raise CameraUnauthorized(
        "a camera key is required (X-API-Key, ?key=, or Basic/Digest as the camera)",
        nonces.challenges(),
    )


def _basic(known: list[CameraKey], credentials: str, nonces: DigestNonces) -> CameraKey:
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise CameraUnauthorized("malformed Basic credentials", nonces.challenges()) from err
    for camera in known:
        if camera.camera_id == user and hmac.compare_digest(
            camera.api_key.encode(), password.encode()
        ):
            return camera
    raise CameraUnauthorized("wrong camera id or key", nonces.challenges())


def _digest(
    known: list[CameraKey], credentials: str, method: str, path: str, nonces: DigestNonces
) -> CameraKey:
    fields = parse_keqv_list(parse_http_list(credentials))
    needed = ("username", "realm", "nonce", "uri", "response")
    if any(not fields.get(name) for name in needed):
        raise CameraUnauthorized("incomplete Digest credentials", nonces.challenges())
    algorithm = fields.get("algorithm", "MD5").upper()
    digest = _HASHES.get(algorithm)
    if digest is None or fields["realm"] != REALM:
        raise CameraUnauthorized(f"unsupported Digest {algorithm}/realm", nonces.challenges())
    problem = nonces.check(fields["nonce"])
    if problem is not None:
        raise CameraUnauthorized(f"{problem} Digest nonce", nonces.challenges(problem == "stale"))
    if fields["uri"].split("?", 1)[0] != path:
        raise CameraUnauthorized("Digest uri is not this request's", nonces.challenges())
    camera = next((c for c in known if c.camera_id == fields["username"]), None)
    if camera is None:
        raise CameraUnauthorized("wrong camera id or key", nonces.challenges())

    def h(text: str) -> str:
        return digest(text.encode()).hexdigest()

    ha1 = h(f"{camera.camera_id}:{REALM}:{camera.api_key}")
    ha2 = h(f"{method}:{fields['uri']}")
    qop = fields.get("qop")
    if qop == "auth":
        nc, cnonce = fields.get("nc", ""), fields.get("cnonce", "")
        if not nc or not cnonce:
            raise CameraUnauthorized("Digest qop=auth needs nc and cnonce", nonces.challenges())
        expected = h(f"{ha1}:{fields['nonce']}:{nc}:{cnonce}:{qop}:{ha2}")
    elif qop is None:
        nc, expected = "", h(f"{ha1}:{fields['nonce']}:{ha2}")
    else:
        raise CameraUnauthorized(f"unsupported Digest qop {qop!r}", nonces.challenges())
    if not hmac.compare_digest(expected, fields["response"].lower()):
        raise CameraUnauthorized("wrong camera id or key", nonces.challenges())
    if not nonces.first_use(fields["nonce"], nc):
        raise CameraUnauthorized("Digest request replayed", nonces.challenges())
    return camera
