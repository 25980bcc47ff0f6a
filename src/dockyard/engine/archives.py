"""Unpacking archives that users hand in (sourcedir.tar.gz, model.tar.gz), safely and within
bounds: what they expand to, how many members they hold, how much they grow."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.contract.errors import ValidationError

# Below this, an archive is never refused for how much it grows: small archives of text can
# compress very well, and what they expand to can't hurt.
RATIO_FLOOR_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """DOCKYARD_ARCHIVE_MAX_BYTES, _MAX_MEMBERS and _MAX_RATIO."""

    max_bytes: int = 256 * 1024**3
    max_members: int = 1_000_000
    max_ratio: float = 100.0

    def allowed_bytes(self, compressed: int) -> tuple[int, str]:
        """What an archive of `compressed` bytes may expand to, and the setting that says so."""
        by_ratio = max(RATIO_FLOOR_BYTES, int(self.max_ratio * compressed))
        if by_ratio < self.max_bytes:
            return by_ratio, "DOCKYARD_ARCHIVE_MAX_RATIO"
        return self.max_bytes, "DOCKYARD_ARCHIVE_MAX_BYTES"


def safe_extract(
    archive: Path | BinaryIO, dest: Path, what: str, limits: ArchiveLimits | None = None
) -> None:
    """Extract a tar archive (gzip or not; a path, or a file already opened) into `dest`,
    refusing absolute names, and (tarfile's "data" filter) `..`, links that leave `dest` and
    device files: an archive can't write outside `dest`. Each member's header is checked
    against `limits` before the member is written, and tarfile writes exactly the size the
    header gives, so the bounds hold while it writes. `what` names the archive in the error
    ("ModelDataUrl s3://b/model.tar.gz")."""
    limits = limits or ArchiveLimits()
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(archive, Path):
        compressed = archive.stat().st_size
    else:
        compressed = os.fstat(archive.fileno()).st_size
    try:
        with _open(archive) as tar:
            checked = _within_limits(tar, compressed, limits, what)
            tar.extractall(dest, members=checked, filter=_refuse_absolute_then_data)
    except tarfile.FilterError as exc:
        raise ValidationError(f"{what} was refused: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ValidationError(f"{what} is not a readable tar archive: {exc}") from None


def _open(archive: Path | BinaryIO) -> tarfile.TarFile:
    if isinstance(archive, Path):
        return tarfile.open(archive)
    return tarfile.open(fileobj=archive)


def _within_limits(
    tar: tarfile.TarFile, compressed: int, limits: ArchiveLimits, what: str
) -> Iterator[tarfile.TarInfo]:
    """The members, read one header at a time, each passed on only when the archive is still
    within bounds with it counted."""
    allowed, setting = limits.allowed_bytes(compressed)
    sizes: dict[str, int] = {}
    expanded = 0
    # Lazily: the next header is read only when this member is written.
    for count, member in enumerate(tar, start=1):
        if count > limits.max_members:
            raise ValidationError(
                f"{what} was refused: it holds more than {limits.max_members:,} members "
                "(DOCKYARD_ARCHIVE_MAX_MEMBERS); if the archive is genuine, raise that setting "
                "where the server starts"
            )
        if member.isreg():
            sizes[member.name] = member.size
            expanded += member.size
        elif member.islnk():
            # A hard link is copied when the link can't be made: it counts as its target.
            expanded += sizes.get(member.linkname, 0)
        if expanded > allowed:
            raise ValidationError(
                f"{what} was refused: {_too_big(allowed, setting, compressed, limits)}"
            )
        yield member


def _too_big(allowed: int, setting: str, compressed: int, limits: ArchiveLimits) -> str:
    if setting == "DOCKYARD_ARCHIVE_MAX_RATIO":
        return (
            f"it expands to more than {_size(allowed)}, over {limits.max_ratio:g} times its "
            f"compressed size of {_size(compressed)}, as a decompression bomb does; if the "
            f"archive is genuine, raise {setting} where the server starts"
        )
    return (
        f"it expands to more than {_size(allowed)} ({setting}); if the archive is genuine, "
        "raise that setting where the server starts"
    )


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"


def _refuse_absolute_then_data(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    # The data filter would quietly strip a leading "/"; an archive built with absolute names
    # was not made for this, so it is refused rather than guessed at.
    if member.name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, path)
