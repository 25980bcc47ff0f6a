"""Kernel-enforced limits (issue 8's review, part 5): processes, memory, CPU and VolumeSizeInGB,
with /tmp inside the volume rather than a RAM disk the size of the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port
from tests.security.sandbox_jobs import run_script_job

LOCAL_1GB = {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1}


@pytest.fixture
def small_server(clean_env: Path) -> Iterator[RunningServer]:
    """A server on a "machine" of 1 CPU and 256 MiB (what `local` instances get) whose hosts
    may have 200 processes."""
    settings = Settings(
        home=clean_env,
        port=free_port(),
        stop_grace_seconds=2.0,
        cpus=1,
        memory_gib=0.25,
        max_processes=200,
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


FORK_BOMB = """python3 -c '
import os, time
children = []
try:
    for _ in range(10000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    print("fork refused", exc.errno)
print("processes", len(children))
for pid in children:
    os.kill(pid, 9)
'"""


def test_a_job_cannot_start_ten_thousand_processes(
    small_server: RunningServer, tmp_path: Path
) -> None:
    # Found: 10,000 processes in one job.
    described, lines = run_script_job(
        small_server, tmp_path, "fork-bomb", FORK_BOMB, ResourceConfig=LOCAL_1GB
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert lines[0] == "fork refused 11"  # EAGAIN: the pids limit
    started = int(lines[1].split()[1])
    assert 100 < started < 200  # the limit counts the job's shell and python too
    assert Settings().max_processes < 10_000  # and the default would have stopped it as well


def test_a_host_over_its_memory_limit_fails_with_an_out_of_memory_reason(
    small_server: RunningServer, tmp_path: Path
) -> None:
    script = "python3 -c 'data = bytearray(1 << 30); print(len(data))'"
    described, lines = run_script_job(
        small_server, tmp_path, "greedy", script, ResourceConfig=LOCAL_1GB
    )
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("OutOfMemoryError: algo-1 ran out of memory")
    assert str(1 << 30) not in lines


def test_cpu_time_is_bounded_by_the_instance_types_vcpus(
    small_server: RunningServer, tmp_path: Path
) -> None:
    """Two busy processes under a 1-vCPU limit get at most one CPU's time between them,
    whatever else the machine is doing (an upper bound the kernel guarantees)."""
    script = """python3 -c '
import os, time
quota = open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read().strip()
period = open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read().strip()
print("quota", quota, period)
start = time.monotonic()
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 2
        while time.monotonic() < end:
            pass
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
wall = time.monotonic() - start
used = os.times().children_user + os.times().children_system
print("ratio", round(used / wall, 3))
'"""
    described, lines = run_script_job(
        small_server, tmp_path, "busy", script, ResourceConfig=LOCAL_1GB
    )
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert lines[0] == "quota 100000 100000"
    assert float(lines[1].split()[1]) <= 1.15


def test_volume_size_bounds_what_a_host_writes_and_tmp_is_inside_it(
    server: RunningServer, tmp_path: Path
) -> None:
    # Found: VolumeSizeInGB=1 did not stop 2 GB in /opt/ml/model; /tmp was a RAM tmpfs the size
    # of the machine.
    script = (
        "set -e; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2; "
        "df --output=fstype /tmp | tail -1; "
        "head -c 600000000 /dev/zero > /tmp/scratch; "
        "head -c 2000000000 /dev/zero > /opt/ml/model/weights"
    )
    described, lines = run_script_job(server, tmp_path, "big", script, ResourceConfig=LOCAL_1GB)
    assert described["TrainingJobStatus"] == "Failed"
    size_kib = int(lines[0])
    assert 0.9 * 2**20 < size_kib <= 2**20  # /tmp is the 1 GiB volume, not the machine's RAM
    assert lines[1] == "ext4"
    reason = described["FailureReason"]
    assert reason.startswith("ClientError: algo-1 filled its volume"), reason
    assert "VolumeSizeInGB (1 GB)" in reason and "No space left on device" in reason
