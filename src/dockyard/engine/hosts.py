"""The hosts of one job: start them (wherever the backend placed them), wait for them, stop them
(SIGTERM, a grace period, SIGKILL) and tell how they ended."""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dockyard.contract import names
from dockyard.contract.opt_ml import OptMl
from dockyard.engine.job_files import read_file
from dockyard.runtimes.base import HostVolume, RunningHost

# Enough of stderr to hold a Python traceback and the lines a toolkit logs after it.
_STDERR_TAIL = 60
_REASON_TAIL_LINES = 10
_SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}
# Enough for a FailureReason's characters at up to 4 bytes each, plus leading blank lines.
_FAILURE_FILE_BYTES = 16 * 1024


@dataclass
class Host:
    name: str
    index: int
    opt_ml: OptMl
    stream: str
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_STDERR_TAIL)
    )
    process: RunningHost | None = None
    folder: HostVolume | None = None  # its volume, once prepared


@dataclass
class Outcome:
    exits: dict[str, int]
    first_failure: Host | None


class HostGroup:
    def __init__(
        self,
        hosts: list[Host],
        grace_seconds: float,
        changed: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        self.hosts = hosts
        self._grace = grace_seconds
        # Set by a host exiting or by a stop request: what wakes `wait`.
        self._changed = changed
        self._log = log

    def start(self, starters: Mapping[str, Callable[[], RunningHost]]) -> None:
        """Start every host (`starters`: how, by host name); if one can't start, the ones
        already started are killed."""
        try:
            for host in self.hosts:
                host.process = starters[host.name]()
        except Exception:
            self.kill()
            for host in self.hosts:
                if host.process is not None:
                    host.process.wait()
            raise
        for host in self.hosts:
            threading.Thread(
                target=self._watch, args=(host,), name=f"wait-{host.name}", daemon=True
            ).start()

    def _watch(self, host: Host) -> None:
        assert host.process is not None
        host.process.wait()
        self._changed.set()

    def kill(self) -> None:
        for host in self.hosts:
            if host.process is not None:
                host.process.kill()

    def wait(
        self,
        max_runtime: float,
        stop: threading.Event,
        on_max_runtime: Callable[[], bool],
    ) -> Outcome:
        """Until every host has exited. A host failing, `stop` being set, or `max_runtime`
        passing (when `on_max_runtime()` agrees) SIGTERMs the others; after the grace period
        whoever is left gets SIGKILL."""
        deadline = time.monotonic() + max_runtime
        exits: dict[str, int] = {}
        terminating_since: float | None = None
        first_failure: Host | None = None
        while True:
            self._changed.clear()
            for host in self.hosts:
                assert host.process is not None
                code = host.process.returncode
                if host.name in exits or code is None:
                    continue
                exits[host.name] = code
                # Exits after we began stopping the hosts are the stop's doing, not failures.
                if code != 0 and first_failure is None and terminating_since is None:
                    first_failure = host
            if len(exits) == len(self.hosts):
                return Outcome(exits=exits, first_failure=first_failure)
            now = time.monotonic()
            wants_stop = stop.is_set() or first_failure is not None
            if not wants_stop and now >= deadline:
                wants_stop = on_max_runtime() or stop.is_set()
            if wants_stop and terminating_since is None:
                terminating_since = now
                self._signal_running(exits, signal.SIGTERM)
            if terminating_since is not None and now - terminating_since >= self._grace:
                for host in self.hosts:
                    if host.name not in exits:
                        self._log(f"{host.name} did not stop within {self._grace:g} s: SIGKILL")
                self._signal_running(exits, signal.SIGKILL)
                terminating_since = float("inf")
            if terminating_since is None:
                wake = deadline
            elif terminating_since != float("inf"):
                wake = terminating_since + self._grace
            else:
                wake = now + 1.0
            self._changed.wait(timeout=max(min(wake - time.monotonic(), 1.0), 0.001))

    def _signal_running(self, exits: Mapping[str, int], sig: int) -> None:
        for host in self.hosts:
            if host.name in exits or host.process is None:
                continue
            if sig == signal.SIGKILL:
                host.process.kill()
            else:
                host.process.signal(sig)


def failure_reason(hosts: list[Host], outcome: Outcome) -> str | None:
    """FailureReason for hosts that did not all exit 0: the first 1024 characters of a
    /opt/ml/output/failure file (any host, lowest first), else which host ended how, with the
    last lines of its stderr. Either way, when the host's stderr ends in a Python traceback that
    the reason does not show, its last frame and exception line are added: the training
    toolkit's own failure file says only `ExecuteUserScriptError ... ErrorMessage ""`. A host
    that hit a kernel limit (memory, its volume) is said so first."""
    failed = [h for h in hosts if outcome.exits.get(h.name, 0) != 0]
    if not failed:
        return None
    for host in failed:
        if host.process is not None and host.process.lost:
            return f"InternalServerError: {host.process.lost}"[: names.MAX_FAILURE_REASON]
    reason = _program_reason(hosts, failed, outcome)
    return _limit_reason(failed, reason) or reason


def _program_reason(hosts: list[Host], failed: list[Host], outcome: Outcome) -> str:
    host = outcome.first_failure or failed[0]
    traceback = last_traceback(list(host.stderr_tail))
    for candidate in hosts:
        text = _failure_file(candidate.opt_ml)
        if text:
            return _with_traceback(text, traceback)
    code = outcome.exits[host.name]
    how = f"exited with code {code}"
    if code > 128 and code - 128 in _SIGNAL_NAMES:
        how += f" (ended by {_SIGNAL_NAMES[code - 128]})"
    reason = f"AlgorithmError: the training program on {host.name} {how}."
    tail = list(host.stderr_tail)[-_REASON_TAIL_LINES:]
    if tail:
        reason += " Last lines of stderr:"
        room = names.MAX_FAILURE_REASON - len(reason) - 1
        # Keep the end of the tail: the exception line comes last.
        reason += "\n" + "\n".join(tail)[-room:]
    return reason


def _failure_file(opt_ml: OptMl) -> str:
    """The host's /opt/ml/output/failure, read without following a link the job left there and
    only when it is a regular file; what is past what a FailureReason can show is not read."""
    relative = opt_ml.failure_file.relative_to(opt_ml.root).as_posix()
    try:
        data = read_file(opt_ml.root, relative, _FAILURE_FILE_BYTES)
    except OSError:
        return ""  # missing, a link, a FIFO, a device node: no failure file
    return data.decode("utf-8", errors="replace").strip()


def _with_traceback(text: str, traceback: str | None) -> str:
    limit = names.MAX_FAILURE_REASON
    if traceback is None or traceback.splitlines()[-1] in text:
        return text[:limit]
    room = limit - len(traceback) - 1
    return f"{text[:room].rstrip()}\n{traceback}"[:limit]


def last_traceback(lines: list[str]) -> str | None:
    """The last Python traceback in `lines`, cut to its last frame and exception line:
    `File "/opt/ml/code/train.py", line 9, in <module>` / `raise ...` / `ValueError: ...`."""
    starts = [
        i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")
    ]
    if not starts:
        return None
    block = lines[starts[-1] + 1 :]
    frames = [i for i, line in enumerate(block) if line.lstrip().startswith('File "')]
    end = next((i for i, line in enumerate(block) if line and not line[0].isspace()), None)
    if end is None or not frames:
        return None
    last = frames[-1] if frames[-1] < end else max(i for i in frames if i < end)
    frame = [line.strip() for line in block[last:end]]
    return "\n".join(["Traceback (last frame):", *frame, block[end].strip()])


def _limit_reason(failed: list[Host], reason: str) -> str | None:
    """The FailureReason when a failed host hit a kernel limit: its memory (the kernel killed a
    process, as SageMaker reports it) or its volume (full, so its writes failed); else None."""
    for host in failed:
        if host.process is not None and host.process.out_of_memory:
            return (
                f"OutOfMemoryError: {host.name} ran out of memory: the kernel killed a process "
                "that went over the instance's memory limit. Please use an instance type with "
                "more memory, or reduce the size of job data processed on an instance."
            )
    for host in failed:
        if host.folder is not None and host.folder.is_full():
            prefix = (
                f"ClientError: {host.name} filled its volume: /opt/ml and /tmp hold at most "
                f"VolumeSizeInGB ({host.folder.describe_size()}); ask for a larger "
                "VolumeSizeInGB or write less. "
            )
            return (prefix + reason)[: names.MAX_FAILURE_REASON]
    return None
