"""``/docs`` and ``/redoc`` work in a car park cabinet without internet.

They used to load Swagger UI, ReDoc and fonts from public CDNs and were blank offline.
Headless Chromium (Debian's, see tests/browser.py) opens each page with every request to
another host refused, and the page must still render the operation list; the HTML names
no other host either.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from browser import chromium


def _refs(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_pages_name_no_other_host(gw: Any, path: str) -> None:
    r = httpx.get(gw.base_url + path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = _refs(r.text)
    assert refs, r.text[:500]
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), (path, ref)
    assert "googleapis" not in r.text and "jsdelivr" not in r.text and "redoc.ly" not in r.text
    for ref in refs:  # and every asset they name is served
        assert httpx.get(gw.base_url + ref).status_code == 200, ref


def test_swagger_and_redoc_render_offline(gw: Any) -> None:
    own = urlsplit(gw.base_url).netloc
    elsewhere: list[str] = []
    with chromium() as browser:
        context = browser.new_context()

        def offline(route: Any) -> None:
            if urlsplit(route.request.url).netloc == own or route.request.url.startswith(
                ("data:", "blob:")
            ):
                route.continue_()
            else:  # the cabinet has no internet
                elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        page.goto(gw.base_url + "/docs")
        page.wait_for_selector(".opblock", timeout=60_000)
        assert page.locator(".opblock").count() >= 70
        assert page.get_by_text("/api/v1/payments/validate-exit").count() >= 1

        page.goto(gw.base_url + "/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=60_000)
        assert page.locator("[data-section-id^='operation/']").count() >= 70
        assert page.locator("[data-section-id*='ValidateExit']").count() >= 1
        context.close()
    assert elsewhere == []
