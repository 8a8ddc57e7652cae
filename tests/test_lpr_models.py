"""Installing the plate models: ``carpark-gateway lpr models install`` and where models are found.

The "internet" is a real HTTP server on a free local port serving ``../shared/lpr/models``
(the pinned files), or a copy of it with one file corrupted; the command runs as a site
installer runs it, in a subprocess, with the state directory given by ``CARPARK_DB``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drivers.camera.models import INSTALL_COMMAND, MANIFEST, ModelsNotFound, find_models
from gateway.config import ConfigError, LprConfig, lpr_directory
from tests.conftest import ManualClock, config_from, start_daemon

ROOT = Path(__file__).resolve().parent.parent
SHARED = lpr_directory(LprConfig().directory).resolve()
MODELS = SHARED / "models"
pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"no LPR models at {MODELS} to serve")
NAMES = [m.name for m in MANIFEST]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """A real HTTP server for ``folder`` on a free port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="models-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def cli(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``carpark-gateway lpr models ...`` with the state directory ``state`` and no dev folder."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CARPARK_")}
    environ |= {"CARPARK_DB": str(state / "carpark.db"), **env}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(state / "site.toml"), "lpr", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A site's state directory and config, whose development folder does not exist."""
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "site.toml").write_text(
        f'[site]\ndevelopment = true\n[lpr]\ndirectory = "{tmp_path / "no-dev-folder"}"\n'
    )
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installed(state: Path) -> dict[str, str]:
    folder = state / "lpr-models"
    return {p.name: sha256(p) for p in folder.iterdir()} if folder.is_dir() else {}


def test_the_manifest_pins_the_files_the_pipeline_is_measured_with() -> None:
    for entry in MANIFEST:
        path = MODELS / entry.name
        assert sha256(path) == entry.sha256 and path.stat().st_size == entry.size, entry.name
        assert entry.licence in ("MIT", "Apache-2.0") and entry.urls
        assert all(url.startswith("https://") for url in entry.urls)


def test_install_from_a_url_then_the_state_directory_is_used(state: Path) -> None:
    before = cli(state, "models", "where")
    assert before.returncode == 1 and INSTALL_COMMAND in before.stderr
    with serving(MODELS) as url:
        done = cli(state, "models", "install", "--from", url)
    assert done.returncode == 0, done.stderr
    assert installed(state) == {m.name: m.sha256 for m in MANIFEST}
    assert [p.name for p in state.iterdir() if p.name.startswith(".")] == []  # no staging left
    where = cli(state, "models", "where")
    assert where.returncode == 0, where.stderr
    assert "found in the state directory" in where.stdout
    assert str(state / "lpr-models" / NAMES[0]) in where.stdout
    # ... and the pipeline runs from there: a read on a real photograph.
    sample = next((SHARED / "data" / "openalpr-eu").glob("eu3.jpg"), None)
    if sample is not None:
        read = cli(state, "read", str(sample))
        assert read.returncode == 0, read.stderr
        assert read.stdout.splitlines()[1].split()[0] == "FWE50"


def test_a_corrupted_file_is_refused_and_nothing_changes(state: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MODELS, mirror)
    with serving(mirror) as url:
        assert cli(state, "models", "install", "--from", url).returncode == 0
        good = installed(state)
        ocr = mirror / "cct_xs_v1_global.onnx"
        data = bytearray(ocr.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
        ocr.write_bytes(bytes(data))
        done = cli(state, "models", "install", "--from", url)
        assert done.returncode == 1
        assert "cct_xs_v1_global.onnx" in done.stderr and "SHA-256" in done.stderr
        assert installed(state) == good  # the previous installation is untouched
        ocr.write_bytes(bytes(data) + b"more")  # longer than pinned: cut off, refused as well
        assert cli(state, "models", "install", "--from", url).returncode == 1
        ocr.unlink()  # a mirror without the file (404)
        missing = cli(state, "models", "install", "--from", url)
        assert missing.returncode == 1 and "404" in missing.stderr
    assert installed(state) == good
    assert [p.name for p in state.iterdir() if p.name.startswith(".")] == []


def test_a_first_install_that_fails_leaves_no_models(state: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MODELS, mirror)
    (mirror / "cct_xs_v1_global_plate_config.yaml").write_text("max_plate_slots: 7\n")
    done = cli(state, "models", "install", "--from", str(mirror))  # a folder (USB stick)
    assert done.returncode == 1 and "cct_xs_v1_global_plate_config.yaml" in done.stderr
    assert installed(state) == {}  # the detector and OCR files that were fine are not left behind
    assert cli(state, "models", "install", "--from", str(SHARED)).returncode == 0  # models/ inside
    assert set(installed(state)) == set(NAMES)


def test_lookup_order(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "lpr-models").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(MODELS / name, state / "lpr-models" / name)
    names = {
        "detector": NAMES[0],
        "ocr": NAMES[1],
        "ocr_config": NAMES[2],
    }
    # models_dir wins; then the state directory; then the development folder.
    found = find_models(**names, models_dir=str(SHARED), state_dir=str(state), development=None)
    assert found.found_in == "models_dir" and found.detector == MODELS / NAMES[0]
    found = find_models(**names, models_dir="", state_dir=str(state), development=SHARED)
    assert found.found_in == "state directory"
    assert found.detector == (state / "lpr-models" / NAMES[0]).resolve()
    found = find_models(**names, models_dir="", state_dir=str(tmp_path), development=SHARED)
    assert found.found_in == "development folder" and found.ocr == MODELS / NAMES[1]
    # An explicit models_dir without the files is an error, never a fall-back to another copy.
    with pytest.raises(ModelsNotFound, match=r"models_dir / CARPARK_LPR_DIR") as err:
        find_models(**names, models_dir=str(tmp_path), state_dir=str(state), development=SHARED)
    assert INSTALL_COMMAND in str(err.value)


def test_a_camera_lane_without_models_stops_start_up_naming_the_install_command(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = config_from(
        tmp_path,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                "barrier": {"driver": "simulated"},
                "presence_loop": {"driver": "simulated"},
                "safety_loop": {"driver": "simulated"},
                "camera": {"driver": "folder", "folder": str(tmp_path)},
            }
        ],
        lpr={"directory": str(tmp_path / "no-dev-folder")},
    )
    assert config.lpr.state_dir == str(tmp_path)  # the database's folder
    with pytest.raises(ConfigError, match=r"lanes\[entry-1\]\.camera: plate models not found") as e:
        start_daemon(config, clock)
    assert INSTALL_COMMAND in str(e.value) and str(tmp_path / "lpr-models") in str(e.value)


def test_list_names_every_file_with_its_hash_and_licence(state: Path) -> None:
    done = cli(state, "models", "list")
    assert done.returncode == 0, done.stderr
    for entry in MANIFEST:
        line = next(line for line in done.stdout.splitlines() if line.startswith(entry.name))
        assert entry.sha256 in line and entry.licence in line and entry.urls[0] in line


def test_without_from_the_manifest_addresses_are_tried_in_order(tmp_path: Path) -> None:
    """The download path of a site with internet, its addresses pointed at the local server:
    a dead first address falls back to the next one, and the hash still decides."""
    from dataclasses import replace

    from drivers.camera.models import ModelInstallError, install

    with serving(MODELS) as url:
        manifest = [
            replace(entry, urls=(f"{url}missing/{entry.name}", f"{url}{entry.name}"))
            for entry in MANIFEST
        ]
        target = install(tmp_path / "state", manifest=manifest)
        assert {p.name: sha256(p) for p in target.iterdir()} == {m.name: m.sha256 for m in MANIFEST}
        wrong = [replace(manifest[0], sha256="0" * 64)]
        with pytest.raises(ModelInstallError, match=r"404.*SHA-256|SHA-256"):
            install(tmp_path / "other", manifest=wrong)
    assert not (tmp_path / "other" / "lpr-models").exists()
