"""S3's aws-chunked request bodies, decoded as they stream: every chunk's signature checked
(STREAMING-AWS4-HMAC-SHA256-PAYLOAD) or the trailing checksum headers kept
(STREAMING-UNSIGNED-PAYLOAD-TRAILER).

The wire form (AWS's "Signature Calculations for the Authorization Header: Transferring Payload
in Multiple Chunks"): `<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`, repeated, ending
with a chunk of size 0, then trailer lines `name:value\\r\\n` and an empty line. A chunk's
signature chains on the previous one (the first on the request's own signature), so chunks can
be neither reordered, dropped nor replaced.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

from dockyard.api.sigv4 import ALGORITHM, EMPTY_SHA256, Check, IncompleteSignature, InvalidSignature

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
# Every x-amz-content-sha256 value S3 takes besides a hex hash. The signed-trailer form
# (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER) is not among them yet: it is refused.
S3_PAYLOAD_MODES = frozenset({UNSIGNED_PAYLOAD, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER})
STREAMING_MODES = frozenset({STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER})

_MAX_LINE = 4096  # a chunk header or trailer line; real ones are under 100 bytes
_MAX_TRAILERS = 16
_MAX_SIZE_DIGITS = 16
_HEX_DIGITS = set("0123456789abcdefABCDEF")


class ChunkSigner:
    """Checks each chunk's signature against the chain that starts at the request's own."""

    def __init__(self, check: Check) -> None:
        self._key = check.signing_key()
        self._prefix = f"{ALGORITHM}-PAYLOAD\n{check.claim.timestamp}\n{check.scope}\n"
        self._previous = check.claim.signature

    def check(self, data_sha256: str, signature: str) -> None:
        string_to_sign = f"{self._prefix}{self._previous}\n{EMPTY_SHA256}\n{data_sha256}"
        expected = hmac.new(self._key, string_to_sign.encode(), sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            raise InvalidSignature(
                "The request signature we calculated does not match the signature you provided "
                "for a chunk of the aws-chunked body."
            )
        self._previous = signature


def malformed(why: str) -> IncompleteSignature:
    return IncompleteSignature(f"The aws-chunked request body is malformed: {why}")


class AwsChunkedDecoder:
    """Feed it the raw body as it arrives; it returns the payload bytes. `signer` None: the
    chunks carry no signatures (the unsigned trailer form)."""

    def __init__(self, signer: ChunkSigner | None, decoded_length: int | None = None) -> None:
        self._signer = signer
        self._expected_length = decoded_length
        self._buffer = bytearray()
        self._state = "header"
        self._remaining = 0
        self._signature = ""
        self._hash = sha256()
        self.decoded_length = 0
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view = memoryview(data)
        while view:
            if self._state == "data":
                piece = view[: self._remaining]
                view = view[len(piece) :]
                out += piece
                if self._signer is not None:
                    self._hash.update(piece)
                self._remaining -= len(piece)
                self.decoded_length += len(piece)
                if self._remaining == 0:
                    self._state = "data-end"
                continue
            if self._state == "done":
                raise malformed("bytes follow the final chunk and its trailers")
            self._buffer += view[: _MAX_LINE + 2]
            view = view[min(len(view), _MAX_LINE + 2) :]
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                if len(self._buffer) > _MAX_LINE:
                    raise malformed("a chunk header or trailer line is too long")
                continue
            line = bytes(self._buffer[:line_end])
            rest = bytes(self._buffer[line_end + 2 :])
            self._buffer.clear()
            self._line(line)
            view = memoryview(rest + bytes(view))  # what followed the line goes round again
        return bytes(out)

    def _line(self, line: bytes) -> None:
        if self._state == "data-end":
            if line:
                raise malformed("a chunk's data is longer than its declared size")
            self._end_chunk()
            self._state = "header"
        elif self._state == "header":
            self._header(line)
        elif self._state == "trailers":
            self._trailer(line)

    def _header(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        text = size_text.decode("latin-1").strip()
        if not text or len(text) > _MAX_SIZE_DIGITS or not set(text) <= _HEX_DIGITS:
            raise malformed(f"chunk size {text[:20]!r} is not a hexadecimal number")
        self._remaining = int(text, 16)
        name, _, value = extension.decode("latin-1").partition("=")
        if self._signer is not None:
            if name.strip() != "chunk-signature" or not value:
                raise malformed("a chunk carries no chunk-signature")
            self._signature = value.strip()
        if self._remaining == 0:
            self._end_chunk()
            self._state = "trailers"
        else:
            self._state = "data"

    def _end_chunk(self) -> None:
        if self._signer is not None:
            self._signer.check(self._hash.hexdigest(), self._signature)
            self._hash = sha256()

    def _trailer(self, line: bytes) -> None:
        if not line:
            self._state = "done"
            return
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or len(self.trailers) >= _MAX_TRAILERS:
            raise malformed(f"trailer line {line[:40]!r} is not name:value")
        self.trailers[name.strip().lower()] = value.strip()

    def finish(self) -> None:
        """The body ended: it must have ended where the encoding says."""
        if self._state == "trailers" and not self._buffer:
            self._state = "done"  # some clients end on the final chunk, with no empty line
        if self._state != "done":
            raise malformed("the body ended before its final (zero-size) chunk")
        if self._expected_length is not None and self.decoded_length != self._expected_length:
            raise malformed(
                f"it decodes to {self.decoded_length} bytes, but x-amz-decoded-content-length "
                f"says {self._expected_length}"
            )
