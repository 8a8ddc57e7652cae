"""All lanes of the site, and the operator's controls over them (audited)."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from gateway.domain.lanes import MODES, Credential
from gateway.errors import Invalid, NotFound, Unavailable
from gateway.lanes.decisions import Decider
from gateway.lanes.engine import Lane

log = structlog.get_logger("gateway.lanes")


class LaneManager:
    def __init__(self, lanes: list[Lane], decider: Decider) -> None:
        self.lanes = {lane.spec.id: lane for lane in lanes}
        self.decider = decider

    async def run(self) -> None:
        if not self.lanes:
            return
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes.values():
                tg.create_task(lane.run(), name=f"lane[{lane.spec.id}]")

    async def shutdown(self, timeout_s: float = 3.0) -> None:
        """Put each barrier in its ``on_shutdown`` state before the lanes are cancelled.

        Called by the daemon while the lanes still run, so the devices are still connected
        (a serial relay closes its port when cancelled) and a pulse is released before the
        bus closes. Waits for the position to be confirmed, bounded: a device that does
        not answer must not hold up a restart.
        """

        async def one(lane: Lane) -> None:
            lane.release_control()  # from now on only this moves the barrier
            wanted = lane.spec.on_shutdown
            if wanted == "leave":
                return
            target = "open" if wanted == "open" else "closed"
            barrier = lane.devices.barrier
            changed = asyncio.Event()

            def wake(_lane: Lane) -> None:
                changed.set()

            lane.listeners.append(wake)
            try:
                async with asyncio.timeout(timeout_s):
                    if wanted == "close":
                        refusal = await lane.close_refusal()
                        if refusal is not None:  # never close onto a vehicle under the arm
                            log.warning("shutdown_barrier_left", lane=lane.spec.id, reason=refusal)
                            return
                    await (barrier.open() if wanted == "open" else barrier.close())
                    while lane.state.position != target:
                        await changed.wait()
                        changed.clear()
            except Exception as err:  # the device may be the reason we stop
                log.warning(
                    "shutdown_barrier_failed",
                    lane=lane.spec.id,
                    wanted=target,
                    error=str(err) or type(err).__name__,
                )
            else:
                log.info("shutdown_barrier", lane=lane.spec.id, position=target)
            finally:
                lane.listeners.remove(wake)

        await asyncio.gather(*(one(lane) for lane in self.lanes.values()))

    def get(self, lane_id: str) -> Lane:
        lane = self.lanes.get(lane_id)
        if lane is None:
            raise NotFound(f"lane {lane_id} not found")
        return lane

    def statuses(self) -> list[dict[str, Any]]:
        return [lane.status() for lane in self.lanes.values()]

    async def open(self, lane_id: str, reason: str, actor: str | None) -> None:
        """Open for whoever is in the lane; the audit event is written before the barrier moves.

        Refused (503, ``barrier_unreachable``, nothing recorded) while the barrier does not
        answer: an operator must never be told "opening" for a barrier that cannot hear it.
        Once accepted, the open is a grant like any other: re-sent until the barrier
        follows, kept until its vehicle has passed or it expires.
        """
        lane = self.get(lane_id)
        if not lane.barrier_reachable():
            raise Unavailable(
                f"the barrier of lane {lane_id} does not answer: "
                f"{lane.devices_health.get('barrier', 'unknown')}",
                reason="barrier_unreachable",
            )
        await self.decider.audit(
            "lane_opened_by_operator", lane.spec, {"reason": reason, "actor": actor}
        )
        lane.open_by_operator(reason, actor)

    async def set_mode(self, lane_id: str, mode: str, actor: str | None) -> None:
        lane = self.get(lane_id)
        if mode not in MODES:
            raise Invalid(f"mode must be one of {', '.join(MODES)}", field="mode")
        if mode == "free_exit" and lane.spec.kind != "exit":
            raise Invalid("free_exit is a mode of exit lanes", field="mode")
        await self.decider.audit(
            "lane_mode_changed", lane.spec, {"mode": mode, "from": lane.state.mode, "actor": actor}
        )
        lane.set_mode(mode)

    def present(self, lane_id: str, credential: Credential) -> None:
        self.get(lane_id).present(credential)
