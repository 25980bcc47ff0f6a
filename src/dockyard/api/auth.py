"""SigV4 on every request of every API on the port, as one ASGI middleware in front of the
whole app, answering the 403s AWS answers.

What the request head can tell (a signature at all, a known key, a well-formed scope, the
clock) is checked before the app sees the request. The signature covers the body's SHA-256, so
the body is hashed as the app reads it and the signature is checked when its last byte arrives:
the operation, which runs only once its body is read, never runs for a forged request, and the
body is read once.

A later API names its signing service (the credential scope's service) in `ApiNames`; one that
takes UNSIGNED-PAYLOAD or streaming chunk signatures (S3) adds that mode in sigv4.py.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from hashlib import sha256
from xml.sax.saxutils import escape as xml_escape

import botocore.session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.keys import KeyRing
from dockyard.api.sigv4 import (
    Authenticator,
    AuthError,
    Check,
    IncompleteSignature,
    InvalidSignature,
    RequestHead,
    parse_claim,
)

log = logging.getLogger(__name__)

# GET /healthz finds the background server; it says nothing a stranger could use.
UNAUTHENTICATED = {("GET", "/healthz"), ("HEAD", "/healthz")}


# -- which API a request is for -------------------------------------------------------------


@dataclass(frozen=True)
class ApiNames:
    """The signing service each API's requests must be scoped to, from botocore's models:
    JSON 1.1 APIs by their X-Amz-Target prefix, the runtime by its path."""

    by_target_prefix: dict[str, str]
    runtime: str

    def signing_service(self, head: RequestHead) -> str | None:
        """None: no API dockyard serves; the app answers that, once the signature holds."""
        if head.path.startswith("/endpoints/"):
            return self.runtime
        target = head.header("x-amz-target")
        if target is None:
            return None
        return self.by_target_prefix.get(target.partition(".")[0])


@functools.cache
def api_names() -> ApiNames:
    """Loaded once per process (about 0.15 s: botocore parses the SageMaker model)."""
    session = botocore.session.get_session()
    by_prefix = {}
    for name in ("sagemaker", "logs"):
        model = session.get_service_model(name)
        by_prefix[model.metadata["targetPrefix"]] = model.signing_name
    return ApiNames(by_prefix, session.get_service_model("sagemaker-runtime").signing_name)


# -- on the wire ----------------------------------------------------------------------------


# Services whose clients read errors as the query protocol's XML, by signing name.
QUERY_PROTOCOL_SERVICES = {"sts"}


def refusal(
    error: AuthError, service: str | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One JSON shape both JSON protocols read (JSON 1.1 takes `__type`, rest-json the
    x-amzn-ErrorType header; both take `message`), or the query protocol's XML for a request
    signed for a service that speaks it."""
    request_id = str(uuid.uuid4())
    if service in QUERY_PROTOCOL_SERVICES:
        payload = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{error.code}</Code>"
            f"<Message>{xml_escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = b"text/xml"
    else:
        payload = json.dumps({"__type": error.code, "message": error.message}).encode()
        content_type = b"application/x-amz-json-1.1"
    headers = [
        (b"content-type", content_type),
        (b"x-amzn-errortype", error.code.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    return error.http_status, headers, payload


class _BodyState(Enum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class _Body:
    """Hashes the body as the app reads it; at its last byte, checks the signature (or, when
    the client sent x-amz-content-sha256 and the signature was checked with it, the hash)."""

    def __init__(self, check: Check, receive: Receive) -> None:
        self.check = check
        self._receive = receive
        self._hash = sha256()
        self.state = _BodyState.PENDING
        self.error: AuthError | None = None

    def verify_now(self, payload_hash: str) -> None:
        try:
            self.check.verify(payload_hash)
        except AuthError as error:
            self._fail(error)
            raise

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and self.state is _BodyState.PENDING:
            self._hash.update(message.get("body", b""))
            if not message.get("more_body", False):
                self.end()
        return message

    async def drain(self) -> None:
        """The app answered before reading its whole body: read the rest and check now. Never
        leaves the body pending."""
        while self.state is _BodyState.PENDING:
            message = await self._receive()
            if message["type"] != "http.request":
                self._fail(IncompleteSignature("the client went away before its body ended"))
                return
            self._hash.update(message.get("body", b""))
            if not message.get("more_body", False):
                with contextlib.suppress(AuthError):
                    self.end()

    def end(self) -> None:
        """The whole body is in: the signature (or the claimed hash) must hold."""
        digest = self._hash.hexdigest()
        claimed = self.check.content_sha256
        if claimed is None:
            self.verify_now(digest)
        elif not hmac.compare_digest(claimed, digest):
            error = InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
            self._fail(error)
            raise error
        self.state = _BodyState.VERIFIED

    def _fail(self, error: AuthError) -> None:
        self.state, self.error = _BodyState.FAILED, error


class SigV4Middleware:
    """Every request but GET /healthz must be signed by a key of `keys`."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        *,
        names: ApiNames | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.names = names or api_names()
        self.authenticator = Authenticator(keys, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        if (scope["method"], scope["path"]) in UNAUTHENTICATED:
            await self.app(scope, receive, send)
            return
        head = RequestHead.from_scope(scope)
        try:
            check = self.authenticator.check_head(head, self.names.signing_service(head))
            body = _Body(check, receive)
            if check.content_sha256 is not None:
                body.verify_now(check.content_sha256)  # the body is held to that hash as read
            if not head.has_body():
                body.end()  # nothing to wait for: an API that reads no body is covered too
        except AuthError as error:
            await _refuse(send, head, error)
            return
        scope["dockyard.user"] = check.user  # who asked, for the operations that will care
        # The API the request is signed for: the app routes by it (api/app.py's SERVICES).
        scope["dockyard.service"] = check.claim.service
        await self._serve(scope, body, send)

    async def _serve(self, scope: Scope, body: _Body, send: Send) -> None:
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                if body.state is _BodyState.PENDING and message["status"] < 400:
                    log.error("%s answered before reading its body; checked now", scope["path"])
                    await body.drain()
                if body.state is _BodyState.FAILED and body.error is not None:
                    replaced = True
                    await _refuse(send, body.check.head, body.error, body.check.user)
                    return
                log.debug(
                    "accepted %s %s from user %s", scope["method"], scope["path"], body.check.user
                )
            elif replaced:
                return
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except AuthError:
            if not replaced and body.error is not None:
                await _refuse(send, body.check.head, body.error, body.check.user)


async def _refuse(send: Send, head: RequestHead, error: AuthError, user: str = "-") -> None:
    log.debug("refused %s %s (user %s): %s", head.method, head.path, user, error.code)
    try:
        service: str | None = parse_claim(head).service
    except AuthError:
        service = None  # not even a credential scope: the JSON shape
    status, headers, payload = refusal(error, service)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
