"""The router's throughput and latency with invocation metrics recorded (the default) and with
DOCKYARD_ROUTER_METRICS=false: two dockyard servers up together, each with one endpoint of the
serving benchmark's trivial model, loaded by the serving benchmark's wrk in turn."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

import serving_env
from common import REPO
from dockyard.engine.endpoint_metrics import EndpointMetrics
from dockyard.storage.metadata import MetadataStore
from serving import (
    CONNECTIONS,
    CSV_BODY,
    LATENCY_CONNECTIONS,
    LATENCY_SECONDS,
    WARMUP_SECONDS,
    ServerResult,
    run_wrk,
    wrk_command,
)
from serving_servers import APPS, Model, Setup, Target, dockyard_router

ON, OFF = "recording on", "recording off"
SETTINGS = {ON: {}, OFF: {"DOCKYARD_ROUTER_METRICS": "false"}}
ROUNDS = 4  # per pass; two passes
SECONDS = 10.0
RECORD_CALLS = 100_000  # record() calls timed in one go, in-process
RECORD_REPEATS = 5
# dockyard's python:3.11 environment for the endpoints, shared with the tests (built once per
# machine; the trivial model needs nothing else).
ENVS_DIR = REPO / ".test-envs"


def echo_model(work: Path) -> Model:
    """The serving benchmark's trivial model (a), made here without its bench venv: its
    handlers need nothing but the standard library."""
    base = work / "echo"
    code = base / "model" / "code"
    code.mkdir(parents=True)
    shutil.copy(APPS / "echo_inference.py", code / "inference.py")
    (base / "model" / "model.json").write_text('{"model": "echo"}\n')
    with tarfile.open(base / "model.tar.gz", "w:gz") as archive:
        archive.add(base / "model" / "model.json", arcname="model.json")
    return Model("echo", "(a) trivial model: echoes its input", base, base, CSV_BODY, None)


def router_invocations(target: Target) -> float:
    """The server's own count of the invocations it recorded (GET /metrics from loopback)."""
    base = target.url.split("/endpoints/", 1)[0]
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dockyard_router_invocations_total"
    )


def record_cost_us(work: Path) -> dict[str, list[float]]:
    """µs per invocation of EndpointMetrics in this process, as the router uses it: `record`
    (on the request's path; recording on and off) and the flush that summarises its seconds and
    writes them (`flush`, which a thread does every few seconds), on a real SQLite store. What
    the wrk runs cannot resolve on a shared machine, measured on its own."""
    store = MetadataStore(f"sqlite:///{work / 'record-cost.db'}")
    found: dict[str, list[float]] = {ON: [], OFF: [], "flush": []}
    try:
        recorders = {ON: EndpointMetrics(store), OFF: EndpointMetrics(store, enabled=False)}
        for _ in range(RECORD_REPEATS):
            for label, metrics in recorders.items():
                record = metrics.record
                started = time.perf_counter_ns()
                for i in range(RECORD_CALLS):
                    record("bench-echo", "main", "main-1", 200, 700 + (i & 63), 400, 1)
                found[label].append((time.perf_counter_ns() - started) / RECORD_CALLS / 1000)
            started = time.perf_counter_ns()
            recorders[ON].flush()
            found["flush"].append((time.perf_counter_ns() - started) / RECORD_CALLS / 1000)
    finally:
        store.close()
    return found


def _pass(
    setup: Setup, model: Model, slots: dict[str, str], rounds: int, seconds: float, data: Any
) -> None:
    """Two servers up together, `slots` naming which setting each slot's server has (slot a
    started first); a warm-up each, then `rounds` rounds of one wrk run each in turn at
    concurrency 16 (the order turning every round), then the same at concurrency 1."""
    results, sent, counted, by_slot = data["results"], data["sent"], data["counted"], data["slots"]
    with contextlib.ExitStack() as stack:
        targets = {}
        for slot, label in slots.items():
            print(f"router-metrics: starting server {slot} with {label} …", flush=True)
            server = dockyard_router(setup, model, SETTINGS[label], f"-{slot}-{len(by_slot[slot])}")
            targets[label] = stack.enter_context(server)
        slot_of = {label: slot for slot, label in slots.items()}
        for label, target in targets.items():
            sent[label] += run_wrk(target, WARMUP_SECONDS).requests
        for number in range(rounds):
            print(f"router-metrics: round {number + 1}/{rounds} …", flush=True)
            order = list(targets) if number % 2 == 0 else list(reversed(targets))
            for label in order:
                run = run_wrk(targets[label], seconds)
                results[label].runs.append(run)
                by_slot[slot_of[label]].append(run.per_second)
                sent[label] += run.requests
        for number in range(rounds):
            order = list(targets) if number % 2 == 0 else list(reversed(targets))
            for label in order:
                run = run_wrk(targets[label], LATENCY_SECONDS, LATENCY_CONNECTIONS)
                results[label].latency_runs.append(run)
                sent[label] += run.requests
        # What each server recorded: all of wrk's requests with recording on, none with it off.
        for label, target in targets.items():
            counted[label] += router_invocations(target)


def measure_router_metrics(work: Path, rounds: int = ROUNDS, seconds: float = SECONDS) -> Any:
    """Two passes with the settings' slots swapped (in one run, two servers up together were
    seen to differ by ~20% with the same setting, by which was started first: the swap cancels
    that), `rounds` rounds each; then record()'s own cost in-process."""
    started = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    if (error := serving_env.ensure_program("wrk", work / "setup.log")) is not None:
        raise RuntimeError(f"the router-metrics benchmark needs wrk: {error}")
    model = echo_model(work)
    (work / "body.csv").write_bytes(CSV_BODY)
    setup = Setup(Path(sys.executable).parent, work, work / "body.csv", work / "body.csv", ENVS_DIR)
    data: dict[str, Any] = {
        "results": {label: ServerResult() for label in SETTINGS},
        "sent": dict.fromkeys(SETTINGS, 0),
        "counted": dict.fromkeys(SETTINGS, 0.0),
        "slots": {"a": [], "b": []},  # req/s at concurrency 16 by slot, whatever the setting
    }
    for slots in ({"a": ON, "b": OFF}, {"a": OFF, "b": ON}):
        _pass(setup, model, slots, rounds, seconds, data)
    print("router-metrics: timing record() in-process …", flush=True)
    return {
        **data,
        "record_us": record_cost_us(work),
        "rounds": rounds,
        "seconds": seconds,
        "wrk": wrk_command(seconds),
        "connections": CONNECTIONS,
        "elapsed": time.perf_counter() - started,
        "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
