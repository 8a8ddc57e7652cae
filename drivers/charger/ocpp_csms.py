"""The gateway as the site's OCPP 1.6J central system (the ``ocpp`` library on ``websockets``).

Chargers connect to ``ws://<gateway>:<port>/ocpp/<charge point id>`` with subprotocol
``ocpp1.6``. A charge point id nobody configured (no station bound to it, no
``[ocpp.chargers.<id>]`` table) is refused at the handshake unless ``auto_register``;
with a password configured the charger must send it as HTTP Basic auth (security profile
1), and with a certificate the endpoint is TLS (profile 2).

What chargers send is recorded through the charging services (one transaction each, with
its outbox event); what the API asks of a charger goes out as a call, one at a time per
charger (the library's call lock), and waits for a disconnected charger until the command
expires. Transaction ids are our charging sessions' ids, so they never collide.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import structlog
from ocpp.exceptions import FormatViolationError, OCPPError, ProtocolError
from ocpp.messages import MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityStatus,
    AvailabilityType,
    DataTransferStatus,
    RegistrationStatus,
    RemoteStartStopStatus,
)
from sqlite_utils import Database
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.config import ConfigError, OcppConfig, Options
from gateway.ports import ChargerError, StopOutcome
from gateway.services import SYSTEM, Ctx, charging, one
from gateway.timeutil import iso, utc

log = structlog.get_logger("drivers.ocpp")
PATH_PREFIX = "/ocpp/"


def _when(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return datetime.now(UTC)


@dataclass(frozen=True)
class ChargerSpec:
    id: str
    password: str | None
    connectors: Mapping[int, int]  # connector id -> station id


def parse_chargers(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, ChargerSpec]:
    out = {}
    for cp_id, table in tables.items():
        o = Options(table, f"ocpp.chargers.{cp_id}")
        password = o.text("password", None)
        connectors = o.raw("connectors", {})
        o.done()
        if not isinstance(connectors, Mapping) or not all(
            str(k).isdigit() and isinstance(v, int) and not isinstance(v, bool)
            for k, v in connectors.items()
        ):
            raise ConfigError(
                f"ocpp.chargers.{cp_id}.connectors must map connector numbers to station ids"
            )
        out[cp_id] = ChargerSpec(cp_id, password, {int(k): v for k, v in connectors.items()})
    return out


class ChargerConnection(ChargePoint):
    """One connected charger: OCPP 1.6 messages in, our records out."""

    def __init__(self, cp_id: str, connection: ServerConnection, csms: Csms) -> None:
        super().__init__(cp_id, connection, response_timeout=csms.config.command_timeout_s)
        self.csms = csms
        self.last_seen = time.monotonic()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """The library ignores what it cannot parse; answer with a CALLERROR where we can."""
        self.last_seen = time.monotonic()
        try:
            unpack(raw_msg)
        except OCPPError as err:
            unique_id = _unique_id(raw_msg)
            log.warning("ocpp_malformed_message", charge_point=self.id, error=str(err))
            if unique_id is not None:
                error = (
                    err
                    if isinstance(err, FormatViolationError | ProtocolError)
                    else FormatViolationError(description=str(err))
                )
                await self._send(
                    json.dumps(
                        [MessageType.CallError, unique_id, error.code, error.description, {}]
                    )
                )
            return
        await super().route_message(raw_msg)

    async def _write(self, fn: Any) -> Any:
        return await self.csms.deps.store.write(fn)

    def _ctx(self) -> Ctx:
        ctx: Ctx = self.csms.deps.ctx_for(SYSTEM)
        return ctx

    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **extra: Any) -> Any:
        ctx = self._ctx()
        boot = {
            "vendor": charge_point_vendor,
            "model": charge_point_model,
            "serial_number": extra.get("charge_point_serial_number"),
            "firmware_version": extra.get("firmware_version"),
        }
        await self._write(
            lambda db: charging.charger_seen(db, ctx, self.id, connected=True, boot=boot)
        )
        log.info(
            "charger_booted",
            charge_point=self.id,
            vendor=charge_point_vendor,
            model=charge_point_model,
        )
        return call_result.BootNotification(
            current_time=iso(ctx.now),
            interval=self.csms.config.heartbeat_interval,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=iso(self._ctx().now))

    @on(Action.status_notification)
    async def on_status(
        self,
        connector_id: int,
        error_code: str,
        status: str,
        timestamp: str | None = None,
        **_: Any,
    ) -> Any:
        ctx = self._ctx()
        at = _when(timestamp)
        await self._write(
            lambda db: charging.ocpp_status(db, ctx, self.id, connector_id, status, error_code, at)
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> Any:
        ctx = self._ctx()
        ok = charging.accepted_tag(self.csms.deps.store.reader, ctx, id_tag)
        return call_result.Authorize(
            id_tag_info=IdTagInfo(
                status=AuthorizationStatus.accepted if ok else AuthorizationStatus.invalid
            )
        )

    @on(Action.start_transaction)
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        ctx = self._ctx()
        if not charging.accepted_tag(self.csms.deps.store.reader, ctx, id_tag):
            # The spec still wants a transaction id; 0 is never one of ours.
            return call_result.StartTransaction(
                transaction_id=0, id_tag_info=IdTagInfo(status=AuthorizationStatus.invalid)
            )
        started = _when(timestamp)
        await self.csms.await_pending_start(self.id, connector_id, id_tag)
        charge_id = await self._write(
            lambda db: charging.ocpp_start(
                db,
                ctx,
                ocpp_id=self.id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start_wh=meter_start,
                started_at=started,
            )
        )
        if charge_id is None:
            log.warning(
                "ocpp_start_unbound_connector", charge_point=self.id, connector=connector_id
            )
            return call_result.StartTransaction(
                transaction_id=0, id_tag_info=IdTagInfo(status=AuthorizationStatus.invalid)
            )
        return call_result.StartTransaction(
            transaction_id=charge_id, id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )

    @on(Action.meter_values)
    async def on_meter(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> Any:
        reading = _energy_wh(meter_value)
        if transaction_id is not None and reading is not None:
            wh, at = reading
            ctx = self._ctx()
            await self._write(lambda db: charging.ocpp_meter(db, ctx, transaction_id, wh, at))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        **_: Any,
    ) -> Any:
        ctx = self._ctx()
        stopped = _when(timestamp)
        outcome = await self._write(
            lambda db: charging.ocpp_stop(
                db,
                ctx,
                ocpp_id=self.id,
                transaction_id=transaction_id,
                meter_stop_wh=meter_stop,
                stopped_at=stopped,
                reason=reason or "Local",
            )
        )
        log.info(
            "charger_stopped",
            charge_point=self.id,
            transaction=transaction_id,
            outcome=outcome,
            reason=reason,
        )
        self.csms.stopped(transaction_id)
        return call_result.StopTransaction(
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )

    @on(Action.data_transfer)
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> Any:
        log.info(
            "charger_data_transfer",
            charge_point=self.id,
            vendor=vendor_id,
            message=message_id,
            size=len(data or ""),
        )
        return call_result.DataTransfer(status=DataTransferStatus.accepted)


def _peer(connection: Any) -> str:
    address = getattr(connection, "remote_address", None)
    return f"{address[0]}:{address[1]}" if address else "?"


def _unique_id(raw: str | bytes) -> str | None:
    try:
        message = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if isinstance(message, list) and len(message) > 1 and isinstance(message[1], str):
        return message[1]
    return None


def _energy_wh(meter_values: list[dict[str, Any]]) -> tuple[int, datetime] | None:
    """The last Energy.Active.Import.Register reading, in Wh (kWh readings converted)."""
    found = None
    for mv in meter_values:
        for sample in mv.get("sampled_value", []):
            if (
                sample.get("measurand", "Energy.Active.Import.Register")
                != "Energy.Active.Import.Register"
            ):
                continue
            try:
                value = Decimal(str(sample["value"]))
            except (KeyError, ArithmeticError, ValueError):
                continue
            if not value.is_finite():  # "NaN", "Infinity": no reading, skip the sample
                continue
            if sample.get("unit") == "kWh":
                value *= 1000
            found = (int(value), _when(mv.get("timestamp")))
    return found


class Csms:
    """The websocket endpoint, the connected chargers, and the Charger port for OCPP stations."""

    def __init__(
        self, deps: Any, config: OcppConfig, chargers: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.deps, self.config = deps, config
        self.chargers = parse_chargers(chargers)
        self.connections: dict[str, ChargerConnection] = {}
        self._connected: dict[str, asyncio.Event] = {}
        self._stops: dict[int, asyncio.Future[None]] = {}
        self._pending_starts: dict[tuple[str, int], asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port: int | None = None
        self.listening = asyncio.Event()  # set while the endpoint accepts connections

    async def local_url(self) -> str:
        """The endpoint's address as seen from this machine, once it listens (the demo's
        simulated chargers dial it; with ``port = 0`` only the bound port is known)."""
        await self.listening.wait()
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        scheme = "wss" if self.config.tls_cert else "ws"
        return f"{scheme}://{host}:{self.port}"

    # -- set-up -------------------------------------------------------------------------
    def bind_configured_stations(self, db: Database) -> None:
        """Apply [ocpp.chargers.*.connectors] to the stations (the API can bind them too)."""
        for spec in self.chargers.values():
            for connector, station_id in spec.connectors.items():
                if one(db, "SELECT id FROM ev_stations WHERE id = ?", [station_id]) is None:
                    log.warning(
                        "ocpp_binding_unknown_station", charge_point=spec.id, station=station_id
                    )
                    continue
                db.execute(
                    "UPDATE ev_stations SET ocpp_id = NULL, connector_id = NULL WHERE ocpp_id = ?"
                    " AND connector_id = ? AND id != ?",
                    [spec.id, connector, station_id],
                )
                db.execute(
                    "UPDATE ev_stations SET ocpp_id = ?, connector_id = ? WHERE id = ?",
                    [spec.id, connector, station_id],
                )

    def _known(self, cp_id: str) -> bool:
        if cp_id in self.chargers or self.config.auto_register:
            return True
        return (
            one(
                self.deps.store.reader,
                "SELECT id FROM ev_stations WHERE ocpp_id = ? LIMIT 1",
                [cp_id],
            )
            is not None
        )

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if not path.startswith(PATH_PREFIX) or not path[len(PATH_PREFIX) :]:
            return connection.respond(HTTPStatus.NOT_FOUND, "expected /ocpp/<charge point id>\n")
        cp_id = path[len(PATH_PREFIX) :]
        if "/" in cp_id or len(cp_id) > 64:
            return connection.respond(HTTPStatus.NOT_FOUND, "bad charge point id\n")
        if not self._known(cp_id):
            log.warning("ocpp_unknown_charger_refused", charge_point=cp_id)
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        spec = self.chargers.get(cp_id)
        if (
            spec is not None
            and spec.password
            and not _basic_ok(request.headers.get("Authorization"), cp_id, spec.password)
        ):
            log.warning("ocpp_auth_failed", charge_point=cp_id)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
            return response
        if "ocpp1.6" not in (request.headers.get("Sec-WebSocket-Protocol") or ""):
            return connection.respond(HTTPStatus.BAD_REQUEST, "subprotocol ocpp1.6 required\n")
        return None

    async def run(self) -> None:
        try:
            await self._serve()
        except OSError as err:  # the port is taken (another daemon?) or the address is wrong
            log.error(
                "ocpp_listen_failed", host=self.config.host, port=self.config.port, error=str(err)
            )
            raise

    async def _serve(self) -> None:
        tls = None
        if self.config.tls_cert:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.config.tls_cert, self.config.tls_key or None)
        async with serve(
            self._handle,
            self.config.host,
            self.config.port,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            process_request=self._check,
            ssl=tls,
            ping_interval=None,
            max_size=1_000_000,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            log.info("ocpp_listening", host=self.config.host, port=self.port, tls=tls is not None)
            self.listening.set()
            try:
                await self._watch_heartbeats()
            finally:
                self.listening.clear()

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        cp_id = connection.request.path.split("?", 1)[0][len(PATH_PREFIX) :]
        previous = self.connections.get(cp_id)
        if previous is not None:
            # A charger that reconnects replaces its stale connection. Two live chargers
            # configured with the same id would take turns doing this: say so loudly.
            log.warning(
                "charger_connection_replaced",
                charge_point=cp_id,
                old_peer=_peer(previous._connection),
                new_peer=_peer(connection),
                old_silent_s=round(time.monotonic() - previous.last_seen, 1),
            )
            await previous._connection.close()
        charger = ChargerConnection(cp_id, connection, self)
        self.connections[cp_id] = charger
        self._connected.setdefault(cp_id, asyncio.Event()).set()
        ctx = self.deps.ctx_for(SYSTEM)
        await self.deps.store.write(
            lambda db: charging.charger_seen(db, ctx, cp_id, connected=True)
        )
        log.info("charger_connected", charge_point=cp_id)
        try:
            await charger.start()
        except ConnectionClosed:
            pass
        finally:
            if self.connections.get(cp_id) is charger:
                del self.connections[cp_id]
                self._connected[cp_id].clear()
                ctx = self.deps.ctx_for(SYSTEM)
                await self.deps.store.write(
                    lambda db: charging.mark_chargers_offline(db, ctx, cp_id)
                )
                log.warning("charger_disconnected", charge_point=cp_id)

    async def _watch_heartbeats(self) -> None:
        """A charger silent for ``missed_heartbeats`` intervals is offline: drop its connection."""
        limit = self.config.heartbeat_interval * self.config.missed_heartbeats
        while True:
            await asyncio.sleep(min(5.0, limit / 4))
            now = time.monotonic()
            for cp_id, charger in list(self.connections.items()):
                if now - charger.last_seen > limit:
                    log.warning("charger_heartbeat_missed", charge_point=cp_id)
                    await charger._connection.close(code=1001, reason="heartbeat missed")

    # -- commands to chargers -------------------------------------------------------------
    async def send(self, cp_id: str, payload: Any, *, expiry: float | None = None) -> Any:
        """One call; waits for a disconnected charger until ``expiry``, then fails."""
        event = self._connected.setdefault(cp_id, asyncio.Event())
        try:
            await asyncio.wait_for(
                event.wait(), timeout=expiry if expiry is not None else self.config.command_expiry_s
            )
        except TimeoutError as err:
            raise ChargerError(f"charger {cp_id} is not connected") from err
        charger = self.connections.get(cp_id)
        if charger is None:
            raise ChargerError(f"charger {cp_id} is not connected")
        try:
            return await charger.call(payload, suppress=False)
        except TimeoutError as err:
            raise ChargerError(f"charger {cp_id} did not answer") from err
        except OCPPError as err:
            raise ChargerError(f"charger {cp_id} answered with an error: {err}") from err
        except ConnectionClosed as err:
            raise ChargerError(f"charger {cp_id} disconnected") from err

    async def await_pending_start(self, cp_id: str, connector: int, id_tag: str) -> None:
        """A StartTransaction can overtake the API recording the remote start it answers."""
        event = self._pending_starts.get((cp_id, connector))
        if event is not None and id_tag.startswith("GW-"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=2.0)

    def stopped(self, transaction_id: int) -> None:
        future = self._stops.pop(transaction_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    # -- the Charger port -----------------------------------------------------------------
    async def start(
        self, station: dict[str, Any], *, power_kw: Decimal, started_at: datetime, id_tag: str
    ) -> None:
        key = (station["ocpp_id"], station["connector_id"])
        self._pending_starts[key] = asyncio.Event()
        profile = {
            "charging_profile_id": 1,
            "stack_level": 0,
            "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": float(power_kw * 1000)}],
            },
        }
        try:
            response = await self.send(
                station["ocpp_id"],
                call.RemoteStartTransaction(
                    id_tag=id_tag, connector_id=station["connector_id"], charging_profile=profile
                ),
                expiry=self.config.command_timeout_s,
            )
            if response.status != RemoteStartStopStatus.accepted:
                raise ChargerError(f"charger {station['ocpp_id']} rejected the remote start")
        except BaseException:
            # No charge will be recorded for it: nothing may keep waiting on this entry.
            self._pending_starts.pop(key, None)
            raise

    def started_recorded(self, station: dict[str, Any]) -> None:
        """The API has recorded the charge: a waiting StartTransaction may link to it now."""
        event = self._pending_starts.pop((station["ocpp_id"], station["connector_id"]), None)
        if event is not None:
            event.set()

    async def stop(
        self, station: dict[str, Any], charge: dict[str, Any], *, now: datetime
    ) -> StopOutcome:
        transaction_id = int(charge["id"])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stops[transaction_id] = done
        try:
            response = await self.send(
                station["ocpp_id"],
                call.RemoteStopTransaction(transaction_id=transaction_id),
                expiry=self.config.command_timeout_s,
            )
            if response.status != RemoteStartStopStatus.accepted:
                raise ChargerError(f"charger {station['ocpp_id']} rejected the remote stop")
            await asyncio.wait_for(asyncio.shield(done), timeout=self.config.stop_timeout_s)
            return StopOutcome(energy_kwh=Decimal(0), recorded=True, provisional=False)
        except TimeoutError:
            # No StopTransaction in time: bill the last metered energy; the real one replaces it.
            row = one(
                self.deps.store.reader,
                "SELECT * FROM charging_sessions WHERE id = ?",
                [transaction_id],
            )
            energy = Decimal(row["energy_kwh"]) if row else Decimal(0)
            return StopOutcome(energy_kwh=energy, recorded=False, provisional=True)
        finally:
            self._stops.pop(transaction_id, None)

    async def set_availability(self, station: dict[str, Any], available: bool) -> None:
        kind = AvailabilityType.operative if available else AvailabilityType.inoperative
        response = await self.send(
            station["ocpp_id"],
            call.ChangeAvailability(connector_id=station["connector_id"], type=kind),
        )
        if response.status == AvailabilityStatus.rejected:
            raise ChargerError(f"charger {station['ocpp_id']} rejected the availability change")

    def schedule(self, coro: Any, what: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except ChargerError as err:
                log.warning("charger_command_failed", command=what, error=str(err))

        task = asyncio.get_running_loop().create_task(guarded(), name=f"ocpp.{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _basic_ok(header: str | None, cp_id: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return hmac.compare_digest(user, cp_id) & hmac.compare_digest(given, password)
