"""A real clustered broker for the tests and benchmarks: three NATS servers with JetStream
and their MQTT listeners, on free loopback ports.

Debian's ``nats-server`` (2.9) serves MQTT 3.1.1 only (an MQTT 5 CONNECT is refused with
"unsupported protocol version"), QoS 0 and 1, retained messages and wills; its MQTT
sessions, retained messages and QoS 1 deliveries live in JetStream streams, replicated
here on all three nodes (``stream_replicas = 3``, ``consumer_replicas = 3``), so a
persistent session on one node survives the death of another, and the cluster's file
store survives all three being down. The machine's own NATS (port 4222) is never touched:
every port here is chosen free, and the store lives in the test's directory.

A node can be killed (``kill -9``), stopped and started again on its same ports; the test
waits for ``/healthz`` on its monitoring port, which answers ok once the node's JetStream
has caught up with the cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.peers import free_port, wait_for

BINARY = "/usr/sbin/nats-server"


class NatsNode:
    def __init__(self, name: str, directory: Path, routes: list[int]) -> None:
        self.name = name
        self.dir = directory
        self.client_port, self.cluster_port = free_port(), routes[0]
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / f"{name}.conf"
        (directory / name).mkdir(parents=True, exist_ok=True)

    def write(self, routes: list[int]) -> None:
        route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
        self.conf.write_text(
            f'server_name: "{self.name}"\n'
            f"listen: 127.0.0.1:{self.client_port}\n"
            f"http: 127.0.0.1:{self.http_port}\n"
            f'jetstream {{ store_dir: "{self.dir / self.name}", max_memory_store: 64MB,'
            " max_file_store: 2GB }\n"
            f'cluster {{ name: "carpark-test", listen: 127.0.0.1:{self.cluster_port},'
            f" routes: [{route_list}] }}\n"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port}, stream_replicas: 3,"
            ' consumer_replicas: 3, ack_wait: "5s" }\n'
        )

    def start(self) -> None:
        log = open(self.dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([BINARY, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def mqtt_ready(self) -> bool:
        """One MQTT session opened and closed: a node sets up its MQTT streams' consumers at
        its first client (seconds on a cluster), which a fleet's broker has long done; the
        tests do it here so that a failover measures the failover, not that first set-up."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"warmup-{self.name}", clean_session=True
        )
        try:
            client.connect("127.0.0.1", self.mqtt_port, keepalive=10)
            client.loop_start()
            deadline = time.monotonic() + 10
            while not client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.05)
            return bool(client.is_connected())
        except OSError:
            return False
        finally:
            client.loop_stop()
            client.disconnect()

    def mqtt_listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.mqtt_port)) == 0


class NatsCluster:
    """Three nodes in one cluster; ``nodes[i].mqtt_port`` is where MQTT clients connect."""

    def __init__(self, directory: str | os.PathLike[str], size: int = 3) -> None:
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [NatsNode(f"n{i + 1}", base, [cluster_ports[i]]) for i in range(size)]
        for node in self.nodes:
            node.write(cluster_ports)

    def start(self, timeout: float = 30, *, healthy: bool = True) -> NatsCluster:
        """Start the nodes that are not running; ready once each takes an MQTT session.

        ``healthy``: also wait for ``/healthz`` on every node, which on a restart waits
        until every stream and consumer replica has caught up (minutes for a big backlog
        on a loaded machine); a restarted cluster serves MQTT well before that.
        """
        for node in self.nodes:
            if not node.running:
                node.start()
        if healthy:
            self.wait_healthy(timeout)
        for node in self.nodes:
            wait_for(node.mqtt_ready, timeout=timeout, interval=0.2, what=f"{node.name} MQTT")
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        for node in self.nodes:
            if node.running:
                wait_for(
                    lambda n=node: n.healthy() and n.mqtt_listening(),  # type: ignore[misc]
                    timeout=timeout,
                    interval=0.1,
                    what=f"nats {node.name} healthy",
                )

    def hosts(self) -> list[str]:
        return [f"127.0.0.1:{n.mqtt_port}" for n in self.nodes]

    def node_on(self, mqtt_port: int) -> NatsNode:
        return next(n for n in self.nodes if n.mqtt_port == mqtt_port)

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def close(self) -> None:
        self.kill_all()
