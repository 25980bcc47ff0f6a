"""The containers benchmark's part of RESULTS.md: the docker runtime's overheads over a bare
`podman run` with their verdicts, then the tables and where a docker job's time goes."""

from __future__ import annotations

import statistics
from typing import Any

from common import TABLE_HEAD, TIMES, Samples, phase_table, verdict
from containers import (
    BARE_CLI,
    BARE_SDK,
    BARE_SERVE,
    DOCKER_ENDPOINT,
    DOCKER_HTTP,
    DOCKER_JOB,
    OVERHEAD_TARGET,
    PROCESS_ENDPOINT,
    PROCESS_JOB,
    JobRun,
)


def _overhead(label: str, value: float, bare: float, bare_label: str) -> str:
    overhead = value - bare
    return (
        f"{label}: {value:.0f} ms, overhead over {bare_label} ({bare:.0f} ms) {overhead:+.0f} ms "
        f"= {overhead / bare:.2f}{TIMES} it (target {TIMES}{OVERHEAD_TARGET}): "
        f"{verdict(overhead / bare, OVERHEAD_TARGET)}"
    )


def containers_ratios(results: dict[str, Any]) -> list[str]:
    jobs, endpoints = results["jobs"]["samples"], results["endpoints"]["samples"]
    bare, sdk = jobs[BARE_CLI].median, jobs[BARE_SDK].median
    serve = endpoints[BARE_SERVE].median
    process, process_endpoint = jobs[PROCESS_JOB].median, endpoints[PROCESS_ENDPOINT].median
    return [
        "- **"
        + _overhead("no-op job on the docker runtime (in-process)", jobs[DOCKER_JOB].median,
                    bare, "bare `podman run --rm`")
        + "**",
        "- "
        + _overhead("the same through the HTTP API (boto3, poll 5 ms)", jobs[DOCKER_HTTP].median,
                    bare, "bare `podman run --rm`"),
        f"- the same job over the SDK's bare create + start + wait + remove on the service "
        f"({sdk:.0f} ms): {jobs[DOCKER_JOB].median - sdk:+.0f} ms; the process runtime's no-op "
        f"job: {process:.0f} ms = {process / bare:.2f}{TIMES} the bare `podman run`",
        "- **"
        + _overhead("endpoint start on the docker runtime (CreateEndpoint → InService)",
                    endpoints[DOCKER_ENDPOINT].median, serve, "bare `podman run -d` → /ping")
        + "**",
        f"- the process runtime's endpoint start: {process_endpoint:.0f} ms = "
        f"{process_endpoint / serve:.2f}{TIMES} the bare `podman run -d` → /ping",
    ]  # fmt: skip


def call_table(runs: list[JobRun]) -> str:
    """Each probed step of the docker runtime: its time per job and when it began."""
    names = list(dict.fromkeys(call.what for run in runs for call in run.calls))
    lines = [
        "| step | median ms per job | p10 | p90 | median start, ms after create | calls per job |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for what in names:
        per_job = Samples(
            [sum((c.end - c.start) * 1000 for c in r.calls if c.what == what) for r in runs]
        )
        starts = [
            min((c.start - r.start) * 1000 for c in r.calls if c.what == what)
            for r in runs
            if any(c.what == what for c in r.calls)
        ]
        counts = statistics.median(sum(c.what == what for c in r.calls) for r in runs)
        deciles = (
            f"{per_job.quantile(1):.1f} | {per_job.quantile(9):.1f}"
            if len(per_job.values) >= 10
            else "— | —"
        )
        lines.append(
            f"| {what} | {per_job.median:.1f} | {deciles} | {statistics.median(starts):.1f} "
            f"| {counts:g} |"
        )
    return "\n".join(lines)


def containers_section(results: dict[str, Any]) -> list[str]:
    jobs, endpoints = results["jobs"], results["endpoints"]
    return [
        "## 5. Containers: the docker runtime beside a bare `podman run`",
        "",
        f"podman's Docker-compatible service at `{results['docker_host']}` (runc, cgroupfs, "
        "netavark; `scripts/podman/containers.conf`); the image is the tests' busybox image "
        'with `ENTRYPOINT ["/bin/true"]`, so `train` exits 0 at once. The process runtime runs '
        'an image folder whose Dockerfile is `FROM scratch` + `ENTRYPOINT ["/bin/true"]`.',
        "",
        "What each number is: **bare CLI** is `podman run --rm IMAGE train` as a user types it "
        "(podman's own storage and its default network; the floor the target is judged "
        "against); **bare SDK** is the least a docker runtime host is, through the service "
        "dockyard talks to: create, start, wait, remove on the default network; the **docker "
        "runtime job** is CreateTrainingJob in-process until wait() returns (the runner "
        "thread joined: the job's volume, its own network, the container, log streams, "
        "model.tar.gz uploaded, network removed and volume unmounted), and the same through "
        "the HTTP API with boto3 until DescribeTrainingJob says Completed; the **process "
        "runtime job** is the same job in dockyard's sandbox. The overhead is a median minus "
        f"the bare CLI's median; the target is overhead ≤ {OVERHEAD_TARGET} {TIMES} the bare run "
        "(issue 11).",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in jobs["samples"].items()),
        "",
        "### Where a docker runtime job's time goes",
        "",
        "Each step timed by wrapping the runtime's methods and its docker SDK calls (nothing in "
        "src/ changes). `wait for its exit` runs from just after start until the engine "
        "answers the wait; the two log streams run beside it and end with the container. The "
        "warm-up job, the only one that looked for the program in the image (HEAD on the "
        "container's archive), is not among these.",
        "",
        call_table(jobs["docker"]),
        "",
        "By secondary status (the same jobs; `Training` holds the container's create, start, "
        "wait and removal):",
        "",
        phase_table(jobs["docker"]),
        "",
        "The process runtime's no-op job, by secondary status:",
        "",
        phase_table(jobs["process"]),
        "",
        "### Endpoint start",
        "",
        "One instance; `serve` is busybox's httpd answering GET /ping from a file. Bare: "
        "`podman run -d --rm IMAGE serve`, its address from `podman inspect`, then GET /ping "
        "every 5 ms until it answers 200. dockyard: CreateEndpoint in-process, then its status "
        "every 5 ms until InService (the engine's own health check polls /ping after 50 ms, "
        "then ever more slowly); each endpoint is deleted after its timing.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in endpoints["samples"].items()),
        "",
    ]
