"""Request bodies on their way to disk (the S3 API's staging): the file holds every byte its MD5
and size say, however the kernel's writes go.

The kernel's writes are wrapped to write a little at a time: short writes to a file happen on
a disk that is all but full or under signals, not on demand here. The real calls write what is
written."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from dockyard.api.s3.staging import Staging

_REAL_WRITEV = os.writev
_REAL_WRITE = os.write
_MOST = 4099  # bytes a wrapped write takes at most


def _short_writev(fd: int, buffers: Sequence[bytes]) -> int:
    return _REAL_WRITE(fd, b"".join(buffers)[:_MOST])


def _short_write(fd: int, data: bytes | memoryview) -> int:
    return _REAL_WRITE(fd, data[:_MOST])


def test_a_body_written_in_short_writes_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(4)
    chunks = [rng.randbytes(rng.randint(1, 70_000)) for _ in range(40)]

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    monkeypatch.setattr(os, "writev", _short_writev)
    monkeypatch.setattr(os, "write", _short_write)
    staging = Staging(tmp_path / "s3-api")
    spooled = asyncio.run(
        staging.spool(body(), staging.temp_path(), checksum_algorithms=["sha256"])
    )
    whole = b"".join(chunks)
    assert spooled.size == len(whole)
    assert spooled.md5 == hashlib.md5(whole).digest()
    assert spooled.path.read_bytes() == whole
