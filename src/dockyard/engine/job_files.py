"""Link-safe access to folders someone else can change (a job's /opt/ml, a user's local folder):
every path component opened without following links, only regular files read, reads bounded."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

# Deeper folders are left out of walks: a job can nest folders faster than anyone needs them,
# and each level holds one open descriptor while it is walked.
MAX_DEPTH = 128

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer before fstat can refuse it.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Folder = int | Path
"""A trusted starting point: an open folder descriptor, or a path whose own links are trusted."""


class RefusedPath(OSError):
    """A path that is a link, or not the kind of file wanted: it is never followed or read."""


def _parts(relative: str | PurePosixPath) -> list[str]:
    parts = list(PurePosixPath(relative).parts)
    if parts and parts[0] == "/":
        raise RefusedPath(errno.EINVAL, f"{relative} is absolute; a relative path was expected")
    if ".." in parts:
        raise RefusedPath(errno.EINVAL, f"{relative} has a '..' component")
    return parts


def kind_of(status: os.stat_result) -> str:
    """ "a link", "a FIFO", "a device node"...: for messages."""
    mode = status.st_mode
    if stat.S_ISLNK(mode):
        return "a link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    return "a regular file"


def _start(base: Folder) -> int:
    if isinstance(base, int):
        return os.dup(base)
    return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_folder(
    base: Folder, relative: str | PurePosixPath = "", *, create: bool = False, mode: int = 0o755
) -> int:
    """A descriptor of the folder `relative` beneath `base`, reached one component at a time,
    each opened without following a link; missing ones are made when `create`. The caller
    closes it. RefusedPath when a component is a link or not a folder."""
    current = _start(base)
    try:
        for part in _parts(relative):
            try:
                child = os.open(part, _DIR, dir_fd=current)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=current)
                child = _open_child_folder(part, current, relative)
            except OSError as exc:
                raise _refusal(part, current, relative, exc) from None
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def _open_child_folder(part: str, parent: int, relative: object) -> int:
    try:
        return os.open(part, _DIR, dir_fd=parent)
    except OSError as exc:
        raise _refusal(part, parent, relative, exc) from None


def _refusal(part: str, parent: int, relative: object, exc: OSError) -> OSError:
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return exc
    try:
        what = kind_of(os.stat(part, dir_fd=parent, follow_symlinks=False))
    except OSError:
        what = "not a folder"
    return RefusedPath(exc.errno, f"{relative}: {part} is {what}, not a folder")


def open_file(base: Folder, relative: str | PurePosixPath) -> BinaryIO:
    """The regular file `relative` beneath `base`, open for reading; no component may be a link.
    RefusedPath for a link, a FIFO, a device node, a socket or a folder."""
    parts = _parts(relative)
    if not parts:
        raise RefusedPath(errno.EISDIR, "a file name was expected")
    parent = open_folder(base, PurePosixPath(*parts[:-1]) if len(parts) > 1 else "")
    try:
        return _open_regular(parts[-1], parent, relative)
    finally:
        os.close(parent)


def _open_regular(name: str, parent: int, relative: object) -> BinaryIO:
    # Looked at before it is opened: opening a device node can have effects of its own.
    before = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise RefusedPath(errno.EPERM, f"{relative} is {kind_of(before)}, not a regular file")
    fd = os.open(name, _READ, dir_fd=parent)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or not os.path.samestat(before, opened):
            raise RefusedPath(errno.EPERM, f"{relative} changed while it was opened")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(base: Folder, relative: str | PurePosixPath, limit: int) -> bytes:
    """At most `limit` bytes of the regular file `relative` beneath `base` (see open_file)."""
    with open_file(base, relative) as handle:
        return handle.read(limit)


def open_resolved(path: Path) -> BinaryIO:
    """A regular file by its resolved path (no link in it), opened from `/` component by
    component: a link put into the path after it was resolved and checked is refused."""
    if not path.is_absolute():
        raise RefusedPath(errno.EINVAL, f"{path} is not an absolute path")
    return open_file(Path("/"), PurePosixPath(path).relative_to("/"))


@dataclass(frozen=True)
class Entry:
    """One thing found by `walk`: its path relative to the walked folder, its own status (a
    link's, not its target's) and, for a link, what it points to."""

    relative: str
    status: os.stat_result
    link: str | None = None

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.status.st_mode)

    @property
    def is_folder(self) -> bool:
        return stat.S_ISDIR(self.status.st_mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.status.st_mode)

    @property
    def kind(self) -> str:
        return kind_of(self.status)


LeftOut = Callable[[str, str], None]
"""Told (relative path, why) of what a walk did not go into."""


def walk(
    folder: int,
    *,
    hidden: bool = True,
    left_out: LeftOut | None = None,
    max_depth: int = MAX_DEPTH,
) -> Iterator[Entry]:
    """Everything beneath the open folder `folder`, parents before children, names sorted.
    Links are reported, never followed; each subfolder is opened without following links and
    checked to be the folder that was listed, so swapping one for a link mid-walk is caught.
    `hidden=False` leaves out names starting with "." (and what is inside them)."""
    yield from _walk(folder, "", 0, hidden, left_out or (lambda _path, _why: None), max_depth)


def _walk(
    folder: int, prefix: str, depth: int, hidden: bool, left_out: LeftOut, max_depth: int
) -> Iterator[Entry]:
    with os.scandir(folder) as scanned:
        names = sorted(entry.name for entry in scanned)
    for name in names:
        relative = prefix + name
        if not hidden and name.startswith("."):
            left_out(relative, "hidden")
            continue
        try:
            status = os.stat(name, dir_fd=folder, follow_symlinks=False)
            link = os.readlink(name, dir_fd=folder) if stat.S_ISLNK(status.st_mode) else None
        except FileNotFoundError:
            continue  # removed while we looked
        yield Entry(relative, status, link)
        if not stat.S_ISDIR(status.st_mode):
            continue
        if depth + 1 >= max_depth:
            left_out(relative, f"deeper than {max_depth} folders")
            continue
        try:
            child = os.open(name, _DIR, dir_fd=folder)
        except OSError:
            left_out(relative, "replaced while it was walked")
            continue
        try:
            if not os.path.samestat(status, os.fstat(child)):
                left_out(relative, "replaced while it was walked")
                continue
            yield from _walk(child, relative + "/", depth + 1, hidden, left_out, max_depth)
        finally:
            os.close(child)


def write_file(
    base: Folder, relative: str | PurePosixPath, fill: Callable[[BinaryIO], object]
) -> None:
    """Write the file `relative` beneath `base`: folders made as needed without following links,
    the data written to a new file beside it and renamed over the name. Whatever was at the
    name (a link, a hard link to another file) is replaced, never written through."""
    parts = _parts(relative)
    if not parts:
        raise RefusedPath(errno.EISDIR, "a file name was expected")
    parent = open_folder(base, PurePosixPath(*parts[:-1]) if len(parts) > 1 else "", create=True)
    temp = f".{parts[-1]}.{uuid.uuid4().hex}.part"
    try:
        fd = os.open(temp, _CREATE, 0o644, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.replace(temp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=parent)
            raise
    finally:
        os.close(parent)
