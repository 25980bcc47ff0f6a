"""The training benchmarks' part of RESULTS.md: ratios and verdicts, then the tables."""

from __future__ import annotations

import statistics
from typing import Any

from common import MINUS, TABLE_HEAD, TIMES, phase_table, verdict
from hardening_report import hardening_ratio_lines, hardening_section
from noop_job import BUCKET
from training import (
    CHANNEL_OBJECT_BYTES,
    CHANNEL_OBJECTS,
    COUNT_PROGRAM,
    FLOOR,
    FLOOR_ARGV,
    MIB,
    OVERHEAD_TARGET_MS,
    S3_OBJECT_BYTES,
    S3_OBJECTS,
    SANDBOX,
    STAGING_TARGET_MS,
    JobRun,
    paired_difference,
)


def phase_median(runs: list[JobRun], phase: str) -> float:
    return statistics.median(r.phases.get(phase, 0.0) for r in runs)


def ratio_lines(noop: dict[str, Any], staging: dict[str, Any]) -> list[str]:
    """The headline: each measurement as a ratio to its baseline, and each target's verdict."""
    n = noop["samples"]
    bare = n["bare `/bin/true train`"].median
    floor = n[FLOOR].median
    sandbox = n[SANDBOX].median
    job = n["dockyard job, in-process (create + wait)"].median
    http = n["dockyard job, HTTP API (boto3, poll 5 ms)"].median
    describe = n["one DescribeTrainingJob round trip (boto3)"].median
    calls, calls_ms, statements, sql_ms = (
        statistics.median(column) for column in zip(*noop["metadata"], strict=True)
    )
    overhead, engine_ms = job - bare, job - sandbox
    tail = phase_median(noop["in_process"], "(Completed → returned)")
    return [
        f"- **no-op job end to end (in-process): {job:.1f} ms = {job / floor:.1f}{TIMES} the bwrap "
        f"floor ({floor:.1f} ms); overhead over bare ({bare:.1f} ms): {overhead:.1f} ms "
        f"(target < {OVERHEAD_TARGET_MS:.0f} ms): {verdict(overhead, OVERHEAD_TARGET_MS)}**",
        f"- user code starts within ~{engine_ms:.1f} ms of dockyard's own sandbox (job {MINUS} "
        f"sandbox alone) and ~{job - floor:.1f} ms of the bwrap floor (job {MINUS} floor): "
        f"{engine_ms / job:.0%} of the job is outside the sandbox's start and wait (the engine, "
        f"the host's volume and network), {sandbox / job:.0%} the sandbox",
        f"- dockyard's sandbox alone (cgroup, data files, nsenter, two bwrap stages, on a volume "
        f"and network made beforehand): {sandbox:.1f} ms = {sandbox / floor:.1f}{TIMES} the "
        f"bwrap floor (+{sandbox - floor:.1f} ms; its two bwrap stages have "
        f"{noop['sandbox_mounts']} mount operations, the floor's 4)",
        f"- the engine's metadata per no-op job: {calls:.0f} MetadataStore calls taking "
        f"{calls_ms:.1f} ms = {calls_ms / job:.0%} of the job (summed over threads), of which "
        f"{sql_ms:.1f} ms executing {statements:.0f} SQL statements; the rest is SQLAlchemy "
        "sessions, ORM and commits",
        f"- through the HTTP API (boto3 create, then describe every 5 ms): {http:.1f} ms = "
        f"{http / job:.1f}{TIMES} the in-process job ({http - job:+.1f} ms: API, polling and a "
        f"client sharing the 2 cores, less what in-process wait() also waits for after Completed "
        f"and the client does not, {tail:.1f} ms: closing the network, unmounting the volume; one "
        f"describe round trip is {describe:.1f} ms); overhead over bare {http - bare:.1f} ms "
        f"(target < {OVERHEAD_TARGET_MS:.0f} ms): {verdict(http - bare, OVERHEAD_TARGET_MS)}",
        *staging_ratio_lines(staging),
    ]


def staging_ratio_lines(staging: dict[str, Any]) -> list[str]:
    s = staging["samples"]
    replicated = paired_difference(s, "1 GiB FullyReplicated, 1 host", "no channel, 1 host")
    sharded = paired_difference(s, "1 GiB ShardedByS3Key, 2 hosts", "no channel, 2 hosts")
    replicated_phase = s["1 GiB FullyReplicated, 1 host"].median
    sharded_phase = s["1 GiB ShardedByS3Key, 2 hosts"].median
    copytree = staging["copytree"].median
    target = f"(target < {STAGING_TARGET_MS:.0f} ms)"
    return [
        f"- **staging 1 GiB ({CHANNEL_OBJECTS} {TIMES} {CHANNEL_OBJECT_BYTES // MIB} MiB) "
        f"FullyReplicated from the local store: {replicated.median:+.1f} ms over the job without "
        f"a channel ({replicated.spread()}: within the noise) {target}: "
        f"{verdict(replicated.median, STAGING_TARGET_MS)}**",
        f"- **staging 1 GiB ShardedByS3Key onto 2 hosts (hard links): {sharded.median:+.1f} ms "
        f"over 2 hosts without a channel ({sharded.spread()}) {target}: "
        f"{verdict(sharded.median, STAGING_TARGET_MS)}**",
        f"- `shutil.copytree` of the same 1 GiB: {copytree:.0f} ms ({1024 / copytree:.2f} GiB/s, "
        f"from the page cache) = {copytree / replicated_phase:.0f}{TIMES} the channel job's "
        f"*whole* Downloading phase ({replicated_phase:.1f} ms) and "
        f"{copytree / sharded_phase:.0f}{TIMES} the sharded job's ({sharded_phase:.1f} ms)",
    ]


def s3_ratio_line(s3: dict[str, Any]) -> str:
    samples = s3["samples"]
    mb = s3["bytes"] / 1e6
    cold = samples["dockyard job, cold cache (Downloading phase)"].median
    warm = samples["dockyard job, same data again (Downloading phase)"].median
    boto = samples["boto3 download_file, object after object"].median
    cli = samples["aws s3 cp --recursive (CLI, includes its start-up)"].median
    return (
        f"- staging {mb:.0f} MB from S3 (moto_server): dockyard {mb / cold * 1000:.0f} MB/s "
        f"({cold:.0f} ms = {cold / boto:.2f}{TIMES} boto3's time, {cold / cli:.2f}{TIMES} the "
        f"CLI's); boto3 download_file {mb / boto * 1000:.0f} MB/s, aws s3 cp "
        f"{mb / cli * 1000:.0f} MB/s; the same data again (content cache): {warm:.1f} ms = "
        f"{warm / cold:.0%} of the cold staging"
    )


def noop_section(noop: dict[str, Any]) -> list[str]:
    return [
        "## 1. A no-op training job",
        "",
        'The image\'s Dockerfile is `ENTRYPOINT ["/bin/true"]`, so the program is '
        "`/bin/true train`. The bwrap floor is "
        f"`{' '.join(FLOOR_ARGV)}`. dockyard's sandbox alone is `ProcessRuntime.start(spec)` + "
        "`wait()` for the HostSpec of algo-1 of such a job, on a 1 GiB volume (loop-mounted "
        "ext4) and a network namespace with slirp4netns made once beforehand, outside the "
        "timing (a job makes both for each run: their cost is in section 1b). It includes "
        "handing the volume to the host's uid, making the host's cgroup (and reading it for OOM "
        "kills and removing it at the end), the data files in memory (/etc/hosts, passwd, group, "
        "resolv.conf, the seccomp filter), finding the program, and the process chain: /bin/sh "
        "joining the cgroup, nsenter into the network, the outer bwrap as root, setpriv to the "
        "host's uid, the inner bwrap (user namespace, no capabilities, seccomp) and the program "
        f"(bwrap_argv() gives {noop['sandbox_args']} arguments for both stages).",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in noop["samples"].items()),
        "",
        "### Where the in-process job's time goes",
        "",
        "From its SecondaryStatusTransitions (StartTime of each status to the next's); "
        "`validate` is create() before CreationTime, the last row is the Completed transition to "
        "wait() returning (runner thread ending).",
        "",
        phase_table(noop["in_process"]),
        "",
        "### The same job through the HTTP API",
        "",
        "The first row includes the HTTP request; the last is the Completed transition to the "
        "client's describe seeing it. The client, the server and the job share one process.",
        "",
        phase_table(noop["http"]),
        "",
    ]


def staging_section(staging: dict[str, Any]) -> list[str]:
    s = staging["samples"]
    expected = {"1 GiB FullyReplicated, 1 host": "16", "1 GiB ShardedByS3Key, 2 hosts": "8"}
    seen = ", ".join(
        f"{label}: {count} (expected {expected[label]}, "
        f"{'OK' if count == expected[label] else 'WRONG'})"
        for label, count in staging["counts"].items()
    )
    return [
        "## 2. Staging a 1 GiB channel from the local store",
        "",
        f"{CHANNEL_OBJECTS} objects {TIMES} {CHANNEL_OBJECT_BYTES // MIB} MiB under "
        f"`s3://{BUCKET}/data/`, File mode. The figure is the Downloading phase "
        "(Downloading StartTime → Training StartTime) of each job; staging cost = the paired "
        "per-repetition difference with the job without a channel and as many hosts. The program "
        f"is `{COUNT_PROGRAM}`.",
        "",
        TABLE_HEAD,
        *(samples.row(f"Downloading: {label}") for label, samples in s.items()),
        paired_difference(s, "1 GiB FullyReplicated, 1 host", "no channel, 1 host").row(
            "**staging cost, FullyReplicated** (paired difference)"
        ),
        paired_difference(s, "1 GiB ShardedByS3Key, 2 hosts", "no channel, 2 hosts").row(
            f"**staging cost, ShardedByS3Key {TIMES}2** (paired difference)"
        ),
        staging["copytree"].row("`shutil.copytree` of the same 1 GiB"),
        "",
        "Files the program saw in /opt/ml/input/data/train (count.txt in the last job's "
        f"model.tar.gz; algo-1's copy for the sharded job): {seen}.",
        "",
        "Phases of the sharded 2-host job:",
        "",
        phase_table(staging["runs"]["1 GiB ShardedByS3Key, 2 hosts"]),
        "",
    ]


def s3_section(s3: dict[str, Any]) -> list[str]:
    return [
        "## 3. Staging from S3 (moto_server on loopback)",
        "",
        f"{S3_OBJECTS} objects {TIMES} {S3_OBJECT_BYTES // MIB} MiB in moto_server; dockyard "
        'with `Settings(store="s3")`, its content cache emptied before each cold run. boto3 '
        "`download_file` fetches the objects one after another (8 MiB parts, 10 threads per "
        "object); the CLI fetches up to 10 objects at once. Each variant deletes what it wrote "
        "after its timing, so all start from the same page-cache and disk state.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in s3["samples"].items()),
        "",
    ]


def training_ratios(results: dict[str, Any]) -> list[str]:
    """The headline lines of the training benchmarks."""
    ratios = ratio_lines(results["noop"], results["staging"])
    if results["hardening"] is not None:
        ratios[1:1] = hardening_ratio_lines(results["hardening"], results["noop"])
    elif results["hardening_error"]:
        ratios.insert(
            1, f"- before and after hardening: not measured: {results['hardening_error']}"
        )
    if results["s3"] is not None:
        ratios.append(s3_ratio_line(results["s3"]))
    elif results["s3_error"]:
        ratios.append(f"- staging from S3 (moto_server): not measured: {results['s3_error']}")
    return ratios


def training_sections(results: dict[str, Any]) -> list[str]:
    """Sections 1 to 3: the tables behind the training ratios."""
    return [
        *noop_section(results["noop"]),
        *(hardening_section(results["hardening"]) if results["hardening"] is not None else []),
        *staging_section(results["staging"]),
        *(s3_section(results["s3"]) if results["s3"] is not None else []),
    ]
