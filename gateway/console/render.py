"""Rendering the console for one signed-in person: the whole page, or the panels a change
touched (for the live stream). One Jinja environment, autoescaped, from this package."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.response import ServerSentEventMessage

from gateway.api.deps import Deps
from gateway.console import live, read, words
from gateway.console.session import CSRF_FIELD, StaffSession

HERE = Path(__file__).parent
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["money"] = words.money
ENV.filters["kwh"] = lambda v: f"{Decimal(str(v)):.3f} kWh"
ENV.filters["pct"] = lambda v: "-" if v is None else f"{float(v):.0%}"
ENV.filters["hhmm"] = lambda v: "-" if not v else datetime.fromisoformat(v).strftime("%H:%M:%S")


def _minutes(value: float | None) -> str:
    if value is None:
        return "-"
    seconds = int(value)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


ENV.filters["age"] = _minutes

# Panel id -> template; each template renders one element with that id.
PANELS = ("alarms", "occupancy", "reads", "chargers", "upstream")


class Renderer:
    def __init__(self, deps: Deps, staff: StaffSession) -> None:
        self.deps, self.staff = deps, staff
        self._sent: dict[str, str] = {}  # what this watcher was last sent, per panel

    def _base(self) -> dict[str, Any]:
        return {
            "site": self.deps.config.site,
            "staff": self.staff,
            "csrf": self.staff.csrf,
            "csrf_field": CSRF_FIELD,
            "is_admin": self.staff.is_admin,
            "categories": words.CATEGORIES,
            "lane_ids": list(self.deps.lanes.lanes) if self.deps.lanes is not None else [],
        }

    def _site(self) -> dict[str, Any]:
        db, now = self.deps.store.reader, self.deps.clock.now()
        open_ = read.open_alarms(db, now)
        return {
            "alarms": open_,
            "lanes": read.lane_cards(self.deps, db, open_),
            "occupancy": read.occupancy(db),
            "reads": read.reads_to_review(db, now, self.deps.config.lpr.min_confidence),
            "chargers": read.chargers(db),
            "upstream": read.upstream(self.deps, db, now),
        }

    def page(self, query: str) -> dict[str, Any]:
        db = self.deps.store.reader
        return {
            **self._base(),
            **self._site(),
            "feed": read.feed(db),
            "sessions": read.active_sessions(db, self.deps.ctx_for(self.staff.actor), query),
        }

    def sessions(self, query: str) -> str:
        ctx = self.deps.ctx_for(self.staff.actor)
        return self._render(
            "sessions",
            {"sessions": read.active_sessions(self.deps.store.reader, ctx, query)},
        )

    def _render(self, name: str, context: dict[str, Any]) -> str:
        return ENV.get_template(f"panels/{name}.html").render({**self._base(), **context})

    def _panel(
        self, panel_id: str, name: str, context: dict[str, Any]
    ) -> list[ServerSentEventMessage]:
        html = self._render(name, context)
        if self._sent.get(panel_id) == html:
            return []
        self._sent[panel_id] = html
        return [live.panel(panel_id, html)]

    def changes(
        self, keys: set[str], after: int | None
    ) -> tuple[list[ServerSentEventMessage], int]:
        """The messages for what changed; everything when ``after`` is None (a new stream)."""
        db = self.deps.store.reader
        out: list[ServerSentEventMessage] = []
        full = after is None
        lane_keys = {k.split(":", 1)[1] for k in keys if k.startswith("lane:")}
        if full or live.SITE in keys or live.CLOCK in keys or lane_keys:
            site = self._site()
            for lane in site["lanes"]:
                if full or live.SITE in keys or lane["id"] in lane_keys:
                    out += self._panel(f"lane-{lane['id']}", "lane", {"lane": lane})
            if full or live.SITE in keys or live.CLOCK in keys:
                for name in PANELS:
                    out += self._panel(name, name, site)
        if full:
            out += self._panel("feed", "feed", {"feed": read.feed(db)})
            return [*out, live.hint("sessions")], read.last_sequence(db)
        assert after is not None
        if live.SITE in keys:
            fresh = read.feed(db, after=after, limit=read.FEED_SIZE)
            newest = read.last_sequence(db)
            if newest - after > read.FEED_SIZE:  # too much to add row by row: start over
                self._sent.pop("feed", None)
                out += self._panel("feed", "feed", {"feed": read.feed(db)})
            elif fresh:
                html = ENV.get_template("panels/feed_rows.html").render(
                    {**self._base(), "feed": fresh}
                )
                out.append(live.feed(html, fresh[0]["sequence"]))
            after = newest
        if live.SITE in keys or live.CLOCK in keys:
            out.append(live.hint("sessions"))
        return out, after
