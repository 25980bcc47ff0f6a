"""Sandbox uids are unique machine-wide: two runtimes (two servers, or two host actors of one
cluster node) never hand out the same uid, and a uid held by a process that died is free again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.factory import process_runtime
from dockyard.runtimes.volumes import GIB, SandboxUsers
from dockyard.settings import Settings

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def test_two_allocators_on_one_machine_never_share_a_uid(tmp_path: Path) -> None:
    first = SandboxUsers(3_000_000, count=8, lock_dir=tmp_path)
    second = SandboxUsers(3_000_000, count=8, lock_dir=tmp_path)
    taken = [first.acquire(), second.acquire(), first.acquire(), second.acquire()]
    assert len(set(taken)) == 4
    first.release(taken[0])  # given back: free for anyone
    rest = [second.acquire() for _ in range(5)]
    assert taken[0] in rest
    assert sorted({*taken[1:], *rest}) == list(range(3_000_000, 3_000_008))
    with pytest.raises(SandboxError, match="all 8 sandbox uids are in use"):
        first.acquire()


def test_a_uid_held_by_a_process_that_died_is_free_again(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "3000000")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        users = SandboxUsers(3_000_000, count=4, lock_dir=tmp_path)
        assert users.acquire() == 3_000_001  # 3000000 is another process's
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        again = SandboxUsers(3_000_000, count=4, lock_dir=tmp_path)
        assert again.acquire() == 3_000_000
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_two_process_runtimes_give_their_hosts_different_uids(clean_env: Path) -> None:
    """As two host actors on one node do: each makes its own runtime from the same settings."""
    settings = Settings(home=clean_env)
    folders = []
    try:
        for index in range(2):
            runtime = process_runtime(settings)
            folders.append(runtime.prepare_host(clean_env / f"host-{index}", GIB))
        uids = [folder.root.stat().st_uid for folder in folders]
        assert uids[0] != uids[1], uids
    finally:
        for folder in folders:
            folder.remove()
