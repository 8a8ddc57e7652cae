"""The plate models: a pinned manifest, where the daemon finds them, and how they are installed.

A site installer has neither this repository's development folder nor, often, internet at
the cabinet. ``carpark-gateway lpr models install`` therefore places the three files the
pipeline needs (the LPD-YuNet detector, the fast-plate-ocr model and its plate config) in
the daemon's state directory, from their public release addresses or from a folder or URL
given with ``--from`` (a USB stick, a local mirror), and checks every file against the
SHA-256 pinned below before anything is put in place.

Lookup, first match wins (:func:`find_models`):

1. ``[lpr] models_dir`` (``CARPARK_LPR_DIR``): when set it is authoritative; missing files
   there are an error, never a silent fall-back to another copy;
2. the state directory's ``lpr-models/`` (where ``install`` writes);
3. the development folder ``[lpr] directory`` (default ``../shared/lpr``, found beside the
   checkout or one of its parents), which also holds the labelled photographs.

A folder may hold the files directly or in a ``models/`` subfolder (the layout of
``../shared/lpr``).

Install is atomic per set: every file is downloaded or copied into a staging folder inside
the state directory, hashed while it is written and compared with the manifest; only when
all of them match are they moved into ``lpr-models/`` with ``os.replace`` (same file
system, so each file appears whole or not at all). A bad hash, a short download or a
missing file stops the install with the file's name, removes the staging folder and leaves
what was installed before untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

INSTALL_COMMAND = "carpark-gateway lpr models install"
INSTALLED_DIR = "lpr-models"  # under the state directory
_CHUNK = 1 << 16


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """One file of the pinned set: what it is, its bytes' hash, where it is published."""

    role: str  # detector | ocr | ocr_config (the [lpr] key naming it: <role>_model, ocr_config)
    name: str
    sha256: str
    size: int
    urls: tuple[str, ...]  # tried in order
    licence: str  # SPDX identifier
    source: str  # the project and revision the bytes come from


# The hashes are those of the files the pipeline was measured with (../shared/lpr/models);
# each address below publishes exactly those bytes (the detector's Git LFS pointer at that
# commit records the same SHA-256 and size).
MANIFEST: tuple[ModelFile, ...] = (
    ModelFile(
        role="detector",
        name="license_plate_detection_lpd_yunet_2023mar.onnx",
        sha256="6d4978a7b6d25514d5e24811b82bfb511d166bdd8ca3b03aa63c1623d4d039c7",
        size=4146213,
        urls=(
            "https://media.githubusercontent.com/media/opencv/opencv_zoo/"
            "b4971d625240509dae6119e19201fe30919a285f/models/license_plate_detection_yunet/"
            "license_plate_detection_lpd_yunet_2023mar.onnx",
        ),
        licence="Apache-2.0",
        source="OpenCV Zoo (opencv/opencv_zoo) models/license_plate_detection_yunet, LPD-YuNet",
    ),
    ModelFile(
        role="ocr",
        name="cct_xs_v1_global.onnx",
        sha256="c1ae2ae031b10f8ab7ed6e3cdaf8d9c753477e299dbad3579c8f705a7d882134",
        size=2113942,
        urls=(
            # fast-plate-ocr's own hub address for "cct-xs-v1-global-model" (fast_plate_ocr.inference.hub)
            "https://github.com/ankandrew/cnn-ocr-lp/releases/download/arg-plates/cct_xs_v1_global.onnx",
            "https://raw.githubusercontent.com/NateMccomb/TeslaCamViewer/"
            "ef7496bb6b021a13bd62ceb0a01d19a131101829/vendor/models/cct_xs_v1_global.onnx",
        ),
        licence="MIT",
        source="fast-plate-ocr (ankandrew/fast-plate-ocr) release model cct-xs-v1-global-model",
    ),
    ModelFile(
        role="ocr_config",
        name="cct_xs_v1_global_plate_config.yaml",
        sha256="8ade332ef026520a3360a7c154cc10be664bee25482f3997bce34a7007b4786e",
        size=773,
        urls=(
            "https://raw.githubusercontent.com/ankandrew/fast-plate-ocr/"
            "9cea93b068b6523da95f0adf3399ca65c9f06480/config/default_latin_plate_config.yaml",
        ),
        licence="MIT",
        source="fast-plate-ocr config/default_latin_plate_config.yaml (9 slots, 0-9A-Z, 64x128 RGB)",
    ),
)


class LprModelError(Exception):
    """A model file is missing, unreadable or not a model; the message names the file."""


class ModelInstallError(Exception):
    """The install could not complete; nothing was changed. The message names the file."""


class ModelsNotFound(LprModelError):
    """No complete set of model files where the daemon looks; the message says where and how
    to install them."""


@dataclass(frozen=True)
class ModelPaths:
    detector: Path
    ocr: Path
    ocr_config: Path
    found_in: str  # models_dir | state directory | development folder


# -- lookup -------------------------------------------------------------------------------


def installed_folder(state_dir: str | Path) -> Path:
    return Path(state_dir) / INSTALLED_DIR


def _in_folder(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder`` (or its ``models/``); an absolute ``name`` is taken as it is."""
    given = Path(name)
    if given.is_absolute():
        return given if given.is_file() else None  # named as configured
    candidates = (folder / given, folder / "models" / given, folder / given.name)
    for candidate in (*candidates, folder / "models" / given.name):
        if candidate.is_file():
            return candidate.resolve()
    return None


def find_models(
    *,
    detector: str,
    ocr: str,
    ocr_config: str,
    models_dir: str,
    state_dir: str,
    development: Path | None,
    need_ocr_files: bool = True,
) -> ModelPaths:
    """Where the pipeline's three files are, in the lookup order of the module docstring."""
    names = {"detector": detector, "ocr": ocr, "ocr_config": ocr_config}
    if not need_ocr_files:  # a fast-plate-ocr hub name: only the detector is a file
        names = {"detector": detector}
    places: list[tuple[str, Path]] = []
    if models_dir:
        places.append(("models_dir", Path(models_dir)))
    else:
        places.append(("state directory", installed_folder(state_dir)))
        if development is not None and development.is_dir():
            places.append(("development folder", development))
    for label, folder in places:
        found = {role: _in_folder(folder, name) for role, name in names.items()}
        if all(found.values()):
            return ModelPaths(
                detector=found["detector"],  # type: ignore[arg-type]
                ocr=found.get("ocr") or Path(ocr),
                ocr_config=found.get("ocr_config") or Path(ocr_config),
                found_in=label,
            )
    label, folder = places[0]
    missing = [name for role, name in names.items() if _in_folder(folder, name) is None]
    where = " or ".join(str(f) for _, f in places)
    raise ModelsNotFound(
        f"plate models not found: {', '.join(missing)} (looked in {where}); install them with "
        f"`{INSTALL_COMMAND}` (offline: `{INSTALL_COMMAND} --from DIR_OR_URL`)"
        + (", or fix [lpr] models_dir / CARPARK_LPR_DIR" if label == "models_dir" else "")
    )


# -- install ------------------------------------------------------------------------------

Fetch = Callable[[str, Callable[[bytes], None], int], None]  # (url, write, max bytes)


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "file")


def _fetch_http(url: str, write: Callable[[bytes], None], limit: int) -> None:
    import httpx

    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as response:
            if response.status_code != 200:
                raise ModelInstallError(f"{url}: HTTP {response.status_code}")
            got = 0
            for chunk in response.iter_bytes(_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise ModelInstallError(f"{url}: larger than the pinned {limit} bytes")
                write(chunk)
    except httpx.HTTPError as err:
        raise ModelInstallError(f"{url}: {err}") from err


def _copy_file(path: Path, write: Callable[[bytes], None], limit: int) -> None:
    try:
        with path.open("rb") as f:
            got = 0
            while chunk := f.read(_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise ModelInstallError(f"{path}: larger than the pinned {limit} bytes")
                write(chunk)
    except OSError as err:
        raise ModelInstallError(f"{path}: {err}") from err


def _sources(entry: ModelFile, origin: str | None) -> list[str]:
    """Where to take ``entry`` from: the manifest's addresses, or the same name at ``origin``."""
    if origin is None:
        return list(entry.urls)
    if _is_url(origin):
        parsed = urlparse(origin)
        if parsed.scheme == "file":
            origin = unquote(parsed.path)
        else:
            return [origin.rstrip("/") + "/" + entry.name]
    folder = Path(origin)
    found = _in_folder(folder, entry.name)
    return [str(found if found is not None else folder / entry.name)]


def _fetch_one(entry: ModelFile, source: str, staging: Path) -> Path:
    target = staging / entry.name
    digest = hashlib.sha256()
    with target.open("wb") as f:

        def write(chunk: bytes) -> None:
            digest.update(chunk)
            f.write(chunk)

        if _is_url(source):
            _fetch_http(source, write, entry.size)
        else:
            path = Path(source)
            if not path.is_file():
                raise ModelInstallError(f"{entry.name}: not found at {path}")
            _copy_file(path, write, entry.size)
        f.flush()
        os.fsync(f.fileno())
    if digest.hexdigest() != entry.sha256:
        raise ModelInstallError(
            f"{entry.name} from {source}: SHA-256 {digest.hexdigest()} is not the pinned "
            f"{entry.sha256}; refused (a corrupted or different file)"
        )
    return target


def install(
    state_dir: str | Path,
    origin: str | None = None,
    *,
    manifest: Sequence[ModelFile] = MANIFEST,
    report: Callable[[str], None] = lambda _line: None,
) -> Path:
    """Install the manifest's files into ``<state_dir>/lpr-models`` (see the module docstring).

    ``origin``: None for the manifest's public addresses, else a folder or a base URL holding
    the files under their names. Returns the installed folder; raises
    :class:`ModelInstallError` having changed nothing.
    """
    state = Path(state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".lpr-models-staging-", dir=state))
    except OSError as err:
        raise ModelInstallError(f"cannot write the state directory {state}: {err}") from err
    try:
        verified: list[Path] = []
        for entry in manifest:
            errors: list[str] = []
            for source in _sources(entry, origin):
                try:
                    verified.append(_fetch_one(entry, source, staging))
                    report(f"{entry.name}: sha256 ok ({entry.licence}, from {source})")
                    break
                except ModelInstallError as err:
                    errors.append(str(err))
            else:
                raise ModelInstallError("; ".join(errors))
        target = installed_folder(state)
        target.mkdir(exist_ok=True)
        for path in verified:  # all verified: now each appears whole, or not at all
            os.replace(path, target / path.name)
        _fsync_dir(target)
        return target
    except OSError as err:
        raise ModelInstallError(f"cannot install into {state}: {err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(manifest: Iterable[ModelFile] = MANIFEST) -> list[str]:
    """One line per file for ``lpr models list``: name, size, hash, licence, source."""
    return [
        f"{m.name}  {m.size} bytes  sha256 {m.sha256}  {m.licence}  {m.source}  <{m.urls[0]}>"
        for m in manifest
    ]
