"""Pipe input mode: a FIFO per channel per epoch (`<channel>_0`, `<channel>_1`, …) fed with the
channel's objects, the next epoch's pipe made once the program has read (or closed) this one."""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import stat
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

_RECORDIO_MAGIC = 0xCED7230A
_CHUNK = 1 << 20


def recordio_frame(payload_length: int) -> bytes:
    """The 8-byte header of one MXNet RecordIO record holding a whole object."""
    return struct.pack("<II", _RECORDIO_MAGIC, payload_length & ((1 << 29) - 1))


def _padding(length: int) -> bytes:
    return b"\x00" * (-length % 4)


class PipeFeeder:
    """Feeds one channel's FIFOs on one host from a background thread until stopped."""

    def __init__(
        self,
        data_dir: Path,
        channel: str,
        files: list[Path],
        *,
        gzip_compressed: bool = False,
        recordio: bool = False,
    ) -> None:
        self._data_dir = data_dir
        self._channel = channel
        self._files = files
        self._gzip = gzip_compressed
        self._recordio = recordio
        self._stop = threading.Event()
        self.epochs_fed = 0
        self._thread = threading.Thread(target=self._run, name=f"pipe-{channel}", daemon=True)

    def fifo(self, epoch: int) -> Path:
        return self._data_dir / f"{self._channel}_{epoch}"

    def prepare(self) -> None:
        """Make the first epoch's FIFO before the program starts, so it never finds none."""
        self._make(0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _make(self, epoch: int) -> None:
        path = self.fifo(epoch)
        if not (path.exists() and stat.S_ISFIFO(path.stat().st_mode)):
            os.mkfifo(path, 0o644)

    def _open_writer(self, path: Path) -> int | None:
        # Opening a FIFO for writing blocks until a reader opens it; poll without blocking so
        # the feeder can stop when the job ends with the pipe unread.
        while not self._stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    time.sleep(0.01)
                    continue
                raise
            os.set_blocking(fd, True)
            return fd
        return None

    def _open(self, path: Path) -> IO[bytes]:
        if self._gzip:
            return cast(IO[bytes], gzip.open(path, "rb"))
        return open(path, "rb")

    def _chunks(self) -> Iterator[bytes]:
        for path in self._files:
            with self._open(path) as stream:
                if self._recordio:
                    data = stream.read()
                    yield recordio_frame(len(data)) + data + _padding(len(data))
                    continue
                while chunk := stream.read(_CHUNK):
                    yield chunk

    def _run(self) -> None:
        epoch = 0
        while not self._stop.is_set():
            self._make(epoch)
            fd = self._open_writer(self.fifo(epoch))
            if fd is None:
                return
            pipe = os.fdopen(fd, "wb", buffering=0)
            try:
                for chunk in self._chunks():
                    view = memoryview(chunk)
                    while view:
                        view = view[pipe.write(view) or 0 :]
            except BrokenPipeError:
                pass  # the reader closed early: allowed, the epoch is over
            finally:
                # The next epoch's FIFO exists before this one reaches EOF, so a reader that
                # opens `<channel>_<n+1>` right after finishing `<channel>_<n>` finds it.
                self._make(epoch + 1)
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
            self.epochs_fed += 1
            epoch += 1
