"""The process runtime: each host of a job runs in a bubblewrap sandbox over the host's root."""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockyard.contract.errors import ImageError, SandboxError
from dockyard.runtimes.base import HostSpec, OutputSink, RunningHost, Runtime
from dockyard.runtimes.images import DEFAULT_PATH

logger = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
# Docker's default capabilities: root in the sandbox can chown or bind port 80, but not mount, so it
# cannot remount the host's folders writable.
DOCKER_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
    "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
)  # fmt: skip
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_ADDRESS = re.compile(r"^[0-9A-Fa-f.:]+$")
_MAX_LINE = 64 * 1024  # longer lines reach on_output in pieces rather than growing without bound


def sandbox_env(spec: HostSpec) -> dict[str, str]:
    """The program's whole environment: container defaults, the image's ENV, the platform's."""
    return {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        "HOSTNAME": spec.hostname,
        "LANG": "C.UTF-8",
        **spec.image.env,
        **spec.env,
    }


def hosts_file(spec: HostSpec) -> str:
    """/etc/hosts for the sandbox: localhost, every host of the job, and this host's own name."""
    entries = {"localhost": "127.0.0.1", **spec.hosts}
    entries.setdefault(spec.hostname, "127.0.0.1")
    lines = []
    for name, address in entries.items():
        if not _HOST_NAME.match(name) or not _ADDRESS.match(address):
            raise SandboxError(f"cannot put {name!r} -> {address!r} in /etc/hosts: not a host name")
        lines.append(f"{address}\t{name}")
    lines.append("::1\tlocalhost ip6-localhost ip6-loopback")
    return "\n".join(lines) + "\n"


def bwrap_argv(spec: HostSpec, *, hosts_fd: int, bwrap: str = "bwrap") -> list[str]:
    """The bwrap command line for `spec`; `hosts_fd` is an open file holding hosts_file(spec).

    Reads the host's folders to plan the mounts but changes nothing."""
    plan = _plan_mounts(spec, hosts_fd)
    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
    argv += ["--unshare-uts", "--hostname", spec.hostname]
    if spec.network == "private":
        argv.append("--unshare-net")
    argv += ["--cap-drop", "ALL"]
    for capability in DOCKER_CAPABILITIES:
        argv += ["--cap-add", capability]
    argv += plan.arguments()
    workdir = posixpath.normpath(spec.image.workdir)
    argv += ["--remount-ro", "/", "--chdir", workdir, "--", *spec.argv]
    return argv


def find_program(spec: HostSpec) -> str | None:
    """Where the sandbox will find `spec.argv[0]` (searching its PATH), or None."""
    plan = _plan_mounts(spec, hosts_fd=-1)
    workdir = posixpath.normpath(spec.image.workdir)
    name = spec.argv[0]
    if "/" in name:
        candidates = [posixpath.join(workdir, name)]
    else:
        search = sandbox_env(spec)["PATH"].split(":")
        candidates = [posixpath.join(workdir, folder or ".", name) for folder in search]
    for candidate in candidates:
        if plan.kind_at(posixpath.normpath(candidate)) == "file":
            return posixpath.normpath(candidate)
    return None


def _plan_mounts(spec: HostSpec, hosts_fd: int) -> _MountPlan:
    plan = _MountPlan.over_host_root()
    # Image content first, then /opt/ml over it (SageMaker's mounts hide what an image has there),
    # then image files below /opt/ml (like /opt/ml/code/train.py) and the staged channels.
    in_opt_ml = [c for c in spec.image.copies if _is_within(c.destination, OPT_ML)]
    for item in spec.image.copies:
        if item not in in_opt_ml:
            plan.copy(item.destination, item.source)
    plan.place(OPT_ML, _Node("bind", source=spec.opt_ml, writable=True))
    for item in in_opt_ml:
        plan.copy(item.destination, item.source)
    # Hidden paths go before the binds, so a bind may show something inside one again (a framework
    # environment inside dockyard's hidden state folder, at its own path).
    for hidden in spec.hidden_paths:
        real = os.path.realpath(hidden)
        kind = plan.kind_at(real)
        if kind == "dir":
            plan.place(real, _Node("tmpfs"))
        elif kind == "file":
            plan.place(real, _Node("bind", source=Path(os.devnull)))
    for source, destination in spec.read_only_binds:
        plan.place(destination, _Node("bind", source=source))
    plan.place("/etc/hosts", _Node("data", fd=hosts_fd))
    workdir = posixpath.normpath(spec.image.workdir)
    if plan.kind_at(workdir) is None:
        plan.make_dir(workdir)
    return plan


class ProcessRuntime(Runtime):
    """Runs each host as a bubblewrap sandbox on this machine."""

    name = "process"

    def __init__(self, bwrap: str = "bwrap") -> None:
        self.bwrap = bwrap

    def start(self, spec: HostSpec, on_output: OutputSink) -> ProcessHost:
        executable = shutil.which(self.bwrap)
        if executable is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        _prepare_mount_points(spec)
        if not spec.argv:
            raise SandboxError(f"no program to run on {spec.hostname}")
        if find_program(spec) is None:
            # bwrap would only say "execvp: No such file or directory" and exit 1.
            where = spec.argv[0] if "/" in spec.argv[0] else "any folder of its PATH"
            raise ImageError(
                f"the program {spec.argv[0]} is not in the image: nothing at {where} "
                f"({sandbox_env(spec)['PATH']}); COPY it there in the Dockerfile "
                "or give its full path"
            )
        with tempfile.TemporaryFile() as hosts:
            hosts.write(hosts_file(spec).encode())
            hosts.flush()
            hosts.seek(0)
            argv = bwrap_argv(spec, hosts_fd=hosts.fileno(), bwrap=executable)
            try:
                process = _SPAWNER.popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=sandbox_env(spec),  # not --setenv: argv is world-readable in /proc
                    pass_fds=(hosts.fileno(),),
                    # Its own process group, so signal() and kill() reach the program's processes;
                    # not bwrap's --new-session, which would take the program out of that group.
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxError(
                    f"could not start the sandbox for {spec.hostname}: {exc}"
                ) from exc
        return ProcessHost(process, on_output)


class ProcessHost(RunningHost):
    """A running sandbox: the bwrap process, and one reader thread for each output stream."""

    def __init__(self, process: subprocess.Popen[bytes], on_output: OutputSink) -> None:
        self.pid = process.pid
        self._process = process
        self._readers = [
            threading.Thread(
                target=_read_lines,
                args=(stream, name, on_output),
                name=f"dockyard-sandbox-{process.pid}-{name}",
                daemon=True,
            )
            for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                return None
        return self.returncode

    @property
    def returncode(self) -> int | None:
        code = self._process.poll()
        if code is None or any(reader.is_alive() for reader in self._readers):
            return None
        # bwrap reports a program killed by signal N as 128+N; bwrap itself killed shows as -N.
        return 128 - code if code < 0 else code

    def signal(self, sig: int) -> None:
        # Signalling bwrap would kill the program at once (--die-with-parent): signal the program's
        # own processes, which share bwrap's process group, instead. Not once bwrap has ended:
        # the group's id may be another sandbox's by then (see kill).
        if self._process.poll() is not None:
            return
        for pid in self._program_processes():
            _send(pid, sig)

    def kill(self) -> None:
        # Once bwrap has ended, so has everything in the sandbox: its PID namespace died with its
        # init (--unshare-pid, --die-with-parent). Nothing is sent then: bwrap's pid, and so its
        # process group's id, may already belong to another sandbox (pids wrap around quickly on
        # a busy machine), and killing "the rest of the group" would kill that one instead.
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def _program_processes(self) -> Iterator[int]:
        """The live processes of bwrap's process group, bwrap's own excepted."""
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    raw = stat.read()
            except OSError:
                continue  # gone meanwhile
            # The command name is in parentheses and may hold spaces: fields follow the last ")".
            command = raw[raw.index(b"(") + 1 : raw.rindex(b")")]
            state, _, group = raw[raw.rindex(b")") + 2 :].split()[:3]
            if int(group) != self.pid or state == b"Z" or command == b"bwrap":
                continue
            yield int(entry.name)


class _Spawner:
    """Starts every sandbox from one daemon thread that lives as long as dockyard's process.

    bwrap's --die-with-parent is PR_SET_PDEATHSIG, which Linux fires when the *thread* that forked
    bwrap ends: a sandbox started from a short-lived worker thread would be killed with it."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], Any]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="dockyard-sandbox-spawner", daemon=True
                )
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((future, lambda: subprocess.Popen(argv, **options)))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, start = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)


_SPAWNER = _Spawner()  # its thread starts on the first sandbox, not at import


def _send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _read_lines(stream: IO[bytes], name: str, on_output: OutputSink) -> None:
    with stream:
        for raw in iter(lambda: stream.readline(_MAX_LINE), b""):
            line = raw.decode("utf-8", errors="replace")
            try:
                on_output(name, line[:-1] if line.endswith("\n") else line)
            except Exception:
                # Keep draining: a reader that stops would block the program on a full pipe.
                logger.exception("output sink failed on a %s line", name)


def _prepare_mount_points(spec: HostSpec) -> None:
    """Check the binds' sources, and make the mount points of those inside the job's folder."""
    if not spec.opt_ml.is_dir():
        raise SandboxError(f"the job folder {spec.opt_ml} for /opt/ml does not exist")
    for source, destination in spec.read_only_binds:
        if not source.exists():
            raise SandboxError(f"cannot show {source} at {destination}: it does not exist")
        if not _is_within(destination, OPT_ML) or destination == OPT_ML:
            continue
        mount_point = spec.opt_ml / posixpath.relpath(destination, OPT_ML)
        if mount_point.exists():
            continue
        if source.is_dir():
            mount_point.mkdir(parents=True, exist_ok=True)
        else:
            mount_point.parent.mkdir(parents=True, exist_ok=True)
            mount_point.touch()


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# -- planning the sandbox's mounts ----------------------------------------------------------------


@dataclass
class _Node:
    """One path of the sandbox's file tree.

    kind: "bind" (a host file or folder; `explicit=False` when it is only seen through a bind of
    a parent), "tmpfs", "dir" (made inside a tmpfs or a writable bind), "symlink", "proc", "dev",
    "data" (a file copied from an fd)."""

    kind: str
    source: Path | None = None
    writable: bool = False
    explicit: bool = True
    target: str = ""
    fd: int = -1
    children: dict[str, _Node] = field(default_factory=dict)

    def is_dir(self) -> bool:
        if self.kind == "bind":
            return self.source is not None and self.source.is_dir()
        return self.kind in ("tmpfs", "dir", "proc", "dev")


class _MountPlan:
    """The sandbox's file tree, built by placing mounts; then emitted as bwrap arguments.

    The root is bwrap's tmpfs with every top-level host folder bound read-only. A mount point that
    does not exist under a read-only bind cannot be made without writing to the host, so that bind
    is replaced by a tmpfs into which each of the folder's entries is bound again (read-only)."""

    def __init__(self, root: _Node) -> None:
        self.root = root

    @classmethod
    def over_host_root(cls) -> _MountPlan:
        root = _Node("tmpfs")
        special = {
            "proc": _Node("proc"),
            "dev": _Node("dev"),
            "tmp": _Node("tmpfs", writable=True),
            "root": _Node("tmpfs", writable=True),  # HOME, private like a container's
        }
        for entry in os.scandir("/"):
            if entry.name not in special:
                node = _host_node(Path(entry.path), explicit=True)
                if node is not None:
                    root.children[entry.name] = node
        root.children.update(special)
        return cls(root)

    def kind_at(self, path: str) -> str | None:
        """What the program would see at `path`: "dir", "file" or None. Changes nothing."""
        resolved = self._resolve(path, create=False)
        if resolved is None:
            return None
        parent, name = resolved
        node = self._child(parent, name) if name else parent
        if node is None:
            return None
        return "dir" if node.is_dir() else "file"

    def place(self, path: str, node: _Node) -> None:
        """Mount (or make) `node` at `path`, hiding whatever was there."""
        resolved = self._resolve(path, create=True)
        assert resolved is not None
        parent, name = resolved
        if not name:
            raise SandboxError("cannot mount over the sandbox's root")
        self._attach(parent, name, node)

    def make_dir(self, path: str) -> None:
        self.place(path, _Node("dir"))

    def copy(self, destination: str, source: Path) -> None:
        """Place an image file or folder; a folder over an existing folder is merged into it."""
        if source.is_symlink():
            self.place(destination, _Node("symlink", target=os.readlink(source)))
        elif source.is_dir() and self.kind_at(destination) == "dir":
            for entry in sorted(source.iterdir()):
                self.copy(posixpath.join(destination, entry.name), entry)
        else:
            self.place(destination, _Node("bind", source=source))

    def arguments(self) -> list[str]:
        arguments: list[str] = []
        for name, child in sorted(self.root.children.items()):
            self._emit(child, "/" + name, arguments)
        return arguments

    def _emit(self, node: _Node, path: str, out: list[str]) -> None:
        if node.kind == "bind" and node.explicit:
            out += ["--bind" if node.writable else "--ro-bind", str(node.source), path]
        elif node.kind in ("tmpfs", "dir", "proc", "dev"):
            out += [f"--{node.kind}", path]
        elif node.kind == "symlink":
            out += ["--symlink", node.target, path]
        elif node.kind == "data":
            out += ["--ro-bind-data", str(node.fd), path]
        for name, child in sorted(node.children.items()):
            self._emit(child, posixpath.join(path, name), out)
        if node.kind == "tmpfs" and not node.writable:
            out += ["--remount-ro", path]

    def _resolve(self, path: str, *, create: bool, hops: int = 0) -> tuple[_Node, str] | None:
        """(folder node, name) for `path` with every symlink followed, as the kernel would.

        With `create`, missing folders on the way are made; without, None when one is missing."""
        if hops > 40:
            raise SandboxError(f"too many symbolic links below {path}")
        parts = [part for part in posixpath.normpath(path).split("/") if part]
        node, here = self.root, "/"
        for index, name in enumerate(parts):
            child = self._child(node, name)
            if child is not None and child.kind == "symlink":
                rest = "/".join(parts[index + 1 :])
                target = posixpath.normpath(posixpath.join(here, child.target, rest))
                return self._resolve(target, create=create, hops=hops + 1)
            if index == len(parts) - 1:
                return node, name
            if child is None:
                if not create:
                    return None
                child = self._attach(node, name, _Node("dir"))
            here = posixpath.join(here, name)
            if not child.is_dir():
                if create:
                    raise SandboxError(f"cannot place {path} in the sandbox: {here} is a file")
                return None
            node = child
        return node, ""

    def _child(self, node: _Node, name: str) -> _Node | None:
        """The existing child `name` of a folder node, host entries seen through a bind included."""
        child = node.children.get(name)
        if child is None and node.kind == "bind" and node.source is not None:
            child = _host_node(node.source / name, explicit=False, writable=node.writable)
            if child is not None:
                node.children[name] = child
        return child

    def _attach(self, parent: _Node, name: str, node: _Node) -> _Node:
        existing = self._child(parent, name)
        # A mount needs an existing mount point of its kind; a folder or symlink must be made.
        # Neither may be written into a read-only host folder, which therefore becomes a tmpfs.
        needs_new_entry = (
            existing is None
            or node.kind in ("dir", "symlink")
            or existing.kind == "symlink"
            or existing.is_dir() != node.is_dir()
        )
        if parent.kind == "bind" and not parent.writable and needs_new_entry:
            self._to_tmpfs(parent)
        elif parent.kind not in ("bind", "tmpfs", "dir"):
            raise SandboxError(f"cannot create {name} inside a {parent.kind} mount")
        elif parent.kind == "bind" and existing is not None and needs_new_entry:
            raise SandboxError(
                f"cannot mount {node.source} over {existing.source}: not the same kind"
            )
        parent.children[name] = node
        return node

    @staticmethod
    def _to_tmpfs(node: _Node) -> None:
        """Turn a read-only folder bind into a tmpfs holding a read-only bind of each entry."""
        assert node.source is not None
        for entry in os.scandir(node.source):
            child = node.children.get(entry.name)
            if child is None:
                child = _host_node(Path(entry.path), explicit=True)
                if child is not None:
                    node.children[entry.name] = child
            elif child.kind == "bind" and not child.explicit:
                child.explicit = True
        node.kind, node.explicit, node.writable = "tmpfs", True, False


def _host_node(path: Path, *, explicit: bool, writable: bool = False) -> _Node | None:
    """The node for a host path as seen through a bind; None when it does not exist."""
    try:
        if path.is_symlink():
            return _Node("symlink", target=os.readlink(path))
        if path.exists():
            return _Node("bind", source=path, explicit=explicit, writable=writable)
    except OSError:
        pass
    return None
