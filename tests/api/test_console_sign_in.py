"""The console's doors over real HTTP: no page and no data without a session, sign-in right and
wrong (and the guard against guessing), cookies that are not this server's, CSRF, sign-out, and
SigV4 still in front of everything outside /console."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from dockyard.api.app import create_app
from dockyard.api.console_session import COOKIE, Sessions, console_secret, console_secret_file
from dockyard.api.console_sign_in import safe_next
from dockyard.api.keys import AccessKey, KeyRing, face_key
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.api.console_client import csrf_of, sign_in, signed_in
from tests.conftest import RunningServer, free_port

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
LIST = "SageMaker.ListTrainingJobs"


def assert_secured(answer: httpx.Response) -> None:
    assert answer.headers["content-security-policy"] == CSP, answer.request.url
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


def test_no_page_and_no_data_without_a_session(server: RunningServer) -> None:
    http = httpx.Client(base_url=server.url)
    pages = [
        "/console",
        "/console/",
        "/console/training-jobs/job-1?tab=logs",
        "/console/static/console.js",  # an asset, though none by that name exists
        "/console/static/",
        "/console/artifacts?uri=s3://bucket/out/model.tar.gz",
        "/console/artifacts?uri=not-a-uri",
    ]
    for page in pages:
        answer = http.get(page, follow_redirects=False)
        assert answer.status_code == 303, page
        location = answer.headers["location"]
        assert location.startswith("/console/sign-in?next="), location
        assert_secured(answer)
        assert answer.headers["cache-control"] == "no-store"
    # The way back keeps the page and its query.
    answer = http.get("/console/training-jobs/job-1?tab=logs", follow_redirects=False)
    assert answer.headers["location"] == (
        "/console/sign-in?next=%2Fconsole%2Ftraining-jobs%2Fjob-1%3Ftab%3Dlogs"
    )
    for method, path in [
        ("POST", f"/console/api/{LIST}"),
        ("POST", "/console/api/Dockyard.PruneJobFolders"),
        ("GET", f"/console/api/{LIST}"),
        ("POST", "/console/api"),
    ]:
        answer = http.request(method, path, content=b"{}", headers={"Origin": server.url})
        assert answer.status_code == 401, (method, path)
        assert answer.json()["__type"] == "NotSignedIn"
        assert "Sign in to the console" in answer.json()["message"]
        assert_secured(answer)
    # Sign-out without a session is only a way to the sign-in page.
    answer = http.post("/console/sign-out", headers={"Origin": server.url})
    assert answer.status_code == 303
    # The one public file: the sign-in page's stylesheet.
    css = http.get("/console/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert_secured(css)
    form = http.get("/console/sign-in?next=/console/endpoints")
    assert form.status_code == 200
    assert '<form method="post" action="/console/sign-in">' in form.text
    assert '<input type="hidden" name="next" value="/console/endpoints">' in form.text
    assert "<script" not in form.text
    assert_secured(form)


def test_sign_in_with_the_servers_key_opens_the_console(server: RunningServer) -> None:
    http = httpx.Client(base_url=server.url)
    key = server.access_key
    started = time.monotonic()
    answer = sign_in(
        http, key.access_key_id, key.secret_access_key, next_page="/console/endpoints/e?x=1"
    )
    assert time.monotonic() - started < 1.0  # the delay is for failures only
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/endpoints/e?x=1"
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert attributes == {"httponly", "max-age", "path", "samesite"}  # no Secure over http
    assert "Path=/console" in cookie and "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie  # 12 h, the default
    # Signed with a secret of this home, made on first use, readable by its owner only.
    assert console_secret_file(server.settings).stat().st_mode & 0o777 == 0o600
    shell = http.get("/console/endpoints/e")
    assert shell.status_code == 200
    assert shell.headers["content-type"] == "text/html; charset=utf-8"
    assert shell.headers["cache-control"] == "no-store"
    assert_secured(shell)
    token = csrf_of(shell.text)
    assert len(token) == 64
    assert '<meta name="dockyard-user" content="default">' in shell.text
    # The same session gets the same token on every page; the shell is served for any page.
    assert csrf_of(http.get("/console/training-jobs").text) == token
    listed = http.post(
        f"/console/api/{LIST}", content=b"{}", headers={"X-CSRF-Token": token, "Origin": server.url}
    )
    assert listed.status_code == 200
    assert listed.json() == {"TrainingJobSummaries": []}


def test_a_wrong_pair_gets_the_form_again_after_a_delay(server: RunningServer) -> None:
    http = httpx.Client(base_url=server.url)
    key = server.access_key
    for key_id, secret in [
        (key.access_key_id, key.secret_access_key + "x"),
        (key.access_key_id, ""),
        ("AKIDNOBODY", key.secret_access_key),
    ]:
        started = time.monotonic()
        answer = sign_in(http, key_id, secret, next_page="/console/models")
        assert time.monotonic() - started >= 1.0
        assert answer.status_code == 401
        assert "set-cookie" not in answer.headers
        assert "are not a key pair of this server" in answer.text
        assert f'value="{key_id}"' in answer.text  # the id stays filled in
        assert key.secret_access_key not in answer.text
        assert '<input type="hidden" name="next" value="/console/models">' in answer.text
        assert_secured(answer)
    assert http.get("/console/", follow_redirects=False).status_code == 303


def test_guessing_from_one_address_is_stopped(server: RunningServer) -> None:
    """Ten failures in five minutes, then 429 for that address, the right pair included."""
    key = server.access_key

    def guess(number: int) -> int:
        with httpx.Client(base_url=server.url) as http:
            return sign_in(http, key.access_key_id, f"guess-{number}").status_code

    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(guess, range(10)))
    assert statuses == [401] * 10
    assert time.monotonic() - started < 5  # the delays run side by side, not one after another
    http = httpx.Client(base_url=server.url)
    started = time.monotonic()
    refused = sign_in(http, key.access_key_id, key.secret_access_key)
    assert time.monotonic() - started < 1.0
    assert refused.status_code == 429
    assert 200 <= int(refused.headers["retry-after"]) <= 301
    assert "Too many failed sign-ins" in refused.text
    assert "set-cookie" not in refused.headers


def test_sign_in_from_another_origin_is_refused(server: RunningServer) -> None:
    """Login CSRF: a page elsewhere cannot sign the browser in (to a key of its choosing)."""
    key = server.access_key
    http = httpx.Client(base_url=server.url)
    for headers in [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": server.url.replace("127.0.0.1", "localhost")},
    ]:
        answer = sign_in(http, key.access_key_id, key.secret_access_key, **headers)
        assert answer.status_code == 403, headers
        assert "set-cookie" not in answer.headers
    # Neither Origin nor Referer: refused too.
    answer = http.post(
        "/console/sign-in",
        data={"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    # A Referer of this server stands in for a missing Origin.
    answer = http.post(
        "/console/sign-in",
        data={"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key},
        headers={"Referer": f"{server.url}/console/sign-in"},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_next_goes_only_to_a_console_page() -> None:
    assert safe_next("/console/training-jobs/a?b=c") == "/console/training-jobs/a?b=c"
    assert safe_next("/console") == "/console"
    for target in [
        "https://evil.example/console/",
        "//evil.example/console/",
        "/console//evil.example",
        "/\\evil.example",
        "/console/..//evil.example",
        "/console/%2e%2e/healthz",
        "/console/%2E%2E/%2E%2E/x",
        "/healthz",
        "javascript:alert(1)",
        "/console/\x00",
        "/console/sign-in",
        "",
        None,
    ]:
        assert safe_next(target) == "/console/", target


def test_the_redirect_after_sign_in_stays_here(server: RunningServer) -> None:
    key = server.access_key
    for target in ["https://evil.example/", "//evil.example", "/console/%2e%2e/healthz"]:
        http = httpx.Client(base_url=server.url)
        answer = sign_in(http, key.access_key_id, key.secret_access_key, next_page=target)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/"


def _with_cookie(server: RunningServer, cookie: str) -> int:
    answer = httpx.post(
        f"{server.url}/console/api/{LIST}",
        content=b"{}",
        headers={"Cookie": f"{COOKIE}={cookie}", "Origin": server.url},
    )
    return answer.status_code


def test_cookies_not_made_by_this_server_for_a_key_it_has_are_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    browser = signed_in(server)
    good = browser.cookie
    assert browser.call(LIST, {}).status_code == 200
    version, payload, mac = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def encoded(changed: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()

    secret = console_secret(server.settings)
    key = server.access_key
    hours = 3600
    tampered = {
        "later expiry": f"{version}.{encoded({**claims, 'e': claims['e'] + 99 * hours})}.{mac}",
        "another key id": f"{version}.{encoded({**claims, 'k': 'AKIDOTHER'})}.{mac}",
        "flipped MAC": f"{version}.{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "no MAC": f"{version}.{payload}",
        "other version": f"v2.{payload}.{mac}",
        "garbage": "not-a-cookie",
        "too long": good + "A" * 3000,
    }
    for what, cookie in tampered.items():
        assert _with_cookie(server, cookie) == 401, what
    # Made right, but: long expired; by another home (another console secret); for a key the
    # server does not have; for this key id with another secret (rotated); living longer than
    # the server allows.
    expired = Sessions(secret, KeyRing([key]), 12 * hours, clock=lambda: time.time() - 13 * hours)
    other_home = Sessions(
        console_secret(Settings(home=tmp_path / "other")), KeyRing([key]), 12 * hours
    )
    stranger = AccessKey("default", "AKIDSTRANGER", "stranger-secret")
    rotated = AccessKey("default", key.access_key_id, key.secret_access_key + "-old")
    made = {
        "expired": expired.issue(key)[1],
        "other home": other_home.issue(key)[1],
        "unknown key": Sessions(secret, KeyRing([stranger]), 12 * hours).issue(stranger)[1],
        "rotated secret": Sessions(secret, KeyRing([rotated]), 12 * hours).issue(rotated)[1],
        "too long-lived": Sessions(secret, KeyRing([key]), 48 * hours).issue(key)[1],
    }
    for what, cookie in made.items():
        assert _with_cookie(server, cookie) == 401, what
        page = httpx.get(f"{server.url}/console/", headers={"Cookie": f"{COOKIE}={cookie}"})
        assert page.status_code == 303, what
    # The control: one made right for this server's home and key opens the console (and the
    # API refuses it only for want of its CSRF token, not for its session).
    fresh = Sessions(secret, KeyRing([key]), 12 * hours).issue(key)[1]
    page = httpx.get(f"{server.url}/console/", headers={"Cookie": f"{COOKIE}={fresh}"})
    assert page.status_code == 200 and not page.history
    answer = httpx.post(
        f"{server.url}/console/api/{LIST}",
        content=b"{}",
        headers={"Cookie": f"{COOKIE}={fresh}", "Origin": server.url},
    )
    assert (answer.status_code, answer.json()["__type"]) == (403, "InvalidCsrfToken")


def test_removing_a_key_ends_its_sessions(tmp_path: Path) -> None:
    """Across a restart with a keys file that no longer names bob: bob's cookie is refused,
    alice's still works (the console secret is the home's, so hers survives the restart)."""
    keys_file = tmp_path / "keys"
    both = "[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = alice-secret-1\n"
    both += "[bob]\naws_access_key_id = AKIDBOB\naws_secret_access_key = bob-secret-1\n"
    keys_file.write_text(both)
    settings = Settings(home=tmp_path / "home", port=free_port(), keys_file=keys_file)
    cookies = {}
    first = RunningServer(settings)
    try:
        for user in ("alice", "bob"):
            http = httpx.Client(base_url=first.url)
            answer = sign_in(http, f"AKID{user.upper()}", f"{user}-secret-1")
            assert answer.status_code == 303, answer.text
            cookies[user] = http.cookies[COOKIE]
            assert http.get("/console/").status_code == 200
    finally:
        first.close()
    keys_file.write_text(both.split("[bob]")[0])
    second = RunningServer(settings.model_copy(update={"port": free_port()}))
    try:
        for user, expected in (("alice", 200), ("bob", 303)):
            answer = httpx.get(
                f"{second.url}/console/",
                headers={"Cookie": f"{COOKIE}={cookies[user]}"},
                follow_redirects=False,
            )
            assert answer.status_code == expected, user
    finally:
        second.close()


def test_state_changes_need_the_csrf_token_and_this_origin(server: RunningServer) -> None:
    browser = signed_in(server)
    other = signed_in(server)  # another session of the same key: another token
    assert other.csrf != browser.csrf
    assert browser.call(LIST, {}).status_code == 200
    refusals = {
        "no token": ({"X-CSRF-Token": ""}, "InvalidCsrfToken"),
        "wrong token": ({"X-CSRF-Token": "0" * 64}, "InvalidCsrfToken"),
        "another session's token": ({"X-CSRF-Token": other.csrf}, "InvalidCsrfToken"),
        "another origin": ({"Origin": "http://evil.example"}, "CrossOriginRequest"),
        "null origin": ({"Origin": "null"}, "CrossOriginRequest"),
        "another port": ({"Origin": "http://127.0.0.1:1"}, "CrossOriginRequest"),
    }
    for what, (headers, code) in refusals.items():
        answer = browser.call(LIST, {}, **headers)
        assert answer.status_code == 403, what
        assert answer.json()["__type"] == code, what
        assert_secured(answer)
    # Neither Origin nor Referer: refused; a Referer of this server: accepted.
    bare = browser.http.post(
        f"/console/api/{LIST}", content=b"{}", headers={"X-CSRF-Token": browser.csrf}
    )
    assert (bare.status_code, bare.json()["__type"]) == (403, "CrossOriginRequest")
    referred = browser.http.post(
        f"/console/api/{LIST}",
        content=b"{}",
        headers={"X-CSRF-Token": browser.csrf, "Referer": f"{server.url}/console/x"},
    )
    assert referred.status_code == 200
    # A refused request changed nothing: a forged CreateModel made no model.
    forged = browser.call(
        "SageMaker.CreateModel",
        {"ModelName": "forged", "ExecutionRoleArn": "arn:aws:iam::111111111111:role/r",
         "PrimaryContainer": {"Image": "x"}},
        Origin="http://evil.example",
    )  # fmt: skip
    assert forged.status_code == 403
    assert browser.call("SageMaker.ListModels", {}).json()["Models"] == []


def test_sign_out_ends_the_session_everywhere(server: RunningServer) -> None:
    browser = signed_in(server)
    kept = browser.cookie  # as if copied elsewhere
    refused = browser.http.post("/console/sign-out", headers={"Origin": server.url})
    assert refused.status_code == 403  # no CSRF token: not signed out
    assert browser.call(LIST, {}).status_code == 200
    answer = browser.http.post(
        "/console/sign-out",
        headers={"Origin": server.url, "X-CSRF-Token": browser.csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert _with_cookie(server, kept) == 401
    # A plain form button (no script) signs out with the token as a field.
    again = signed_in(server)
    kept = again.cookie
    answer = again.http.post(
        "/console/sign-out",
        data={"csrf_token": again.csrf},
        headers={"Origin": server.url},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert _with_cookie(server, kept) == 401


def test_only_console_paths_take_the_cookie(server: RunningServer) -> None:
    """Everything else is still SigV4: a session cookie opens nothing outside /console."""
    browser = signed_in(server)
    cookie = {"Cookie": f"{COOKIE}={browser.cookie}", "X-CSRF-Token": browser.csrf}
    answer = httpx.post(
        f"{server.url}/",
        content=b"{}",
        headers={**cookie, "X-Amz-Target": LIST, "Origin": server.url},
    )
    assert answer.status_code == 403
    assert answer.json()["__type"] == "MissingAuthenticationTokenException"
    for path in ["/consoles", "/console-api/x", "/bucket/console/x", "/endpoints/e/invocations"]:
        answer = httpx.post(f"{server.url}{path}", content=b"{}", headers=cookie)
        assert answer.status_code == 403, path
    assert httpx.get(f"{server.url}/consolex", headers=cookie).status_code == 403


def test_the_cookie_is_secure_over_https(dockyard_settings: Settings) -> None:
    """Seen through the ASGI app, as behind a TLS-terminating proxy (scheme https)."""
    engine = Engine.open(dockyard_settings)
    app = create_app(engine, close_engine=False)
    pair = face_key(dockyard_settings)

    async def sign_in_over(origin: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=origin) as http:
            form = {
                "access_key_id": pair.access_key_id,
                "secret_access_key": pair.secret_access_key,
            }
            return await http.post("/console/sign-in", data=form, headers={"Origin": origin})

    try:
        over_https = asyncio.run(sign_in_over("https://console.test"))
        over_http = asyncio.run(sign_in_over("http://console.test"))
    finally:
        engine.close()
    for answer, secure in ((over_https, True), (over_http, False)):
        assert answer.status_code == 303
        attributes = [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]
        assert ("secure" in attributes) is secure


def test_the_session_lasts_as_long_as_the_setting_says(dockyard_settings: Settings) -> None:
    running = RunningServer(dockyard_settings.model_copy(update={"console_session_hours": 0.5}))
    try:
        http = httpx.Client(base_url=running.url)
        key = running.access_key
        answer = sign_in(http, key.access_key_id, key.secret_access_key)
        assert "Max-Age=1800" in answer.headers["set-cookie"]
        assert http.get("/console/").status_code == 200
        # A cookie of the default 12 h is longer than this server allows: refused.
        secret = console_secret(running.settings)
        long_lived = Sessions(secret, KeyRing([key]), 12 * 3600).issue(key)[1]
        page = httpx.get(
            f"{running.url}/console/",
            headers={"Cookie": f"{COOKIE}={long_lived}"},
            follow_redirects=False,
        )
        assert page.status_code == 303
    finally:
        running.close()


def test_a_signed_out_session_stays_ended_across_a_restart(dockyard_settings: Settings) -> None:
    first = RunningServer(dockyard_settings)
    try:
        browser = signed_in(first)
        ended, kept = browser.cookie, signed_in(first).cookie
        answer = browser.http.post(
            "/console/sign-out", headers={"Origin": first.url, "X-CSRF-Token": browser.csrf}
        )
        assert answer.status_code == 303
    finally:
        first.close()
    signed_out = dockyard_settings.home / "console-signed-out"
    assert signed_out.stat().st_mode & 0o777 == 0o600
    second = RunningServer(dockyard_settings.model_copy(update={"port": free_port()}))
    try:
        for cookie, expected in ((ended, 303), (kept, 200)):
            page = httpx.get(
                f"{second.url}/console/",
                headers={"Cookie": f"{COOKIE}={cookie}"},
                follow_redirects=False,
            )
            assert page.status_code == expected
    finally:
        second.close()


def test_each_route_takes_its_methods_only(server: RunningServer) -> None:
    browser = signed_in(server)
    for method, path, allowed in [
        ("GET", "/console/sign-out", "POST"),
        ("PUT", "/console/sign-in", "GET, POST"),
        ("DELETE", "/console/training-jobs", "GET"),
        ("POST", "/console/artifacts", "GET"),
        ("GET", f"/console/api/{LIST}", "POST"),
    ]:
        answer = browser.http.request(
            method, path, headers={"Origin": server.url, "X-CSRF-Token": browser.csrf}
        )
        assert answer.status_code == 405, (method, path)
        assert answer.headers["allow"] == allowed
        assert_secured(answer)
