"""Reaching a sandbox with its own network namespace: sockets are made inside that namespace
(a thread joins it once with setns(2)), so many instances can each listen on port 8080.

Needs CAP_SYS_ADMIN (dockyard runs sandboxes as root); an unprivileged setup would bridge
through a Unix socket instead."""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from dockyard.contract.errors import SandboxError

_CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def sandbox_netns(process_group: int) -> Path:
    """The network namespace of a sandbox's processes (they share the bwrap process group), as
    a /proc path; SandboxError if none of them has left this process's namespace."""
    own = os.readlink("/proc/self/ns/net")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != process_group:
                continue
            path = Path("/proc") / entry / "ns" / "net"
            if os.readlink(path) != own:
                return path
        except OSError:
            continue
    raise SandboxError(f"no process of sandbox group {process_group} has its own network")


class NamespaceConnector:
    """Makes sockets inside one network namespace. The namespace is held by an open file, so it
    stays reachable (connections are refused) after the sandbox's processes have gone.

    A socket belongs to the namespace it was made in, wherever it is used afterwards: `socket()`
    makes one here and an event loop connects it without blocking."""

    def __init__(self, netns: Path) -> None:
        self._fd = os.open(netns, os.O_RDONLY)
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="netns-connector", daemon=True)
        self._ready: Future[None] = Future()
        self._thread.start()
        self._ready.result()

    def _run(self) -> None:
        # setns changes only this thread's namespace; every socket made here stays in it.
        if _libc.setns(self._fd, _CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            self._ready.set_exception(
                SandboxError(f"cannot join the sandbox's network namespace: {os.strerror(error)}")
            )
            return
        self._ready.set_result(None)
        while (call := self._calls.get()) is not None:
            function, result = call
            try:
                result.set_result(function())
            except OSError as exc:
                result.set_exception(exc)

    def _inside(self, function: Callable[[], T]) -> T:
        result: Future[T] = Future()
        self._calls.put((function, result))
        return result.result()

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
        """A connected socket to `host:port` as seen inside the namespace."""
        return self._inside(lambda: socket.create_connection((host, port), timeout=timeout))

    def socket(self) -> socket.socket:
        """An unconnected, non-blocking TCP socket of the namespace."""

        def make() -> socket.socket:
            made = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            made.setblocking(False)
            made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return made

        return self._inside(make)

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join(timeout=5)
        os.close(self._fd)
