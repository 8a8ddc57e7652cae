"""The ``[[lanes]]`` tables of the config: what each lane is and which devices it drives.

Lane-level keys are checked here. Each device table (``barrier``, ``presence_loop``,
``safety_loop``, ``camera``) names its ``driver`` and is checked by that driver when the
daemon wires the lanes, before anything starts, so a typo never reaches a barrier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gateway.config import ConfigError, Options, SimulationConfig
from gateway.domain.lanes import MODES, LaneConfig, LaneTimings

DEVICE_ROLES = ("barrier", "presence_loop", "safety_loop")


@dataclass(frozen=True, kw_only=True)
class LaneSpec:
    id: str
    name: str
    kind: str  # entry | exit
    anti_passback: str = (
        "hard"  # hard: refuse a vehicle already inside; soft: let it in, raise an alarm
    )
    mode: str = "normal"
    # What the barrier does when the daemon stops: stay as it is, open (the lane is then
    # free-flowing: an exit during maintenance) or close (never onto a vehicle).
    on_shutdown: str = "leave"
    timings: LaneTimings = field(default_factory=LaneTimings)
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def machine(self) -> LaneConfig:
        return LaneConfig(
            lane_id=self.id, kind="entry" if self.kind == "entry" else "exit", timings=self.timings
        )


def parse_lanes(raw: Any) -> tuple[LaneSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("lanes must be an array of tables ([[lanes]])")
    lanes: list[LaneSpec] = []
    for index, table in enumerate(raw):
        o = Options(table, f"lanes[{index}]")
        lane_id = o.text("id")
        o.where = f"lanes[{lane_id}]"
        kind = o.choice("kind", ("entry", "exit"))
        mode = o.choice("mode", MODES, "normal")
        if mode == "free_exit" and kind != "exit":
            raise ConfigError(f"lanes[{lane_id}].mode free_exit is for exit lanes")
        timings = LaneTimings(
            barrier_timeout=timedelta(
                seconds=o.number("barrier_timeout_s", 6.0, low=0.1, high=120)
            ),
            backout_close=timedelta(seconds=o.number("backout_close_s", 10.0, low=0.1, high=600)),
            presence_stuck=timedelta(
                seconds=o.number("presence_stuck_s", 600.0, low=1, high=86400)
            ),
            decision_timeout=timedelta(
                seconds=o.number("decision_timeout_s", 5.0, low=0.1, high=60)
            ),
        )
        devices: dict[str, Mapping[str, Any]] = {}
        for role in (*DEVICE_ROLES, "camera"):
            table_ = o.table(role)
            if table_ is None:
                if role in DEVICE_ROLES:
                    raise ConfigError(
                        f'lanes[{lane_id}].{role} is required (driver = "simulated" for none)'
                    )
                continue
            if "driver" not in table_:
                raise ConfigError(f"lanes[{lane_id}].{role}.driver is required")
            devices[role] = table_
        spec = LaneSpec(
            id=lane_id,
            name=o.text("name", lane_id),
            kind=kind,
            anti_passback=o.choice("anti_passback", ("hard", "soft"), "hard"),
            mode=mode,
            on_shutdown=o.choice("on_shutdown", ("leave", "open", "close"), "leave"),
            timings=timings,
            devices=devices,
        )
        o.done()
        lanes.append(spec)
    ids = [lane.id for lane in lanes]
    if len(set(ids)) != len(ids):
        raise ConfigError("lanes: lane ids must be unique")
    return tuple(lanes)


def parse_simulation(raw: Any, lanes: tuple[LaneSpec, ...]) -> SimulationConfig:
    if raw is None:
        return SimulationConfig()
    o = Options(raw, "simulation")
    chargers = o.raw("chargers", [])
    if not isinstance(chargers, list) or not all(isinstance(c, str) and c for c in chargers):
        raise ConfigError("simulation.chargers must be a list of charge point ids")
    sim = SimulationConfig(
        enabled=o.flag("enabled", False),
        seed_demo_site=o.flag("seed_demo_site", False),
        arrivals_per_minute=o.number("arrivals_per_minute", 6.0, low=0.01, high=600),
        dwell_min_s=o.number("dwell_min_s", 20.0, low=0, high=86400),
        dwell_max_s=o.number("dwell_max_s", 90.0, low=0, high=86400),
        pay_ratio=o.number("pay_ratio", 0.7, low=0, high=1),
        entry_lane=o.text("entry_lane", ""),
        exit_lane=o.text("exit_lane", ""),
        chargers=tuple(chargers),
    )
    o.done()
    if sim.dwell_max_s < sim.dwell_min_s:
        raise ConfigError("simulation.dwell_max_s must not be below dwell_min_s")
    if sim.enabled:
        kinds = {lane.id: lane.kind for lane in lanes}
        if kinds.get(sim.entry_lane) != "entry":
            raise ConfigError("simulation.entry_lane must name an entry lane")
        if kinds.get(sim.exit_lane) != "exit":
            raise ConfigError("simulation.exit_lane must name an exit lane")
    return sim
