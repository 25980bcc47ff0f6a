"""Unpacking archives that users hand in (sourcedir.tar.gz, model.tar.gz), safely."""

from __future__ import annotations

import tarfile
from pathlib import Path

from dockyard.contract.errors import ValidationError


def safe_extract(archive: Path, dest: Path, what: str) -> None:
    """Extract a tar archive (gzip or not) into `dest`, refusing absolute names, and (tarfile's
    "data" filter) `..`, links that leave `dest` and device files: an archive can't write outside
    `dest`. `what` names the archive in the error ("ModelDataUrl s3://b/model.tar.gz")."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter=_refuse_absolute_then_data)
    except tarfile.FilterError as exc:
        raise ValidationError(f"{what} was refused: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise ValidationError(f"{what} is not a readable tar archive: {exc}") from None


def _refuse_absolute_then_data(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    # The data filter would quietly strip a leading "/"; an archive built with absolute names
    # was not made for this, so it is refused rather than guessed at.
    if member.name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, path)
