"""Development mode's own set-up: a random secret per database and the demo's staff accounts."""

from __future__ import annotations

import re
import warnings

import httpx
import jwt

from gateway.config import PLACEHOLDER_SECRET
from tests.conftest import SECRET, ManualClock, config_from, running


def dev_config(tmp_path, db: str = "gateway.db", **site):
    return config_from(
        tmp_path,
        site={"id": "dev-site", "development": True, **site},
        auth={"secret_key": PLACEHOLDER_SECRET},
        database={"path": str(tmp_path / db)},
    )


def login(base_url: str, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/auth/login", data={"username": email, "password": password}, timeout=10
    )


def test_each_development_database_gets_its_own_strong_secret(tmp_path, capsys):
    clock = ManualClock()
    with running(dev_config(tmp_path), clock) as gw:
        first = gw.daemon.config.auth.secret_key
        banner = capsys.readouterr().out
        accounts = dict(re.findall(r"demo \w+\s+(\S+@demo\.local)\s+password (\S+)", banner))
        assert set(accounts) == {"admin@demo.local", "operator@demo.local"}
        assert f"console   {gw.base_url}/console" in banner
        response = login(gw.base_url, "admin@demo.local", accounts["admin@demo.local"])
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
    assert first != PLACEHOLDER_SECRET and re.fullmatch(r"[0-9a-f]{64}", first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyJWT's InsecureKeyLengthWarning would be raised
        assert jwt.decode(token, first, algorithms=["HS256"])["sub"]
    with running(dev_config(tmp_path), clock) as gw:
        assert gw.daemon.config.auth.secret_key == first  # tokens survive a restart
        again = capsys.readouterr().out
        assert dict(re.findall(r"demo \w+\s+(\S+@demo\.local)\s+password (\S+)", again)) == accounts
    with running(dev_config(tmp_path, db="other.db"), clock) as gw:
        assert gw.daemon.config.auth.secret_key not in (first, PLACEHOLDER_SECRET)


def test_production_mode_prints_no_account_and_retires_the_demo_ones(tmp_path, capsys):
    clock = ManualClock()
    with running(dev_config(tmp_path), clock):
        banner = capsys.readouterr().out
    accounts = dict(re.findall(r"demo \w+\s+(\S+@demo\.local)\s+password (\S+)", banner))
    production = config_from(tmp_path, database={"path": str(tmp_path / "gateway.db")})
    assert production.auth.secret_key == SECRET
    with running(production, clock) as gw:
        out = capsys.readouterr().out
        assert "password" not in out and "demo.local" not in out
        for email, password in accounts.items():
            assert login(gw.base_url, email, password).status_code == 401
