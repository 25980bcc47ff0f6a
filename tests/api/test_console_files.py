"""The console's files: the shell with the CSRF token in it, the static assets with their types,
and every way out of the static folder refused (`..` plain and encoded, links, hidden files,
FIFOs, folders)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from dockyard.api.console import ConsoleApp
from dockyard.api.console_files import ConsoleFiles
from dockyard.api.console_session import COOKIE, Sessions, console_secret
from dockyard.api.json_apis import JsonApis
from dockyard.api.keys import KeyRing, ensure_home_key
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.api.console_client import raw_get, signed_in
from tests.conftest import RunningServer

PACKAGE_STATIC = Path(__file__).resolve().parents[2] / "src" / "dockyard" / "console" / "static"


def test_no_way_out_of_the_static_folder(server: RunningServer) -> None:
    browser = signed_in(server)
    cookie = browser.cookie
    status, headers, body = raw_get(server.url, "/console/static/console.css", cookie)
    assert status == 200
    assert headers["content-type"] == "text/css; charset=utf-8"
    assert body == (PACKAGE_STATIC / "console.css").read_bytes()
    escapes = [
        "/console/static/../index.html",
        "/console/static/../__init__.py",
        "/console/static/../../api/keys.py",
        "/console/static/%2e%2e/index.html",
        "/console/static/%2E%2E/__init__.py",
        "/console/static/..%2f__init__.py",
        "/console/static/%2e%2e%2f%2e%2e%2fsettings.py",
        "/console/static/..%5c__init__.py",
        "/console/static//etc/passwd",
        "/console/static/%2fetc%2fpasswd",
        "/console/static/./console.css",
        "/console/static/.hidden",
        "/console/static/",
        "/console/static",
        "/console/static/%00",
        "/console/static/console.css%00.js",
    ]
    for path in escapes:
        status, headers, body = raw_get(server.url, path, cookie)
        assert status == 404, path
        assert headers["content-type"] == "text/html; charset=utf-8", path
        assert b"__version__" not in body and b"root:" not in body, path
    # Page paths with dot segments are no pages (and never reach another API).
    for path in ["/console/../healthz", "/console/%2e%2e/healthz", "/console/jobs/../../x"]:
        status, _, body = raw_get(server.url, path, cookie)
        assert status == 404, path
        assert b"home_id" not in body
    # Without a session the same paths say only "sign in".
    for path in escapes:
        status, headers, _ = raw_get(server.url, path)
        assert status == 303, path
        assert headers["location"].startswith("/console/sign-in?next="), path


def test_assets_by_type_with_etags(tmp_path: Path) -> None:
    root = tmp_path / "console"
    (root / "static" / "pages").mkdir(parents=True)
    (root / "index.html").write_text("<html><head></head><body></body></html>")
    files = {
        "app.js": "text/javascript; charset=utf-8",
        "pages/jobs.mjs": "text/javascript; charset=utf-8",
        "site.css": "text/css; charset=utf-8",
        "logo.svg": "image/svg+xml",
        "chart.js.map": "application/json",
        "font.woff2": "font/woff2",
        "data.bin": "application/octet-stream",
    }
    for name in files:
        (root / "static" / name).write_bytes(name.encode())
    console = ConsoleFiles(root)
    for name, content_type in files.items():
        asset = console.asset(name)
        assert asset is not None, name
        assert (asset.body, asset.content_type) == (name.encode(), content_type)
    first = console.asset("app.js")
    assert first is not None
    (root / "static" / "app.js").write_text("changed")
    changed = console.asset("app.js")
    assert changed is not None and changed.etag != first.etag


def test_links_fifos_and_folders_are_not_served(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    root = tmp_path / "console"
    static = root / "static"
    (static / "real").mkdir(parents=True)
    (static / "real" / "ok.js").write_text("ok")
    (static / "to-secret.js").symlink_to(outside)
    (static / "to-inside.js").symlink_to(static / "real" / "ok.js")  # even one that stays inside
    (static / "linked-folder").symlink_to(static / "real")
    (static / "up").symlink_to(tmp_path)
    os.mkfifo(static / "pipe.js")
    console = ConsoleFiles(root)
    assert console.asset("real/ok.js") is not None
    for path in [
        "to-secret.js",
        "to-inside.js",
        "linked-folder/ok.js",
        "up/secret.txt",
        "pipe.js",  # would hang a plain open()
        "real",
        "real/",
        "missing.js",
        "real/ok.js/x",
    ]:
        assert console.asset(path) is None, path


def test_the_app_serves_the_shell_with_the_token_and_refuses_links(
    dockyard_settings: Settings, tmp_path: Path
) -> None:
    """Through the console app itself (ASGI), over another console folder."""
    outside = tmp_path / "outside.js"
    outside.write_text("alert('outside')")
    root = tmp_path / "console"
    (root / "static").mkdir(parents=True)
    (root / "index.html").write_text(
        '<!doctype html><html><HEAD data-x="1"><title>t</title></HEAD><body></body></html>'
    )
    (root / "static" / "app.js").write_text("export const ok = 1;")
    (root / "static" / "linked.js").symlink_to(outside)
    engine = Engine.open(dockyard_settings)
    key = ensure_home_key(dockyard_settings)
    keys = KeyRing([key])
    sessions = Sessions(console_secret(dockyard_settings), keys, 3600)
    app = ConsoleApp(JsonApis(engine), engine.store, keys, sessions, files=ConsoleFiles(root))
    session, cookie = sessions.issue(key)

    async def fetch(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://console.test", cookies={COOKIE: cookie}
        ) as http:
            return [await http.get(path) for path in paths]

    try:
        pages = ["/console/jobs/a", "/console/static/app.js", "/console/static/linked.js"]
        shell, app_js, linked, again = asyncio.run(fetch(*pages, "/console/"))
    finally:
        engine.close()
    token = sessions.csrf_token(session)
    assert shell.status_code == 200
    assert shell.text.startswith(
        '<!doctype html><html><HEAD data-x="1">\n'
        f'<meta name="csrf-token" content="{token}">\n'
        '<meta name="dockyard-user" content="default"><title>t</title>'
    )
    assert again.text == shell.text
    assert (app_js.status_code, app_js.text) == (200, "export const ok = 1;")
    assert app_js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert app_js.headers["cache-control"] == "private, no-cache"
    assert linked.status_code == 404
    assert "outside" not in linked.text
