"""Archives from users can't write outside the folder they are unpacked into."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.engine.archives import safe_extract


def _archive(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_a_model_archive_extracts_with_its_folders(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "model.tar.gz", _member("model.rds"), _member("code/inference.py")
    )
    safe_extract(archive, tmp_path / "out", "ModelDataUrl s3://b/model.tar.gz")
    assert (tmp_path / "out" / "model.rds").read_bytes() == b"x"
    assert (tmp_path / "out" / "code" / "inference.py").is_file()


@pytest.mark.parametrize(
    "member",
    [
        _member("../escaped.txt"),
        _member("/owned-by-archive.txt"),
        _member("link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard", tarfile.LNKTYPE, "../../outside"),
        _member("device", tarfile.CHRTYPE),
    ],
    ids=["dot-dot", "absolute", "symlink-out", "hardlink-out", "device"],
)
def test_hostile_members_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = _archive(tmp_path / "model.tar.gz", member)
    with pytest.raises(ValidationError, match=r"ModelDataUrl s3://b/m.tar.gz was refused"):
        safe_extract(archive, tmp_path / "out", "ModelDataUrl s3://b/m.tar.gz")
    assert not (tmp_path / "escaped.txt").exists()


def test_not_an_archive_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(ValidationError, match="is not a readable tar archive"):
        safe_extract(bogus, tmp_path / "out", "ModelDataUrl file:///m.tar.gz")
