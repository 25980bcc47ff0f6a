"""A browser's side of the console, for the console tests: sign in through the form, read the
CSRF token from the shell, send raw paths that an HTTP library would normalize."""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from dockyard.api.console_session import COOKIE
from tests.conftest import RunningServer

_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, page[:500]
    return found.group(1)


def sign_in(
    http: httpx.Client, key_id: str, secret: str, *, next_page: str = "/console/", **headers: str
) -> httpx.Response:
    """POST the sign-in form as the browser sends it from the sign-in page."""
    origin = str(http.base_url).rstrip("/")
    return http.post(
        "/console/sign-in",
        data={"access_key_id": key_id, "secret_access_key": secret, "next": next_page},
        headers={"Origin": origin, **headers},
        follow_redirects=False,
    )


@dataclass
class Browser:
    """A signed-in session: its cookie jar and the CSRF token of its pages."""

    http: httpx.Client
    csrf: str

    @property
    def origin(self) -> str:
        return str(self.http.base_url).rstrip("/")

    @property
    def cookie(self) -> str:
        value = self.http.cookies.get(COOKIE)
        assert value is not None
        return value

    def call(self, target: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
        """The gateway, as the console's pages call it."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            f"/console/api/{target}",
            content=content,
            headers={
                "Content-Type": "application/json",
                "X-CSRF-Token": self.csrf,
                "Origin": self.origin,
                **headers,
            },
        )


def signed_in(server: RunningServer) -> Browser:
    http = httpx.Client(base_url=server.url, timeout=60)
    key = server.access_key
    answer = sign_in(http, key.access_key_id, key.secret_access_key)
    assert answer.status_code == 303, answer.text
    shell = http.get("/console/")
    assert shell.status_code == 200
    return Browser(http, csrf_of(shell.text))


def raw_get(url: str, path: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET `path` exactly as written (no dot-segment removal, no re-encoding)."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()
