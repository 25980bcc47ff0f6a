"""job_files: what dockyard reads and writes beneath a folder someone else controls is reached
without following links, and only regular files are read."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from dockyard.engine.job_files import (
    RefusedPath,
    open_file,
    open_folder,
    open_resolved,
    read_file,
    walk,
    write_file,
)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "host" / "secret.txt"
    path.parent.mkdir()
    path.write_text("host secret")
    return path


def test_a_link_at_any_component_is_refused(tmp_path: Path, secret: Path) -> None:
    job = tmp_path / "job"
    (job / "output").mkdir(parents=True)
    (job / "output" / "failure").symlink_to(secret)
    with pytest.raises(RefusedPath, match="is a link, not a regular file"):
        read_file(job, "output/failure", 100)
    (job / "output" / "failure").unlink()
    (job / "output").rmdir()
    (job / "output").symlink_to(secret.parent)  # the folder itself swapped for a link
    (secret.parent / "failure").write_text("host file named like the job's")
    with pytest.raises(RefusedPath, match="output is a link, not a folder"):
        read_file(job, "output/failure", 100)


def test_only_regular_files_are_read_and_a_fifo_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    done = threading.Event()

    def attempt() -> None:
        with pytest.raises(RefusedPath, match="is a FIFO"):
            open_file(tmp_path, "fifo")
        done.set()

    # A plain open() of a FIFO with no writer never returns: this must, at once.
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    assert done.wait(10), "opening a FIFO blocked"
    with pytest.raises(RefusedPath, match="is a folder"):
        open_file(tmp_path, "folder")


def test_device_nodes_and_sockets_are_not_opened(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", 0o666 | 0o020000, os.makedev(1, 3))  # as /dev/null
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(RefusedPath, match="is a device node"):
            open_file(tmp_path, "null")
        with pytest.raises(RefusedPath, match="is a socket"):
            open_file(tmp_path, "sock")


def test_reads_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    assert read_file(tmp_path, "big", 10) == b"x" * 10


def test_dot_dot_and_absolute_names_are_refused(tmp_path: Path) -> None:
    for bad in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(RefusedPath):
            open_file(tmp_path, bad)


def test_open_resolved_refuses_a_link_swapped_into_the_path(tmp_path: Path, secret: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.csv").write_text("mine")
    checked = (data / "sub" / "x.csv").resolve()
    with open_resolved(checked) as handle:
        assert handle.read() == b"mine"
    # After the check, the owner of the folder swaps a parent for a link to the host.
    (data / "sub" / "x.csv").unlink()
    (data / "sub").rmdir()
    (data / "sub").symlink_to(secret.parent)
    (secret.parent / "x.csv").write_text("host data")
    with pytest.raises(RefusedPath):
        open_resolved(checked)


def test_walk_reports_links_and_never_enters_them(tmp_path: Path, secret: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(b"w")
    (folder / "host").symlink_to(secret.parent)
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x").write_text("x")
    fd = open_folder(folder)
    try:
        found = {entry.relative: entry for entry in walk(fd)}
        left: list[tuple[str, str]] = []
        visible = [e.relative for e in walk(fd, hidden=False, left_out=lambda *a: left.append(a))]
    finally:
        os.close(fd)
    assert sorted(found) == [
        ".hidden",
        ".hidden/x",
        "host",
        "passwd",
        "sub",
        "sub/weights.bin",
    ]
    assert found["host"].is_link and found["host"].link == str(secret.parent)
    assert found["passwd"].is_link and found["passwd"].link == "/etc/passwd"
    assert found["sub/weights.bin"].is_file
    assert "host/secret.txt" not in found
    assert visible == ["host", "passwd", "sub", "sub/weights.bin"]
    assert left == [(".hidden", "hidden")]


def test_walk_stops_at_the_depth_limit(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    path = deep
    for _ in range(6):
        path = path / "d"
    path.mkdir(parents=True)
    (path / "f").write_text("f")
    left: list[tuple[str, str]] = []
    fd = open_folder(deep)
    try:
        found = [e.relative for e in walk(fd, max_depth=3, left_out=lambda *a: left.append(a))]
    finally:
        os.close(fd)
    assert found == ["d", "d/d", "d/d/d"]
    assert left == [("d/d/d", "deeper than 3 folders")]


def test_write_file_replaces_a_planted_link_instead_of_writing_through(
    tmp_path: Path, secret: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-1.csv.out").symlink_to(secret)
    hard = out / "part-2.csv.out"
    os.link(secret, hard)
    write_file(out, "part-1.csv.out", lambda f: f.write(b"prediction 1"))
    write_file(out, "part-2.csv.out", lambda f: f.write(b"prediction 2"))
    assert secret.read_text() == "host secret"
    assert not (out / "part-1.csv.out").is_symlink()
    assert (out / "part-1.csv.out").read_bytes() == b"prediction 1"
    assert hard.read_bytes() == b"prediction 2"
    assert sorted(p.name for p in out.iterdir()) == ["part-1.csv.out", "part-2.csv.out"]


def test_write_file_makes_folders_but_never_through_a_link(tmp_path: Path, secret: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_file(out, "a/b/c.out", lambda f: f.write(b"c"))
    assert (out / "a" / "b" / "c.out").read_bytes() == b"c"
    (out / "evil").symlink_to(secret.parent)
    with pytest.raises(RefusedPath, match="evil is a link"):
        write_file(out, "evil/planted.out", lambda f: f.write(b"x"))
    assert not (secret.parent / "planted.out").exists()
