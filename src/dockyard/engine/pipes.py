"""Pipe input mode: a FIFO per channel per epoch (`<channel>_0`, `<channel>_1`, …) fed with the
channel's objects, the next epoch's pipe made once the program has read (or closed) this one."""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from dockyard.engine.job_files import kind_of, open_folder, open_resolved

logger = logging.getLogger(__name__)

_RECORDIO_MAGIC = 0xCED7230A
_CHUNK = 1 << 20
_WRITE = os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def recordio_frame(payload_length: int) -> bytes:
    """The 8-byte header of one MXNet RecordIO record holding a whole object."""
    return struct.pack("<II", _RECORDIO_MAGIC, payload_length & ((1 << 29) - 1))


def _padding(length: int) -> bytes:
    return b"\x00" * (-length % 4)


class PipeFeeder:
    """Feeds one channel's FIFOs on one host from a background thread until stopped. The
    program can replace a FIFO (or the folder holding it) by a link or a file at any moment:
    the folder is held by a descriptor taken before the program starts, and the feeder writes
    only into a FIFO opened there without following links; anything else ends the feeding."""

    def __init__(
        self,
        data_dir: Path,
        channel: str,
        files: list[Path],
        *,
        gzip_compressed: bool = False,
        recordio: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._channel = channel
        self._files = files
        self._gzip = gzip_compressed
        self._recordio = recordio
        self._log = log or (lambda line: logger.info("%s", line))
        self._folder: int | None = None
        self._stop = threading.Event()
        self.epochs_fed = 0
        self._thread = threading.Thread(target=self._run, name=f"pipe-{channel}", daemon=True)

    def fifo(self, epoch: int) -> Path:
        return self._data_dir / self._name(epoch)

    def _name(self, epoch: int) -> str:
        return f"{self._channel}_{epoch}"

    def prepare(self) -> None:
        """Make the first epoch's FIFO before the program starts, so it never finds none; the
        folder's descriptor is taken now, while nothing of the job runs."""
        self._folder = open_folder(self._data_dir.parent, self._data_dir.name)
        self._make(0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._folder is not None and not self._thread.is_alive():
            os.close(self._folder)
            self._folder = None

    def _refuse(self, name: str, what: str) -> None:
        self._log(
            f"Pipe channel {self._channel}: /opt/ml/input/data/{name} is {what}, not the FIFO "
            "dockyard made; the channel is fed no further"
        )

    def _make(self, epoch: int) -> bool:
        """The epoch's FIFO exists; False (said in the log) when something else is there."""
        assert self._folder is not None
        name = self._name(epoch)
        try:
            found = os.stat(name, dir_fd=self._folder, follow_symlinks=False)
        except FileNotFoundError:
            try:
                os.mkfifo(name, 0o644, dir_fd=self._folder)
                return True
            except FileExistsError:
                found = os.stat(name, dir_fd=self._folder, follow_symlinks=False)
        if stat.S_ISFIFO(found.st_mode):
            return True
        self._refuse(name, kind_of(found))
        return False

    def _open_writer(self, epoch: int) -> int | None:
        # Opening a FIFO for writing blocks until a reader opens it; poll without blocking so
        # the feeder can stop when the job ends with the pipe unread.
        assert self._folder is not None
        name = self._name(epoch)
        while not self._stop.is_set():
            if not self._make(epoch):
                return None
            try:
                fd = os.open(name, _WRITE, dir_fd=self._folder)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    time.sleep(0.01)
                    continue
                if exc.errno in (errno.ELOOP, errno.ENOENT):
                    continue  # replaced or removed since _make looked: look again
                raise
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                self._refuse(name, kind_of(os.fstat(fd)))
                os.close(fd)
                return None
            os.set_blocking(fd, True)
            return fd
        return None

    @contextlib.contextmanager
    def _open(self, path: Path) -> Iterator[IO[bytes]]:
        # The file by its resolved path, no link followed: a local channel's owner can't swap
        # a listed file for a link to something only the server may read.
        with open_resolved(path) as handle:
            if not self._gzip:
                yield handle
                return
            with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)

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
            fd = self._open_writer(epoch)
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
