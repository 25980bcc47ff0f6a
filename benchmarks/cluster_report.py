"""The cluster benchmark's part of RESULTS.md: the ray backend's overheads over the local
backend, the tables, where the time goes, and what the numbers mean (computed from the run)."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from cluster import (
    HOSTS_CIDR,
    INSTANCE_TYPE,
    LOCAL,
    RAY,
    RAY_FLOOR,
    ROUTER_HEAD,
    ROUTER_LOCAL,
    ROUTER_WORKER,
    SERVING_WORKERS,
    RouterResult,
)
from cluster_nodes import HEAD_IP, NODE_CPUS, NODE_MEMORY, WORKER_IP
from cluster_probe import ACTORS, ENGINE, SHORT, Run, step_medians
from common import MINUS, TABLE_HEAD, TIMES, Samples, machine, phase_table
from serving import CONNECTIONS, CSV_BODY, LATENCY_CONNECTIONS

GIB = 1024**3


def _overhead(samples: dict[str, Samples]) -> tuple[float, float, float, float]:
    local, ray = samples[LOCAL].median, samples[RAY].median
    return local, ray, ray - local, ray / local


def _differences(runs: dict[str, list[Run]]) -> list[tuple[str, float]]:
    """Each step's ray median less its local one, largest first (release's sub-steps are in its
    own row already)."""
    local, ray = step_medians(runs[LOCAL]), step_medians(runs[RAY])
    differences = [
        (what, ms - local.get(what, 0.0))
        for what, ms in ray.items()
        if not what.startswith("release: ")
    ]
    return sorted(differences, key=lambda item: -item[1])


def _biggest_differences(runs: dict[str, list[Run]], count: int = 3, skip: str = "") -> str:
    """The steps where the ray backend spends most more than the local one, by median."""
    top = [(w, ms) for w, ms in _differences(runs) if not (skip and w == skip)][:count]
    return ", ".join(f"{SHORT[what]} {ms:+.0f} ms" for what, ms in top)


def _rps(result: RouterResult) -> float:
    return statistics.median(run.per_second for run in result.runs)


def _p50(result: RouterResult, latency: bool = False) -> float:
    return statistics.median(
        run.p50_ms for run in (result.latency_runs if latency else result.runs)
    )


def _rps_range(result: RouterResult) -> tuple[float, float]:
    each = [run.per_second for run in result.runs]
    return min(each), max(each)


def _overlap(a: RouterResult, b: RouterResult) -> bool:
    """Whether two endpoints' req/s over their runs overlap: a difference within the noise."""
    low_a, high_a = _rps_range(a)
    low_b, high_b = _rps_range(b)
    return low_a <= high_b and low_b <= high_a


def cluster_ratios(results: dict[str, Any]) -> list[str]:
    jobs, starts, router = results["jobs"], results["starts"], results["router"]
    local, ray, added, ratio = _overhead(jobs["samples"])
    e_local, e_ray, e_added, e_ratio = _overhead(starts["samples"])
    base = router[ROUTER_LOCAL]
    lines = [
        f"- **no-op training job end to end (create → Completed, model.tar.gz stored; 1 {TIMES} "
        f"{INSTANCE_TYPE}): local backend {local:.0f} ms, ray backend {ray:.0f} ms: ray adds "
        f"{added:+.0f} ms = {ratio:.1f}{TIMES} local**; the ray steps that cost most more: "
        + _biggest_differences(jobs["runs"])
        + f"; Ray alone for one such host (placement group, trivial actor, one call, both "
        f"removed): {jobs['samples'][RAY_FLOOR].median:.0f} ms",
        f"- **endpoint start (CreateEndpoint → InService, 1 {TIMES} {INSTANCE_TYPE}, busybox "
        f"httpd): local backend {e_local:.0f} ms, ray backend {e_ray:.0f} ms: ray adds "
        f"{e_added:+.0f} ms = {e_ratio:.1f}{TIMES} local**; the ray steps that cost most more: "
        + _biggest_differences(starts["runs"]),
    ]
    parts = []
    for label in (ROUTER_HEAD, ROUTER_WORKER):
        found = router[label]
        parts.append(
            f"{label.split(':')[0]} on {found.node}: {_rps(found):.0f} req/s = "
            f"{_rps(found) / _rps(base):.2f}{TIMES} (a), p50 {_p50(found):.2f} ms"
        )
    lines.append(
        f"- **invocations through the router (echo model, {SERVING_WORKERS} serving workers, "
        f"wrk -c{CONNECTIONS}): (a) local backend {_rps(base):.0f} req/s, p50 "
        f"{_p50(base):.2f} ms; " + "; ".join(parts) + "**; at concurrency "
        f"{LATENCY_CONNECTIONS} p50 (a) {_p50(base, True):.2f}, (b) "
        f"{_p50(router[ROUTER_HEAD], True):.2f}, (c) {_p50(router[ROUTER_WORKER], True):.2f} ms. "
        "All nodes are this one machine: (c) measures dockyard's routed path (veth + iptables), "
        "not a network hop"
    )
    return lines


def _step_table(runs: dict[str, list[Run]]) -> list[str]:
    local, ray = step_medians(runs[LOCAL]), step_medians(runs[RAY])
    order = [*dict.fromkeys([*ray, *local])]
    order = [*(what for what in order if what != ENGINE), ENGINE]
    lines = [
        f"| step | local median ms | ray median ms | ray {MINUS} local ms |",
        "|---|---:|---:|---:|",
    ]
    for what in order:
        mine, theirs = local.get(what), ray.get(what)
        left = f"{mine:.1f}" if mine is not None else "—"
        right = f"{theirs:.1f}" if theirs is not None else "—"
        difference = f"{(theirs or 0.0) - (mine or 0.0):+.1f}"
        lines.append(f"| {what} | {left} | {right} | {difference} |")
    return lines


def _nodes(runs: list[Run]) -> str:
    counted = Counter(run.node or "?" for run in runs)
    return ", ".join(f"{count} on {node}" for node, count in sorted(counted.items()))


def _router_table(router: dict[str, RouterResult]) -> list[str]:
    lines = [
        f"| endpoint | node | req/s (median) | req/s of each run | p50 ms | p99 ms | "
        f"p50 ms at c{LATENCY_CONNECTIONS} | CPU µs/req, all of the run's processes | errors |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for label, found in router.items():
        each = ", ".join(f"{run.per_second:.0f}" for run in found.runs)
        cpu = statistics.median(run.cpu_us_per_request for run in found.runs)
        p99 = statistics.median(run.p99_ms for run in found.runs)
        errors = sum(run.error_count for run in [*found.runs, *found.latency_runs])
        lines.append(
            f"| {label} | {found.node} | {_rps(found):.0f} | {each} | {_p50(found):.2f} | "
            f"{p99:.2f} | {_p50(found, True):.2f} | {cpu:.0f} | {errors} |"
        )
    return lines


def _bundle(bundle: dict[str, float]) -> str:
    return ", ".join(
        f"{value / GIB:g} GiB memory" if name == "memory" else f"{value:g} {name}"
        for name, value in bundle.items()
    )


def _spread_word(a: RouterResult, b: RouterResult) -> str:
    return "within" if _overlap(a, b) else "beyond"


def _meaning(results: dict[str, Any]) -> list[str]:
    """What the numbers mean, in sentences whose every figure and direction comes from the run."""
    jobs, starts, router = results["jobs"], results["starts"], results["router"]
    _, _, added, _ = _overhead(jobs["samples"])
    _, _, e_added, _ = _overhead(starts["samples"])
    ordered = _differences(jobs["runs"])
    actors = next((ms for what, ms in ordered if what == ACTORS), 0.0)
    floor = statistics.median(run.actor_answered for run in jobs["floor"])
    share = "the largest part of it" if ordered and ordered[0][0] == ACTORS else "a part of it"
    base, head, worker = router[ROUTER_LOCAL], router[ROUTER_HEAD], router[ROUTER_WORKER]
    return [
        f"What it means: on Ray a no-op job costs {added:+.0f} ms and an endpoint start "
        f"{e_added:+.0f} ms more than on the local backend. Starting the host's actor is {share} "
        f"({actors:.0f} ms median for a job); Ray alone has a trivial actor in the same kind of "
        f"placement answer its first call after {floor:.0f} ms, so "
        + (
            "about all of it is Ray starting a worker process for the actor"
            if actors - floor < 0.25 * actors
            else f"{actors - floor:.0f} ms of it is dockyard's (the actor's fresh worker imports "
            "dockyard's modules before its first call)"
        )
        + "; the other steps that cost "
        f"most more for a job are {_biggest_differences(jobs['runs'], skip=ACTORS)}. Through the "
        f"router, the instance at its routed address served {_rps(head) / _rps(base):.2f}{TIMES} "
        f"(b) and {_rps(worker) / _rps(base):.2f}{TIMES} (c) the requests/s of the one reached "
        f"through the netns connector (a) ((b) {_spread_word(base, head)}, (c) "
        f"{_spread_word(base, worker)} (a)'s run-to-run spread); (b) and (c) are "
        f"{_spread_word(head, worker)} each other's spread, and on one machine they take the "
        "same path (router socket → veth → the instance's namespace, through dockyard's "
        "iptables chains) whichever raylet holds the actor. None of this measures a network "
        "between machines: every node here is a set of processes on one machine, and a real "
        "hop adds its own latency on top.",
    ]


def cluster_section(results: dict[str, Any]) -> list[str]:
    jobs, starts, plan = results["jobs"], results["starts"], results["plan"]
    info = machine()
    load_before, load_after = results["load"]
    return [
        "## 6. Cluster: the ray backend on a two-node Ray cluster, beside the local backend",
        "",
        f"Machine: nproc {info['nproc']} ({info['cpu']}), memory {info['memory']}, kernel "
        f"{info['kernel']}, {info['bwrap']}, Python {info['python']}, Ray "
        f"{results['ray_version']}; load average {load_before:.2f} at the start, "
        f"{load_after:.2f} at the end (the machine is shared).",
        "",
        f"The cluster is `ray.cluster_utils.Cluster`, started by the run as tests/ray_cluster.py "
        f"does ({results['cluster_ms'] / 1000:.1f} s until both nodes were up): a head on "
        f"{HEAD_IP} and a worker on {WORKER_IP}, each its own raylet with {NODE_CPUS} CPUs and "
        f"{NODE_MEMORY / GIB:g} GiB to hand out, so one {INSTANCE_TYPE} host fills a node. "
        '**Both nodes are processes of this one machine**: "another node" below is another '
        "raylet and another actor process, reached over loopback and a veth pair, not over a "
        "network. Two engines run in the benchmark's process, each with its own home, SQLite "
        "metadata and local object store: one with `backend=local`, one with `backend=ray` "
        f"(a Ray driver, connected in {results['connect_ms']:.0f} ms; hosts' addresses from "
        f"{HOSTS_CIDR}). Everything was in-process engine calls except the invocations, "
        "which go through each engine's router (uvicorn in a thread of the same process).",
        "",
        "### No-op training job",
        "",
        f'The training benchmark\'s no-op image folder (`ENTRYPOINT ["/bin/true"]`), 1 {TIMES} '
        f"{INSTANCE_TYPE}: CreateTrainingJob in-process until wait() returns (the job Completed, "
        "its model.tar.gz stored — both checked — and every host released: on Ray the actor "
        f"closed and the placement group removed). Local, ray and Ray alone (below) take turns, "
        f"{plan['job_reps']} each after a warm-up each.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in jobs["samples"].items()),
        "",
        "Where the time goes (medians per step; each step timed by wrapping the backends' "
        "placement classes, nothing in src/ changes; the engine's own work is the total less "
        f"the top-level steps). Ray's hosts ran {_nodes(jobs['runs'][RAY])}.",
        "",
        *_step_table(jobs["runs"]),
        "",
        "Ray's own floor for one host, in the same turns (the last row of the table above): a "
        f"placement group of the same bundle ({_bundle(jobs['bundle'])}), a detached threaded "
        "actor of a trivial class in it with those resources, one call answered, then the "
        "actor killed and the group removed until Ray says REMOVED:",
        "",
        phase_table(jobs["floor"]),
        "",
        "### Endpoint start",
        "",
        f"One instance ({INSTANCE_TYPE}) of an image folder whose `serve` is busybox's httpd "
        "answering GET /ping from a file (as the containers benchmark's process-runtime "
        "endpoint): CreateEndpoint in-process, then its status every 5 ms until InService (the "
        "engine's health check polls /ping from 50 ms on, ever more slowly); each endpoint is "
        f"deleted after its timing, untimed. {plan['endpoint_reps']} each, in turn, after a "
        f"warm-up each. Ray's instances ran {_nodes(starts['runs'][RAY])}.",
        "",
        TABLE_HEAD,
        *(samples.row(label) for label, samples in starts["samples"].items()),
        "",
        *_step_table(starts["runs"]),
        "",
        "### Invocations through the router",
        "",
        f"The serving benchmark's trivial model (a) — handlers that return their input — on "
        f"dockyard/python:3.11 with {SERVING_WORKERS} dockyard.serving workers, 1 {TIMES} "
        f"{INSTANCE_TYPE}, three endpoints up together: (a) on the local backend, whose router "
        "reaches the instance's port inside its network namespace through the netns connector "
        "(sockets made in the namespace, its own loopback); (b) on the ray backend with the "
        f"instance on the head node (the worker held by a placement group pinned there by Ray's "
        f"`node:{WORKER_IP}` resource while it was placed); (c) on the ray backend with the "
        "instance on the other node (the head then full). The ray backend's router reaches its "
        "instances at their routed addresses: plain sockets of the machine, through the "
        "instance's veth pair and dockyard's iptables chains. "
        f"wrk as in the serving benchmark (`{results['wrk']}`, presigned SigV4 URL, body "
        f"`{CSV_BODY.decode()}` as text/csv, checked to come back): a "
        f"{plan['warmup_seconds']:g} s warm-up each, then {plan['rounds']} rounds of one "
        f"{plan['round_seconds']:g} s run each in turn, then {plan['rounds']} rounds of "
        f"{plan['latency_seconds']:g} s at concurrency {LATENCY_CONNECTIONS}. CPU "
        "is that of every process the run started (the benchmark's process with both engines "
        "and routers, the instances, the Ray cluster) over the requests: it includes Ray's idle "
        "work, so it compares the three, it is not the router's own cost. The router here runs "
        "in a thread of the benchmark's process, the serving benchmark's in its own process: "
        "compare (a) with section 4 loosely.",
        "",
        *_router_table(results["router"]),
        "",
        *_meaning(results),
        "",
        f"The cluster part took {results['elapsed']:.0f} s.",
        "",
    ]
