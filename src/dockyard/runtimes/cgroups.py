"""Kernel-enforced limits for one sandbox: a cgroup with CPU, memory and process caps, on cgroup
v1 (one folder per controller) or v2 (one unified folder)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time
from pathlib import Path

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.base import Limits

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "dockyard"
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def cgroup_version(root: Path = CGROUP_ROOT) -> int:
    """2 when `root` is a unified (v2) hierarchy, else 1 (v1 or hybrid: controllers on v1)."""
    return 2 if (root / "cgroup.controllers").exists() else 1


class Cgroup:
    """One sandbox's cgroup. The sandbox's first process writes its pid into `procs_files`
    before it execs anything, so every process of the sandbox is inside from the start."""

    def __init__(self, folders: list[Path], version: int, limits: Limits) -> None:
        self.folders = folders
        self.version = version
        self.limits = limits

    @property
    def procs_files(self) -> list[Path]:
        return [folder / "cgroup.procs" for folder in self.folders]

    @property
    def mounts(self) -> list[tuple[Path, str]]:
        """Each folder with where the sandbox sees it: as a container sees its own cgroup."""
        if self.version == 2:
            return [(self.folders[0], "/sys/fs/cgroup")]
        return [
            (folder, f"/sys/fs/cgroup/{controller}")
            for folder, controller in zip(self.folders, V1_CONTROLLERS, strict=True)
        ]

    @classmethod
    def create(cls, name: str, limits: Limits, root: Path = CGROUP_ROOT) -> Cgroup:
        """Make the cgroup `dockyard/<name>` and set its limits; SandboxError when the machine
        does not let dockyard (it needs root, and the memory, pids and cpu controllers)."""
        leaf = _NAME.sub("_", name)
        version = cgroup_version(root)
        try:
            if version == 2:
                parent = root / PARENT
                parent.mkdir(exist_ok=True)
                _enable_v2_controllers(root, parent)
                folders = [parent / leaf]
            else:
                folders = [root / controller / PARENT / leaf for controller in V1_CONTROLLERS]
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            group = cls(folders, version, limits)
            group._apply()
        except OSError as exc:
            raise SandboxError(
                f"cannot make the cgroup for {name} under {root}: {exc.strerror or exc}; "
                "dockyard runs sandboxes as root with the memory, pids and cpu controllers"
            ) from exc
        return group

    def _apply(self) -> None:
        limits = self.limits
        if self.version == 2:
            folder = self.folders[0]
            if limits.memory_bytes is not None:
                _write(folder / "memory.max", limits.memory_bytes)
                _write_if_present(folder / "memory.swap.max", 0)
            if limits.pids is not None:
                _write(folder / "pids.max", limits.pids)
            if limits.cpus is not None:
                _write(folder / "cpu.max", f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            return
        memory, pids, cpu = self.folders
        if limits.memory_bytes is not None:
            _write(memory / "memory.limit_in_bytes", limits.memory_bytes)
            # memsw is memory + swap: equal to the memory limit means no swap for the sandbox.
            _write_if_present(memory / "memory.memsw.limit_in_bytes", limits.memory_bytes)
        if limits.pids is not None:
            _write(pids / "pids.max", limits.pids)
        if limits.cpus is not None:
            _write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(cpu / "cpu.cfs_quota_us", int(limits.cpus * CPU_PERIOD_US))

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        folder = self.folders[0]
        try:
            text = (folder / name).read_text()
        except OSError:
            return 0
        match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the cgroup once its processes are gone (they may take a moment to be reaped
        after the sandbox's init died)."""
        deadline = time.monotonic() + timeout
        for folder in self.folders:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("could not remove cgroup %s: %s", folder, exc)
                        break
                    time.sleep(0.001)  # usually free within a millisecond or two


def leaf_name(name: str) -> str:
    """`name` prefixed with this server's pid: two servers on one machine never share a cgroup,
    and a sweep can tell which server a cgroup was made by."""
    return f"{os.getpid()}-{name}"


def sweep(root: Path = CGROUP_ROOT) -> int:
    """Remove the empty cgroups that servers no longer running left (after kill -9), never one
    another live server has just made; returns how many."""
    parents = (
        [root / PARENT]
        if cgroup_version(root) == 2
        else [root / controller / PARENT for controller in V1_CONTROLLERS]
    )
    removed = 0
    for parent in parents:
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir() and not _made_by_another_live_server(child.name):
                with contextlib.suppress(OSError):
                    child.rmdir()
                    removed += 1
    return removed


def _made_by_another_live_server(leaf: str) -> bool:
    maker = leaf.split("-", 1)[0]
    if not maker.isdigit() or int(maker) == os.getpid():
        return False
    try:
        os.kill(int(maker), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _enable_v2_controllers(root: Path, parent: Path) -> None:
    wanted = {"memory", "pids", "cpu"}
    available = set((root / "cgroup.controllers").read_text().split())
    missing = wanted - available
    if missing:
        raise SandboxError(
            f"the cgroup v2 hierarchy at {root} lacks the {', '.join(sorted(missing))} "
            "controller(s) dockyard needs to bound sandboxes"
        )
    for folder in (root, parent):
        enabled = set((folder / "cgroup.subtree_control").read_text().split())
        if not wanted <= enabled:
            _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def _write(path: Path, value: object) -> None:
    with open(path, "w", encoding="ascii") as file:
        file.write(str(value))


def _write_if_present(path: Path, value: object) -> None:
    if path.exists():
        _write(path, value)


def join_command(procs_files: list[Path]) -> list[str]:
    """An argv prefix that puts itself into the cgroup, then execs the rest of the argv: the
    sandbox is inside before it can fork (no window where a child escapes its limits)."""
    script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done; '
    script += 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "dockyard-cgroup", *map(str, procs_files), "--"]
