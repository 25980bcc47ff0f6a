"""An incremental HTTP/1.1 request parser (Content-Length and chunked bodies), response heads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
_MAX_CHUNK_LINE = 1024
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class ProtocolError(Exception):
    """The request cannot be read; answer with ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    """One complete request; header names are lower-case, repeated headers joined with ``, ``."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS = range(5)


class RequestParser:
    """Feed bytes as they arrive; get back the requests they complete, in order."""

    def __init__(
        self,
        max_body: int,
        on_continue: Callable[[], None] | None = None,
        max_header: int = MAX_HEADER_BYTES,
    ) -> None:
        self.max_body = max_body
        self.max_header = max_header
        self.on_continue = on_continue
        self.buffer = bytearray()
        self.state = _HEAD
        self.request: Request | None = None
        self.remaining = 0
        self.chunks: list[bytes] = []
        self.received = 0

    @property
    def idle(self) -> bool:
        """True between requests with nothing buffered."""
        return self.state == _HEAD and not self.buffer

    def feed(self, data: bytes) -> list[Request]:
        self.buffer += data
        done: list[Request] = []
        while True:
            request = self._step()
            if request is None:
                return done
            done.append(request)

    def _step(self) -> Request | None:
        buf = self.buffer
        while True:
            if self.state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > self.max_header:
                        raise ProtocolError(431, "the request headers are too large")
                    return None
                if end > self.max_header:
                    raise ProtocolError(431, "the request headers are too large")
                head = bytes(buf[:end])
                del buf[: end + 4]
                request = self._head(head)
                if request is not None:
                    return request
            elif self.state == _BODY:
                if len(buf) < self.remaining:
                    return None
                return self._finish(bytes(buf[: self.remaining]), self.remaining)
            elif self.state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > _MAX_CHUNK_LINE:
                        raise ProtocolError(400, "a chunk size line is too long")
                    return None
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolError(400, "a chunk size is not hexadecimal") from None
                if size < 0 or not size_text.isalnum():
                    raise ProtocolError(400, "a chunk size is not hexadecimal")
                if size == 0:
                    self.state = _TRAILERS
                else:
                    self.received += size
                    if self.received > self.max_body:
                        raise ProtocolError(413, self._too_large())
                    self.remaining = size
                    self.state = _CHUNK_DATA
            elif self.state == _CHUNK_DATA:
                if len(buf) < self.remaining + 2:
                    return None
                if buf[self.remaining : self.remaining + 2] != b"\r\n":
                    raise ProtocolError(400, "a chunk does not end with CRLF")
                self.chunks.append(bytes(buf[: self.remaining]))
                del buf[: self.remaining + 2]
                self.state = _CHUNK_SIZE
            else:  # _TRAILERS: read and drop trailer lines up to the empty line
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > self.max_header:
                        raise ProtocolError(431, "the request trailers are too large")
                    return None
                del buf[: end + 2]
                if end == 0:
                    body = b"".join(self.chunks)
                    self.chunks = []
                    return self._finish(body, 0)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_body} bytes "
            "(raise SAGEMAKER_MAX_PAYLOAD_IN_MB to allow more)"
        )

    def _finish(self, body: bytes, consumed: int) -> Request:
        if consumed:
            del self.buffer[:consumed]
        request = self.request
        assert request is not None
        request.body = body
        self.request = None
        self.state = _HEAD
        self.received = 0
        return request

    def _head(self, head: bytes) -> Request | None:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            raise ProtocolError(400, "the request head is not readable") from None
        lines = text.split("\r\n")
        if not lines[0] and len(lines) == 1:
            raise ProtocolError(400, "empty request line")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ProtocolError(400, "malformed request line")
        method, target, version = parts
        if not method or not set(method.encode()) <= _TOKEN:
            raise ProtocolError(400, "malformed request method")
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            if version.startswith("HTTP/"):
                raise ProtocolError(505, f"{version} is not supported; use HTTP/1.1")
            raise ProtocolError(400, "malformed request line")
        if not target or " " in target or not (target.startswith("/") or target == "*"):
            raise ProtocolError(400, "malformed request target")
        if len(lines) - 1 > MAX_HEADERS:
            raise ProtocolError(431, f"more than {MAX_HEADERS} request headers")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or not set(name.encode()) <= _TOKEN:
                raise ProtocolError(400, "malformed request header")
            key = name.lower()
            value = value.strip(" \t")
            if key in headers:
                if key in ("content-length", "transfer-encoding", "host"):
                    raise ProtocolError(400, f"repeated {name} header")
                headers[key] = f"{headers[key]}, {value}"
            else:
                headers[key] = value
        request = Request(method, target, version, headers)
        self.request = request
        chunked = "transfer-encoding" in headers
        if chunked:
            if "content-length" in headers:
                raise ProtocolError(400, "both Content-Length and Transfer-Encoding are set")
            if headers["transfer-encoding"].lower() != "chunked":
                raise ProtocolError(501, "only Transfer-Encoding: chunked is supported")
            self.state = _CHUNK_SIZE
        else:
            raw = headers.get("content-length", "0")
            if not raw.isdigit():
                raise ProtocolError(400, "Content-Length is not a number")
            length = int(raw)
            if length > self.max_body:
                raise ProtocolError(413, self._too_large())
            if length == 0:
                return self._finish(b"", 0)
            self.remaining = length
            self.state = _BODY
        if self.on_continue and headers.get("expect", "").lower() == "100-continue":
            self.on_continue()
        return None


_date_cache: list[object] = [0, ""]


def http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True)
    return str(_date_cache[1])


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _clean(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def response_head(
    status: int,
    content_type: str,
    length: int,
    headers: Iterable[tuple[str, str]] = (),
    keep_alive: bool = True,
) -> bytes:
    """The status line and headers of a response with a Content-Length body."""
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}\r\n"
        f"Server: dockyard\r\nDate: {http_date()}\r\n"
        f"Content-Type: {_clean(content_type)}\r\nContent-Length: {length}\r\n"
    ]
    lines.extend(f"{_clean(name)}: {_clean(value)}\r\n" for name, value in headers)
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1", "replace")
