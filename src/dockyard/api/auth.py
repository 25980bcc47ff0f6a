"""SigV4 on every request of every API on the port, as one ASGI middleware in front of the
whole app, answering the 403s AWS answers.

What the request head can tell (a signature at all, a known key, a well-formed scope, the
clock) is checked before the app sees the request. The signature covers the body's SHA-256, so
the body is hashed as the app reads it and the signature is checked when its last byte arrives:
the operation, which runs only once its body is read, never runs for a forged request, and the
body is read once.

APIs reached by the service their requests are signed for (the credential scope's service: S3,
and later STS) are routed by it, through a small table of `SignedApi` entries, each with its own
error shape and the payload forms it takes (S3's UNSIGNED-PAYLOAD and aws-chunked bodies, see
aws_chunked.py). The others are told apart by X-Amz-Target or path (`ApiNames`).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from hashlib import sha256
from urllib.parse import unquote

import botocore.session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.aws_chunked import (
    STREAMING_MODES,
    STREAMING_SIGNED,
    UNSIGNED_PAYLOAD,
    AwsChunkedDecoder,
    ChunkSigner,
)
from dockyard.api.console import is_console_path
from dockyard.api.json_apis import SERVICE_MODELS
from dockyard.api.keys import KeyRing
from dockyard.api.sigv2 import check_presigned_v2, is_presigned_v2
from dockyard.api.sigv4 import (
    Authenticator,
    AuthError,
    Check,
    IncompleteSignature,
    PayloadHashMismatch,
    RequestHead,
    parse_claim,
)

log = logging.getLogger(__name__)

_HASH_BATCH_BYTES = 1024 * 1024

# GET /healthz finds the background server; it says nothing a stranger could use. GET /metrics
# is Prometheus' scrape, which cannot sign: it lets in loopback clients or a bearer token
# (api/prometheus.py). (The web console under /console authenticates by its session cookie
# instead: see __call__.)
UNAUTHENTICATED = {("GET", "/healthz"), ("HEAD", "/healthz"), ("GET", "/metrics")}


# -- which API a request is for -------------------------------------------------------------


@dataclass(frozen=True)
class ApiNames:
    """The signing service each API's requests must be scoped to, from botocore's models:
    JSON APIs by their X-Amz-Target prefix, the runtime by its path, smithy-rpc-v2-cbor APIs
    by theirs (`/service/<target prefix>/operation/<Op>`)."""

    by_target_prefix: dict[str, str]
    runtime: str

    def signing_service(self, head: RequestHead) -> str | None:
        """None: no API dockyard serves; the app answers that, once the signature holds."""
        if head.path.startswith("/endpoints/"):
            return self.runtime
        if head.path.startswith("/service/"):
            return self.by_target_prefix.get(head.path.split("/")[2])
        target = head.header("x-amz-target")
        if target is None:
            return None
        return self.by_target_prefix.get(target.partition(".")[0])


@functools.cache
def api_names() -> ApiNames:
    """Loaded once per process (about 0.15 s: botocore parses the SageMaker model)."""
    session = botocore.session.get_session()
    by_prefix = {}
    # CloudWatch is routed by its signing service (api/app.py); named here too so that an
    # unsigned request to it is refused in its own protocol's shape.
    for name in (*SERVICE_MODELS.values(), "cloudwatch"):
        model = session.get_service_model(name)
        by_prefix[model.metadata["targetPrefix"]] = model.signing_name
    return ApiNames(by_prefix, session.get_service_model("sagemaker-runtime").signing_name)


# -- on the wire ----------------------------------------------------------------------------

Refusal = Callable[[AuthError], tuple[int, list[tuple[bytes, bytes]], bytes]]


def refusal(error: AuthError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One JSON shape both JSON protocols read (JSON 1.1 takes `__type`, rest-json the
    x-amzn-ErrorType header; both take `message`). APIs of other protocols bring their own
    (SignedApi.refusal)."""
    payload = json.dumps({"__type": error.code, "message": error.message}).encode()
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"x-amzn-errortype", error.code.encode()),
        (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    return error.http_status, headers, payload


@dataclass(frozen=True)
class SignedApi:
    """An API routed by the service its requests are signed for: its app, the shape of its
    refusals, and the x-amz-content-sha256 forms it takes besides a hex hash."""

    app: ASGIApp
    refusal: Refusal = refusal
    payload_modes: frozenset[str] = frozenset()
    # S3's presigned URLs sign UNSIGNED-PAYLOAD (the body is not known when the URL is made).
    presigned_payload_unsigned: bool = False
    # An API of several protocols (CloudWatch: CBOR, JSON, query) refuses in the form the
    # request's head says it speaks; this picks that refusal, in place of `refusal`.
    refusal_by_head: Callable[[RequestHead], Refusal] | None = None

    def refusal_for(self, head: RequestHead) -> Refusal:
        return self.refusal if self.refusal_by_head is None else self.refusal_by_head(head)


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
        # Pieces not hashed yet: hashed a MiB at a time in a worker thread (the event loop
        # stays free for the other requests; hashlib lets other threads run meanwhile).
        self._unhashed: list[bytes] = []
        self._unhashed_bytes = 0
        self.state = _BodyState.PENDING
        self.error: AuthError | None = None

    async def _take(self, data: bytes) -> None:
        if not data:
            return
        self._unhashed.append(data)
        self._unhashed_bytes += len(data)
        if self._unhashed_bytes >= _HASH_BATCH_BYTES:
            pieces, self._unhashed, self._unhashed_bytes = self._unhashed, [], 0
            await run_in_threadpool(self._hash_all, pieces)

    def _hash_all(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self._hash.update(piece)

    def _digest(self) -> str:
        self._hash_all(self._unhashed)
        self._unhashed, self._unhashed_bytes = [], 0
        return self._hash.hexdigest()

    def verify_now(self, payload_hash: str) -> None:
        try:
            self.check.verify(payload_hash)
        except AuthError as error:
            self._fail(error)
            raise

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and self.state is _BodyState.PENDING:
            await self._take(message.get("body", b""))
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
            await self._take(message.get("body", b""))
            if not message.get("more_body", False):
                with contextlib.suppress(AuthError):
                    self.end()

    def end(self) -> None:
        """The whole body is in: the signature (or the claimed hash) must hold."""
        digest = self._digest()
        claimed = self.check.content_sha256
        if claimed is None:
            self.verify_now(digest)
        elif not hmac.compare_digest(claimed, digest):
            error = PayloadHashMismatch(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
            self._fail(error)
            raise error
        self.state = _BodyState.VERIFIED

    def _fail(self, error: AuthError) -> None:
        self.state, self.error = _BodyState.FAILED, error


class _ChunkedBody(_Body):
    """An aws-chunked body: the app receives the decoded payload; the body is verified when
    its final chunk (and every chunk before it) checks out. Trailers land in `trailers`."""

    def __init__(self, check: Check, receive: Receive, decoder: AwsChunkedDecoder) -> None:
        super().__init__(check, receive)
        self.decoder = decoder

    async def receive(self) -> Message:
        while True:
            message = await self._receive()
            if message["type"] != "http.request" or self.state is not _BodyState.PENDING:
                return message
            more = message.get("more_body", False)
            data = self._feed(message.get("body", b""), more)
            if data or not more:
                return {"type": "http.request", "body": data, "more_body": more}

    def _feed(self, raw: bytes, more: bool) -> bytes:
        try:
            data = self.decoder.feed(raw)
            if not more:
                self.decoder.finish()
                self.state = _BodyState.VERIFIED
        except AuthError as error:
            self._fail(error)
            raise
        return data

    async def drain(self) -> None:
        while self.state is _BodyState.PENDING:
            message = await self._receive()
            if message["type"] != "http.request":
                self._fail(IncompleteSignature("the client went away before its body ended"))
                return
            with contextlib.suppress(AuthError):
                self._feed(message.get("body", b""), message.get("more_body", False))

    def end(self) -> None:
        self._feed(b"", False)


class SigV4Middleware:
    """Every request but GET /healthz and GET /metrics must be signed by a key of `keys`."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        *,
        names: ApiNames | None = None,
        clock: Callable[[], float] = time.time,
        by_service: Mapping[str, SignedApi] | None = None,
        console: ASGIApp | None = None,
    ) -> None:
        """`by_service`: the APIs routed by their signing service (e.g. "s3"); `console`: the
        web console's app, which takes every /console path; every other request goes to
        `app`."""
        self.app = app
        self.console = console
        self.names = names or api_names()
        self.authenticator = Authenticator(keys, clock)
        self.clock = clock
        self.by_service = dict(by_service or {})

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
        if self.console is not None and is_console_path(scope["path"]):
            # Deliberately not SigV4: a browser cannot sign. The console checks its own session
            # cookie and CSRF token on every request (api/console.py), and it answers only
            # /console paths itself: nothing else of the app is reachable through it but the
            # JSON operations, which it runs through the same function as POST / does.
            await self.console(scope, receive, send)
            return
        head = RequestHead.from_scope(scope)
        api: SignedApi | None = None
        try:
            if is_presigned_v2(head) and "s3" in self.by_service:
                # S3's legacy presigned URLs (boto3's and the aws CLI's default for S3).
                api = self.by_service["s3"]
                check = check_presigned_v2(head, self.authenticator.keys, self.clock())
                body = _verified(check, receive)
            else:
                claim = parse_claim(head)
                api = self.by_service.get(claim.service)
                if api is None:
                    check = self.authenticator.check_claim(
                        head, claim, self.names.signing_service(head)
                    )
                else:
                    check = self.authenticator.check_claim(
                        head, claim, claim.service, api.payload_modes
                    )
                body = _body(check, receive, api)
            if body.state is _BodyState.PENDING and not head.has_body():
                body.end()  # nothing to wait for: an API that reads no body is covered too
        except AuthError as error:
            await _refuse(send, head, error, refuse=self._refusal_for(head, api))
            return
        scope["dockyard.user"] = check.user  # who asked, for the operations that will care
        if isinstance(body, _ChunkedBody):
            scope["dockyard.trailers"] = body.decoder.trailers  # filled as the body ends
        app = api.app if api is not None else self.app
        await self._serve(app, scope, body, send, api.refusal_for(head) if api else refusal)

    def _refusal_for(self, head: RequestHead, api: SignedApi | None) -> Refusal:
        """The refusal's shape: the routed API's, also when its claim was refused before it
        was read whole (the credential scope still names the service); else JSON."""
        if api is not None:
            return api.refusal_for(head)
        credential = head.header("authorization") or ""
        if "X-Amz-Credential=" in head.query:
            credential = unquote(head.query.split("X-Amz-Credential=", 1)[1].split("&", 1)[0])
        for service, routed in self.by_service.items():
            if f"/{service}/aws4_request" in credential:
                return routed.refusal_for(head)
        named = self.names.signing_service(head)
        if named in self.by_service:
            return self.by_service[named].refusal_for(head)
        if not credential and "s3" in self.by_service and _s3_shaped(head, self.names):
            return self.by_service["s3"].refusal  # e.g. `aws s3 ls --no-sign-request`
        return refusal

    async def _serve(
        self, app: ASGIApp, scope: Scope, body: _Body, send: Send, refuse: Refusal
    ) -> None:
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                if body.state is _BodyState.PENDING and message["status"] < 400:
                    log.error("%s answered before reading its body; checked now", scope["path"])
                    await body.drain()
                if body.state is _BodyState.FAILED and body.error is not None:
                    replaced = True
                    await _refuse(send, body.check.head, body.error, body.check.user, refuse)
                    return
                log.debug(
                    "accepted %s %s from user %s", scope["method"], scope["path"], body.check.user
                )
            elif replaced:
                return
            await send(message)

        try:
            await app(scope, body.receive, guarded_send)
        except AuthError:
            if not replaced and body.error is not None:
                await _refuse(send, body.check.head, body.error, body.check.user, refuse)


def _s3_shaped(head: RequestHead, names: ApiNames) -> bool:
    """An unsigned request only S3 could be meant for: no other API takes a path or method
    besides POST / (the JSON APIs with X-Amz-Target, STS's form) and the runtime's paths, and
    none but the JSON APIs names an X-Amz-Target (whatever its path, the caller meant them)."""
    if names.signing_service(head) is not None or head.header("x-amz-target") is not None:
        return False
    return not (head.method == "POST" and head.path == "/")


def _verified(check: Check, receive: Receive) -> _Body:
    """The body of a request whose signature covers no body (checked already)."""
    body = _Body(check, receive)
    body.state = _BodyState.VERIFIED
    return body


def _body(check: Check, receive: Receive, api: SignedApi | None) -> _Body:
    """The body as the request's payload form says it is signed; what the head alone can
    verify is verified now."""
    mode = check.content_sha256
    if mode in STREAMING_MODES:
        check.verify(mode)  # the seed signature; the chunks chain on it
        signer = ChunkSigner(check) if mode == STREAMING_SIGNED else None
        decoded = check.head.header("x-amz-decoded-content-length")
        length = int(decoded) if decoded is not None and decoded.isdigit() else None
        return _ChunkedBody(check, receive, AwsChunkedDecoder(signer, length))
    body = _Body(check, receive)
    unsigned = mode == UNSIGNED_PAYLOAD or (
        mode is None
        and check.claim.presigned
        and api is not None
        and api.presigned_payload_unsigned
    )
    if unsigned:
        body.verify_now(UNSIGNED_PAYLOAD)
        body.state = _BodyState.VERIFIED  # nothing about the body was signed: nothing to hash
    elif mode is not None:
        body.verify_now(mode)  # the body is held to that hash as read
    return body


async def _refuse(
    send: Send, head: RequestHead, error: AuthError, user: str = "-", refuse: Refusal = refusal
) -> None:
    log.debug("refused %s %s (user %s): %s", head.method, head.path, user, error.code)
    status, headers, payload = refuse(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
