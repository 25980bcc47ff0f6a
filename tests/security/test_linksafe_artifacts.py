"""model.tar.gz and output.tar.gz: whatever a job leaves in its folders, the archive carries no
setuid bit, device node, FIFO, socket or host uid, and nothing a link points to."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.engine.artifacts import make_tarball, pack_artifacts


def _members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_a_hostile_model_folder_packs_safely(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "job" / "hosts" / "algo-1" / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"w" * 1000)
    (model / "rootsh").write_bytes(b"#!/bin/sh\n")
    (model / "rootsh").chmod(0o4755)
    (model / "sub").chmod(0o2775)
    (model / "sticky").mkdir()
    (model / "sticky").chmod(0o1777)
    os.mknod(model / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    os.mknod(model / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(model / "fifo")
    (model / "passwd").symlink_to("/etc/passwd")
    os.link(model / "weights.bin", model / "sub" / "weights-again.bin")
    os.chown(model / "weights.bin", 4242, 4343)
    caplog.set_level(logging.INFO, logger="dockyard.engine.artifacts")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(model / "sock"))
        make_tarball([model], tmp_path / "model.tar.gz")
    members = _members(tmp_path / "model.tar.gz")

    assert sorted(members) == [
        "passwd",
        "rootsh",
        "sticky",
        "sub",
        "sub/weights-again.bin",
        "weights.bin",
    ]
    for member in members.values():
        assert member.mode & 0o7000 == 0, member.name
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.isreg() or member.isdir() or member.issym() or member.islnk()
    assert members["rootsh"].mode == 0o755
    assert members["sub"].mode == 0o775 and members["sticky"].mode == 0o777
    # A link is stored as a link: /etc/passwd itself is not in the archive.
    assert members["passwd"].issym() and members["passwd"].linkname == "/etc/passwd"
    assert members["passwd"].size == 0
    # Hard links within the folder stay hard links (the first name in order holds the data).
    assert members["sub/weights-again.bin"].isreg()
    assert members["weights.bin"].islnk()
    assert members["weights.bin"].linkname == "sub/weights-again.bin"
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        extracted = tar.extractfile("sub/weights-again.bin")
        assert extracted is not None and extracted.read() == b"w" * 1000

    said = caplog.text  # with no job log given, the lines go to the server's log
    assert "left out" in said
    for name in ("disk", "null", "fifo", "sock"):
        assert name in said
    assert "setuid" in said and "rootsh" in said


def test_folders_the_job_replaced_by_links_are_not_packed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host_folder = tmp_path / "host-secrets"
    host_folder.mkdir()
    (host_folder / "id_rsa").write_text("PRIVATE KEY")
    job = tmp_path / "job"
    algo1 = job / "hosts" / "algo-1"
    algo2 = job / "hosts" / "algo-2"
    for host in (algo1, algo2):
        (host / "model").mkdir(parents=True)
        (host / "output" / "data").mkdir(parents=True)
    (algo2 / "model" / "fine.txt").write_text("fine")
    # algo-1 swapped /opt/ml/model for a link; algo-2 swapped /opt/ml/output.
    shutil.rmtree(algo1 / "model")
    (algo1 / "model").symlink_to(host_folder)
    shutil.rmtree(algo2 / "output")
    (algo2 / "output").symlink_to(host_folder)
    (host_folder / "data").mkdir()
    (host_folder / "data" / "known_hosts").write_text("HOST LIST")
    caplog.set_level(logging.INFO, logger="dockyard.engine.artifacts")
    tarballs = pack_artifacts(
        [algo1 / "model", algo2 / "model"],
        [algo1 / "output" / "data", algo2 / "output" / "data"],
        job,
    )
    assert sorted(_members(tarballs[0])) == ["fine.txt"]
    assert sorted(_members(tarballs[1])) == []
    said = caplog.text
    assert "hosts/algo-1/model" in said and "link" in said
    assert "hosts/algo-2/output/data" in said


def test_merged_hosts_keep_the_archive_as_before(tmp_path: Path) -> None:
    """Lowest host wins on a clash, members sorted, folders included, no leading folder."""
    one = tmp_path / "hosts" / "algo-1" / "model"
    two = tmp_path / "hosts" / "algo-2" / "model"
    (one / "a").mkdir(parents=True)
    (two / "b").mkdir(parents=True)
    (one / "same.txt").write_text("from algo-1")
    (two / "same.txt").write_text("from algo-2")
    (one / "a" / "x.txt").write_text("x")
    (two / "b" / "y.txt").write_text("y")
    make_tarball([one, two], tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        assert tar.getnames() == ["a", "a/x.txt", "b", "b/y.txt", "same.txt"]
        same = tar.extractfile("same.txt")
        assert same is not None and same.read() == b"from algo-1"
        assert tar.getmember("a/x.txt").mode == 0o644
        assert tar.getmember("a").isdir()
