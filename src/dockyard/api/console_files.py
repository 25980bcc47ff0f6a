"""The console's files, read from the package `dockyard.console` by name (a resource lookup: the
console is a face above the API, never imported by it): the HTML shell with the session's CSRF
token put in, and the static assets, with their content types, no listing and no way out of
the static folder."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

CONSOLE_PACKAGE = "dockyard.console"
SHELL = "index.html"
STATIC = "static"

# By suffix, not from the system's mime.types (which differs between machines and may lack
# .mjs or .woff2). Anything else is served as bytes to download.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
DEFAULT_TYPE = "application/octet-stream"

_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)


class ShellError(Exception):
    """The console's index.html is missing or has no <head> to put the CSRF token in."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class ConsoleFiles:
    """The files under `root` (default: the installed `dockyard.console` package)."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.root = root if root is not None else files(CONSOLE_PACKAGE)

    def shell(self, meta: dict[str, str]) -> bytes:
        """index.html with `<meta name=... content=...>` for each of `meta` right after its
        <head> (the pages read the CSRF token from there)."""
        try:
            page = (self.root / SHELL).read_bytes()
        except OSError as exc:
            raise ShellError(f"the console's {SHELL} cannot be read: {exc}") from exc
        found = _HEAD.search(page)
        if found is None:
            raise ShellError(f"the console's {SHELL} has no <head> element")
        tags = "".join(
            f'\n<meta name="{escape(name)}" content="{escape(value)}">'
            for name, value in meta.items()
        ).encode()
        return page[: found.end()] + tags + page[found.end() :]

    def asset(self, path: str) -> Asset | None:
        """The file at `path` under static/, or None: for a path that is not a plain file
        there, names a hidden file, has empty, `.` or `..` segments, a backslash or NUL, or
        passes through a symbolic link."""
        segments = path.split("/")
        for segment in segments:
            if not segment or segment.startswith(".") or "\\" in segment or "\0" in segment:
                return None
        static = self.root / STATIC
        if isinstance(static, Path):
            body = _read_without_links(static, segments)
        else:  # a zipped package: no links to follow there
            target = static.joinpath(*segments)
            body = target.read_bytes() if target.is_file() else None
        if body is None:
            return None
        suffix = os.path.splitext(segments[-1])[1].lower()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return Asset(body, CONTENT_TYPES.get(suffix, DEFAULT_TYPE), etag)


def _read_without_links(root: Path, segments: list[str]) -> bytes | None:
    """The regular file at root/segments, never through a link (each step is looked at with
    lstat, and the file is opened with O_NOFOLLOW, so a link swapped in meanwhile fails;
    O_NONBLOCK: a FIFO put there does not hang the request)."""
    current = root
    try:
        for segment in segments[:-1]:
            current = current / segment
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return None
        current = current / segments[-1]
        fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a FIFO, a device
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)
