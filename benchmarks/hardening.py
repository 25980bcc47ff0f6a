"""Issue 8's hardening, measured: the no-op job before it (commit 2596399) and after, side by side,
and what a sandbox's own network namespace, cgroup, volume and seccomp filter cost to set up."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from common import HERE, REPO, Samples, interleave, timed_ms
from dockyard.engine.core import Engine
from dockyard.engine.sizing import host_limits
from dockyard.runtimes.cgroups import Cgroup, cgroup_version
from dockyard.runtimes.seccomp import filter_bpf
from dockyard.runtimes.volumes import GIB
from noop_job import NOOP_ENTRYPOINT, make_image
from sandbox_fixture import chain_stages, dockyard_sandbox

BEFORE_COMMIT = "2596399"  # main just before the hardening
VERSIONS = ("before", "after")
ROUNDS = 10
JOBS_PER_ROUND = 5
SETUP_REPS = 20
VOLUME_GIB = (1, 30)  # the benchmark's jobs' VolumeSizeInGB, and the SageMaker SDK's default
DRIVER = HERE / "noop_job.py"

# The setup steps' rows (a step in two parts has a row for each).
NETWORK_ALONE = "network namespace alone (EnableNetworkIsolation): create + close"
SLIRP = "network with slirp4netns (outside access)"
CGROUP = "cgroup (memory, pids, cpu): create + set limits + remove"
SECCOMP = "seccomp filter: one build (filter_bpf, uncached)"


def volume_label(size: int, part: str) -> str:
    if part == "create":
        return f"volume {size} GiB: prepare_host (sparse file, mkfs.ext4, mount)"
    return f"volume {size} GiB: close (umount)"


# -- before and after: the same driver on two source trees ------------------------------------


@contextlib.contextmanager
def worktree(commit: str, folder: Path) -> Iterator[Path]:
    """A detached git worktree of `commit` at `folder`, removed (and unregistered) afterwards."""
    git = ["git", "-C", str(REPO), "worktree"]
    subprocess.run([*git, "add", "--detach", "--quiet", str(folder), commit], check=True)
    try:
        yield folder
    finally:
        if subprocess.run([*git, "remove", "--force", str(folder)]).returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            subprocess.run([*git, "prune"])


class Driver:
    """One noop_job.py process running the dockyard of one source tree (its PYTHONPATH)."""

    def __init__(self, label: str, src: Path, work: Path) -> None:
        self.label = label
        work.mkdir(parents=True)
        self.log = work / "driver.log"
        self._log_file: IO[str] = open(self.log, "w")  # noqa: SIM115 (closed in close())
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("DOCKYARD_")
        }
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), str(work)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, text=True,
            env={**env, "PYTHONPATH": str(src)}, cwd=work,
        )  # fmt: skip
        self.bare = Samples()
        self.job = Samples()
        self.phases: list[dict[str, float]] = []
        try:
            loaded = self._answer()["dockyard"]
            if not loaded.startswith(str(src) + os.sep):
                raise RuntimeError(f"the {label} driver loaded {loaded}, not dockyard from {src}")
        except BaseException:
            self.close()
            raise

    def run(self, count: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.bare.values += answer["bare"]
        self.job.values += answer["job"]
        self.phases += answer["phases"]

    @property
    def overhead(self) -> Samples:
        """Each job minus the bare run just before it (paired, so drift cancels)."""
        return Samples([j - b for j, b in zip(self.job.values, self.bare.values, strict=True)])

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = self.log.read_text().strip().splitlines()[-1:] or ["no message"]
            raise RuntimeError(
                f"the {self.label} driver exited {self.process.returncode}: {tail[0]}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # the driver closes its engine and exits
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


def measure_before_after(work: Path) -> dict[str, Any]:
    """ROUNDS rounds of JOBS_PER_ROUND no-op jobs per version, the versions taking turns (and
    alternating which goes first), each in its own long-lived process."""
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(worktree(BEFORE_COMMIT, work / "before-tree"))
        drivers: list[Driver] = []
        for label, src in zip(VERSIONS, (tree / "src", REPO / "src"), strict=True):
            driver = Driver(label, src, work / label)
            stack.callback(driver.close)  # before the worktree goes
            drivers.append(driver)
        for number in range(ROUNDS):
            for driver in drivers if number % 2 == 0 else reversed(drivers):
                driver.run(JOBS_PER_ROUND)
        return {
            driver.label: {
                "bare": driver.bare,
                "job": driver.job,
                "overhead": driver.overhead,
                "phases": driver.phases,
            }
            for driver in drivers
        }


# -- what each new piece of a sandbox costs, with the current code ------------------------------


def measure_setup(engine: Engine, work: Path) -> dict[str, Samples]:
    """Each step of a job's sandbox setup on its own, interleaved; a step in two parts (make,
    undo) is two variants, the first leaving what it made for the second."""
    runtime = engine.ctx.runtimes.named("process")
    limits = host_limits(engine.settings, "local")
    made: dict[str, Any] = {}
    work.mkdir(parents=True)

    def network_alone() -> float:
        return timed_ms(lambda: runtime.create_network(outside=False).close())

    def put(key: str, make: Callable[[], Any]) -> Callable[[], float]:
        return lambda: timed_ms(lambda: made.__setitem__(key, make()))

    def close_volume(size: int) -> float:
        folder = made.pop(f"volume {size}")
        elapsed = timed_ms(folder.close)  # what a job pays: unmount, the file stays
        folder.remove()  # the volume file and mount point, outside the timing
        return elapsed

    def cgroup() -> float:
        return timed_ms(lambda: Cgroup.create(f"bench-setup-{os.getpid()}", limits).remove())

    variants: dict[str, Callable[[], float]] = {
        NETWORK_ALONE: network_alone,
        f"{SLIRP}: create": put("slirp", lambda: runtime.create_network(outside=True)),
        f"{SLIRP}: close": lambda: timed_ms(made.pop("slirp").close),
        CGROUP: cgroup,
    }
    for size in VOLUME_GIB:
        variants[volume_label(size, "create")] = put(
            f"volume {size}",
            functools.partial(runtime.prepare_host, work / f"volume-{size}", size * GIB),
        )
        variants[volume_label(size, "close")] = functools.partial(close_volume, size)
    # Cached per process: a server builds it for its first sandbox only. Timed uncached here.
    variants[SECCOMP] = lambda: timed_ms(filter_bpf.__wrapped__)
    return interleave(variants, SETUP_REPS)


def measure_chain(engine: Engine, work: Path) -> dict[str, Samples]:
    """The sandbox's process chain, stage by stage, for the no-op job's algo-1."""
    image = make_image(work / "image", NOOP_ENTRYPOINT)
    with dockyard_sandbox(engine, image, work) as sandbox:
        return interleave(chain_stages(sandbox), SETUP_REPS)


def measure_hardening(engine: Engine, work: Path) -> dict[str, Any]:
    return {
        "commit": BEFORE_COMMIT,
        "cgroup_version": cgroup_version(),
        "versions": measure_before_after(work / "before-after"),
        "setup": measure_setup(engine, work / "setup"),
        "chain": measure_chain(engine, work / "chain"),
    }
