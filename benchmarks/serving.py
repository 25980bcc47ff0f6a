"""The serving benchmark: requests/s and p50/p99 under wrk for each server and both models."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import serving_env
from common import REPO
from serving_servers import APPS, CSV, SERVERS, Model, Setup, Target

CONNECTIONS = 16
WRK_THREADS = 1  # one load thread is plenty here, and leaves the servers more of the 2 cores
WARMUP_SECONDS = 3
LATENCY_CONNECTIONS = 1  # the router's own cost, without queueing behind 15 other requests
LATENCY_SECONDS = 5
WRK_LUA = APPS / "wrk_report.lua"
CSV_BODY = b"5.1,3.5,1.4,0.2"  # the first iris row; (a) echoes these bytes
JSON_BODY = b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}'  # the same row as MLflow takes it
DIRECT, ROUTER = "dockyard.serving", "dockyard via the router"
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class WrkRun:
    """One wrk run against one server."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu_s: float  # CPU time the server's processes used during the run
    # The busiest process's part of it: about 1/2 when 2 workers share the load evenly.
    busiest_share: float
    wrk_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(self.requests, 1) * 1e6


@dataclass
class ServerResult:
    """One server with one model: its runs, or why it was not measured."""

    runs: list[WrkRun] = field(default_factory=list)
    latency_runs: list[WrkRun] = field(default_factory=list)  # at concurrency 1
    unavailable: str | None = None

    def median(self, attribute: str, runs: list[WrkRun] | None = None) -> float:
        return statistics.median(getattr(run, attribute) for run in (runs or self.runs))


def wrk_argv(target: Target, seconds: float, connections: int) -> list[str]:
    return [
        "wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(WRK_LUA), target.url, "--", str(target.body), target.content_type,
        target.accept,
    ]  # fmt: skip


def _descendants(root: int) -> list[int]:
    """`root` and every process under it (MMS's Java, uvicorn's workers, sandboxes)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process, in seconds."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


def run_wrk(target: Target, seconds: float, connections: int = CONNECTIONS) -> WrkRun:
    pids = _descendants(target.pid)
    server_before = _cpu_seconds(pids)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_before = usage.ru_utime + usage.ru_stime
    done = subprocess.run(
        wrk_argv(target, seconds, connections), capture_output=True, text=True, check=False
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = [cpu - server_before.get(pid, 0.0) for pid, cpu in _cpu_seconds(pids).items()]
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result (exit {done.returncode}): {done.stderr[-500:]}")
    data = json.loads(line.removeprefix("WRK-RESULT "))
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return WrkRun(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        server_cpu_s=sum(used),
        busiest_share=max(used) / sum(used) if sum(used) > 0 else 0.0,
        wrk_cpu_s=usage.ru_utime + usage.ru_stime - wrk_before,
    )


def measure_model(setup: Setup, model: Model, rounds: int, seconds: float) -> dict[str, Any]:
    """Start every server with `model`, warm each up, then `rounds` rounds of one wrk run per
    server in turn (A, B, C, A, B, C, …: drift hits all alike); then concurrency 1 for dockyard
    direct and through the router. Every server is stopped at the end, even on error."""
    results = {label: ServerResult() for label in SERVERS}
    targets: dict[str, Target] = {}
    with contextlib.ExitStack() as stack:
        for label, start in SERVERS.items():
            print(f"serving ({model.key}): starting {label} …", flush=True)
            try:
                targets[label] = stack.enter_context(start(setup, model))
            except Exception as exc:  # one server missing must not lose the others
                results[label].unavailable = f"{type(exc).__name__}: {exc}".strip()
                print(f"serving ({model.key}): {label} not available: {exc}", flush=True)
        for label in list(targets):
            _run(results, targets, label, WARMUP_SECONDS)
        for number in range(rounds):
            print(f"serving ({model.key}): round {number + 1}/{rounds} …", flush=True)
            for label in list(targets):
                if (run := _run(results, targets, label, seconds)) is not None:
                    results[label].runs.append(run)
        for _ in range(rounds):
            for label in (DIRECT, ROUTER):
                if label in targets:
                    run = _run(results, targets, label, LATENCY_SECONDS, LATENCY_CONNECTIONS)
                    if run is not None:
                        results[label].latency_runs.append(run)
    return results


def _run(
    results: dict[str, ServerResult],
    targets: dict[str, Target],
    label: str,
    seconds: float,
    connections: int = CONNECTIONS,
) -> WrkRun | None:
    """One wrk run; a server that breaks down mid-way is dropped, the others go on."""
    try:
        return run_wrk(targets[label], seconds, connections)
    except Exception as exc:
        results[label].unavailable = f"failed during the runs: {type(exc).__name__}: {exc}"
        del targets[label]
        return None


def make_models(bench_bin: Path, work: Path) -> tuple[dict[str, Model], dict[str, Any]]:
    """Train and save the models with the bench venv (serving_apps/make_models.py)."""
    out = work / "models"
    done = subprocess.run(
        [str(bench_bin / "python"), str(APPS / "make_models.py"), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"make_models.py failed: {done.stderr[-2000:]}")
    facts: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    models = {
        "echo": Model(
            "echo", "(a) trivial model: echoes its input", out / "echo", out / "mlflow-echo",
            CSV_BODY, {"predictions": json.loads(JSON_BODY)["inputs"]},
        ),
        "rf": Model(
            "rf", "(b) RandomForest, 100 trees, on iris", out / "rf", out / "mlflow-rf",
            facts["rf_answer"].encode(), {"predictions": [int(facts["rf_answer"])]},
        ),
    }  # fmt: skip
    return models, facts


def measure_serving(work: Path, rounds: int, seconds: float) -> dict[str, Any]:
    """Install what is missing, make the models, measure both. Never raises for one server."""
    started = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "serving-setup.log"
    missing = {
        program: error
        for program in ("wrk", "java")
        if (error := serving_env.ensure_program(program, log)) is not None
    }
    if "wrk" in missing:
        raise RuntimeError(f"the serving benchmark needs wrk: {missing['wrk']}")
    bench_bin = serving_env.bench_venv(log)
    models, facts = make_models(bench_bin, work)
    work.joinpath("body.csv").write_bytes(CSV_BODY)
    work.joinpath("body.json").write_bytes(JSON_BODY)
    setup = Setup(
        bench_bin=bench_bin,
        work=work,
        csv_body=work / "body.csv",
        json_body=work / "body.json",
        envs_dir=serving_env.BENCH_VENV / "dockyard-envs",
    )
    results = {key: measure_model(setup, model, rounds, seconds) for key, model in models.items()}
    if "java" in missing:
        for per_model in results.values():
            per_model[
                "sagemaker-inference + MMS"
            ].unavailable = f"no Java runtime: {missing['java']}"
    return {
        "models": models,
        "results": results,
        "facts": facts,
        "versions": serving_env.versions(bench_bin),
        "rounds": rounds,
        "seconds": seconds,
        "wrk": wrk_command(seconds),
        "elapsed": time.perf_counter() - started,
    }


def wrk_command(seconds: float) -> str:
    """The wrk command as RESULTS.md shows it: no path of this machine in it."""
    example = Target("http://127.0.0.1:PORT/invocations", Path("body.csv"), CSV, CSV, 0)
    argv = wrk_argv(example, seconds, CONNECTIONS)
    return " ".join(argv).replace(str(WRK_LUA), str(WRK_LUA.relative_to(REPO)))
