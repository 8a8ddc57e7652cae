"""EV charging stations and charging sessions, and the admin dashboard."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.api.auth import PUBLIC, admin
from gateway.api.deps import Deps
from gateway.api.errors import AUTH, BODY, STAFF, errors
from gateway.api.params import Limit, Page, QueryId, equal_to, paged
from gateway.api.responses import Charge, ChargePage, ChargeStopped, Dashboard, Station, typed
from gateway.api.schemas import (
    ChargerType,
    ChargeStartIn,
    ChargingStatus,
    StationIn,
    StationStatus,
    StationUpdate,
    given,
)
from gateway.services import Actor, charging, reports, require, rows
from gateway.services.views import BookingViews


class StationController(Controller):
    path = "/ev-stations"
    tags = ["EV charging"]

    @get("/", opt=PUBLIC, responses=errors(400))
    async def list_stations(
        self,
        deps: NamedDependency[Deps],
        request: Request[Any, Any, Any],
        status: FromQuery[StationStatus | None] = None,
        charger_type: FromQuery[ChargerType | None] = None,
        available_only: FromQuery[bool] = False,
    ) -> list[Station]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if charger_type is not None:
            where.append("charger_type = ?")
            params.append(charger_type)
        if available_only:
            where.append("status = 'available'")
        views = BookingViews(deps.db, deps.ctx(request))
        return [
            typed(Station, views.station_row(r))
            for r in rows(
                deps.db,
                f"SELECT * FROM ev_stations WHERE {' AND '.join(where)} ORDER BY id",
                params,
            )
        ]

    @post("/", guards=[admin], status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def create_station(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[StationIn],
    ) -> Station:
        values = {
            "space_id": data.space_id,
            "charger_type": data.charger_type,
            "power_kw": data.power_kw,
            "connector_type": data.connector_type.strip(),
            "price_per_kwh": data.price_per_kwh,
            "installed_at": data.installed_at,
            "manufacturer": data.manufacturer,
            "serial_number": data.serial_number,
            "ocpp_id": data.ocpp_id,
            "connector_id": data.connector_id if data.ocpp_id else None,
        }
        if data.ocpp_id and data.connector_id is None:
            values["connector_id"] = 1  # a single-connector charge point
        station_id = await deps.write(
            request, lambda db, ctx: charging.create_station(db, ctx, values)
        )
        row = require(deps.db, "ev_stations", station_id, "station")
        return typed(Station, BookingViews(deps.db, deps.ctx(request)).station_row(row))

    @put("/{station_id:int}", guards=[admin], responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def update_station(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        station_id: FromPath[int],
        data: JSONBody[StationUpdate],
    ) -> Station:
        changes = given(data)
        before = require(deps.db, "ev_stations", station_id, "station")
        await deps.write(
            request, lambda db, ctx: charging.update_station(db, ctx, station_id, changes)
        )
        station = require(deps.db, "ev_stations", station_id, "station")
        if (
            "maintenance" in (before["status"], station["status"])
            and before["status"] != station["status"]
        ):
            # ChangeAvailability to the charger, queued if it is offline right now.
            deps.charger.availability_changed(station, station["status"] != "maintenance")
        return typed(Station, BookingViews(deps.db, deps.ctx(request)).station_row(station))


class ChargingController(Controller):
    path = "/ev-charging"
    tags = ["EV charging"]

    @post("/start", status_code=201, responses=errors(*BODY, *STAFF, 404, 409, 422))
    async def start(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        data: JSONBody[ChargeStartIn],
    ) -> Charge:
        charge_id = await charging.start_remote(
            deps.store,
            deps.charger,
            deps.ctx(request),
            station_id=data.station_id,
            vehicle_id=data.vehicle_id,
            parking_session_id=data.parking_session_id,
            max_power=data.max_power_requested,
        )
        row = require(deps.db, "charging_sessions", charge_id, "charging session")
        return typed(Charge, charging.charge_view(row))

    @post("/{charge_id:int}/stop", status_code=200, responses=errors(400, *STAFF, 404, 409))
    async def stop(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        charge_id: FromPath[int],
    ) -> ChargeStopped:
        await charging.stop_remote(deps.store, deps.charger, deps.ctx(request), charge_id)
        row = require(deps.db, "charging_sessions", charge_id, "charging session")
        view = charging.charge_view(row)
        stopped = {
            "session": view,
            "energy_used": view["energy_kwh"],
            "cost": view["cost"],
            "duration_minutes": charging.duration_minutes(row),
            "provisional": bool(row["provisional"]),
        }
        return typed(ChargeStopped, stopped)

    @get("/sessions", responses=errors(400, *AUTH))
    async def list_charges(
        self,
        deps: NamedDependency[Deps],
        request: Request[Actor, Any, Any],
        page: Page = 1,
        limit: Limit = 20,
        station_id: QueryId = None,
        vehicle_id: QueryId = None,
        status: FromQuery[ChargingStatus | None] = None,
    ) -> ChargePage:
        """Customers see the charges of their vehicles (or that they started); staff all."""
        where: list[str] = []
        params: list[Any] = []
        if not request.user.is_staff:
            where.append(
                "(user_id = ? OR vehicle_id IN (SELECT id FROM vehicles WHERE user_id = ?))"
            )
            params.extend([request.user.id, request.user.id])
        equal_to(where, params, station_id=station_id, vehicle_id=vehicle_id, status=status)
        page_ = paged(
            deps.db,
            key="sessions",
            table="charging_sessions",
            where=where,
            params=params,
            page=page,
            limit=limit,
            render=charging.charge_view,
        )
        return typed(ChargePage, page_)


class ReportController(Controller):
    path = "/reports"
    tags = ["Reports"]
    guards = [admin]

    @get("/dashboard", responses=errors(*STAFF))
    async def dashboard(
        self, deps: NamedDependency[Deps], request: Request[Actor, Any, Any]
    ) -> Dashboard:
        ctx = deps.ctx(request)
        # Counting over the whole history takes a few milliseconds: off the lanes' loop.
        return typed(
            Dashboard, await deps.store.read_in_thread(lambda db: reports.dashboard(db, ctx))
        )
