"""The console in a real browser (headless Chromium) on the demo site that ``make run`` starts.

One demo daemon serves the module; each test has its own browser context (cookies).
The README's screenshot is taken by :func:`test_screenshot_for_the_readme` (written to
``docs/console.png`` with ``make screenshot``), so it always shows the console as it is.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.config import LprConfig, lpr_directory
from gateway.services import SYSTEM, plates, sessions
from gateway.timeutil import SystemClock
from tests.api_kit import db_query, events_of
from tests.browser import chromium
from tests.conftest import PASSWORD, Running, config_from, demo_config, running
from tests.peers import free_port, wait_for

ROOT = Path(__file__).parent.parent
CROPS = (
    lpr_directory(os.environ.get("CARPARK_LPR_DIR") or LprConfig().directory) / "data" / "ar-crops"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    config = demo_config(
        tmp_path_factory.mktemp("demo"), arrivals_per_minute=20, dwell_min_s=5, dwell_max_s=20
    )
    with running(config, SystemClock()) as gw:  # type: ignore[arg-type]
        gw.user("customer@example.com", "customer", "A Customer")
        yield gw


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def password_of(gw: Running, role: str) -> tuple[str, str]:
    account = next(a for a in gw.daemon.demo_accounts if a.role == role)
    return account.email, account.password


def sign_in(page: Page, gw: Running, email: str, password: str) -> None:
    page.goto(f"{gw.base_url}/console")
    expect(page).to_have_url(f"{gw.base_url}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def console(browser: Browser, gw: Running, role: str = "operator", **options: Any) -> Page:
    page = browser.new_context(viewport={"width": 1366, "height": 768}, **options).new_page()
    sign_in(page, gw, *password_of(gw, role))
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
    return page


def write(gw: Running, fn: Any) -> Any:
    """A command on the daemon's loop (so its commit reaches the console like any other)."""
    assert gw.daemon._loop is not None
    return asyncio.run_coroutine_threadsafe(gw.store.write(fn), gw.daemon._loop).result(10)


def read_to_review(gw: Running, tmp: Path, inside: tuple[str, ...], read: str, image: str) -> int:
    """Vehicles inside, and an exit read between them that the lane refused as uncertain,
    with the plate crop of a real photograph as its evidence."""
    ctx = gw.daemon.deps.ctx_for(SYSTEM)  # type: ignore[union-attr]
    for plate in inside:
        write(
            gw,
            lambda db, plate=plate: sessions.entry(
                db, ctx, license_plate=plate, entry_gate="entry-1"
            ),
        )
    crop = tmp / f"{read}.jpg"
    picture = cv2.imread(str(CROPS / "imgs" / image))
    assert picture is not None, f"missing LPR photo {image}"
    cv2.imwrite(str(crop), picture)

    def record(db: Any) -> int:
        read_id = plates.record_read(
            db,
            ctx,
            lane_id="exit-1",
            camera_id="exit-cam",
            source="camera",
            plate=read,
            confidence=0.58,
            confident=False,
            reads=4,
            alternatives=[(read, 0.6)],
            first_seen=ctx.now,
            last_seen=ctx.now,
        )
        plates.set_evidence(db, read_id, None, str(crop), crop.stat().st_size)
        plates.link_decision(db, read_id, None, "plate_uncertain")
        return read_id

    return int(write(gw, record))


def test_operator_sees_the_lanes_live_and_nothing_comes_from_another_host(
    demo: Running, browser: Browser
) -> None:
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, demo, *password_of(demo, "operator"))
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
    cards = page.locator("article.lane")
    expect(cards).to_have_count(2)
    expect(page.locator("#lane-entry-1 h3")).to_contain_text("Main entrance")
    expect(page.locator("#lane-exit-1 h3")).to_contain_text("Exit A")
    expect(page.locator("#lane-exit-1 form.mode")).to_have_count(0)  # modes are for admins
    # A simulated car arrives: its decision shows on the entry card without a reload.
    page.evaluate("window.__sameDocument = true")
    seen = (
        page.locator("#lane-entry-1 .decision time").get_attribute("data-at")
        if page.locator("#lane-entry-1 .decision time").count()
        else None
    )
    page.wait_for_function(
        "seen => { const t = document.querySelector('#lane-entry-1 .decision time');"
        " return t && t.dataset.at !== seen; }",
        arg=seen,
        timeout=30_000,
    )
    expect(page.locator("#lane-entry-1 .decision .verdict")).to_have_text("Allowed")
    expect(page.locator("#lane-entry-1 .decision .who")).to_contain_text("SIM")
    assert page.evaluate("window.__sameDocument") is True
    page.reload()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
    here = urlsplit(demo.base_url).netloc
    assert requests, "no request recorded"
    assert {urlsplit(url).netloc for url in requests if not url.startswith("data:")} == {here}, (
        requests
    )
    page.context.close()


def test_open_with_a_reason_shows_the_audit_event_in_the_feed(
    demo: Running, browser: Browser
) -> None:
    page = console(browser, demo)
    card = page.locator("#lane-exit-1")
    card.locator("input[name=reason]").fill("ambulance bay 3")
    card.locator("form.open button").click()
    expect(page.locator("#toast")).to_contain_text("exit-1 is opening")
    row = page.locator("#feed li[data-type=lane_opened_by_operator]").first
    expect(row).to_contain_text("ambulance bay 3", timeout=10_000)
    expect(row).to_contain_text("operator@demo.local")
    # The filters: by type, then by another lane.
    page.select_option("#feed-type", "operator")
    expect(row).to_be_visible()
    expect(page.locator("#feed li[data-category=decision]").first).to_be_hidden()
    page.select_option("#feed-lane", "entry-1")
    expect(row).to_be_hidden()
    audit = [
        e for e in events_of(demo, "lane_opened_by_operator") if e["reason"] == "ambulance bay 3"
    ]
    assert audit == [
        {"lane_id": "exit-1", "reason": "ambulance bay 3", "actor": "operator@demo.local"}
    ]
    page.context.close()


def test_correct_a_plate_read_and_take_cash_at_the_booth(
    demo: Running, browser: Browser, tmp_path: Path
) -> None:
    page = console(browser, demo)
    read_id = read_to_review(
        demo, tmp_path, ("AD054JI", "AD054J7"), "AD054J1", "morning_10620_100.png"
    )
    review = page.locator(f"[data-read='{read_id}']")
    expect(review).to_be_visible(timeout=10_000)  # pushed, no reload
    expect(review.locator("img")).to_have_js_property("complete", True)
    assert review.locator("img").evaluate("img => img.naturalWidth") > 0  # the crop is served
    expect(review.locator("button.candidate")).to_have_text(["AD054J7", "AD054JI"])
    review.locator("button.candidate", has_text="AD054JI").click()
    expect(page.locator("#toast")).to_contain_text(f"read #{read_id} is now AD054JI")
    expect(review).to_have_count(0, timeout=10_000)
    assert db_query(
        demo, "SELECT plate, corrected_from FROM plate_reads WHERE id = ?", [read_id]
    ) == [("AD054JI", "AD054J1")]

    # The booth: find the car by plate, take cash for what it owes.
    page.fill("#session-q", "ad054j7")
    row = page.locator("#sessions tr[data-plate=AD054J7]")
    expect(row).to_be_visible()
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    row.locator("input[name=amount]").fill("20")
    row.locator("button", has_text="Cash").click()
    expect(page.locator("#toast")).to_contain_text("cash, change $17.50")
    expect(page.locator("#sessions tr[data-plate=AD054J7]")).to_contain_text("paid", timeout=10_000)
    paid = db_query(
        demo,
        "SELECT p.payment_method, p.tendered FROM payments p JOIN sessions s ON s.id = p.session_id"
        " JOIN vehicles v ON v.id = s.vehicle_id WHERE v.license_plate = 'AD054J7'",
    )
    assert paid == [("cash", "20.00")]
    page.context.close()


def test_a_customer_is_refused(demo: Running, browser: Browser) -> None:
    page = browser.new_context().new_page()
    sign_in(page, demo, "customer@example.com", PASSWORD)
    expect(page.locator("#login-error")).to_contain_text("for operators and admins")
    expect(page).to_have_url(f"{demo.base_url}/console/login")
    page.goto(f"{demo.base_url}/console")
    expect(page).to_have_url(f"{demo.base_url}/console/login")
    assert not [c for c in page.context.cookies() if c["name"] == "carpark_console"]
    page.context.close()


def test_the_console_reconnects_and_catches_up_after_a_restart(
    tmp_path: Path, browser: Browser
) -> None:
    """The daemon restarts (an upgrade) with the console open: it says so, reconnects by
    itself and shows what happened meanwhile, without a reload."""
    port = free_port()
    lanes = [
        {
            "id": "exit-1",
            "name": "Exit A",
            "kind": "exit",
            "barrier": {"driver": "simulated", "travel_s": 0.05},
            "presence_loop": {"driver": "simulated"},
            "safety_loop": {"driver": "simulated"},
        }
    ]
    config = config_from(tmp_path, lanes=lanes, http={"host": "127.0.0.1", "port": port})
    with running(config, SystemClock(), users=[("op@example.com", "operator")]) as gw:  # type: ignore[arg-type]
        page = browser.new_context().new_page()
        sign_in(page, gw, "op@example.com", PASSWORD)
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
        page.evaluate("window.__sameDocument = true")
        expect(page.locator("#alarms")).to_be_hidden()
    expect(page.locator("#live-state")).to_have_attribute(
        "data-state", "reconnecting", timeout=10_000
    )
    # While it was down something happened that the console must show when it is back.
    db_path = config.database.path
    import sqlite3

    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO outbox (event_id, type, occurred_at, payload) VALUES ('x', 'unauthorised_passage',"
            " strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'), '{\"lane_id\": \"exit-1\"}')"
        )
    with running(config, SystemClock()):  # type: ignore[arg-type]
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=20_000)
        expect(page.locator("#alarms")).to_contain_text(
            "a vehicle went through without a grant", timeout=10_000
        )
        expect(page.locator("#lane-exit-1 .lane-alarm")).to_have_count(1)
        assert page.evaluate("window.__sameDocument") is True
    page.context.close()


def test_screenshot_for_the_readme(demo: Running, browser: Browser, tmp_path: Path) -> None:
    """The README's picture: the demo site at 1366x768, a read waiting for review, and the
    same page on an upright tablet without sideways scrolling."""
    read_to_review(demo, tmp_path, ("JPU238", "JPU236"), "JPU23B", "morning_10710_65.png")
    page = console(browser, demo, role="admin")
    expect(page.locator("#reads .review")).not_to_have_count(0, timeout=10_000)
    page.wait_for_function(
        "() => document.querySelectorAll('#feed li').length > 10"
        " && document.querySelector('#lane-exit-1 .decision:not(.none)')",
        timeout=60_000,
    )
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    shot = tmp_path / "console.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    assert "docs/console.png" in (ROOT / "README.md").read_text()
    if os.environ.get("CARPARK_UPDATE_SCREENSHOT"):
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "console.png").write_bytes(shot.read_bytes())
    tablet = browser.new_context(
        viewport={"width": 820, "height": 1180}, is_mobile=True, has_touch=True
    ).new_page()
    sign_in(tablet, demo, *password_of(demo, "admin"))
    expect(tablet.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
    assert tablet.evaluate("document.documentElement.scrollWidth") <= 820
    tablet.context.close()
    page.context.close()


def test_remote_stop_of_a_charge(demo: Running, browser: Browser) -> None:
    """A charge on a simulated OCPP charger, stopped from the console: RemoteStopTransaction,
    the charger's StopTransaction, the charge completed with its energy."""
    from gateway.services import charging

    page = console(browser, demo)
    deps = demo.daemon.deps
    assert deps is not None
    ctx = deps.ctx_for(SYSTEM)
    entry = write(
        demo, lambda db: sessions.entry(db, ctx, license_plate="EVSTOP9", entry_gate="entry-1")
    )
    vehicle = db_query(demo, "SELECT vehicle_id FROM sessions WHERE id = ?", [entry.session_id])[0][
        0
    ]
    # The demo's EVs may hold both chargers for a while: wait for one to be free.
    free = wait_for(
        lambda: db_query(
            demo,
            "SELECT e.id FROM ev_stations e WHERE e.status = 'available' AND NOT EXISTS (SELECT 1"
            " FROM charging_sessions c WHERE c.station_id = e.id AND c.status IN ('started', 'charging'))",
        ),
        timeout=90,
        what="a free demo charger",
    )

    async def start() -> int:
        return await charging.start_remote(
            deps.store,
            deps.charger,
            ctx,
            station_id=free[0][0],
            vehicle_id=vehicle,
            parking_session_id=entry.session_id,
            max_power=None,
        )

    assert demo.daemon._loop is not None
    charge_id = asyncio.run_coroutine_threadsafe(start(), demo.daemon._loop).result(20)
    station = page.locator(f"#chargers [data-station='{free[0][0]}']")
    expect(station).to_contain_text("EVSTOP9", timeout=10_000)
    station.locator("button", has_text="Stop").click()
    expect(page.locator("#toast")).to_contain_text(f"charge #{charge_id} stopped", timeout=20_000)
    expect(station).not_to_contain_text("EVSTOP9", timeout=10_000)
    assert db_query(demo, "SELECT status FROM charging_sessions WHERE id = ?", [charge_id]) == [
        ("completed",)
    ]
    page.context.close()
