"""One sandbox of the process runtime as algo-1 of a one-host job gets it, with its volume and
network made outside any timing; and its process chain cut after each stage, to time them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import timed_ms
from dockyard.contract.opt_ml import OptMl
from dockyard.engine.core import Engine
from dockyard.engine.sizing import host_limits
from dockyard.runtimes import cgroups
from dockyard.runtimes.images import read_image
from dockyard.runtimes.process import SandboxFiles, bwrap_argv, sandbox_env
from dockyard.runtimes.sandbox_spec import SandboxSpec
from dockyard.runtimes.volumes import GIB

# bwrap's options that add something to the sandbox's file tree (the floor has 4 of them).
MOUNT_OPTIONS = {
    "--bind", "--ro-bind", "--dev-bind", "--tmpfs", "--proc", "--dev", "--dir", "--symlink",
    "--ro-bind-data", "--bind-data", "--remount-ro",
}  # fmt: skip


@dataclass
class Sandbox:
    spec: SandboxSpec
    bwrap: str
    cgroup_folders: list[tuple[Path, str]]
    argv: list[str]  # bwrap_argv(): both bwrap stages, as start() runs them


@contextlib.contextmanager
def dockyard_sandbox(engine: Engine, image: Path, folder: Path) -> Iterator[Sandbox]:
    """The sandbox the process runtime would make for algo-1 of a one-host job of `image`, on a
    1 GiB volume and a network with outside access made once here (a job makes both for each
    run)."""
    runtime = engine.ctx.runtimes.named("process")
    settings = engine.settings
    spec_image = read_image(str(image))
    with contextlib.ExitStack() as stack:
        host_folder = runtime.prepare_host(folder / "hosts" / "algo-1", GIB)
        stack.callback(host_folder.remove)
        network = runtime.create_network(outside=True)
        stack.callback(network.close)
        OptMl(host_folder.opt_ml).create()
        spec = SandboxSpec(
            image=spec_image,
            argv=spec_image.argv(None, None, "train"),
            hostname="algo-1",
            folder=host_folder,
            network=network,
            env={"TRAINING_JOB_NAME": "bench", "AWS_REGION": settings.region},
            hosts=network.host_addresses(["algo-1"]),
            hidden_paths=engine.ctx.forbidden_paths,
            limits=host_limits(settings, "local"),
        )
        # A cgroup like the one start() makes, for the argv's shape: its folders are bound in.
        group = cgroups.Cgroup.create(f"bench-argv-{os.getpid()}", spec.limits)
        stack.callback(group.remove)
        files = SandboxFiles.open(spec)
        stack.callback(files.close)
        bwrap = shutil.which("bwrap") or "bwrap"
        argv = bwrap_argv(spec, files, bwrap=bwrap, cgroup_folders=group.mounts)
        yield Sandbox(spec, bwrap, group.mounts, argv)


# The chain as ProcessRuntime.start runs it: /bin/sh joins the cgroup, nsenter joins the network,
# the outer bwrap (root), setpriv (the host's uid), the inner bwrap (user namespace, seccomp).
CHAIN = {
    "outer": "outer bwrap as root (file tree; PID, IPC, UTS namespaces) → /bin/true",
    "setpriv": "… + setpriv to the host's uid → /bin/true",
    "inner": "… + inner bwrap (user namespace, no capabilities, seccomp) → the program",
    "nsenter": "… + nsenter into the job's network first",
    "cgroup": "… + /bin/sh joining a new cgroup first: the whole chain, as start() runs it",
    "remove": "removing that cgroup once the sandbox has ended (Cgroup.remove)",
}


def chain_stages(sandbox: Sandbox) -> dict[str, Callable[[], float]]:
    """The sandbox's process chain cut after each stage, each a variant to interleave; every run
    gets fresh data files (bwrap reads them to their end) and a fresh cgroup."""
    spec = sandbox.spec
    left: dict[str, Any] = {}

    def stage(name: str) -> Callable[[], float]:
        def run() -> float:
            files = SandboxFiles.open(spec)
            group = cgroups.Cgroup.create(f"bench-chain-{os.getpid()}", spec.limits)
            argv = bwrap_argv(spec, files, bwrap=sandbox.bwrap, cgroup_folders=group.mounts)
            setpriv = argv.index("setpriv")
            if name == "outer":
                argv = [*argv[:setpriv], "/bin/true"]  # argv[setpriv - 1] is bwrap's "--"
            elif name == "setpriv":
                argv = [*argv[: argv.index("--", setpriv) + 1], "/bin/true"]
            if name in ("nsenter", "cgroup"):
                argv = ["nsenter", f"--net={spec.network.path}", "--", *argv]
            if name == "cgroup":
                argv = [*cgroups.join_command(group.procs_files), *argv]
            try:
                return timed_ms(
                    lambda: subprocess.run(
                        argv, stdin=subprocess.DEVNULL, capture_output=True, check=True,
                        env=sandbox_env(spec), pass_fds=(*files.fds, spec.network.fd),
                        start_new_session=True,
                    )
                )  # fmt: skip
            finally:
                files.close()
                if name == "cgroup":
                    left["group"] = group  # for the next variant to remove
                else:
                    group.remove()

        return run

    stages = {CHAIN[name]: stage(name) for name in ("outer", "setpriv", "inner", "nsenter")}
    stages[CHAIN["cgroup"]] = stage("cgroup")
    stages[CHAIN["remove"]] = lambda: timed_ms(left.pop("group").remove)
    return stages
