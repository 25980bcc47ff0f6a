"""The process runtime: each host of a job runs in a bubblewrap sandbox on this machine, as an
unprivileged user of its own, in its own namespaces, cgroup, volume and network.

A sandbox is made in two stages. The outer bubblewrap runs as root: it builds the file tree (so it
can show folders under a root-only DOCKYARD_HOME) and the PID, IPC and UTS namespaces, keeping only
the capabilities to change user. setpriv then becomes the host's own uid, and the inner
bubblewrap, now unprivileged, makes the user namespace, drops every capability, sets no_new_privs
and the seccomp filter, and runs the program. Before either, the first process joins the host's
cgroup and network namespace, so nothing of the sandbox ever runs outside its limits."""

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
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dockyard.contract.errors import ImageError, SandboxError
from dockyard.runtimes import cgroups
from dockyard.runtimes.base import (
    FolderCheck,
    HostSpec,
    ImageCheck,
    Log,
    OutputSink,
    Purpose,
    ResolvedImage,
    RunningHost,
    Runtime,
)
from dockyard.runtimes.images import DEFAULT_PATH
from dockyard.runtimes.mount_plan import MountPlan, Node
from dockyard.runtimes.netns import Network
from dockyard.runtimes.process_images import ProcessImage, ProcessImageRef, ProcessImages
from dockyard.runtimes.routed_network import RoutedNetwork
from dockyard.runtimes.run_layer import FOLDER_NAME as RUN_LAYER_FOLDER
from dockyard.runtimes.run_layer import SANDBOX_PATH as SANDBOX_PYTHON
from dockyard.runtimes.run_layer import write_run_layer
from dockyard.runtimes.sandbox_spec import SandboxSpec
from dockyard.runtimes.seccomp import filter_bpf
from dockyard.runtimes.volumes import (
    HostFolder,
    SandboxUsers,
    make_mount_points,
    unmount_all_under,
)

logger = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
SANDBOX_USER = "sandbox"
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_ADDRESS = re.compile(r"^[0-9A-Fa-f.:]+$")
_MAX_LINE = 64 * 1024  # longer lines reach on_output in pieces rather than growing without bound


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The program's whole environment: container defaults, the image's ENV, the platform's."""
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        "HOSTNAME": spec.hostname,
        "LANG": "C.UTF-8",
        **spec.image.env,
        **spec.env,
    }
    if spec.python is not None:
        # The writable run layer goes just before the environment it covers.
        folders = env["PATH"].split(":")
        base = str(spec.python.bin_dir)
        at = folders.index(base) if base in folders else 0
        env["PATH"] = ":".join([*folders[:at], f"{SANDBOX_PYTHON}/bin", *folders[at:]])
    return env


def hosts_file(spec: SandboxSpec) -> str:
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


def passwd_file(uid: int) -> str:
    """/etc/passwd naming only root, nobody and the sandbox's own user (home /root, as in most
    images): programs that look their user up find it, and the host's users stay unlisted."""
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{uid}:{uid}:dockyard sandbox:/root:/bin/sh\n"
    )


def group_file(uid: int) -> str:
    return f"root:x:0:\nnogroup:x:65534:\n{SANDBOX_USER}:x:{uid}:\n"


@dataclass(frozen=True)
class SandboxFiles:
    """Descriptors of the data bwrap copies into the sandbox (-1 when only planning)."""

    hosts: int = -1
    passwd: int = -1
    group: int = -1
    resolv_conf: int = -1
    seccomp: int = -1

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.hosts, self.passwd, self.group, self.resolv_conf, self.seccomp)

    @classmethod
    def open(cls, spec: SandboxSpec) -> SandboxFiles:
        contents = (
            hosts_file(spec).encode(),
            passwd_file(spec.folder.uid).encode(),
            group_file(spec.folder.uid).encode(),
            spec.network.resolv_conf().encode(),
            filter_bpf(),
        )
        return cls(*(_memory_file(data) for data in contents))

    def close(self) -> None:
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)


def _memory_file(data: bytes) -> int:
    fd = os.memfd_create("dockyard-sandbox-file", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def bwrap_argv(
    spec: SandboxSpec,
    files: SandboxFiles,
    *,
    bwrap: str = "bwrap",
    cgroup_folders: Sequence[tuple[Path, str]] = (),
) -> list[str]:
    """The command line of the sandbox for `spec` (cgroup and network joins excepted);
    `cgroup_folders` are its cgroup's folders with their paths under /sys/fs/cgroup.

    Reads the host's folders to plan the mounts but changes nothing."""
    plan = _plan_mounts(spec, files)
    # The sandbox sees its own cgroup (read-only) where the host's would be: programs that size
    # themselves by their memory or CPU limit find them there.
    if cgroup_folders and plan.kind_at("/sys/fs/cgroup") == "dir":
        plan.place("/sys/fs/cgroup", Node("tmpfs"))
        for source, destination in cgroup_folders:
            plan.place(destination, Node("bind", source=source))
    if os.path.isabs(bwrap) and plan.kind_at(bwrap) != "file":
        plan.place(bwrap, Node("bind", source=Path(bwrap)))
    uid = str(spec.folder.uid)
    workdir = posixpath.normpath(spec.image.workdir)
    outer = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    outer += ["--unshare-cgroup-try", "--hostname", spec.hostname]
    # Only what setpriv needs to become the sandbox's user; gone once it has.
    outer += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    outer += [*plan.arguments(), "--remount-ro", "/", "--chdir", "/"]
    become_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    # No --disable-userns: it writes /proc/sys, which is read-only here; the seccomp filter
    # refuses new namespaces instead.
    inner = [bwrap, "--unshare-user", "--uid", uid, "--gid", uid]
    inner += ["--die-with-parent", "--cap-drop", "ALL", "--seccomp", str(files.seccomp)]
    # --dev-bind keeps the outer stage's /dev nodes usable; every other mount there is nodev
    # already, and the inner stage cannot make device nodes.
    inner += ["--dev-bind", "/", "/", "--remount-ro", "/", "--chdir", workdir]
    return [*outer, "--", *become_user, *inner, "--", *spec.argv]


def find_program(spec: SandboxSpec) -> str | None:
    """Where the sandbox will find `spec.argv[0]` (searching its PATH), or None."""
    plan = _plan_mounts(spec, SandboxFiles())
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


def _plan_mounts(spec: SandboxSpec, files: SandboxFiles) -> MountPlan:
    plan = MountPlan.over_host_system()
    # Scratch space is on the host's volume, inside its VolumeSizeInGB, not in memory; placed
    # first, so binds below /tmp (a layer built there) land inside it.
    plan.place("/tmp", Node("bind", source=spec.folder.tmp, writable=True))
    plan.place("/var/tmp", Node("bind", source=spec.folder.tmp, writable=True))
    plan.place("/root", Node("bind", source=spec.folder.home, writable=True))
    if spec.python is not None:
        run_layer = spec.folder.root / RUN_LAYER_FOLDER
        plan.place(SANDBOX_PYTHON, Node("bind", source=run_layer, writable=True))
    # Shared memory counts against the memory limit (tmpfs pages are charged to the cgroup).
    plan.place("/dev/shm", Node("tmpfs", writable=True, size=spec.limits.memory_bytes))
    # Image content first, then /opt/ml over it (SageMaker's mounts hide what an image has there),
    # then image files below /opt/ml (like /opt/ml/code/train.py) and the staged channels.
    in_opt_ml = [c for c in spec.image.copies if _is_within(c.destination, OPT_ML)]
    for item in spec.image.copies:
        if item not in in_opt_ml:
            plan.copy(item.destination, item.source)
    plan.place(OPT_ML, Node("bind", source=spec.folder.opt_ml, writable=True))
    for item in in_opt_ml:
        plan.copy(item.destination, item.source)
    # Hidden paths go before the binds, so a bind may show something inside one again (a framework
    # environment inside dockyard's hidden state folder, at its own path).
    for hidden in spec.hidden_paths:
        real = os.path.realpath(hidden)
        kind = plan.kind_at(real)
        if kind == "dir":
            plan.place(real, Node("tmpfs"))
        elif kind == "file":
            plan.place(real, Node("bind", source=Path(os.devnull)))
    for source, destination in spec.read_only_binds:
        plan.place(destination, Node("bind", source=source))
        # A folder shown at its own path may have been named through a link (an environment in
        # a linked DOCKYARD_HOME): what was built in it knows it by its real path, so it is shown
        # there too.
        real = os.path.realpath(source)
        if destination == str(source) and real != destination:
            plan.place(real, Node("bind", source=Path(real)))
    for path, fd in (
        ("/etc/hosts", files.hosts),
        ("/etc/passwd", files.passwd),
        ("/etc/group", files.group),
        ("/etc/resolv.conf", files.resolv_conf),
    ):
        plan.place(path, Node("data", fd=fd))
    workdir = posixpath.normpath(spec.image.workdir)
    if plan.kind_at(workdir) is None:
        plan.make_dir(workdir)
    return plan


class ProcessRuntime(Runtime):
    """Runs each host as a bubblewrap sandbox on this machine."""

    name = "process"

    def __init__(
        self,
        bwrap: str = "bwrap",
        *,
        uid_base: int = 2_000_000_000,
        slirp4netns: str = "slirp4netns",
        images: ProcessImages | None = None,
    ) -> None:
        self.bwrap = bwrap
        self.slirp4netns = slirp4netns
        self.users = SandboxUsers(uid_base)
        # None only where sandboxes are run from ready SandboxSpecs (the runtime's own tests).
        self._images = images

    @property
    def images(self) -> ProcessImages:
        if self._images is None:
            raise SandboxError("this process runtime was made without an image store")
        return self._images

    def resolve(self, ref: str, readable: FolderCheck) -> ProcessImageRef:
        return self.images.resolve(ref, readable)

    def prepare_image(
        self, image: ResolvedImage, *, code: Path | None, purpose: Purpose, log: Log
    ) -> ProcessImage:
        return self.images.prepare(_own_ref(image), code=code, purpose=purpose, log=log)

    def check_image(self, image: ResolvedImage) -> ImageCheck:
        return self.images.check(_own_ref(image))

    def build_image(self, image: ResolvedImage, log: Log) -> None:
        self.images.build(_own_ref(image), log)

    def release(self, folder: Path) -> None:
        unmount_all_under(folder)

    def recover(self, home: Path) -> None:
        # A server killed with -9 leaves its hosts' volumes mounted and their cgroups empty.
        unmount_all_under(home)
        cgroups.sweep()

    def prepare_host(self, root: Path, volume_bytes: int) -> HostFolder:
        _require_root()
        uid = self.users.acquire()
        try:
            return HostFolder.create(
                root, volume_bytes, uid, on_close=lambda folder: self.users.release(folder.uid)
            )
        except BaseException:
            self.users.release(uid)
            raise

    def create_network(self, *, outside: bool) -> Network:
        _require_root()
        return Network.create(outside=outside, slirp4netns=self.slirp4netns)

    def create_routed_network(
        self,
        *,
        address: str,
        subnet: str,
        hosts: Mapping[str, str],
        outside: bool,
        hosts_cidr: str,
        peer_nodes: Mapping[str, str] = {},  # read, never changed
    ) -> RoutedNetwork:
        """The network of one host of a cluster job on this node, routed to its peers on other
        nodes (see routed_network)."""
        _require_root()
        return RoutedNetwork.create(
            address=address,
            subnet=subnet,
            hosts=hosts,
            outside=outside,
            hosts_cidr=hosts_cidr,
            peer_nodes=peer_nodes,
        )

    def start(self, spec: HostSpec, on_output: OutputSink) -> ProcessHost:
        return self.start_sandbox(sandbox_spec(spec), on_output)

    def start_sandbox(self, spec: SandboxSpec, on_output: OutputSink) -> ProcessHost:
        _require_root()
        executable = shutil.which(self.bwrap)
        if executable is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        _prepare_mount_points(spec)
        if spec.python is not None:
            write_run_layer(spec.python, spec.folder.root)
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
        spec.folder.hand_over()
        files = SandboxFiles.open(spec)  # first: it refuses bad host names before anything is made
        group: cgroups.Cgroup | None = None
        try:
            group = cgroups.Cgroup.create(
                cgroups.leaf_name(f"{spec.hostname}-{spec.folder.uid}"), spec.limits
            )
            argv = [
                # Every signal at its default, as a container's program starts: a server started
                # in the background (`&`: SIGINT, SIGQUIT) or under nohup (SIGHUP) ignores some,
                # and an ignored signal stays ignored across exec.
                _ENV, "--default-signal", "--",
                *cgroups.join_command(group.procs_files),
                "nsenter", f"--net={spec.network.path}", "--",
                *bwrap_argv(spec, files, bwrap=executable, cgroup_folders=group.mounts),
            ]  # fmt: skip
            process = _SPAWNER.popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=sandbox_env(spec),  # not --setenv: argv is world-readable in /proc
                pass_fds=(*files.fds, spec.network.fd),
                # Its own process group, so signal() and kill() reach the program's processes;
                # not bwrap's --new-session, which would take the program out of that group.
                start_new_session=True,
            )
        except BaseException as exc:
            if group is not None:  # nothing runs in it: no sandbox is left behind
                group.remove()
            if isinstance(exc, OSError):
                raise SandboxError(
                    f"could not start the sandbox for {spec.hostname}: {exc}"
                ) from exc
            raise
        finally:
            files.close()
        return ProcessHost(process, on_output, group)


def sandbox_spec(spec: HostSpec) -> SandboxSpec:
    """The sandbox of an engine's HostSpec: the prepared image's folders are shown after the
    engine's binds, and its Python gets a writable run layer."""
    image = spec.image
    if not isinstance(image, ProcessImage):
        raise SandboxError(f"{spec.hostname}: the image was not made ready by the process runtime")
    if not isinstance(spec.folder, HostFolder) or not isinstance(spec.network, Network):
        raise SandboxError(
            f"{spec.hostname}: its folder and network were not made by the process runtime"
        )
    return SandboxSpec(
        image=image.spec,
        argv=spec.argv,
        hostname=spec.hostname,
        folder=spec.folder,
        network=spec.network,
        read_only_binds=[*spec.read_only_binds, *image.binds],
        env=spec.env,
        hosts=spec.hosts,
        hidden_paths=spec.hidden_paths,
        limits=spec.limits,
        python=image.python,
    )


def _own_ref(image: ResolvedImage) -> ProcessImageRef:
    if not isinstance(image, ProcessImageRef):
        raise ImageError(f"{image.ref} was not resolved by the process runtime")
    return image


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "the process runtime runs every sandbox as an unprivileged user of its own, with its "
            "own cgroup, volume and network, which takes root to set up: run the dockyard server "
            "as root (it never runs a job's code as root)"
        )


class ProcessHost(RunningHost):
    """A running sandbox: the bwrap process, its cgroup, and one reader thread for each output
    stream."""

    def __init__(
        self, process: subprocess.Popen[bytes], on_output: OutputSink, group: cgroups.Cgroup
    ) -> None:
        self.pid = process.pid
        self._process = process
        self._group: cgroups.Cgroup | None = group
        self._oom_kills = 0
        self._ending = threading.Lock()
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
        self._end()
        # bwrap reports a program killed by signal N as 128+N; bwrap itself killed shows as -N.
        return 128 - code if code < 0 else code

    @property
    def out_of_memory(self) -> bool:
        """Known once the sandbox has ended: its cgroup is read then."""
        return self.returncode is not None and self._oom_kills > 0

    def _end(self) -> None:
        """Once the sandbox has ended: note its OOM kills and remove its cgroup."""
        with self._ending:
            group, self._group = self._group, None
            if group is not None:
                self._oom_kills = group.oom_kills()
                group.remove()

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


_ENV = shutil.which("env") or "/usr/bin/env"
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


def _prepare_mount_points(spec: SandboxSpec) -> None:
    if not spec.opt_ml.is_dir():
        raise SandboxError(f"the job folder {spec.opt_ml} for /opt/ml does not exist")
    make_mount_points(spec.opt_ml, spec.read_only_binds)


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
