"""The daemon's life cycle: configuration, CLI, systemd notifications, clean shutdown."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import PLACEHOLDER_SECRET, ConfigError, load_config
from tests.conftest import ManualClock, make_config, start_daemon

CLI = [sys.executable, "-m", "gateway"]


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(body)
    return path


def test_env_overrides_win_over_the_file(tmp_path):
    cfg = write_config(tmp_path, "[http]\nport = 8000\n[site]\ndevelopment = true\n")
    config = load_config(
        cfg,
        env={
            "CARPARK_HTTP_PORT": "9123",
            "CARPARK_DB": "var/x.db",
            "CARPARK_HTTP_HOST": "0.0.0.0",
            "CARPARK_SITE_ID": "north",
        },
    )
    assert config.http.port == 9123
    assert config.http.host == "0.0.0.0"
    assert config.database.path == "var/x.db"
    assert config.site.id == "north"


def test_config_path_from_environment(tmp_path):
    cfg = write_config(tmp_path, '[site]\nid = "from-env-file"\ndevelopment = true\n')
    assert load_config(None, env={"CARPARK_CONFIG": str(cfg)}).site.id == "from-env-file"


def test_embedded_default_config_loads():
    config = load_config(None, env={})
    assert config.http.host == "127.0.0.1" and config.http.port == 8000
    assert config.site.development is True


@pytest.mark.parametrize(
    ("body", "env", "message"),
    [
        ("[site]\ndevelopment = false\n", {}, "placeholder"),
        ("[site]\ndevelopment = false\n", {"CARPARK_SECRET_KEY": "short"}, "at least 32"),
        ("[http]\nport = 70000\n[site]\ndevelopment = true\n", {}, "http.port"),
        ("[http]\nport = -1\n[site]\ndevelopment = true\n", {}, "http.port"),
        ('[http]\nport = "eighty"\n', {}, "http.port"),
        ("[htttp]\nport = 1\n", {}, "unknown section"),
        ("[http]\nprot = 1\n", {}, "unknown key"),
        ('[site]\ntimezone = "Mars/Base"\ndevelopment = true\n', {}, "time zone"),
        ("not toml at all [", {}, "not valid TOML"),
        ("[site]\ndevelopment = true\n", {"CARPARK_HTTP_PORT": "abc"}, "http.port"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(tmp_path, body, env, message):
    cfg = write_config(tmp_path, body)
    with pytest.raises(ConfigError, match=message):
        load_config(cfg, env=env)


def test_placeholder_secret_is_fine_in_development(tmp_path):
    cfg = write_config(tmp_path, "[site]\ndevelopment = true\n")
    assert load_config(cfg, env={}).auth.secret_key == PLACEHOLDER_SECRET


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_migrate_and_user_create(tmp_path):
    db = tmp_path / "cli.db"
    cfg = write_config(tmp_path, "[site]\ndevelopment = true\n")
    env = {"CARPARK_DB": str(db)}
    assert run_cli("--config", str(cfg), "migrate", env=env).returncode == 0
    tables = {
        r[0]
        for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert {"users", "sessions", "payments", "outbox", "_sqlite_migrations"} <= tables

    ok = run_cli(
        "--config",
        str(cfg),
        "user",
        "create",
        "--email",
        "Boss@Example.com",
        "--password",
        "s3cret-pass",
        "--role",
        "admin",
        "--name",
        "The Boss",
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    again = run_cli(
        "--config",
        str(cfg),
        "user",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "other-pass",
        "--role",
        "operator",
        env=env,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    rows = (
        sqlite3.connect(db)
        .execute("SELECT email, role, full_name, password_hash FROM users")
        .fetchall()
    )
    assert len(rows) == 1
    email, role, name, password_hash = rows[0]
    assert (email, role, name) == ("boss@example.com", "admin", "The Boss")
    assert password_hash.startswith("$argon2") and "s3cret-pass" not in password_hash
    # Passwords never reach the logs.
    assert "s3cret-pass" not in ok.stdout + ok.stderr

    bad_role = run_cli(
        "--config",
        str(cfg),
        "user",
        "create",
        "--email",
        "x@example.com",
        "--password",
        "longenough",
        "--role",
        "root",
        env=env,
    )
    assert bad_role.returncode == 2


def test_cli_refuses_placeholder_secret_in_production(tmp_path):
    cfg = write_config(tmp_path, "[site]\ndevelopment = false\n")
    result = run_cli("--config", str(cfg), "migrate", env={"CARPARK_DB": str(tmp_path / "x.db")})
    assert result.returncode == 2
    assert "CARPARK_SECRET_KEY" in result.stderr


def test_systemd_ready_and_watchdog(tmp_path, monkeypatch):
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    daemon, thread = start_daemon(make_config(tmp_path), ManualClock())
    try:
        seen = set()
        while not {"READY=1", "WATCHDOG=1"} <= seen:
            seen.add(sock.recv(256).decode())
    finally:
        daemon.request_stop()
        thread.join(10)
    messages = set()
    sock.settimeout(0.5)
    try:
        while True:
            messages.add(sock.recv(256).decode())
    except TimeoutError:
        pass
    assert "STOPPING=1" in messages
    assert not thread.is_alive()


def test_no_notify_socket_is_fine(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    from gateway.systemd import notify

    assert notify("READY=1") is False


def test_sigterm_stops_the_daemon_cleanly(tmp_path):
    cfg = write_config(tmp_path, "[site]\ndevelopment = true\n[http]\nport = 0\n")
    proc = subprocess.Popen(
        [*CLI, "--config", str(cfg), "run"],
        env={**os.environ, "CARPARK_DB": str(tmp_path / "run.db"), "CARPARK_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "daemon_ready" in line:
            break
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "daemon_stopped" in out
    # JSON lines when not on a terminal.
    assert out.strip().splitlines()[-1].startswith("{")


@pytest.mark.parametrize("name", ["modbus-tcp-site.toml", "serial-site.toml"])
def test_example_configs_are_valid(name):
    from pathlib import Path

    from drivers import build_lane_devices
    from drivers.modbus import build_buses

    config = load_config(
        Path(__file__).parent.parent / "config" / "examples" / name,
        env={"CARPARK_SECRET_KEY": "x" * 40},
    )
    assert config.lanes
    buses = build_buses(config.modbus)
    for lane in config.lanes:
        devices = build_lane_devices(lane, buses, {})
        assert devices.barrier is not None
