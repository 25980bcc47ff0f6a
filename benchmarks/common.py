"""What every benchmark shares: samples and their statistics, interleaving, ports, the machine."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
MIB = 1024 * 1024
TIMES = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"

# -- statistics --------------------------------------------------------------------------------


@dataclass
class Samples:
    """Durations in milliseconds of one variant."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def quantile(self, decile: int) -> float:
        if len(self.values) < 2:
            return self.values[0]
        return statistics.quantiles(self.values, n=10, method="inclusive")[decile - 1]

    def quantile_at(self, fraction: float) -> float:
        """The nearest-rank quantile (0.99 is p99): a value that was measured."""
        ordered = sorted(self.values)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]

    def spread(self) -> str:
        """p10..p90, or min..max when there are too few samples for deciles."""
        if len(self.values) < 10:
            return f"min..max {min(self.values):.1f}..{max(self.values):.1f}"
        return f"p10..p90 {self.quantile(1):.1f}..{self.quantile(9):.1f}"

    def row(self, label: str) -> str:
        v = self.values
        deciles = f"{self.quantile(1):.1f} | {self.quantile(9):.1f}" if len(v) >= 10 else "— | —"
        return (
            f"| {label} | {self.median:.1f} | {deciles} | {min(v):.1f} | {max(v):.1f} | {len(v)} |"
        )


TABLE_HEAD = (
    "| variant | median ms | p10 | p90 | min | max | N |\n|---|---:|---:|---:|---:|---:|---:|"
)


def interleave(variants: dict[str, Callable[[], float]], reps: int) -> dict[str, Samples]:
    """Run every variant once to warm up, then A, B, C, A, B, C, … so drift hits all alike."""
    for run in variants.values():
        run()
    results = {name: Samples() for name in variants}
    for _ in range(reps):
        for name, run in variants.items():
            results[name].values.append(run())
    return results


def phase_table(runs: Sequence[Any]) -> str:
    """Each phase of `runs` (objects with .phases, phase → ms) as a table row."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run.phases if n not in names]
    lines = [TABLE_HEAD]
    for phase in names:
        samples = Samples([r.phases[phase] for r in runs if phase in r.phases])
        lines.append(samples.row(phase))
    return "\n".join(lines)


def timed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def verdict(value: float, target: float) -> str:
    return "PASS" if value < target else "FAIL"


# -- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
        except OSError:
            return "?"
        return (
            (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else "?"
        )

    memory = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / MIB:.1f} GiB"
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as cpuinfo:
        cpu = next(line for line in cpuinfo if line.startswith("model name")).split(":", 1)[1]
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu.strip(),
        "memory": memory,
        "kernel": platform.release(),
        "bwrap": first_line(["bwrap", "--version"]),
        "python": platform.python_version(),
        "commit": first_line(["git", "rev-parse", "--short", "HEAD"])
        + (" (work tree has uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {seconds} s")
