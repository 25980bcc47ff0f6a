"""GetObject's body: a span of an object's open file as an HTTP response, read in a worker thread a
piece at a time (os.pread) and sent as read."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# One read (in a worker thread) and one send per piece: a 1 MiB object goes out in one send,
# while a GET in flight holds at most this much. Larger pieces (8 MiB, boto3's ranged GETs) used
# as much CPU per byte here and were no faster: a 256 MiB download_file is bound by the client.
PIECE_BYTES = 1024 * 1024


class FileSpanResponse(Response):
    """`length` bytes of `source` from `start`; `source` is closed once read (or on failure).
    A file cut short under us ends the body early: the client sees a short body, never other
    bytes."""

    def __init__(
        self,
        source: BinaryIO,
        start: int,
        length: int,
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        self.source = source
        self.start = start
        self.length = length
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    def _read(self, offset: int, size: int, last: bool) -> bytes:
        """In a worker thread: one piece, and the file closed after the last."""
        try:
            return os.pread(self.source.fileno(), size, offset)
        finally:
            if last:
                self.source.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._send(receive, send)
        finally:
            if not self.source.closed:
                await run_in_threadpool(self.source.close)

    async def _send(self, receive: Receive, send: Send) -> None:
        end = self.start + self.length
        size = min(PIECE_BYTES, self.length)
        # The first piece is read before the head is sent: a file that cannot be read is a
        # 500, not a cut body.
        piece = await run_in_threadpool(self._read, self.start, size, size == self.length)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        if size == self.length:  # the usual case: one piece, no more to watch for
            await send({"type": "http.response.body", "body": piece})
            return
        # Several pieces: stop reading once the client has gone (after a disconnect the server's
        # send returns without sending, so nothing else would stop the reads).
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            offset = self.start + len(piece)
            while len(piece) == size and offset < end and not gone.done():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                size = min(PIECE_BYTES, end - offset)
                piece = await run_in_threadpool(self._read, offset, size, offset + size == end)
                offset += len(piece)
            await send({"type": "http.response.body", "body": piece})
        finally:
            gone.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
