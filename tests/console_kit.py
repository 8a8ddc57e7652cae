"""Signing in to the console over plain HTTP, as a browser does (cookies, forms, CSRF)."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def console_client(base_url: str) -> httpx.Client:
    """A client that asks for pages as a browser does (``Accept: text/html``)."""
    return httpx.Client(
        base_url=base_url,
        timeout=10,
        follow_redirects=False,
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )


def sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    """GET the form (its CSRF cookie), POST it; returns the POST's response."""
    form = client.get("/console/login")
    assert form.status_code == 200, form.text
    token = CSRF.search(form.text)
    assert token is not None
    return client.post(
        "/console/login", data={"_csrf": token.group(1), "email": email, "password": password}
    )


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/console")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def act(client: httpx.Client, path: str, csrf: str | None, **form: Any) -> httpx.Response:
    """An action as the page's script sends it."""
    data = {**form, **({"_csrf": csrf} if csrf is not None else {})}
    return client.post(path, data=data, headers={"X-Console": "fetch"})
