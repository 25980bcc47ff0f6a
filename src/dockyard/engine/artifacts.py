"""Job outputs: model.tar.gz and output.tar.gz from the hosts' folders, members at the root,
read without following anything the job left (links, FIFOs, devices) and carrying no
setuid bit, device node or host uid."""

from __future__ import annotations

import logging
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.engine.job_files import Entry, RefusedPath, open_file, open_folder, walk
from dockyard.storage.objects import ObjectStore, S3Uri

logger = logging.getLogger(__name__)

Log = Callable[[str], None]
# Names listed in one "left out" line; the rest are counted.
_NAMES_SHOWN = 10


@dataclass(frozen=True)
class _Member:
    host: int  # index into the folder descriptors
    entry: Entry


class _Report:
    """What was left out or changed while packing, told in a few lines of the job's log."""

    def __init__(self, archive: str, log: Log) -> None:
        self._archive = archive
        self._log = log
        self.left_out: list[str] = []
        self.stripped: list[str] = []

    def leave_out(self, relative: str, why: str) -> None:
        self.left_out.append(f"{relative} ({why})")

    def flush(self) -> None:
        for items, what in (
            (self.left_out, "left out"),
            (self.stripped, "packed without setuid/setgid/sticky bits"),
        ):
            if items:
                shown = ", ".join(items[:_NAMES_SHOWN])
                more = f" and {len(items) - _NAMES_SHOWN} more" if len(items) > _NAMES_SHOWN else ""
                self._log(f"{self._archive}: {len(items)} {what}: {shown}{more}")


def _open_host_folders(
    folders: list[Path], beneath: Path | None, report: _Report
) -> list[int | None]:
    """A descriptor per folder, reached from `beneath` (a folder the job can't change) without
    following links; None for a folder that is missing or that the job replaced."""
    opened: list[int | None] = []
    for folder in folders:
        base = beneath if beneath is not None else folder.parent
        try:
            opened.append(open_folder(base, folder.relative_to(base).as_posix()))
        except FileNotFoundError:
            opened.append(None)
        except RefusedPath as exc:
            report.leave_out(folder.relative_to(base).as_posix(), f"nothing packed: {exc}")
            opened.append(None)
    return opened


def _members(fds: list[int | None], report: _Report) -> dict[str, _Member]:
    """Relative path → what is there, over every host's folder. When hosts write the same name,
    the lowest-numbered host wins (SageMaker says they "overwrite each other"; algo-1 is the
    host that by convention saves the model, so it is the one to keep)."""
    members: dict[str, _Member] = {}
    for index in reversed(range(len(fds))):
        fd = fds[index]
        if fd is None:
            continue
        for entry in walk(fd, left_out=report.leave_out):
            members[entry.relative] = _Member(index, entry)
    return dict(sorted(members.items()))


def _tarinfo(relative: str, entry: Entry, report: _Report) -> tarfile.TarInfo | None:
    status = entry.status
    info = tarfile.TarInfo(relative)
    info.mtime = status.st_mtime  # as tarfile.gettarinfo has it
    # SageMaker's artifacts carry no uid of the machine that trained them.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(status.st_mode) & 0o777
    if stat.S_IMODE(status.st_mode) & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        report.stripped.append(relative)
    if entry.is_file:
        info.type = tarfile.REGTYPE
        info.size = status.st_size
    elif entry.is_folder:
        info.type = tarfile.DIRTYPE
    elif entry.is_link:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link or ""
    else:
        report.leave_out(relative, entry.kind)
        return None
    return info


def make_tarball(
    folders: list[Path], dest: Path, *, beneath: Path | None = None, log: Log | None = None
) -> int:
    """Write a gzip tar of the merged folders' contents (no leading folder). Each folder is
    reached from `beneath` (default: its parent) without following links, and nothing in it is
    followed: links are stored as links, hard links within the archive as hard links; FIFOs,
    sockets and device nodes are left out, setuid/setgid/sticky bits dropped, owners root.
    What was left out or changed is told to `log`. Returns the archive's size."""
    report = _Report(dest.name, log or (lambda line: logger.info("%s", line)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fds = _open_host_folders(folders, beneath, report)
    try:
        members = _members(fds, report)
        seen: dict[tuple[int, int], str] = {}
        with tarfile.open(dest, "w:gz", compresslevel=6) as archive:
            for relative, member in members.items():
                info = _tarinfo(relative, member.entry, report)
                if info is None:
                    continue
                status = member.entry.status
                inode = (status.st_dev, status.st_ino)
                if info.isreg() and status.st_nlink > 1 and inode in seen:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, seen[inode], 0
                if not info.isreg():
                    archive.addfile(info)
                    continue
                fd = fds[member.host]
                assert fd is not None
                if _add_file(archive, info, fd, relative, report) and status.st_nlink > 1:
                    seen[inode] = relative
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)
    report.flush()
    return dest.stat().st_size


def _add_file(
    archive: tarfile.TarFile, info: tarfile.TarInfo, folder: int, relative: str, report: _Report
) -> bool:
    try:
        handle = open_file(folder, relative)
    except (RefusedPath, FileNotFoundError) as exc:
        report.leave_out(relative, str(exc))
        return False
    with handle:
        # The size of what was opened, not of what was listed: tar needs it exactly.
        info.size = os.fstat(handle.fileno()).st_size
        archive.addfile(info, handle)
    return True


def pack_artifacts(
    model_folders: list[Path],
    output_folders: list[Path],
    work_dir: Path,
    log: Log | None = None,
) -> list[Path]:
    """model.tar.gz from every host's /opt/ml/model, output.tar.gz from /opt/ml/output/data.
    The folders lie beneath `work_dir` (the job's folder), which the job can't change: every
    component below it is opened without following links."""
    model_tar = work_dir / "model.tar.gz"
    output_tar = work_dir / "output.tar.gz"
    inside = all(folder.is_relative_to(work_dir) for folder in model_folders + output_folders)
    beneath = work_dir if inside else None
    make_tarball(model_folders, model_tar, beneath=beneath, log=log)
    make_tarball(output_folders, output_tar, beneath=beneath, log=log)
    return [model_tar, output_tar]


def upload_artifacts(
    store: ObjectStore,
    output_path: str,
    job_name: str,
    tarballs: list[Path],
    progress: Callable[[int], None] | None = None,
) -> str:
    """Move the archives to `<S3OutputPath>/<job>/output/`; return the model's URI."""
    base = S3Uri.parse(output_path).join(job_name, "output")
    store.create_bucket(base.bucket)
    for tarball in tarballs:
        target = base.join(tarball.name)
        store.put_file(target.bucket, target.key, tarball, progress=progress, move=True)
    return str(base.join("model.tar.gz"))


def model_artifacts_uri(output_path: str, job_name: str) -> str:
    return str(S3Uri.parse(output_path).join(job_name, "output", "model.tar.gz"))
