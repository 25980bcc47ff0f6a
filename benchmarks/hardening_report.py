"""The before/after-hardening part of RESULTS.md: its ratio lines and section 1b's tables."""

from __future__ import annotations

import statistics
from typing import Any

from common import MINUS, TABLE_HEAD, TIMES, Samples, verdict
from hardening import (
    CGROUP,
    JOBS_PER_ROUND,
    NETWORK_ALONE,
    ROUNDS,
    SECCOMP,
    SETUP_REPS,
    SLIRP,
    VERSIONS,
    VOLUME_GIB,
    volume_label,
)
from sandbox_fixture import CHAIN
from training import FLOOR, OVERHEAD_TARGET_MS, paired_difference

ARROW = "\N{RIGHTWARDS ARROW}"


def _setup(hardening: dict[str, Any], label: str) -> float:
    return float(hardening["setup"][label].median)


def phase_medians(runs: list[dict[str, float]]) -> dict[str, float]:
    names: list[str] = []
    for run in runs:
        names += [n for n in run if n not in names]
    return {name: statistics.median(r.get(name, 0.0) for r in runs) for name in names}


def phase_deltas(hardening: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each phase's median before and after, in the order the jobs went through them."""
    before = phase_medians(hardening["versions"]["before"]["phases"])
    after = phase_medians(hardening["versions"]["after"]["phases"])
    return {name: (before.get(name, 0.0), after[name]) for name in after}


def hardening_ratio_lines(hardening: dict[str, Any], noop: dict[str, Any]) -> list[str]:
    versions = hardening["versions"]
    before = versions["before"]["overhead"].median
    after = versions["after"]["overhead"].median
    chain = {name: hardening["chain"][label].median for name, label in CHAIN.items()}
    slirp = _setup(hardening, f"{SLIRP}: create") + _setup(hardening, f"{SLIRP}: close")
    volume = {
        size: sum(_setup(hardening, volume_label(size, part)) for part in ("create", "close"))
        for size in VOLUME_GIB
    }
    # Paired per repetition (the two stages ran one after the other), so drift cancels.
    joining = paired_difference(hardening["chain"], CHAIN["cgroup"], CHAIN["nsenter"]).median
    cgroup = _setup(hardening, CGROUP) + joining + chain["remove"]
    per_job = slirp + cgroup + volume[1]
    floor = noop["samples"][FLOOR].median
    grown = sorted(phase_deltas(hardening).items(), key=lambda item: item[1][0] - item[1][1])
    biggest = ", ".join(f"{name} {a - b:+.1f} ms" for name, (b, a) in grown[:3])
    return [
        f"- **no-op job overhead over bare `/bin/true train`, before {ARROW} after issue 8's "
        f"hardening ({hardening['commit']} vs this tree, side by side in one run): "
        f"{before:.1f} ms {ARROW} {after:.1f} ms = {after / before:.1f}{TIMES} "
        f"(+{after - before:.1f} ms; spreads {versions['before']['overhead'].spread()} and "
        f"{versions['after']['overhead'].spread()}) (target < {OVERHEAD_TARGET_MS:.0f} ms): "
        f"{verdict(after, OVERHEAD_TARGET_MS)}**",
        f"- what a one-host job's sandbox setup costs now (section 1b, medians): its network "
        f"with slirp4netns {slirp:.1f} ms (create + close; a namespace alone, with "
        f"EnableNetworkIsolation, {_setup(hardening, NETWORK_ALONE):.1f} ms); its cgroup "
        f"{cgroup:.1f} ms (making it {_setup(hardening, CGROUP):.1f}, the sandbox joining it "
        f"{joining:.1f}, removing it after the sandbox {chain['remove']:.1f}); its volume "
        f"{volume[1]:.1f} ms at 1 GiB (mkfs.ext4 + mount + umount; {volume[30]:.1f} ms at "
        f"30 GiB, the SageMaker SDK's default); together {per_job:.1f} ms timed one by one, "
        f"against the job's +{after - before:.1f} ms. The two bwrap stages with setpriv take "
        f"{chain['inner']:.1f} ms (the bwrap floor {floor:.1f} ms); the seccomp filter "
        f"({_setup(hardening, SECCOMP):.1f} ms) is built once per server process. The phases "
        f"that grew most: {biggest}",
    ]


def hardening_section(hardening: dict[str, Any]) -> list[str]:
    versions = hardening["versions"]
    rows = [
        versions[version][key].row(f"{version}: {label}")
        for version in VERSIONS
        for key, label in (
            ("job", "job, in-process (create + wait)"),
            ("bare", "bare `/bin/true train` just before it"),
            ("overhead", f"**overhead** (job {MINUS} bare, paired)"),
        )
    ]
    phase_rows = [
        f"| {name} | {before:.1f} | {after:.1f} | {after - before:+.1f} |"
        for name, (before, after) in phase_deltas(hardening).items()
    ]
    setup: dict[str, Samples] = hardening["setup"]
    return [
        "## 1b. The no-op job before and after issue 8's hardening",
        "",
        f"`git worktree add --detach TMP {hardening['commit']}` (main just before the "
        "hardening, removed afterwards); `benchmarks/noop_job.py` runs in two long-lived "
        "processes of the same venv, with PYTHONPATH=TMP/src (before) and this checkout's src/ "
        "(after); each checks which dockyard it loaded. After a warm-up of 2 jobs each, "
        f"{ROUNDS} rounds of {JOBS_PER_ROUND} jobs per version, the versions taking turns "
        "(which goes first alternates), so drift hits both alike. Every job is the no-op job of "
        "section 1 (one host, InstanceType local, VolumeSizeInGB 1, no network isolation), "
        "preceded by a bare `/bin/true train`; its overhead is the difference of the two. "
        "Compare the versions within this section: its after figures differ from section 1's "
        "as far as the machine's load changed between the two parts of the run.",
        "",
        TABLE_HEAD,
        *rows,
        "",
        "Where the time went, phase by phase (medians; from SecondaryStatusTransitions as in "
        "section 1). After the hardening, Downloading includes making each host's volume "
        "(prepare_host), Training includes the job's network (slirp4netns) and the sandbox's "
        "cgroup and process chain, and the last row includes closing the network and unmounting "
        "the volumes.",
        "",
        "| phase | before ms | after ms | after " + MINUS + " before |",
        "|---|---:|---:|---:|",
        *phase_rows,
        "",
        "### What each step of the sandbox setup costs",
        "",
        "With this checkout's code, in the benchmark's process, one step after another "
        f"({SETUP_REPS} repetitions after a warm-up, interleaved). Networks through "
        "`ProcessRuntime.create_network` (`Network.create`; `outside=True` starts slirp4netns "
        "and waits for it to be ready, close ends it), the cgroup through `Cgroup.create` with "
        "the local instance type's limits (cgroup "
        f"v{hardening['cgroup_version']} on this machine) and `remove()`, volumes through "
        "`ProcessRuntime.prepare_host` (a uid, a sparse file, mkfs.ext4 without journal, a loop "
        "mount) and `close()` (umount; the volume file is removed outside the timing). "
        "`filter_bpf()` is cached per process, so a server builds the seccomp filter once, for "
        "its first sandbox; the row times uncached builds (`filter_bpf.__wrapped__`), which do "
        "the same work.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in setup.items()),
        "",
        "### The sandbox's process chain, stage by stage",
        "",
        "The sandbox of section 1's `dockyard's sandbox alone`, its command line cut after each "
        "stage (from `bwrap_argv()`; the join and nsenter prefixes as `ProcessRuntime.start` "
        "puts them), run with `subprocess.run` like the bwrap floor; every run gets fresh data "
        "files and a fresh cgroup, made outside the timing. The last row removes the cgroup the "
        "whole chain ran in, right after it ended: `Cgroup.remove` retries (EBUSY) while "
        "the kernel still counts the sandbox's exited processes in it.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in hardening["chain"].items()),
        "",
    ]
