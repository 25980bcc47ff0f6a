"""Sandbox cgroups against the machine's real hierarchies: cgroup v1 here (memory, pids, cpu),
and cgroup v2 as far as this machine allows (its unified hierarchy has no controllers)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import SandboxError
from dockyard.runtimes import cgroups
from dockyard.runtimes.cgroups import Cgroup, Limits, cgroup_version, join_command

MIB = 1024 * 1024
UNIFIED = Path("/sys/fs/cgroup/unified")


@pytest.fixture
def group(request: pytest.FixtureRequest) -> Iterator[Cgroup]:
    made = Cgroup.create(
        f"test-{request.node.name}", Limits(cpus=0.5, memory_bytes=64 * MIB, pids=32)
    )
    try:
        yield made
    finally:
        made.remove()


def test_this_machine_has_cgroup_v1_controllers() -> None:
    assert cgroup_version() == 1
    for controller in cgroups.V1_CONTROLLERS:
        assert (cgroups.CGROUP_ROOT / controller / "cgroup.procs").exists()


def test_limits_are_written_to_the_v1_controllers(group: Cgroup) -> None:
    memory, pids, cpu = group.folders
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 * MIB
    assert int((pids / "pids.max").read_text()) == 32
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == 50_000
    assert int((cpu / "cpu.cfs_period_us").read_text()) == 100_000
    assert group.mounts[0] == (memory, "/sys/fs/cgroup/memory")


def test_the_join_command_puts_the_process_in_before_it_runs(group: Cgroup) -> None:
    done = subprocess.run(
        [*join_command(group.procs_files), "cat", "/proc/self/cgroup"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    leaf = group.folders[0].name
    for controller in ("memory", "pids", "cpu"):
        assert any(
            controller in line.split(":")[1].split(",") and line.endswith(f"/dockyard/{leaf}")
            for line in lines
        ), (controller, lines)


def test_the_kernel_enforces_memory_and_counts_the_oom_kill(group: Cgroup) -> None:
    done = subprocess.run(
        [*join_command(group.procs_files), "python3", "-c", "b = bytearray(256 << 20)"],
        capture_output=True,
    )
    assert done.returncode == -9  # SIGKILL from the OOM killer
    assert group.oom_kills() >= 1


def test_the_kernel_enforces_the_pids_limit(group: Cgroup) -> None:
    script = (
        "import os, time\nchildren = []\ntry:\n    for _ in range(60):\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(5)\n"
        "            os._exit(0)\n        children.append(pid)\nexcept OSError as exc:\n"
        "    print('refused', exc.errno)\nprint(len(children))\n"
        "for pid in children:\n    os.kill(pid, 9)\n"
    )
    done = subprocess.run(
        [*join_command(group.procs_files), "python3", "-c", script],
        capture_output=True,
        text=True,
    )
    refused, started = done.stdout.splitlines()
    assert refused == "refused 11" and int(started) == 31  # 32 with python itself


def test_removal_and_the_sweep_of_what_a_killed_server_left(group: Cgroup) -> None:
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    leftover = Cgroup.create(f"{dead_pid.pid}-algo-1-7", Limits(pids=8))
    live = subprocess.Popen(["sleep", "30"])  # stands for another server on this machine
    others = Cgroup.create(f"{live.pid}-algo-1-8", Limits(pids=8))
    try:
        assert cgroups.sweep() >= 3  # one folder per controller
        assert not any(folder.exists() for folder in leftover.folders)
        assert all(folder.is_dir() for folder in others.folders)  # not ours to remove
    finally:
        live.kill()
        live.wait()
        others.remove()
    group.remove()
    assert not any(folder.exists() for folder in group.folders)
    assert cgroups.leaf_name("algo-1") == f"{os.getpid()}-algo-1"


def test_a_failing_cgroup_write_stops_the_sandbox_before_it_runs(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cgroup" / "cgroup.procs"
    done = subprocess.run([*join_command([missing]), "echo", "ran"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (125, "")


# -- cgroup v2, as far as this machine allows ----------------------------------------------------


def test_v2_is_detected_and_a_hierarchy_without_controllers_is_refused() -> None:
    """The unified hierarchy here is real but has no controllers (they are bound to v1)."""
    assert cgroup_version(UNIFIED) == 2
    controllers = set((UNIFIED / "cgroup.controllers").read_text().split())
    assert not {"cpu", "memory", "pids"} & controllers
    with pytest.raises(SandboxError, match=r"lacks the cpu, memory, pids controller"):
        Cgroup.create("test-v2", Limits(pids=8), root=UNIFIED)


def test_v2_join_puts_a_process_into_the_unified_group() -> None:
    folder = UNIFIED / "dockyard-test-join"
    folder.mkdir(exist_ok=True)
    try:
        group = Cgroup([folder], 2, Limits())
        done = subprocess.run(
            [*join_command(group.procs_files), "cat", "/proc/self/cgroup"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "0::/dockyard-test-join" in done.stdout.splitlines()
        assert group.mounts == [(folder, "/sys/fs/cgroup")]
    finally:
        folder.rmdir()


def test_v2_limit_files_are_written_in_v2_form(tmp_path: Path) -> None:
    """Not a kernel: a folder shaped like a v2 root, to check what would be written where (the
    kernel's own enforcement is tested on v1 above)."""
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "dockyard").mkdir()
    (tmp_path / "dockyard" / "cgroup.subtree_control").write_text("")
    group = Cgroup.create("job-1", Limits(cpus=1.5, memory_bytes=64 * MIB, pids=99), root=tmp_path)
    folder = tmp_path / "dockyard" / "job-1"
    assert group.folders == [folder]
    assert (folder / "memory.max").read_text() == str(64 * MIB)
    assert (folder / "pids.max").read_text() == "99"
    assert (folder / "cpu.max").read_text() == "150000 100000"
    for control in (tmp_path, tmp_path / "dockyard"):
        assert set((control / "cgroup.subtree_control").read_text().split()) == {
            "+cpu",
            "+memory",
            "+pids",
        }
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert group.oom_kills() == 2
