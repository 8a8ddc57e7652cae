"""Configuration: one TOML file plus ``CARPARK_*`` environment overrides.

The file is the site's description (lanes, devices, prices are data, not code); the
environment carries what differs per machine or must stay out of files (database path,
listen address, the token secret). Every value is checked once, at start-up, and a bad
value stops the daemon with a message that names the key, because a gateway that starts
half-configured is worse than one that does not start.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PLACEHOLDER_SECRET = "change-me-in-production"  # noqa: S105 - the value we refuse outside development
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    id: str = "demo-site"
    name: str = "Demo car park"
    timezone: str = "UTC"
    development: bool = False


@dataclass(frozen=True, kw_only=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    # Bounded so that an API flood cannot starve the lanes sharing our event loop.
    limit_concurrency: int = 512
    docs: bool = True


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    path: str = "var/carpark.db"
    busy_timeout_ms: int = 5000


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    secret_key: str = PLACEHOLDER_SECRET
    token_expire_minutes: int = 30
    # Failed logins allowed per account and per client address within the window, then 429.
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_window_minutes: int = 15
    # Failed and refused logins are answered no sooner than this after they arrived.
    login_failure_delay_ms: int = 1000
    # argon2 computations at once (each is tens of ms of CPU on every core it can get).
    password_hash_workers: int = 1


@dataclass(frozen=True, kw_only=True)
class ParkingConfig:
    exit_window_minutes: int = 15
    default_vehicle_type: str = "Car"


@dataclass(frozen=True, kw_only=True)
class ReservationsConfig:
    max_duration_hours: int = 72
    checkin_early_minutes: int = 30  # check-in opens this long before the start
    # A confirmed reservation becomes a no-show this long after its start without check-in;
    # 0 means at the end of its window.
    no_show_after_minutes: int = 0
    # Vehicles parked without a reservation are assumed to stay at most this long when a
    # reservation's capacity is checked (they are counted for windows starting sooner).
    session_horizon_hours: int = 24


@dataclass(frozen=True, kw_only=True)
class ChargingConfig:
    # Per minute a charged vehicle keeps occupying a charger after charging finished,
    # once the grace period is over. "0" (the default) disables idle fees.
    idle_fee_per_minute: str = "0"
    idle_grace_minutes: int = 15


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Simulated traffic for the demo site (``make run``): vehicles arrive, park, pay or not, leave."""

    enabled: bool = False
    seed_demo_site: bool = False  # create a level, zones, spaces and a rate in an empty database
    arrivals_per_minute: float = 6.0
    dwell_min_s: float = 20.0
    dwell_max_s: float = 90.0
    pay_ratio: float = 0.7  # the others are refused at the exit, then pay and try again
    entry_lane: str = ""
    exit_lane: str = ""
    # Simulated OCPP charge points that connect to our own endpoint (the demo's EV stations).
    chargers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LprConfig:
    """Plate recognition models and the site's plate rules."""

    # Where the models are looked for, first match wins (drivers.camera.models.find_models):
    # models_dir (CARPARK_LPR_DIR) when set; else <state_dir>/lpr-models, where
    # `carpark-gateway lpr models install` puts them; else the development folder `directory`
    # (the checkout's ../shared/lpr, which also holds the labelled photographs).
    models_dir: str = ""
    state_dir: str = ""  # default: the folder of [database] path (the daemon's state directory)
    directory: str = "../shared/lpr"
    # File names in that folder (or its models/), or absolute paths; ocr_model may also be a
    # fast-plate-ocr hub name such as "cct-xs-v1-global-model" (downloaded on first use).
    detector_model: str = "license_plate_detection_lpd_yunet_2023mar.onnx"
    ocr_model: str = "cct_xs_v1_global.onnx"
    ocr_config: str = "cct_xs_v1_global_plate_config.yaml"
    detection_score: float = 0.3  # a plate is kept when a detection scores at least this
    min_plate_width_px: int = 40
    padding: float = 0.10  # crop padding around the detected box, fraction of its size
    # Detection is two passes (drivers.camera.lpr.PlateDetector): the region scaled by
    # first_pass_scale (its longer side at most max_side_px) finds candidates down to
    # candidate_score; each of the best max_candidates is confirmed on a window zoomed so
    # that the plate is refine_plate_px wide (the upscaling follows the plate's size).
    # refine = false: one pass at max_side_px and detection_score.
    max_side_px: int = 640
    first_pass_scale: float = 0.5
    refine: bool = True
    candidate_score: float = 0.05
    max_candidates: int = 4
    refine_plate_px: int = 128
    # Also enlarge regions smaller than max_side_px (up to 2x) for the first pass.
    upscale: bool = False
    # Plate rules: a read is accepted when it matches one of these (empty: any text).
    formats: tuple[str, ...] = ()
    min_confidence: float = 0.6  # a vote below this is not a confident plate
    evidence_dir: str = "var/evidence"
    evidence_quota_mb: int = 512


@dataclass(frozen=True, kw_only=True)
class MqttConfig:
    """The link to the central system's broker. Off unless a host is configured.

    ``hosts`` lists the nodes of a clustered broker (``"host:port"``, ``"[v6]:port"`` or a
    bare host on ``port``); the bridge connects to one at a time and moves to the next when
    the connection is lost. The single ``host``/``port`` keys are the one-node form; giving
    both is a mistake the config check names.
    """

    host: str = ""
    port: int = 1883
    hosts: tuple[str, ...] = ()
    # "5" (default) or "3.1.1" for brokers and bridges that speak only 3.1.1 (NATS's MQTT
    # listener, older bridges): no response topic then, results go to cmd/<name>/result only.
    protocol: str = "5"
    client_id: str = ""  # default: carpark-<site id>
    username: str = ""
    password: str = ""
    ca_file: str = ""  # TLS when set (with an optional client certificate below)
    cert_file: str = ""
    key_file: str = ""
    keepalive: int = 30
    topic_prefix: str = ""  # default: carpark/<site id>
    max_inflight: int = 200  # QoS 1 publishes awaiting their PUBACK

    @property
    def enabled(self) -> bool:
        return bool(self.host or self.hosts)

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """The broker nodes in the order they are tried (checked at start-up)."""
        if not self.hosts:
            return [(self.host, self.port)] if self.host else []
        return [_endpoint(entry, self.port) for entry in self.hosts]


def _endpoint(entry: str, default_port: int) -> tuple[str, int]:
    text = entry.strip()
    if text.startswith("["):  # [v6 address]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host or (port_text and not port_text.isdigit()):
        raise ConfigError(f"mqtt.hosts: {entry!r} is not host:port")
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        raise ConfigError(f"mqtt.hosts: {entry!r} has no valid TCP port")
    return host, port


@dataclass(frozen=True, kw_only=True)
class HttpPushConfig:
    """``[upstream.http]``: POST outbox events in batches to the central system."""

    url: str = ""
    token: str = ""
    batch_size: int = 500
    timeout_s: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    """The outbox's life: who may pull it, how long delivered events stay, when to worry."""

    api_key: str = ""  # X-Sync-Key for GET /api/v1/sync/events (admins may pull too)
    retention_days: int = 7  # delivered events older than this are pruned; undelivered never
    backlog_alarm: int = 100_000  # undelivered events that raise an outbox_backlog alarm


@dataclass(frozen=True, kw_only=True)
class OcppConfig:
    """The gateway as the chargers' central system (OCPP 1.6J over websockets)."""

    enabled: bool = False
    host: str = "0.0.0.0"  # noqa: S104 - chargers are on the site's network
    port: int = 9000
    heartbeat_interval: int = 60  # seconds, told to chargers at boot
    missed_heartbeats: int = 3  # a charger silent this many intervals is offline
    auto_register: bool = False  # accept charge point ids nobody configured
    command_timeout_s: float = 10.0  # remote start/stop and availability: answer or fail
    stop_timeout_s: float = 15.0  # wait for StopTransaction before answering with metered values
    command_expiry_s: float = 60.0  # a command for a disconnected charger waits this long for it
    id_tags: tuple[
        str, ...
    ] = ()  # RFID tags accepted at the chargers (members' tags are MEMBER-<id>)
    tls_cert: str = ""  # security profile 2 when set (with tls_key)
    tls_key: str = ""


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto: console on a terminal, JSON lines otherwise


@dataclass(frozen=True, kw_only=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    parking: ParkingConfig = field(default_factory=ParkingConfig)
    reservations: ReservationsConfig = field(default_factory=ReservationsConfig)
    charging: ChargingConfig = field(default_factory=ChargingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # Lanes and their device buses are checked by gateway.lanes.config and the drivers.
    lanes: tuple[Any, ...] = ()
    modbus: Mapping[str, Any] = field(default_factory=dict)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    lpr: LprConfig = field(default_factory=LprConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    upstream_http: HttpPushConfig = field(default_factory=HttpPushConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    ocpp: OcppConfig = field(default_factory=OcppConfig)
    # [ocpp.chargers.<charge point id>]: password, connectors = {"1" = <station id>}
    ocpp_chargers: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)


# Environment variable -> (section, key). Kept as a table so the README can list it verbatim.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "CARPARK_DB": ("database", "path"),
    "CARPARK_HTTP_HOST": ("http", "host"),
    "CARPARK_HTTP_PORT": ("http", "port"),
    "CARPARK_SECRET_KEY": ("auth", "secret_key"),
    "CARPARK_TOKEN_EXPIRE_MINUTES": ("auth", "token_expire_minutes"),
    "CARPARK_SITE_ID": ("site", "id"),
    "CARPARK_TIMEZONE": ("site", "timezone"),
    "CARPARK_DEVELOPMENT": ("site", "development"),
    "CARPARK_LOG_LEVEL": ("logging", "level"),
    "CARPARK_LOG_FORMAT": ("logging", "format"),
    "CARPARK_LPR_DIR": ("lpr", "models_dir"),
    "CARPARK_MQTT_HOST": ("mqtt", "host"),
    "CARPARK_MQTT_PORT": ("mqtt", "port"),
    "CARPARK_MQTT_HOSTS": ("mqtt", "hosts"),  # comma-separated host:port list
    "CARPARK_MQTT_USERNAME": ("mqtt", "username"),
    "CARPARK_MQTT_PASSWORD": ("mqtt", "password"),
    "CARPARK_UPSTREAM_HTTP_URL": ("upstream_http", "url"),
    "CARPARK_UPSTREAM_HTTP_TOKEN": ("upstream_http", "token"),
    "CARPARK_SYNC_API_KEY": ("sync", "api_key"),
    "CARPARK_OCPP_PORT": ("ocpp", "port"),
}

_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "http": HttpConfig,
    "database": DatabaseConfig,
    "auth": AuthConfig,
    "parking": ParkingConfig,
    "reservations": ReservationsConfig,
    "charging": ChargingConfig,
    "lpr": LprConfig,
    "mqtt": MqttConfig,
    "sync": SyncConfig,
    "ocpp": OcppConfig,
    "logging": LoggingConfig,
}


def default_config_path() -> Path:
    """The embedded default: the repository's ``config/gateway.toml``, or the copy in the wheel."""
    packaged = Path(__file__).with_name("default.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "config" / "gateway.toml"


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read the TOML file (``path``, else ``$CARPARK_CONFIG``, else the default) and the environment."""
    env = os.environ if env is None else env
    chosen = (
        Path(path) if path else Path(env["CARPARK_CONFIG"]) if env.get("CARPARK_CONFIG") else None
    )
    file = chosen or default_config_path()
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {file}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML: {err}") from err
    for name, (section, key) in ENV_OVERRIDES.items():
        if name in env and env[name] != "":
            raw.setdefault(section, {})[key] = env[name]
    return build_config(raw, source=str(file))


def build_config(raw: Mapping[str, Any], *, source: str = "<dict>") -> Config:
    """Turn parsed TOML (plus string overrides) into a checked :class:`Config`."""
    from gateway.lanes.config import parse_lanes, parse_simulation

    sections: dict[str, Any] = {}
    lanes = parse_lanes(raw.get("lanes"))
    sections["lanes"] = lanes
    sections["simulation"] = parse_simulation(raw.get("simulation"), lanes)
    upstream = raw.get("upstream", {})
    if not isinstance(upstream, Mapping) or set(upstream) - {"http"}:
        raise ConfigError("[upstream] holds only [upstream.http]")
    sections["upstream_http"] = _build_section(
        "upstream.http", HttpPushConfig, upstream.get("http", {})
    )
    flat_http = raw.get("upstream_http")  # what CARPARK_UPSTREAM_HTTP_* overrides write
    if flat_http:
        merged = {**upstream.get("http", {}), **flat_http}
        sections["upstream_http"] = _build_section("upstream.http", HttpPushConfig, merged)
    ocpp_raw = (
        dict(raw.get("ocpp", {})) if isinstance(raw.get("ocpp", {}), Mapping) else raw.get("ocpp")
    )
    if isinstance(ocpp_raw, dict):
        chargers = ocpp_raw.pop("chargers", {})
        if not isinstance(chargers, Mapping) or not all(
            isinstance(v, Mapping) for v in chargers.values()
        ):
            raise ConfigError(
                "[ocpp.chargers] must hold one table per charge point, e.g. [ocpp.chargers.CP-1]"
            )
        sections["ocpp_chargers"] = chargers
        raw = {**raw, "ocpp": ocpp_raw}
    modbus = raw.get("modbus", {})
    if not isinstance(modbus, Mapping) or not all(isinstance(v, Mapping) for v in modbus.values()):
        raise ConfigError("[modbus] must hold one table per connection, e.g. [modbus.io1]")
    sections["modbus"] = modbus
    for name, value in raw.items():
        if name in ("lanes", "simulation", "modbus", "upstream", "upstream_http"):
            continue
        if name not in _SECTIONS:
            raise ConfigError(f"unknown section [{name}]")
        if not isinstance(value, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build_section(name, _SECTIONS[name], value)
    config = Config(**sections, source=source)
    if not config.lpr.state_dir:  # install and lookup use the database's folder
        lpr = replace(config.lpr, state_dir=str(Path(config.database.path).parent))
        config = replace(config, lpr=lpr)
    _validate(config)
    return config


def _build_section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{section}] unknown key {key!r}")
        default = getattr(cls(), key)
        kwargs[key] = _coerce(f"{section}.{key}", value, type(default))
    return cls(**kwargs)


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Accept the TOML type, or a string from the environment that converts cleanly."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is str and isinstance(value, str):
        return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    elif kind is tuple and isinstance(value, str):  # from the environment: comma-separated
        return tuple(v.strip() for v in value.split(",") if v.strip())
    raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")


def _validate(config: Config) -> None:
    if not 0 <= config.http.port < 65536:  # 0: any free port (tests)
        raise ConfigError(f"http.port: {config.http.port} is not a TCP port")
    if config.http.limit_concurrency < 1:
        raise ConfigError("http.limit_concurrency must be at least 1")
    if config.auth.token_expire_minutes < 1:
        raise ConfigError("auth.token_expire_minutes must be at least 1")
    a = config.auth
    if min(a.login_max_failures_per_account, a.login_max_failures_per_address) < 1:
        raise ConfigError("auth.login_max_failures_per_* must be at least 1")
    if a.login_window_minutes < 1 or a.login_failure_delay_ms < 0 or a.password_hash_workers < 1:
        raise ConfigError(
            "auth.login_window_minutes and auth.password_hash_workers must be at least 1,"
            " auth.login_failure_delay_ms at least 0"
        )
    if config.parking.exit_window_minutes < 0:
        raise ConfigError("parking.exit_window_minutes must not be negative")
    r = config.reservations
    if r.max_duration_hours < 1 or r.checkin_early_minutes < 0 or r.no_show_after_minutes < 0:
        raise ConfigError("[reservations] durations must be positive")
    try:
        idle = Decimal(config.charging.idle_fee_per_minute)
    except InvalidOperation as err:
        raise ConfigError("charging.idle_fee_per_minute must be a decimal number") from err
    if not idle.is_finite() or idle < 0:
        raise ConfigError("charging.idle_fee_per_minute must be >= 0")
    if config.mqtt.enabled and not 0 < config.mqtt.port < 65536:
        raise ConfigError("mqtt.port must be a TCP port")
    if config.mqtt.host and config.mqtt.hosts:
        raise ConfigError("mqtt: give either host (one broker) or hosts (a cluster), not both")
    config.mqtt.endpoints  # noqa: B018 - parses every entry of mqtt.hosts, naming a bad one
    if config.mqtt.protocol not in ("5", "3.1.1"):
        raise ConfigError('mqtt.protocol must be "5" or "3.1.1"')
    if config.mqtt.keepalive < 5 or config.mqtt.max_inflight < 1:
        raise ConfigError("mqtt.keepalive must be >= 5 s and mqtt.max_inflight >= 1")
    if config.upstream_http.enabled and not config.upstream_http.url.startswith(
        ("http://", "https://")
    ):
        raise ConfigError("upstream.http.url must be an http:// or https:// URL")
    if config.sync.retention_days < 0 or config.sync.backlog_alarm < 1:
        raise ConfigError("[sync] retention_days >= 0 and backlog_alarm >= 1")
    lpr = config.lpr
    if (
        not 0 <= lpr.padding <= 1
        or not 0 < lpr.detection_score < 1
        or not 0 <= lpr.min_confidence <= 1
    ):
        raise ConfigError("[lpr] padding must be 0..1, detection_score and min_confidence 0..1")
    if not 0.05 <= lpr.first_pass_scale <= 2:
        raise ConfigError("[lpr] first_pass_scale must be 0.05..2")
    if not 0 < lpr.candidate_score < 1 or not 1 <= lpr.max_candidates <= 32:
        raise ConfigError("[lpr] candidate_score must be 0..1 and max_candidates 1..32")
    if not 32 <= lpr.refine_plate_px <= 512:
        raise ConfigError("[lpr] refine_plate_px must be 32..512")
    if lpr.max_side_px < 64 or lpr.min_plate_width_px < 1 or lpr.evidence_quota_mb < 1:
        raise ConfigError(
            "[lpr] max_side_px >= 64, min_plate_width_px >= 1, evidence_quota_mb >= 1"
        )
    for pattern in lpr.formats:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"lpr.formats: bad regular expression {pattern!r}: {err}") from err
    if not config.database.path:
        raise ConfigError("database.path must not be empty")
    if config.logging.format not in {"auto", "console", "json"}:
        raise ConfigError("logging.format must be auto, console or json")
    if config.logging.level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError("logging.level must be debug, info, warning or error")
    try:
        ZoneInfo(config.site.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"site.timezone: unknown time zone {config.site.timezone!r}") from err
    if not config.site.development:
        secret = config.auth.secret_key
        if secret == PLACEHOLDER_SECRET:
            raise ConfigError(
                "auth.secret_key is the placeholder; set CARPARK_SECRET_KEY "
                "(or site.development = true on a test bench)"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"auth.secret_key must be at least {MIN_SECRET_LENGTH} characters")


def with_overrides(config: Config, **sections: Any) -> Config:
    """A copy with whole sections replaced; used by tests and the benchmark."""
    return replace(config, **sections)


_MISSING: Any = object()


class Options:
    """Typed reads from one config table, so every bad value names its key.

    Device tables differ per driver; each driver reads its own keys through this and
    calls :meth:`done` so that a misspelt key is an error instead of a silent default.
    """

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        self.values = table
        self.where = where
        self._seen: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        if key in self.values:
            return self.values[key]
        if default is _MISSING:
            raise ConfigError(f"{self.where}.{key} is required")
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{self.where}.{key} must be a non-empty string")
        return value

    def integer(
        self, key: str, default: Any = _MISSING, *, low: int | None = None, high: int | None = None
    ) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.where}.{key} must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{self.where}.{key} must be between {low} and {high}")
        return value

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.where}.{key} must be a number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{self.where}.{key} must be between {low} and {high}")
        return float(value)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key} must be true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value not in choices:
            raise ConfigError(f"{self.where}.{key} must be one of {', '.join(choices)}")
        return value

    def table(self, key: str) -> Mapping[str, Any] | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{self.where}.{key} must be a table")
        return value

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as written (lists and such), for the caller to check."""
        return self._get(key, default)

    def done(self) -> None:
        unknown = sorted(set(self.values) - self._seen)
        if unknown:
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r}")


def lpr_directory(directory: str) -> Path:
    """Where ``[lpr] directory`` is: as given (relative to the working directory), else
    relative to the repository, else a ``shared/lpr`` beside one of its parent folders.

    The offline models and labelled images live beside the checkout (``../shared/lpr``),
    not in it; a clone made elsewhere (CI) still finds them this way.
    """
    given = Path(directory)
    if given.is_absolute() or given.exists():
        return given
    root = Path(__file__).resolve().parent.parent
    if (root / given).exists():
        return (root / given).resolve()
    for parent in root.parents:
        candidate = parent / "shared" / "lpr"
        if candidate.is_dir():
            return candidate
    return given
