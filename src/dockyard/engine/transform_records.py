"""Batch transform's records: split an input stream into records and pack them into requests."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Literal, Protocol, cast

from dockyard.contract.errors import ValidationError

MIB = 1024 * 1024
RECORDIO_MAGIC = 0xCED7230A
_MAGIC = struct.pack("<I", RECORDIO_MAGIC)
_MAGIC_LEN = len(_MAGIC)
_HEADER = struct.Struct("<II")
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
# cflag of a RecordIO frame: a whole record, or the start, middle or end of a split one.
_WHOLE, _START, _MIDDLE, _END = 0, 1, 2, 3
_CHUNK = 1 << 16


class ByteStream(Protocol):
    """Anything with read(n): an open file, a GzipFile, botocore's StreamingBody."""

    def read(self, size: int = -1, /) -> bytes: ...


class RecordError(ValidationError):
    """A record of the input, or the model's answer to a batch, can't be handled; the job fails
    with this message."""


class RecordTooLarge(RecordError):
    """`size` is a lower bound when the record was refused before it was read to its end."""

    def __init__(self, index: int, size: int, limit: int, source: str, *, whole: bool = True):
        amount = f"{size} bytes" if whole else f"at least {size} bytes"
        super().__init__(
            f"record {index} of {source} has {amount}, more than the {limit} bytes that "
            f"MaxPayloadInMB={limit / MIB:g} allows; raise MaxPayloadInMB (up to 100) or split "
            "the input into smaller records"
        )
        self.index = index
        self.size = size
        self.limit = limit


def _read_up_to(stream: ByteStream, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the stream (a raw read may return less)."""
    parts = []
    while size > 0:
        chunk = stream.read(min(size, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def split_records(
    stream: ByteStream,
    split_type: str,
    batch_strategy: Literal["SingleRecord", "MultiRecord"] = "MultiRecord",
    *,
    compression: Literal["None", "Gzip"] = "None",
    max_record_bytes: int = 0,
    source: str = "the input object",
) -> Iterator[bytes]:
    """The records of one input object, in order, reading it piece by piece.

    None: the whole object. Line: each line with its "\\n" (or "\\r\\n") kept; the last may
    have none. RecordIO: MXNet RecordIO records; with SingleRecord the payload alone (no
    header, no padding), with MultiRecord the record's frames as they are in the file, so
    concatenated records stay valid RecordIO. An empty object has no records.

    `compression` Gzip reads the object through gunzip. `max_record_bytes` (0 = no limit) fails
    the job as soon as a record grows past it, before the rest of a huge line or object is
    read."""
    if split_type == "None":
        splitter = _whole_object
    elif split_type == "Line":
        splitter = _lines
    elif split_type == "RecordIO":
        splitter = _recordio_framed if batch_strategy == "MultiRecord" else _recordio_payloads
    else:
        raise RecordError(f"SplitType {split_type!r} is not supported; use None, Line or RecordIO")
    if compression == "Gzip":
        # GzipFile reads forward only; its stub also wants seek(), which only rewinding uses.
        unzipped = gzip.GzipFile(fileobj=cast(IO[bytes], stream), mode="rb")
        return _gunzipped(splitter(unzipped, max_record_bytes, source), source)
    return splitter(stream, max_record_bytes, source)


def _gunzipped(records: Iterator[bytes], source: str) -> Iterator[bytes]:
    try:
        yield from records
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise RecordError(
            f"{source} is not gzip data ({exc}); set CompressionType None for uncompressed input"
        ) from None


def _whole_object(stream: ByteStream, limit: int, source: str) -> Iterator[bytes]:
    if limit:
        data = _read_up_to(stream, limit + 1)
        if len(data) > limit:
            raise RecordTooLarge(1, len(data), limit, source, whole=False)
    else:
        data = b"".join(iter(lambda: stream.read(_CHUNK), b""))
    if data:
        yield data


def _lines(stream: ByteStream, limit: int, source: str) -> Iterator[bytes]:
    pending = bytearray()
    index = 0
    while chunk := stream.read(_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start : end + 1]
            index += 1
            if limit and len(pending) > limit:
                raise RecordTooLarge(index, len(pending), limit, source)
            yield bytes(pending)
            pending.clear()
            start = end + 1
        pending += chunk[start:]
        if limit and len(pending) > limit:
            # Fail now rather than buffer a line that may be the whole object.
            raise RecordTooLarge(index + 1, len(pending), limit, source, whole=False)
    if pending:
        yield bytes(pending)


def _recordio_framed(stream: ByteStream, limit: int, source: str) -> Iterator[bytes]:
    return _recordio(stream, True, limit, source)


def _recordio_payloads(stream: ByteStream, limit: int, source: str) -> Iterator[bytes]:
    return _recordio(stream, False, limit, source)


def _recordio(stream: ByteStream, framed: bool, limit: int, source: str) -> Iterator[bytes]:
    index = 0
    offset = 0  # of the current frame, for messages
    while header := _read_up_to(stream, _HEADER.size):
        index += 1
        frames: list[bytes] = []
        payloads: list[bytes] = []
        size = 0
        while True:
            if len(header) < _HEADER.size:
                raise _bad(source, offset, "the data ends inside a record header")
            magic, lrecord = _HEADER.unpack(header)
            if magic != RECORDIO_MAGIC:
                raise _bad(source, offset, f"0x{magic:08x} is not the RecordIO magic number")
            cflag, length = lrecord >> _LENGTH_BITS, lrecord & _LENGTH_MASK
            continuing = bool(frames)
            if cflag not in ((_MIDDLE, _END) if continuing else (_WHOLE, _START)):
                raise _bad(source, offset, f"a frame with cflag {cflag} is out of sequence")
            padded = (length + 3) & ~3
            # The declared size is checked before the payload is read.
            if framed:
                size += _HEADER.size + padded
            else:
                size += length + (_MAGIC_LEN if continuing else 0)
            if limit and size > limit:
                last = cflag in (_WHOLE, _END)
                raise RecordTooLarge(index, size, limit, source, whole=last)
            body = _read_up_to(stream, padded)
            if len(body) < padded:
                raise _bad(source, offset, "the data ends inside a record")
            frames.append(header + body)
            payloads.append(body[:length])
            offset += _HEADER.size + padded
            if cflag in (_WHOLE, _END):
                break
            header = _read_up_to(stream, _HEADER.size)
            if not header:
                raise _bad(source, offset, "the data ends inside a split record")
        # MXNet's writer splits a record where its payload holds the magic number and drops
        # those four bytes; its reader puts them back between the parts, and so does this.
        yield b"".join(frames) if framed else _MAGIC.join(payloads)


def _bad(source: str, offset: int, what: str) -> RecordError:
    return RecordError(
        f"{source} is not valid MXNet RecordIO at byte {offset}: {what}; use SplitType Line or "
        "None for other formats"
    )


@dataclass(frozen=True)
class Batch:
    """One request: `parts` are sent concatenated (stream them, or use `body`); `records` are the
    input records they came from, for JoinSource=Input; `first` is the 1-based index of the
    first record in its object."""

    parts: tuple[bytes, ...]
    records: tuple[bytes, ...]
    first: int

    @property
    def body(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts)


def batches(
    records: Iterable[bytes],
    batch_strategy: Literal["SingleRecord", "MultiRecord"],
    max_payload_bytes: int,
    *,
    prepare: Callable[[bytes], bytes] | None = None,
    source: str = "the input object",
) -> Iterator[Batch]:
    """Request bodies for the records of one object, in order.

    SingleRecord: one record per request. MultiRecord: as many whole records as fit within
    `max_payload_bytes` (0 = no limit: the whole object in one request). A record that alone is
    larger than the limit raises RecordTooLarge. `prepare` turns an input record into what is
    sent for it (DataProcessing's InputFilter); the limit applies to what is sent."""
    parts: list[bytes] = []
    originals: list[bytes] = []
    size = 0
    first = 1
    for index, record in enumerate(records, start=1):
        part = prepare(record) if prepare is not None else record
        if max_payload_bytes and len(part) > max_payload_bytes:
            raise RecordTooLarge(index, len(part), max_payload_bytes, source)
        full = bool(max_payload_bytes) and size + len(part) > max_payload_bytes
        if parts and (batch_strategy == "SingleRecord" or full):
            yield Batch(tuple(parts), tuple(originals), first)
            parts, originals, size, first = [], [], 0, index
        parts.append(part)
        originals.append(record)
        size += len(part)
    if parts:
        yield Batch(tuple(parts), tuple(originals), first)


def split_response(body: bytes, expected: int, *, source: str = "the batch") -> list[bytes]:
    """The model's answer to a MultiRecord batch of line-based records (CSV, JSON Lines), one
    piece per record, without line endings. A batch of one record gets its whole answer."""
    if expected < 1:
        raise ValueError("a batch has at least one record")
    if body.endswith(b"\n"):
        body = body[:-1]
    if expected == 1:
        return [body.removesuffix(b"\r")]
    pieces = [piece.removesuffix(b"\r") for piece in body.split(b"\n")]
    if len(pieces) != expected:
        raise RecordError(
            f"the model answered the {expected} records of {source} with {len(pieces)} lines; "
            "to join or filter its output per record it must answer one line per record "
            "(CSV or JSON Lines), or use BatchStrategy SingleRecord"
        )
    return pieces
