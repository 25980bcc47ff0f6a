"""The web console's server side under /console: sign-in, the session cookie, CSRF, the JSON
gateway to the same operations the signed API runs, artifact downloads, and the console's files.

The browser talks to the server only through the APIs any client uses: the gateway
`POST /console/api/<Target>.<Operation>` answers exactly what `POST /` with that X-Amz-Target
answers (api/json_apis.py), with the session cookie in place of SigV4.

Security model:
- No page and no data without a session (console_session.py): HTML routes answer 303 to the
  sign-in page, /console/api/ answers 401 `NotSignedIn`. Only the stylesheet the sign-in page
  needs (PUBLIC_ASSETS) is served without one.
- CSRF: every state-changing request (POST to /console/api/ and sign-out) carries the header
  X-CSRF-Token with the session's token, which the page reads from
  `<meta name="csrf-token">` in the HTML shell (the session cookie itself is HttpOnly), and an
  Origin (or Referer) of this server. The sign-in POST checks Origin too (login CSRF).
- Every answer carries a strict Content-Security-Policy, nosniff, same-origin referrers; all
  but the static files `Cache-Control: no-store`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.console_artifacts import Artifacts
from dockyard.api.console_files import ConsoleFiles, ShellError
from dockyard.api.console_session import COOKIE, COOKIE_PATH, Session, Sessions
from dockyard.api.console_sign_in import (
    MAX_FORM_BYTES,
    SIGN_IN,
    SignInGuard,
    check_pair,
    message_page,
    safe_next,
    sign_in_location,
    sign_in_page,
)
from dockyard.api.json_apis import JsonApis
from dockyard.api.keys import KeyRing
from dockyard.api.limits import read_body
from dockyard.contract.errors import DockyardError
from dockyard.storage.objects import ObjectStore

log = logging.getLogger(__name__)

PREFIX = "/console"
PUBLIC_ASSETS = frozenset({"console.css"})  # what the sign-in page itself needs
CSRF_HEADER = "x-csrf-token"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")


class _HandedOn:
    """A gateway request handed to the app of its API as that API's JSON form: X-Amz-Target
    `target` and JSON 1.0 (what CloudWatch's JSON protocol is), the body as the page sent it."""

    def __init__(self, app: ASGIApp, target: str) -> None:
        self.app = app
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = (b"x-amz-target", b"content-type")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in replaced]
        headers += [
            (b"x-amz-target", self.target.encode()),
            (b"content-type", b"application/x-amz-json-1.0"),
        ]
        await self.app({**scope, "headers": headers}, receive, send)


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleApp:
    """Everything under /console; nothing else (it hands no request on to another app)."""

    def __init__(
        self,
        apis: JsonApis,
        store: ObjectStore,
        keys: KeyRing,
        sessions: Sessions,
        *,
        files: ConsoleFiles | None = None,
        guard: SignInGuard | None = None,
        downloads: Path | None = None,
        apps_by_target: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        """`downloads`: where objects of a remote store are fetched to before they are sent
        (default: the system's temporary folder). `apps_by_target`: APIs outside `apis` that
        answer the JSON form of their operations themselves (CloudWatch), by target prefix."""
        self.apis = apis
        self.keys = keys
        self.sessions = sessions
        self.files = files or ConsoleFiles()
        self.guard = guard or SignInGuard()
        self.artifacts = Artifacts(store, downloads)
        self.apps_by_target = dict(apps_by_target or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._respond(request)
        except Exception:
            log.exception("the console failed on %s %s", request.method, request.url.path)
            response = _page(
                500, "Something went wrong", "dockyard hit an internal error; see the server log."
            )

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await response(scope, receive, secured)

    async def _respond(self, request: Request) -> Response | _HandedOn:
        rest = request.url.path[len(PREFIX) :]
        method = request.method
        if rest == "/sign-in":
            if method == "GET":
                return _html(sign_in_page(request.query_params.get("next", "")))
            if method == "POST":
                return await self._sign_in(request)
            return _not_allowed("GET, POST")
        if rest.startswith("/static/") and rest[len("/static/") :] in PUBLIC_ASSETS:
            return self._static(request, rest[len("/static/") :])

        is_api = rest == "/api" or rest.startswith("/api/")
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            if is_api:
                return _not_signed_in()
            return RedirectResponse(sign_in_location(request.url.path, request.url.query), 303)
        request.scope["dockyard.user"] = session.user  # who asked, as SigV4 records it

        if is_api:
            if method != "POST":
                return _not_allowed("POST", api=True)
            refused = self._refuse_forgery(request, session)
            if refused is not None:
                return refused
            target = rest[len("/api/") :]
            app = self.apps_by_target.get(target.partition(".")[0])
            if app is not None:
                return _HandedOn(app, target)
            return await self.apis.answer(target, request)
        if rest == "/sign-out":
            if method != "POST":
                return _not_allowed("POST")
            return await self._sign_out(request, session)
        if method != "GET":
            return _not_allowed("GET")
        if rest.startswith("/static/"):
            return self._static(request, rest[len("/static/") :])
        if rest == "/artifacts":
            return await self.artifacts.download(request.query_params.get("uri"))
        reserved = rest == "/static" or rest.startswith(("/artifacts/", "/sign-in/"))
        if reserved or _has_dot_segment(rest):
            return _page(404, "Not found", f"{request.url.path} is not a page of the console.")
        return self._shell(session)

    # -- sign-in and out ---------------------------------------------------------------------

    async def _sign_in(self, request: Request) -> Response:
        if not same_origin(request):
            return _page(
                403,
                "Sign-in refused",
                "The sign-in form was not sent from this server's own page: open the console's "
                "sign-in page and sign in there.",
            )
        client = request.client.host if request.client else "-"
        try:
            raw = await read_body(request, MAX_FORM_BYTES)
        except DockyardError:
            return _page(413, "Sign-in refused", "The sign-in form is too large.")
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
        next_page = safe_next(_field(form, "next"))
        key_id = _field(form, "access_key_id").strip()
        secret = _field(form, "secret_access_key").strip()
        wait = self.guard.retry_after(client)
        if wait:
            page = sign_in_page(
                next_page,
                message=f"Too many failed sign-ins from this address: try again in {wait} s.",
                access_key_id=key_id,
            )
            return _html(page, 429, headers={"Retry-After": str(wait)})
        key = check_pair(self.keys, key_id, secret)
        if key is None:
            self.guard.failed(client)
            log.warning("console sign-in failed from %s (access key id %r)", client, key_id[:32])
            await self.guard.pause()
            page = sign_in_page(
                next_page,
                message="That access key id and secret access key are not a key pair of this "
                "server. Check both and try again.",
                access_key_id=key_id,
            )
            return _html(page, 401)
        _, cookie = self.sessions.issue(key)
        log.info("console sign-in of user %s from %s", key.user, client)
        response = RedirectResponse(next_page, 303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=self.sessions.lifetime_seconds,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def _sign_out(self, request: Request, session: Session) -> Response:
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            # A plain form button (no script) sends the token as a field instead.
            try:
                raw = await read_body(request, MAX_FORM_BYTES)
            except DockyardError:
                raw = b""
            token = _field(parse_qs(raw.decode("utf-8", "replace")), "csrf_token") or None
        refused = self._refuse_forgery(request, session, token)
        if refused is not None:
            return refused
        await run_in_threadpool(self.sessions.end, session)  # it writes a file
        response = RedirectResponse(SIGN_IN, 303)
        response.delete_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _refuse_forgery(
        self, request: Request, session: Session, token: str | None = None
    ) -> Response | None:
        """403 for a state-changing request that did not come from the console's own page."""
        if token is None:
            token = request.headers.get(CSRF_HEADER)
        if not self.sessions.csrf_matches(session, token):
            return JSONResponse(
                {
                    "__type": "InvalidCsrfToken",
                    "message": "The request lacks this session's CSRF token (header "
                    'X-CSRF-Token, from <meta name="csrf-token"> of the console\'s page): '
                    "reload the page and try again.",
                },
                403,
            )
        if not same_origin(request):
            return JSONResponse(
                {
                    "__type": "CrossOriginRequest",
                    "message": "The request's Origin is not this server: the console's API "
                    "answers only its own pages.",
                },
                403,
            )
        return None

    # -- pages and files ---------------------------------------------------------------------

    def _shell(self, session: Session) -> Response:
        try:
            page = self.files.shell(
                {"csrf-token": self.sessions.csrf_token(session), "dockyard-user": session.user}
            )
        except ShellError as exc:
            log.error("%s", exc)
            return _page(500, "The console is not installed", f"{exc}; reinstall dockyard.")
        return Response(page, media_type="text/html; charset=utf-8")

    def _static(self, request: Request, path: str) -> Response:
        asset = self.files.asset(path)
        if asset is None:
            return _page(404, "Not found", f"The console has no file {path}.")
        headers = {"ETag": asset.etag, "Cache-Control": "private, no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(b"", 304, headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)


def same_origin(request: Request) -> bool:
    """True when the request's Origin (else its Referer's origin) is this server's, as the
    browser addressed it (scheme and Host)."""
    host = request.headers.get("host")
    if not host:
        return False
    expected = f"{request.url.scheme}://{host}".lower()
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.lower() == expected


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(page, status, headers=headers)


def _page(status: int, title: str, message: str) -> Response:
    return _html(message_page(title, message), status)


def _not_signed_in() -> Response:
    return JSONResponse(
        {
            "__type": "NotSignedIn",
            "message": f"Sign in to the console first ({SIGN_IN}); the session may have "
            "expired, been signed out, or its access key removed from the server.",
        },
        401,
    )


def _not_allowed(allowed: str, *, api: bool = False) -> Response:
    headers = {"Allow": allowed}
    if api:
        return JSONResponse(
            {
                "__type": "UnknownOperationException",
                "message": "The console's API takes POST /console/api/<Target>.<Operation> "
                "with a JSON body",
            },
            405,
            headers=headers,
        )
    return _html(message_page("Not allowed", f"This page takes {allowed} only."), 405, headers)
