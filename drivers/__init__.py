"""Device adapters: each turns a device protocol into lane events and commands.

``build_lane_devices`` is called by the composition root with the lane's device tables;
it picks the driver named by each table's ``driver`` key and lets it check its options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.barrier.modbus import ModbusBarrier
from drivers.barrier.serial_relay import SerialRelayBarrier
from drivers.barrier.simulated import SimulatedBarrier
from drivers.camera.lane_camera import build_camera
from drivers.loop.modbus import ModbusLoop
from drivers.loop.serial import SerialLoop
from drivers.loop.simulated import SimulatedLoop
from drivers.modbus import ModbusBus
from drivers.serial_line import SerialLineHub
from gateway.config import ConfigError, LprConfig, Options
from gateway.lanes.config import LaneSpec
from gateway.lanes.engine import LaneDevices


def _barrier(table: Mapping[str, Any], where: str, buses: Mapping[str, ModbusBus]) -> Any:
    driver = table["driver"]
    if driver == "simulated":
        o = Options(table, where)
        o.text("driver")
        barrier = SimulatedBarrier(travel_s=o.number("travel_s", 1.0, low=0, high=60))
        o.done()
        return barrier
    if driver == "modbus":
        return ModbusBarrier.from_config(table, where, buses)
    if driver == "serial_relay":
        return SerialRelayBarrier.from_config(table, where)
    raise ConfigError(
        f"{where}.driver: unknown barrier driver {driver!r} (simulated, modbus, serial_relay)"
    )


def _loop(
    table: Mapping[str, Any],
    where: str,
    buses: Mapping[str, ModbusBus],
    hubs: dict[str, SerialLineHub],
) -> Any:
    driver = table["driver"]
    if driver == "simulated":
        o = Options(table, where)
        o.text("driver")
        o.done()
        return SimulatedLoop()
    if driver == "modbus":
        return ModbusLoop.from_config(table, where, buses)
    if driver == "serial":
        return SerialLoop.from_config(table, where, hubs)
    raise ConfigError(f"{where}.driver: unknown loop driver {driver!r} (simulated, modbus, serial)")


def build_lane_devices(
    spec: LaneSpec,
    buses: Mapping[str, ModbusBus],
    hubs: dict[str, SerialLineHub],
    lpr: LprConfig | None = None,
) -> LaneDevices:
    where = f"lanes[{spec.id}]"
    devices = LaneDevices(
        barrier=_barrier(spec.devices["barrier"], f"{where}.barrier", buses),
        presence_loop=_loop(spec.devices["presence_loop"], f"{where}.presence_loop", buses, hubs),
        safety_loop=_loop(spec.devices["safety_loop"], f"{where}.safety_loop", buses, hubs),
    )
    if "camera" in spec.devices:
        config = lpr or LprConfig()

        def pipeline() -> Any:
            # Loaded here, at start-up: a missing model stops the daemon naming the file.
            from drivers.camera.lpr import LprModelError, LprPipeline

            try:
                return LprPipeline.from_config(config)
            except LprModelError as err:
                raise ConfigError(f"{where}.camera: {err}") from err

        devices.extra["camera"] = build_camera(
            spec.devices["camera"], f"{where}.camera", spec.id, config, pipeline
        )
    return devices
