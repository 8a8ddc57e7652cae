"""The MQTT link to the central system (aiomqtt; MQTT 5, or 3.1.1 with ``mqtt.protocol``).

Topics under ``carpark/{site_id}`` (or ``mqtt.topic_prefix``), each documented with its
payload schema, QoS and retain flag in :mod:`gateway.upstream.asyncapi`:

* ``status``: retained ``online`` once connected; the last will publishes a retained
  ``offline`` when the gateway dies, so the central system sees a dead site.
* ``info``: retained :class:`~gateway.upstream.asyncapi.SiteInfo` (software version,
  config fingerprint, lanes, chargers, event schema version), at every connection and
  when it changes (a charger appears or reconnects).
* ``events/{type}``: every outbox event, oldest first, QoS 1. The channel's cursor moves
  only over events whose PUBACK arrived, so after a broker outage, a reconnect or a
  restart the relay resumes from the oldest unacknowledged event. Duplicates are
  possible (an acknowledgement received but not yet recorded); the central system
  deduplicates by ``event_id`` and orders by ``sequence``.
* ``state/lanes/{id}``, ``state/zones/{id}``, ``state/ev-stations/{id}``: retained current
  state, republished on change.
* ``cmd/{name}`` in, ``cmd/{name}/result`` out (and, with MQTT 5, the response topic with
  its correlation data when the request carries one): see :mod:`gateway.upstream.commands`.

With ``mqtt.hosts`` the bridge is connected to one node of a clustered broker at a time
and fails over to the next (:meth:`MqttBridge.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiomqtt
import msgspec
import structlog
from aiomqtt import ProtocolVersion, Will
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import gateway
from gateway.api.deps import Deps
from gateway.config import MqttConfig
from gateway.events import EVENT_SCHEMA_VERSION
from gateway.services import rows
from gateway.upstream import outbox
from gateway.upstream.asyncapi import ChargerInfo, LaneInfo, SiteInfo, StationState, ZoneState
from gateway.upstream.commands import CommandHandler

log = structlog.get_logger("gateway.upstream.mqtt")
CHANNEL = "mqtt"
BATCH = 1000


def reconnect_delay(failures: int, nodes: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row, with ``nodes`` to try.

    Within the first round over the nodes: 0.05..0.3 s, so a dead node costs the next one
    well under a second. After each full round that failed: aiomqtt's jittered exponential
    backoff (``uniform(0, 1.5 ** round)``), at most about 9 s, so a fleet's sites come
    back spread over seconds, and none waits long after the broker is back.
    """
    rounds = (failures - 1) // max(1, nodes)
    if rounds == 0:
        return random.uniform(0.05, 0.3)
    return 0.2 + random.uniform(0, 1.5 ** min(8, rounds)) / 3


def _refused(code: Any) -> bool:
    """A SUBACK return code: 0x80 or above is a failure (3.1.1 gives ints, 5 ReasonCodes)."""
    failure = getattr(code, "is_failure", None)
    return bool(failure) if failure is not None else int(code) >= 0x80


class MqttBridge:
    def __init__(
        self, deps: Deps, config: MqttConfig, commands: CommandHandler, metrics: Any
    ) -> None:
        self.deps, self.config, self.commands, self.metrics = deps, config, commands, metrics
        self.site_id = deps.config.site.id
        self.prefix = (config.topic_prefix or f"carpark/{self.site_id}").rstrip("/")
        self.connected = False
        self.last_error: str | None = None  # why the link last dropped (the console shows it)
        self.host: str | None = None  # "host:port" of the node in use, when connected
        self._wake = asyncio.Event()
        self._state_dirty = asyncio.Event()
        self._published_state: dict[str, str] = {}
        self._fingerprint = config_fingerprint(deps.config)
        self._started_at = deps.clock.now()
        self._pending_cursor = 0
        self._cursor_saved = asyncio.Event()
        deps.store.on_commit(self._on_commit)
        if deps.lanes is not None:
            for lane in deps.lanes.lanes.values():
                lane.listeners.append(lambda _lane: self._state_dirty.set())

    def _on_commit(self) -> None:
        self._wake.set()
        self._state_dirty.set()

    # -- connection -----------------------------------------------------------------------
    def _client(self, host: str, port: int) -> aiomqtt.Client:
        c = self.config
        tls = None
        if c.ca_file:
            tls = ssl.create_default_context(cafile=c.ca_file)
            if c.cert_file:
                tls.load_cert_chain(c.cert_file, c.key_file or None)
        client = aiomqtt.Client(
            host,
            port,
            identifier=c.client_id or f"carpark-{self.site_id}",
            username=c.username or None,
            password=c.password or None,
            keepalive=c.keepalive,
            protocol=ProtocolVersion.V5 if c.protocol == "5" else ProtocolVersion.V311,
            tls_context=tls,
            timeout=10,
            will=Will(f"{self.prefix}/status", "offline", qos=1, retain=True),
            max_inflight_messages=c.max_inflight,
            max_queued_outgoing_messages=None,
        )
        # aiomqtt logs a warning on every publish while more than 10 await their PUBACK;
        # the relay keeps up to max_inflight in flight on purpose (plus one state or command
        # publish at a time), so only more than that is worth a line in the journal.
        client.pending_calls_threshold = c.max_inflight + 10
        return client

    async def run(self) -> None:
        """Stay connected to one node of the broker, moving to the next when it is lost.

        Each failure moves to the next node of ``mqtt.hosts``. The wait before the next
        attempt is short and jittered while there are nodes left to try in this round (a
        cluster's other nodes are usually up: fail over at once), and grows exponentially,
        still jittered, with each full round that failed (the whole broker is down: do not
        hammer it, and do not let hundreds of sites reconnect in step). Publishing resumes
        from the durable cursor, so whichever node the bridge lands on gets every event not
        acknowledged before.
        """
        endpoints = self.config.endpoints
        index, failures = 0, 0
        while True:
            host, port = endpoints[index]
            started = time.monotonic()
            try:
                await self._session(host, port)
            except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                error = group.exceptions[0]
                self.last_error = str(error) or type(error).__name__
                log.warning("mqtt_disconnected", host=host, port=port, error=self.last_error)
            finally:
                self.connected = False
                self.host = None
            if time.monotonic() - started > 30:
                failures = 0  # it had been up for a while: a fresh incident
            failures += 1
            index = (index + 1) % len(endpoints)
            await asyncio.sleep(reconnect_delay(failures, len(endpoints)))

    async def _session(self, host: str, port: int) -> None:
        async with self._client(host, port) as client:
            self.metrics.reconnects.labels(CHANNEL).inc()
            await client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
            granted = await client.subscribe(f"{self.prefix}/cmd/+", qos=1)
            if any(_refused(code) for code in granted):
                # The node could not set the subscription up (NATS, while JetStream elects
                # leaders after a node loss): listening to nothing is no connection.
                raise aiomqtt.MqttError(f"{host}:{port} refused the command subscription")
            # Connected means listening: a command sent from now on gets its result.
            self.connected, self.host = True, f"{host}:{port}"
            log.info(
                "mqtt_connected",
                host=host,
                port=port,
                protocol=self.config.protocol,
                prefix=self.prefix,
            )
            self._published_state.clear()  # a new session: republish the state
            self._state_dirty.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._relay(client), name="mqtt.relay")
                    tg.create_task(self._listen(client), name="mqtt.commands")
                    tg.create_task(self._state(client), name="mqtt.state")
            except asyncio.CancelledError:
                # A clean shutdown sends no will: say it ourselves, briefly, and do not let
                # the DISCONNECT wait the client's 10 s timeout (shutdown is bounded).
                client.timeout = 2.0
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True),
                        2,
                    )
                raise

    # -- events ---------------------------------------------------------------------------
    async def _relay(self, client: aiomqtt.Client) -> None:
        after = outbox.cursor(self.deps.store.reader, CHANNEL)
        self._pending_cursor = after
        saver = asyncio.get_running_loop().create_task(self._save_cursor(), name="mqtt.cursor")
        try:
            while True:
                self._wake.clear()
                batch = outbox.events_after(self.deps.store.reader, after, BATCH)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                    continue
                after = await self._publish_batch(client, batch)
        finally:
            saver.cancel()
            await self._flush_cursor()

    async def _publish_batch(self, client: aiomqtt.Client, batch: list[dict[str, Any]]) -> int:
        """Publish in order with up to ``max_inflight`` awaiting PUBACK; returns the new cursor."""
        window = asyncio.Semaphore(self.config.max_inflight)
        acked = 0
        done: dict[int, bool] = {}
        failure: BaseException | None = None

        async def send(row: dict[str, Any]) -> None:
            nonlocal failure
            try:
                await client.publish(
                    f"{self.prefix}/events/{row['type']}",
                    outbox.envelope_bytes(row, self.site_id),
                    qos=1,
                    timeout=15,
                )
                done[row["id"]] = True
            except BaseException as err:
                failure = failure or err
                done[row["id"]] = False
            finally:
                window.release()

        tasks = []
        for row in batch:
            await window.acquire()
            if failure is not None:
                window.release()
                break
            tasks.append(asyncio.get_running_loop().create_task(send(row)))
        await asyncio.gather(*tasks, return_exceptions=True)
        cursor = self._pending_cursor
        for row in batch:  # the cursor moves over the acknowledged prefix only
            if not done.get(row["id"]):
                break
            cursor = row["id"]
            acked += 1
        self._pending_cursor = cursor
        self._cursor_saved.set()
        self.metrics.published.labels(CHANNEL).inc(acked)
        if failure is not None:
            raise failure
        return cursor

    async def _save_cursor(self) -> None:
        """Record acknowledgements without holding up publishing (one write at a time)."""
        while True:
            await self._cursor_saved.wait()
            self._cursor_saved.clear()
            await self._flush_cursor()
            await asyncio.sleep(0.05)

    async def _flush_cursor(self) -> None:
        value, now = self._pending_cursor, self.deps.clock.now()
        await self.deps.store.write(lambda db: outbox.advance(db, CHANNEL, value, now))

    # -- commands -------------------------------------------------------------------------
    async def _listen(self, client: aiomqtt.Client) -> None:
        base = f"{self.prefix}/cmd/"
        async for message in client.messages:
            topic = str(message.topic)
            if not topic.startswith(base) or topic.endswith("/result"):
                continue
            name = topic[len(base) :]
            payload = (
                message.payload
                if isinstance(message.payload, bytes)
                else str(message.payload).encode()
            )
            result = await self.commands.handle(name, payload)
            log.info(
                "mqtt_command",
                name=name,
                request_id=result.get("request_id"),
                status=result["status"],
                error=result.get("error"),
            )
            body = json.dumps(result)
            await client.publish(f"{base}{name}/result", body, qos=1)
            props = getattr(message, "properties", None)
            response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
            if response_topic:  # MQTT 5 only: 3.1.1 has no properties
                reply = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                correlation = getattr(props, "CorrelationData", None)
                if correlation is not None:
                    reply.CorrelationData = correlation
                await client.publish(response_topic, body, qos=1, properties=reply)

    # -- retained state -------------------------------------------------------------------
    async def _state(self, client: aiomqtt.Client) -> None:
        while True:
            await self._state_dirty.wait()
            self._state_dirty.clear()
            for topic, body in self._current_state():
                if self._published_state.get(topic) != body:
                    await client.publish(topic, body, qos=1, retain=True)
                    self._published_state[topic] = body
            await asyncio.sleep(0.1)  # at most ten state rounds a second

    def _current_state(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.deps.lanes is not None:
            for status in self.deps.lanes.statuses():
                body = {k: v for k, v in status.items() if k != "display"}
                out.append(
                    (f"{self.prefix}/state/lanes/{status['id']}", json.dumps(body, sort_keys=True))
                )
        db = self.deps.store.reader
        encode = msgspec.json.encode
        for z in rows(
            db,
            "SELECT zone_id, SUM(status = 'available') AS available, SUM(status = 'occupied') AS"
            " occupied, SUM(status = 'reserved') AS reserved, COUNT(*) AS total FROM spaces GROUP BY zone_id",
        ):
            zone = ZoneState(
                zone_id=z["zone_id"],
                available=z["available"],
                occupied=z["occupied"],
                reserved=z["reserved"],
                total=z["total"],
            )
            out.append((f"{self.prefix}/state/zones/{z['zone_id']}", encode(zone).decode()))
        for s in rows(db, "SELECT id, status, space_id FROM ev_stations ORDER BY id"):
            station = StationState(station_id=s["id"], status=s["status"], space_id=s["space_id"])
            out.append((f"{self.prefix}/state/ev-stations/{s['id']}", encode(station).decode()))
        out.append((f"{self.prefix}/info", encode(self.site_info()).decode()))
        return out

    def site_info(self) -> SiteInfo:
        config = self.deps.config
        chargers = [
            ChargerInfo(
                id=c["id"],
                vendor=c["vendor"],
                model=c["model"],
                firmware_version=c["firmware_version"],
                connected=bool(c["connected"]),
            )
            for c in rows(
                self.deps.store.reader,
                "SELECT id, vendor, model, firmware_version, connected FROM ocpp_chargers ORDER BY id",
            )
        ]
        return SiteInfo(
            site_id=self.site_id,
            site_name=config.site.name,
            software_version=software_version(),
            config_fingerprint=self._fingerprint,
            event_schema_version=EVENT_SCHEMA_VERSION,
            protocol="5" if self.config.protocol == "5" else "3.1.1",
            lanes=[LaneInfo(id=lane.id, kind=lane.kind, name=lane.name) for lane in config.lanes],
            chargers=chargers,
            started_at=self._started_at,
        )


_SECRET_KEYS = frozenset({"secret_key", "password", "token", "api_key"})


def config_fingerprint(config: Any) -> str:
    """sha256 of the effective configuration (secrets and the file's path left out): two
    sites with the same fingerprint run the same configuration."""

    def clean(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {
                str(k): "<secret>" if k in _SECRET_KEYS and v else clean(v)
                for k, v in value.items()
                if k != "source"
            }
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def software_version() -> str:
    return gateway.__version__
