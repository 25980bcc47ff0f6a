"""Server processes the kill -9 tests start and stop: whether one is gone, and stopping one."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie not yet reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def stop(pid: int) -> None:
    """SIGTERM, up to 30 s to leave, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not gone(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
