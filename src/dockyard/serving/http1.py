"""An incremental HTTP/1.1 request parser (RFC 9112: Content-Length and chunked bodies) and
response heads. Pure: bytes in, requests or a ProtocolError out; no sockets, no clock."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

MAX_HEADER_BYTES = 64 * 1024  # the request line and header fields, and again the trailer fields
MAX_HEADERS = 100
MAX_CHUNK_LINE = 1024  # a chunk size with its extensions
_MAX_LENGTH_DIGITS = 20  # Content-Length: more digits than this is nonsense, not a big body

_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
_NAME = re.compile(_TOKEN)
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][-+.0-9A-Za-z]*://[^/?#]*")
_DIGITS = re.compile(r"[0-9]+")
# RFC 9112 §7.1: chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_BTOKEN = _TOKEN.encode()
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*"
    % (_BTOKEN, _BTOKEN, _QUOTED)
)
# In a field section only CRLF may end a line, and no other control character but HTAB may appear.
_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BAD_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")


class ProtocolError(Exception):
    """The request cannot be read; answer with ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.requests: list[Request] = []  # read whole, in the same bytes, before the bad one


@dataclass
class Request:
    """One complete request; header names are lower-case, repeated headers joined with ``, ``."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    path: str = ""  # the target's path: the route

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS = range(5)


class RequestParser:
    """Feed bytes as they arrive; get back the requests they complete, in order.

    Strict where RFC 9112 lets a server choose, since a lenient reading is what request smuggling
    exploits: a lone LF or CR, a control character, obs-fold, Content-Length together with
    Transfer-Encoding, or differing Content-Lengths are refused, never guessed at.
    """

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
        self.heads = 0  # request heads read so far: tells a new partial request from an old one
        self.request: Request | None = None
        self.remaining = 0
        self.chunks: list[bytes] = []
        self.received = 0
        # How far a head arriving in pieces is known to hold no end and no forbidden byte, so
        # that each piece is searched once, not the whole head again.
        self.scanned = 0
        self.checked = 0

    @property
    def idle(self) -> bool:
        """True between requests with nothing buffered."""
        return self.state == _HEAD and not self.buffer

    @property
    def in_head(self) -> bool:
        """True while part of a request head has arrived, but not all of it."""
        return self.state == _HEAD and bool(self.buffer)

    @property
    def in_body(self) -> bool:
        """True from the end of a head with a body until the end of the body (or its trailers)."""
        return self.state != _HEAD

    def discard(self) -> None:
        """Let go of what is buffered at once (the connection is gone): a connection and its
        parser refer to each other, so only the cyclic garbage collector, which may not run for a
        long time in a quiet worker, would free a half-sent body otherwise."""
        self.buffer = bytearray()
        self.chunks = []
        self.request = None

    def feed(self, data: bytes) -> list[Request]:
        """The requests ``data`` completes; ProtocolError (carrying the ones before it) when it
        makes the stream unreadable: nothing can be read after that."""
        self.buffer += data
        done: list[Request] = []
        try:
            while (request := self._step()) is not None:
                done.append(request)
        except ProtocolError as exc:
            exc.requests = done
            raise
        return done

    def _step(self) -> Request | None:
        """The next complete request in the buffer, or None when more bytes are needed."""
        while True:
            if self.state == _HEAD:
                head = self._section("headers")
                if head is None:
                    return None
                request = self._head(head)
                if request is not None:
                    return request
            elif self.state == _BODY:
                if len(self.buffer) < self.remaining:
                    return None
                body = bytes(self.buffer[: self.remaining])
                del self.buffer[: self.remaining]
                return self._finish(body)
            elif self.state == _CHUNK_SIZE:
                if not self._chunk_size():
                    return None
            elif self.state == _CHUNK_DATA:
                if not self._chunk_data():
                    return None
            else:
                if not self._trailers():
                    return None
                body = b"".join(self.chunks)
                self.chunks = []
                return self._finish(body)

    def _section(self, what: str) -> bytes | None:
        """The field section at the start of the buffer, up to its empty line (which is dropped);
        None until it is all there."""
        buf = self.buffer
        if not buf:
            return None
        end = buf.find(b"\r\n\r\n", self.scanned)
        if end < 0:
            # Look at the new bytes now: lone-LF lines are refused at once, not left waiting for
            # a CRLF CRLF that never comes. A CR at the very end may yet be followed by its LF.
            bad = _BAD_BYTE.search(buf, self.checked)
            if bad is not None and not (bad.end() == len(buf) and buf[-1] == 13):
                raise ProtocolError(400, _bad_byte(bad.group(), what))
            if len(buf) > self.max_header:
                raise ProtocolError(431, f"the request {what} are over {self.max_header} bytes")
            self.scanned = max(0, len(buf) - 3)
            self.checked = len(buf) if bad is None else bad.start()
            return None
        if end > self.max_header:
            raise ProtocolError(431, f"the request {what} are over {self.max_header} bytes")
        section = bytes(buf[:end])
        del buf[: end + 4]
        self.scanned = self.checked = 0
        # The quick check for a whole section (the common case): no control byte but HTAB, CR
        # and LF, and every CR and LF paired as CRLF.
        crlf = section.count(b"\r\n")
        if _CTL.search(section) or section.count(b"\r") != crlf or section.count(b"\n") != crlf:
            bad = _BAD_BYTE.search(section)
            assert bad is not None
            raise ProtocolError(400, _bad_byte(bad.group(), what))
        return section

    def _fields(self, lines: list[str], what: str) -> dict[str, str]:
        if len(lines) > MAX_HEADERS:
            raise ProtocolError(431, f"more than {MAX_HEADERS} request {what}")
        fields: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or _NAME.fullmatch(name) is None:
                if line[:1] in (" ", "\t"):
                    raise ProtocolError(400, f"obsolete line folding in the request {what}")
                raise ProtocolError(400, f"malformed request {what[:-1]} line {line[:40]!r}")
            value = value.strip(" \t")
            key = name.lower()
            if key in fields:
                if key in ("transfer-encoding", "host"):
                    raise ProtocolError(400, f"repeated {name} header")
                fields[key] = f"{fields[key]}, {value}"
            else:
                fields[key] = value
        return fields

    def _head(self, head: bytes) -> Request | None:
        lines = head.decode("latin-1").split("\r\n")
        line = _REQUEST_LINE.fullmatch(lines[0])
        if line is None:
            raise ProtocolError(400, f"malformed request line {lines[0][:80]!r}")
        method, target, version = line.groups()
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise ProtocolError(505, f"{version} is not supported; use HTTP/1.1")
        headers = self._fields(lines[1:], "headers")
        path = target.partition("?")[0] if target[0] == "/" else _path(target)
        request = Request(method, target, version, headers, path=path)
        self.heads += 1
        if version == "HTTP/1.1" and "host" not in headers:
            raise ProtocolError(400, "an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)")
        self.request = request
        if "transfer-encoding" in headers:
            # RFC 9112 §6.1 and §6.3: both framings at once, or chunked in HTTP/1.0, are faulty.
            if "content-length" in headers:
                raise ProtocolError(400, "both Content-Length and Transfer-Encoding are set")
            if version == "HTTP/1.0":
                raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            if headers["transfer-encoding"].lower() != "chunked":
                raise ProtocolError(501, "only Transfer-Encoding: chunked is supported")
            self.state = _CHUNK_SIZE
        elif "content-length" in headers:
            length = self._content_length(headers)
            if length == 0:
                return self._finish(b"")
            self.remaining = length
            self.state = _BODY
        else:
            return self._finish(b"")
        if self.on_continue and headers.get("expect", "").lower() == "100-continue":
            self.on_continue()
        return None

    def _content_length(self, headers: dict[str, str]) -> int:
        raw = headers["content-length"]
        if "," in raw:  # repeated or listed: allowed when all the same (RFC 9110 §8.6)
            values = {value.strip(" \t") for value in raw.split(",")}
            if len(values) != 1:
                raise ProtocolError(400, "Content-Length has differing values")
            raw = headers["content-length"] = values.pop()
        if _DIGITS.fullmatch(raw) is None:  # ASCII digits only: int() would also take "²" or "_"
            raise ProtocolError(400, f"Content-Length {raw[:40]!r} is not a number")
        if len(raw) > _MAX_LENGTH_DIGITS:
            raise ProtocolError(400, f"Content-Length has more than {_MAX_LENGTH_DIGITS} digits")
        length = int(raw)
        if length > self.max_body:
            raise ProtocolError(413, self._too_large())
        return length

    def _chunk_size(self) -> bool:
        buf = self.buffer
        end = buf.find(b"\r\n")
        if end < 0:
            if buf.find(b"\n") >= 0 or buf.find(b"\r", 0, len(buf) - 1) >= 0:
                raise ProtocolError(400, "a chunk size line does not end with CRLF")
            if len(buf) > MAX_CHUNK_LINE:
                raise ProtocolError(400, f"a chunk size line is longer than {MAX_CHUNK_LINE} bytes")
            return False
        if end > MAX_CHUNK_LINE:
            raise ProtocolError(400, f"a chunk size line is longer than {MAX_CHUNK_LINE} bytes")
        match = _CHUNK_LINE.fullmatch(buf, 0, end)
        if match is None:
            raise ProtocolError(400, f"malformed chunk size line {bytes(buf[: min(end, 40)])!r}")
        size = int(match.group(1), 16)
        del buf[: end + 2]
        if size == 0:
            self.state = _TRAILERS
            return True
        self.received += size
        if self.received > self.max_body:
            raise ProtocolError(413, self._too_large())
        self.remaining = size
        self.state = _CHUNK_DATA
        return True

    def _chunk_data(self) -> bool:
        buf, size = self.buffer, self.remaining
        ending = buf[size : size + 2]
        if ending != b"\r\n"[: len(ending)]:
            raise ProtocolError(400, "a chunk is longer than its size or does not end with CRLF")
        if len(ending) < 2:
            return False
        self.chunks.append(bytes(buf[:size]))
        del buf[: size + 2]
        self.state = _CHUNK_SIZE
        return True

    def _trailers(self) -> bool:
        """Read and drop the trailer fields (nothing here uses them), checked like headers."""
        if self.buffer[:2] == b"\r\n":
            del self.buffer[:2]
            return True
        section = self._section("trailers")
        if section is None:
            return False
        self._fields(section.decode("latin-1").split("\r\n"), "trailers")
        return True

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_body} bytes "
            "(raise SAGEMAKER_MAX_PAYLOAD_IN_MB to allow more)"
        )

    def _finish(self, body: bytes) -> Request:
        request = self.request
        assert request is not None
        request.body = body
        self.request = None
        self.state = _HEAD
        self.received = 0
        return request


def _path(target: str) -> str:
    """The path of an absolute-form (``http://h/p?q``) or asterisk-form (``*``) target."""
    if target == "*":
        return target
    authority = _ABSOLUTE_FORM.match(target)
    if authority is None:
        raise ProtocolError(400, f"malformed request target {target[:80]!r}")
    path = target[authority.end() :].partition("?")[0]
    return path if path.startswith("/") else "/" + path


def _bad_byte(byte: bytes, what: str) -> str:
    if byte == b"\n":
        return f"a line of the request {what} ends with a bare LF; HTTP/1.1 lines end with CRLF"
    if byte == b"\r":
        return f"a bare CR in the request {what}"
    return f"a control character {byte!r} in the request {what}"


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
