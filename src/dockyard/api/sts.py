"""STS on the wire (the query protocol: a form-encoded Action, an XML answer): GetCallerIdentity,
which tells a client whose keys it signs with."""

from __future__ import annotations

import base64
import hashlib
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from starlette.types import Receive, Scope, Send

from dockyard.api.sigv4 import AuthError
from dockyard.settings import Settings

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
MAX_BODY = 64 * 1024  # GetCallerIdentity takes no parameters; anything larger is not STS


def user_id(user: str) -> str:
    """A stable IAM-style unique id for a user name (AIDA + 17 base32 characters)."""
    digest = hashlib.sha256(user.encode()).digest()
    return "AIDA" + base64.b32encode(digest).decode()[:17]


class StsApp:
    """Answers the STS requests the signature layer routed here (credential scope `sts`)."""

    def __init__(self, settings: Settings) -> None:
        self.account = settings.account_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        # The body is read whole even when unused: the signature covers it.
        body, size, more = b"", 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY:
                body += chunk
            more = message.get("more_body", False)
        if size > MAX_BODY:
            await _error(send, request_id, 413, "RequestEntityTooLarge", "Request is too large.")
            return
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        params.update(parse_qs(body.decode("utf-8", errors="replace")))
        action = params.get("Action", [""])[0]
        version = params.get("Version", [VERSION])[0]
        if action != "GetCallerIdentity":
            # ascii(): a client's control characters would make the XML unreadable.
            shown = f"{action[:64]!a}" if action else "(missing)"
            await _error(
                send, request_id, 400, "InvalidAction",
                f"Could not find operation {shown} for version {version[:32]!a}: dockyard's "
                "STS answers GetCallerIdentity only",
            )  # fmt: skip
            return
        user = str(scope.get("dockyard.user", "default"))
        result = (
            f"<Arn>arn:aws:iam::{self.account}:user/{escape(user)}</Arn>"
            f"<UserId>{user_id(user)}</UserId>"
            f"<Account>{self.account}</Account>"
        )
        document = (
            f'<GetCallerIdentityResponse xmlns="{NAMESPACE}">'
            f"<GetCallerIdentityResult>{result}</GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        await _send(send, request_id, 200, document)


def sts_refusal(error: AuthError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A signature refusal in the query protocol's XML, which STS clients read (not JSON)."""
    request_id = str(uuid.uuid4())
    payload = _error_document(request_id, error.code, error.message).encode()
    headers = [*_headers(request_id, payload), (b"x-amzn-errortype", error.code.encode())]
    return error.http_status, headers, payload


async def _error(send: Send, request_id: str, status: int, code: str, message: str) -> None:
    await _send(send, request_id, status, _error_document(request_id, code, message))


def _error_document(request_id: str, code: str, message: str) -> str:
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    )


async def _send(send: Send, request_id: str, status: int, document: str) -> None:
    payload = document.encode()
    start = {"type": "http.response.start", "status": status}
    await send({**start, "headers": _headers(request_id, payload)})
    await send({"type": "http.response.body", "body": payload})


def _headers(request_id: str, payload: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/xml"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
