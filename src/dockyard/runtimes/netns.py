"""Sandbox networks: every training job and every serving instance gets a network namespace of its
own, made and held here. Its hosts reach each other on its loopback (algo-N); nothing listening on
the host's loopback (dockyard's API included) is reachable from it. With outside access, a user-mode
network stack (slirp4netns) gives it the host's view of the world minus the host's loopback.

dockyard reaches a server inside a namespace by making sockets there (a thread joins it once with
setns(2)), so many instances can each listen on port 8080. Making and joining namespaces needs
CAP_SYS_ADMIN: dockyard runs sandboxes as root."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.address_connector import nodelay_socket

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh14x"
# slirp4netns's fixed layout: the namespace is 10.0.2.100/24, the gateway 10.0.2.2 (the host,
# with --disable-host-loopback refusing the host's own loopback), DNS at 10.0.2.3.
SLIRP_DNS = "10.0.2.3"
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


class Network:
    """A network namespace held open by a file descriptor, and its slirp4netns when it has
    outside access. Closing it ends the outside access; the namespace goes when its last
    process and descriptor do."""

    def __init__(self, fd: int, outside: bool, slirp: subprocess.Popen[bytes] | None) -> None:
        self.fd = fd
        self.outside = outside
        self._slirp = slirp
        self._exit_pipe: int | None = None
        self._closed = False

    @classmethod
    def create(cls, *, outside: bool, slirp4netns: str = "slirp4netns") -> Network:
        fd = new_namespace()
        network = cls(fd, outside, None)
        if outside:
            try:
                network._start_slirp(slirp4netns)
            except BaseException:
                network.close()
                raise
        return network

    @property
    def path(self) -> str:
        """The namespace as a path a child process of this one can open (it inherits the fd)."""
        return f"/proc/self/fd/{self.fd}"

    def resolv_conf(self) -> str:
        return f"nameserver {SLIRP_DNS}\n" if self.outside else ""

    def _start_slirp(self, slirp4netns: str) -> None:
        executable = shutil.which(slirp4netns)
        if executable is None:
            raise SandboxError(
                "slirp4netns is not installed (apt-get install slirp4netns): it gives jobs "
                "without EnableNetworkIsolation their outside network"
            )
        ready_read, ready_write = os.pipe()
        # slirp4netns leaves when this pipe's other end closes: with us, even after kill -9.
        exit_read, exit_write = os.pipe()
        os.set_inheritable(exit_write, False)
        try:
            self._slirp = subprocess.Popen(
                # In a mount namespace of its own, all private: slirp4netns's sandbox (as root)
                # makes only / private, and its pivot_root's detach of the old root would
                # propagate to the host's shared mounts (podman's /run/netns/*, seen unmounted
                # under running containers) and unmount them there.
                [*_PRIVATE_MOUNTS, executable, "--configure", "--mtu=65520",
                 "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp",
                 f"--ready-fd={ready_write}", f"--exit-fd={exit_read}",
                 "--netns-type=path", f"/proc/{os.getpid()}/fd/{self.fd}", "tap0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(ready_write, exit_read),
                start_new_session=True,
            )  # fmt: skip
            os.close(ready_write)
            ready_write = -1
            os.close(exit_read)
            exit_read = -1
            self._exit_pipe = exit_write
            if os.read(ready_read, 1) != b"1":
                self._slirp.wait(timeout=5)
                error = (
                    self._slirp.stderr.read().decode(errors="replace") if self._slirp.stderr else ""
                )
                raise SandboxError(f"slirp4netns could not connect the sandbox's network: {error}")
        finally:
            for fd in (ready_read, ready_write, exit_read):
                if fd >= 0:
                    os.close(fd)

    def connector(self) -> NamespaceConnector:
        return NamespaceConnector(self.fd)

    def host_addresses(self, hostnames: Sequence[str]) -> dict[str, str]:
        """Hosts share the namespace: each gets a loopback address of its own (127.0.10.N), so
        they reach each other by name and a program can bind its own host's address."""
        return {name: f"127.0.10.{index + 1}" for index, name in enumerate(hostnames)}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._exit_pipe is not None:
            os.close(self._exit_pipe)  # slirp4netns sees its end close and leaves
        if self._slirp is not None:
            # It takes ~30 ms to notice: reaped on a thread, not on the job's way to its end.
            threading.Thread(target=_reap, args=(self._slirp,), daemon=True).start()
        os.close(self.fd)


_PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--")


def _reap(slirp: subprocess.Popen[bytes]) -> None:
    try:
        slirp.wait(timeout=2)
    except subprocess.TimeoutExpired:
        slirp.kill()
        slirp.wait()
    if slirp.stderr is not None:
        slirp.stderr.close()


def new_namespace() -> int:
    """A new network namespace with its loopback up, held by the fd returned (close-on-exec)."""
    return _run_in_thread(_new_namespace)


def _new_namespace() -> int:
    """On a throwaway thread: a new network namespace with its loopback up; an fd holding it."""
    if _libc.unshare(_CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise SandboxError(f"cannot make a network namespace: {os.strerror(error)} (needs root)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack(
            _IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0))
        )[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _run_in_thread(function: Callable[[], T]) -> T:
    # unshare(CLONE_NEWNET) moves only the calling thread; that thread then simply ends.
    result: Future[T] = Future()

    def run() -> None:
        try:
            result.set_result(function())
        except BaseException as exc:
            result.set_exception(exc)

    thread = threading.Thread(target=run, name="netns-maker", daemon=True)
    thread.start()
    thread.join()
    return result.result()


class NamespaceConnector:
    """Makes sockets inside one network namespace. Holds its own descriptor of the namespace, so
    it stays usable (connections are refused) after the sandbox and its Network are gone.

    A socket belongs to the namespace it was made in, wherever it is used afterwards: `socket()`
    makes one here and an event loop connects it without blocking."""

    def __init__(self, netns_fd: int) -> None:
        self._fd = os.dup(netns_fd)
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        # Every call is queued before the end mark, or refused: none waits on a thread that is gone.
        self._open = True
        self._queueing = threading.Lock()
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
        with self._queueing:
            if not self._open:
                # The instance is gone: to a caller that is a refused connection.
                raise ConnectionRefusedError("the instance's network is closed")
            self._calls.put((function, result))
        return result.result()

    def address(self, port: int) -> tuple[str, int]:
        """Inside the namespace, the instance's port is on its own loopback."""
        return ("127.0.0.1", port)

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
        """A connected socket to `host:port` as seen inside the namespace."""
        return self._inside(lambda: socket.create_connection((host, port), timeout=timeout))

    def socket(self) -> socket.socket:
        """An unconnected, non-blocking TCP socket of the namespace."""
        return self._inside(nodelay_socket)

    def close(self) -> None:
        with self._queueing:
            self._open = False
            self._calls.put(None)
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self._fd)
