"""The S3 API's own folder: request bodies streamed onto disk (with their MD5, the ETag, and any
`x-amz-checksum-*` computed on the way) before they become objects, and multipart uploads in
progress. Objects appear only when whole: a spooled file is moved into the store at once."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from botocore.compat import HAS_CRT
from botocore.httpchecksum import (
    BaseChecksum,
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from starlette.concurrency import run_in_threadpool

from dockyard.api.s3.wire import S3Error

# S3's own limit for one PUT or one part: a client cannot fill the disk with one request
# beyond what S3 itself would take. (The control plane's DOCKYARD_MAX_REQUEST_BYTES is for
# JSON held in memory; S3 bodies are streamed to disk and never held whole.)
MAX_PUT_BYTES = 5 * 1024**3
# Bodies are hashed and written a few MiB at a time, off the event loop: fewer hand-overs to a
# worker thread, while ten parallel parts still hold little memory.
_WRITE_BYTES = 4 * 1024 * 1024
_MAX_PIECES = 512  # os.writev takes at most IOV_MAX (1024) pieces

# The x-amz-checksum-* algorithms, as botocore computes them (CRC32C and CRC64NVME need awscrt).
_CHECKSUMS: dict[str, Callable[[], BaseChecksum]] = {
    "crc32": Crc32Checksum,
    "sha1": Sha1Checksum,
    "sha256": Sha256Checksum,
}
if HAS_CRT:  # pragma: no cover - awscrt is not installed here
    _CHECKSUMS["crc32c"] = CrtCrc32cChecksum
    _CHECKSUMS["crc64nvme"] = CrtCrc64NvmeChecksum
CHECKSUM_PREFIX = "x-amz-checksum-"


def checksum_of(algorithm: str) -> BaseChecksum:
    factory = _CHECKSUMS.get(algorithm.lower())
    if factory is None:
        raise S3Error(
            "InvalidRequest",
            f"dockyard cannot compute {algorithm.upper()} checksums; use one of "
            f"{', '.join(a.upper() for a in sorted(_CHECKSUMS))}",
        )
    return factory()


@dataclass
class Spooled:
    """A body on disk, with what was computed as it was written."""

    path: Path
    size: int
    md5: bytes
    checksums: dict[str, str] = field(default_factory=dict)  # header name -> base64 value
    multipart_etag: str | None = None  # joined parts: the MD5 of their MD5s, then -N

    @property
    def etag(self) -> str:
        return self.multipart_etag or f'"{self.md5.hex()}"'


class _Writer:
    """Hashes and writes in a worker thread, a few MiB of the body's pieces at a time, as they
    came (no copy into one buffer: hashlib and os.writev take the pieces themselves, and both
    let other threads run meanwhile)."""

    def __init__(self, fd: int, checksums: dict[str, BaseChecksum]) -> None:
        self.fd = fd
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.checksums = checksums
        self.size = 0

    def write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.md5.update(piece)
            for checksum in self.checksums.values():
                checksum.update(piece)
        total = sum(len(piece) for piece in pieces)
        written = os.writev(self.fd, pieces)
        if written < total:
            # A short write (rare on a file: a disk all but full, a signal): the rest, to the
            # last byte, or the file would be shorter than the MD5 and size that name it.
            rest = memoryview(b"".join(pieces))[written:]
            while rest:
                done = os.write(self.fd, rest)
                if done == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                rest = rest[done:]
        self.size += total


class Staging:
    """`<home>/s3-api`: `tmp/` for bodies on their way in, `uploads/` for multipart uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.uploads = root / "uploads"

    def temp_path(self, kind: str = "body") -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{kind}-{secrets.token_hex(8)}"

    async def spool(
        self,
        chunks: AsyncIterator[bytes],
        dest: Path,
        *,
        checksum_algorithms: list[str],
        max_bytes: int = MAX_PUT_BYTES,
    ) -> Spooled:
        """Write `chunks` to `dest` (removed again on any failure), computing the MD5 and the
        named checksums."""
        checksums = {name: checksum_of(name) for name in checksum_algorithms}
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                writer = _Writer(fd, checksums)
                pieces: list[bytes] = []
                pending = 0
                async for chunk in chunks:
                    if not chunk:
                        continue
                    pieces.append(chunk)
                    pending += len(chunk)
                    if writer.size + pending > max_bytes:
                        raise S3Error(
                            "EntityTooLarge",
                            f"Your proposed upload exceeds the maximum allowed size "
                            f"({max_bytes} bytes)",
                        )
                    if pending >= _WRITE_BYTES or len(pieces) >= _MAX_PIECES:
                        await run_in_threadpool(writer.write, pieces)
                        pieces, pending = [], 0
                if pieces:
                    await run_in_threadpool(writer.write, pieces)
            finally:
                os.close(fd)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return Spooled(
            dest,
            writer.size,
            writer.md5.digest(),
            {
                CHECKSUM_PREFIX + name: base64.b64encode(c.digest()).decode()
                for name, c in checksums.items()
            },
        )

    async def spool_file(self, source: BinaryIO, dest: Path, length: int) -> Spooled:
        """Copy `length` bytes of an open file (a copy's source) to `dest`, hashing them."""

        async def chunks() -> AsyncIterator[bytes]:
            remaining = length
            while remaining > 0:
                chunk = await run_in_threadpool(source.read, min(_WRITE_BYTES, remaining))
                if not chunk:
                    raise S3Error("InternalError", "the copy's source ended early", 500)
                remaining -= len(chunk)
                yield chunk

        return await self.spool(chunks(), dest, checksum_algorithms=[])

    def discard(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def verify_checksums(spooled: Spooled, claimed: dict[str, str]) -> None:
    """BadDigest when a checksum the client sent is not the body's."""
    for header, value in claimed.items():
        if spooled.checksums.get(header) != value:
            algorithm = header.removeprefix(CHECKSUM_PREFIX).upper()
            raise S3Error(
                "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
            )


def verify_content_md5(spooled: Spooled, content_md5: str | None) -> None:
    if content_md5 is None:
        return
    try:
        claimed = base64.b64decode(content_md5, validate=True)
    except ValueError:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") from None
    if claimed != spooled.md5:
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
