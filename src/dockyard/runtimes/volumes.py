"""A host's own disk: a loop-mounted ext4 volume of VolumeSizeInGB (nosuid, nodev) that holds its
/opt/ml, /tmp and home folder, owned by the host's unprivileged sandbox user, so the kernel bounds
what a host can write and nothing it writes there is a setuid file or device on the host."""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from dockyard.contract.errors import SandboxError

GIB = 1024**3
OPT_ML = "/opt/ml"
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"
# Below this much free space a failed host is reported as having filled its volume.
FULL_MARGIN_BYTES = 4 * 1024 * 1024


# Where the uids held by running hosts are marked, machine-wide: /run is gone at reboot, as the
# hosts are.
UID_LOCKS = Path("/run/dockyard/sandbox-uids")


def describe_volume_size(size_bytes: int) -> str:
    """A volume's size as a FailureReason names it: in the GB of VolumeSizeInGB (GiB here)."""
    return f"{size_bytes / GIB:g} GB"


class SandboxUsers:
    """Hands out unprivileged host uids, one per running host on this machine, whichever process
    runs it (several dockyard servers, or the host actors of a cluster node, each with a runtime
    of its own): no two sandboxes share a uid, so none can signal, trace or read another's files.
    A uid is held by an exclusive flock on a file of its own under `lock_dir`, which the kernel
    gives back when its holder dies. The uids have no entry in the host's /etc/passwd; each is
    its own group too."""

    def __init__(self, base: int, count: int = 65536, lock_dir: Path = UID_LOCKS) -> None:
        if base < 1000 or base + count > 2**31 - 2:
            raise SandboxError(f"sandbox uid range {base}+{count} is not a range of plain users")
        self.base = base
        self.count = count
        self.lock_dir = lock_dir
        self._held: dict[int, int] = {}  # uid -> the descriptor holding its lock
        self._next = 0
        self._lock = threading.Lock()

    def acquire(self) -> int:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for _ in range(self.count):
                uid = self.base + self._next
                self._next = (self._next + 1) % self.count
                if uid in self._held:
                    continue
                fd = os.open(self.lock_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)  # another process's host has it
                    continue
                self._held[uid] = fd
                return uid
        raise SandboxError(f"all {self.count} sandbox uids are in use")

    def release(self, uid: int) -> None:
        with self._lock:
            fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)


class HostFolder:
    """The folder of one host (`jobs/<job>/hosts/algo-1`, an endpoint instance's folder): the
    mount point of its volume, with `opt_ml/`, `tmp/` and `home/` inside."""

    def __init__(
        self,
        root: Path,
        image: Path,
        size_bytes: int,
        uid: int,
        on_close: Callable[[HostFolder], None] | None = None,
    ) -> None:
        self.root = root
        self.image = image
        self.size_bytes = size_bytes
        self.uid = uid
        self.mounted = False
        self._on_close = on_close

    @property
    def opt_ml(self) -> Path:
        return self.root / "opt_ml"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @classmethod
    def create(
        cls,
        root: Path,
        size_bytes: int,
        uid: int,
        on_close: Callable[[HostFolder], None] | None = None,
    ) -> HostFolder:
        """Make a sparse volume file beside `root`, format it and mount it at `root`."""
        if root.exists():
            unmount(root)
            shutil.rmtree(root)
        root.mkdir(parents=True)
        image = root.with_name(root.name + ".volume")
        image.unlink(missing_ok=True)
        folder = cls(root, image, size_bytes, uid, on_close)
        try:
            with open(image, "wb") as file:
                file.truncate(size_bytes)  # sparse: takes no disk until written
            # No journal and no reserved blocks: scratch space for one run, every byte usable.
            _run(
                ["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0",
                 "-E", f"root_owner={uid}:{uid},nodiscard", str(image)],
                "format the volume",
            )  # fmt: skip
            _run(["mount", "-o", MOUNT_OPTIONS, str(image), str(root)], "mount the volume")
            folder.mounted = True
            for sub in (folder.opt_ml, folder.tmp, folder.home):
                sub.mkdir()
            folder.tmp.chmod(0o1777)
        except BaseException:
            folder.close()
            raise
        return folder

    def hand_over(self) -> None:
        """Give the host's user what dockyard wrote into the volume (config files, code, FIFOs):
        the program owns its whole volume. Links are not followed."""
        chown_tree(self.root, self.uid)

    def free_bytes(self) -> int | None:
        if not self.mounted:
            return None
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def is_full(self) -> bool:
        free = self.free_bytes()
        return free is not None and free < FULL_MARGIN_BYTES

    def describe_size(self) -> str:
        return describe_volume_size(self.size_bytes)

    def close(self) -> None:
        """Unmount the volume; its file stays (bounded by the job folder retention)."""
        if self.mounted or _is_mount_point(self.root):
            unmount(self.root)
        self.mounted = False
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def remove(self) -> None:
        self.close()
        self.image.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


def unmount(path: Path) -> None:
    """Unmount `path` if something is mounted there; lazily when it is still busy."""
    if not _is_mount_point(path):
        return
    result = subprocess.run(["umount", str(path)], capture_output=True, text=True)
    if result.returncode != 0 and _is_mount_point(path):
        _run(["umount", "-l", str(path)], "unmount the volume")


def unmount_all_under(folder: Path) -> int:
    """Unmount every volume below `folder` (what a server killed with -9 left mounted)."""
    prefix = str(folder.resolve()).rstrip("/") + "/"
    points = [p for p in mount_points() if p.startswith(prefix)]
    for point in sorted(points, reverse=True):
        unmount(Path(point))
    return len(points)


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (/proc/self/mountinfo)."""
    points = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as file:
        for line in file:
            # Field 5 is the mount point, with spaces and the like written as octal escapes.
            raw = line.split()[4]
            points.append(raw.encode().decode("unicode_escape"))
    return points


def _is_mount_point(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.ismount(path)
    return False


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"could not {what}: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SandboxError(
            f"could not {what} ({' '.join(argv[:1])} exited {result.returncode}: "
            f"{detail[-1] if detail else 'no message'}); dockyard needs root and loop devices "
            "for hosts' volumes"
        )


def chown_tree(root: Path, uid: int) -> None:
    """`root` and everything below it to `uid` (and the group of that number); links are
    changed themselves, never followed."""
    os.lchown(root, uid, uid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.lchown(os.path.join(folder, name), uid, uid)


def make_mount_points(opt_ml: Path, binds: list[tuple[Path, str]]) -> None:
    """Mount points of binds below /opt/ml, made in the host's folder by dockyard before it
    starts (rather than by bwrap or the engine's runtime, inside a folder the job writes to);
    each source must exist, and a link where a mount point goes is refused."""
    for source, destination in binds:
        if not source.exists():
            raise SandboxError(f"cannot show {source} at {destination}: it does not exist")
        if destination == OPT_ML or not destination.startswith(OPT_ML + "/"):
            continue
        mount_point = opt_ml / posixpath.relpath(destination, OPT_ML)
        if mount_point.is_symlink():
            raise SandboxError(f"cannot show {source} at {destination}: a link is there")
        if mount_point.exists():
            continue
        if source.is_dir():
            mount_point.mkdir(parents=True, exist_ok=True)
        else:
            mount_point.parent.mkdir(parents=True, exist_ok=True)
            mount_point.touch()
