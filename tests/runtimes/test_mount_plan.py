"""The mount plan's bwrap arguments for links: a host link seen through a bound folder is there
already and is followed; it is made only where its folder became a tmpfs."""

from __future__ import annotations

from pathlib import Path

from dockyard.runtimes.mount_plan import MountPlan, Node


def test_a_link_seen_through_a_bind_is_followed_not_made_again(tmp_path: Path) -> None:
    # bwrap would fail with "Can't make symlink ...: File exists" if it were asked to make it.
    (tmp_path / "real" / "env").mkdir(parents=True)
    (tmp_path / "link").symlink_to("real")
    plan = MountPlan(Node("tmpfs"))
    plan.place(str(tmp_path), Node("bind", source=tmp_path, writable=True))
    plan.place(str(tmp_path / "link" / "env"), Node("bind", source=tmp_path / "real" / "env"))
    arguments = plan.arguments()
    assert "--symlink" not in arguments
    env = str(tmp_path / "real" / "env")
    assert arguments[-3:] == ["--ro-bind", env, env]


def test_a_link_in_a_folder_made_a_tmpfs_is_made(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    plan = MountPlan(Node("tmpfs"))
    plan.place(str(tmp_path), Node("bind", source=tmp_path))  # read-only
    plan.place(str(tmp_path / "new"), Node("dir"))  # a new entry: the folder becomes a tmpfs
    arguments = plan.arguments()
    at = arguments.index("--symlink")
    assert arguments[at : at + 3] == ["--symlink", "real", str(tmp_path / "link")]
