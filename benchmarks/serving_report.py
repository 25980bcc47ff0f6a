"""The serving benchmark's part of RESULTS.md: ratios and verdicts, then the tables."""

from __future__ import annotations

from typing import Any

from common import MINUS, TIMES, verdict
from serving import (
    CONNECTIONS,
    CSV_BODY,
    DIRECT,
    JSON_BODY,
    LATENCY_CONNECTIONS,
    LATENCY_SECONDS,
    ROUTER,
    WARMUP_SECONDS,
    ServerResult,
)
from serving_servers import SERVERS, WORKERS

RAW, MLFLOW, MMS = "raw ASGI (uvicorn)", "MLflow scoring server", "sagemaker-inference + MMS"
# The targets (DESIGN.md, "Quality bars").
ECHO_OF_RAW = 0.5
ECHO_OVER_MMS = 3.0
ECHO_OVER_MLFLOW = 2.0
RF_OF_RAW = 0.9
ROUTER_P50_MS = 1.0
UNEVEN_SHARE = 0.75  # one of 2 workers did more than this share of a server's work

WIRE = {
    RAW: "CSV in, CSV out",
    DIRECT: "CSV in, CSV out (Content-Type and Accept text/csv)",
    ROUTER: "CSV in, CSV out, InvokeEndpoint's path",
    MLFLOW: "JSON in (`inputs`), JSON out (`predictions`)",
    MMS: "CSV in, CSV out",
}


def _at_least(value: float, target: float) -> str:
    return "PASS" if value >= target else "FAIL"


def _measured(results: dict[str, ServerResult], *labels: str) -> str | None:
    """None when every server in `labels` was measured, else why not (for the ratio line)."""
    for label in labels:
        if results[label].unavailable or not results[label].runs:
            reason = (results[label].unavailable or "no runs").splitlines()[0]
            return f"not measured: {label} not available ({reason})"
    return None


def _rps(results: dict[str, ServerResult], label: str) -> float:
    return results[label].median("per_second")


def _share_line(results: dict[str, ServerResult], title: str, base: str, target: float) -> str:
    """dockyard.serving as a share of `base`'s requests/s."""
    missing = _measured(results, DIRECT, base)
    if missing:
        return f"- **{title}: {missing}**"
    direct, other = _rps(results, DIRECT), _rps(results, base)
    return (
        f"- **{title}: dockyard.serving {direct:.0f} req/s = {direct / other:.0%} of {base} "
        f"({other:.0f} req/s) (target ≥ {target:.0%}): {_at_least(direct / other, target)}**"
    )


def _times_line(results: dict[str, ServerResult], title: str, base: str, target: float) -> str:
    missing = _measured(results, DIRECT, base)
    if missing:
        return f"- **{title}: {missing}**"
    direct, other = _rps(results, DIRECT), _rps(results, base)
    return (
        f"- **{title}: dockyard.serving {direct:.0f} req/s = {direct / other:.2f}{TIMES} {base} "
        f"({other:.0f} req/s) (target ≥ {target:g}{TIMES}): {_at_least(direct / other, target)}**"
    )


def _router_line(results: dict[str, ServerResult], title: str, judged: bool) -> str:
    """Router p50 minus direct p50, same run. Judged on (a) only: with (b) the difference is
    within predict's run-to-run spread, which the line shows instead of a verdict."""
    missing = _measured(results, DIRECT, ROUTER)
    if missing:
        return f"- **{title}: router adds ? ms p50: {missing}**"
    direct, router = results[DIRECT], results[ROUTER]
    added = router.median("p50_ms") - direct.median("p50_ms")
    line = (
        f"the router adds {added:+.2f} ms p50 at concurrency {CONNECTIONS} "
        f"({router.median('p50_ms'):.2f} {MINUS} {direct.median('p50_ms'):.2f} ms direct; 1 "
        f"instance with {WORKERS} serving workers behind it)"
    )
    if judged:
        line = (
            f"**{title}: {line} (target < {ROUTER_P50_MS:g} ms): {verdict(added, ROUTER_P50_MS)}**"
        )
    else:
        p50s = [run.p50_ms for run in direct.runs]
        line = (
            f"{title}: {line}; no verdict, predict-bound: direct's p50 alone spans "
            f"{min(p50s):.1f}..{max(p50s):.1f} ms over its runs"
        )
    if direct.median("busiest_share") > UNEVEN_SHARE:
        line += (
            f" (dockyard.serving direct did {direct.median('busiest_share'):.0%} of its work in "
            "one process: its workers did not share the load, which inflates its p50 and "
            "flatters this difference)"
        )
    if direct.latency_runs and router.latency_runs:
        alone = router.median("p50_ms", router.latency_runs) - direct.median(
            "p50_ms", direct.latency_runs
        )
        line += (
            f"; at concurrency {LATENCY_CONNECTIONS} (no queueing) it adds {alone:+.2f} ms; "
            f"throughput through it: {_rps(results, ROUTER) / _rps(results, DIRECT):.0%} of direct"
        )
    return f"- {line}"


def _spread_line(serving: dict[str, Any]) -> str:
    """How evenly each server's workers shared the load: an uneven split halves a server."""
    parts = []
    for key, results in serving["results"].items():
        shares = [
            f"{label} {results[label].median('busiest_share'):.0%}"
            for label in (DIRECT, RAW, MLFLOW)
            if results[label].runs
        ]
        parts.append(f"{serving['models'][key].title.split(' ')[0]} " + ", ".join(shares))
    return (
        f"- the busiest worker's share of each server's CPU ({WORKERS} workers evenly loaded: "
        f"~50%, one worker doing everything: ~100%): " + "; ".join(parts)
    )


def serving_ratios(serving: dict[str, Any]) -> list[str]:
    """The headline lines: each target's ratio and verdict, computed from this run."""
    echo, rf = serving["results"]["echo"], serving["results"]["rf"]
    facts = serving["facts"]
    per_request = facts["rf_in_process_ms"]
    return [
        _share_line(echo, "(a) trivial model", RAW, ECHO_OF_RAW),
        _times_line(echo, "(a) trivial model", MMS, ECHO_OVER_MMS),
        _times_line(echo, "(a) trivial model", MLFLOW, ECHO_OVER_MLFLOW),
        _share_line(rf, "(b) RandomForest", RAW, RF_OF_RAW),
        _router_line(echo, "(a) trivial model", judged=True),
        _router_line(rf, "(b) RandomForest", judged=False),
        _spread_line(serving),
        f"- (b)'s handlers (input_fn + predict_fn + output_fn, one row) take {per_request:.2f} ms "
        f"in one process: {WORKERS} workers on {WORKERS} cores can answer at most "
        f"~{WORKERS * 1000 / per_request:.0f} req/s",
    ]


def _table(results: dict[str, ServerResult]) -> list[str]:
    lines = [
        "| server | req/s (median) | req/s of each run | p50 ms | p99 ms | server CPU µs/req "
        "| busiest process | wrk CPU µs/req | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in SERVERS:
        result = results[label]
        if result.unavailable or not result.runs:
            reason = (result.unavailable or "no runs").splitlines()[0]
            lines.append(f"| {label} | not available: {reason} | | | | | | | |")
            continue
        each = ", ".join(f"{run.per_second:.0f}" for run in result.runs)
        wrk_cpu = sum(r.wrk_cpu_s for r in result.runs) / sum(r.requests for r in result.runs)
        lines.append(
            f"| {label} | {result.median('per_second'):.0f} | {each} | "
            f"{result.median('p50_ms'):.2f} | {result.median('p99_ms'):.2f} | "
            f"{result.median('cpu_us_per_request'):.0f} | {result.median('busiest_share'):.0%} | "
            f"{wrk_cpu * 1e6:.0f} | "
            f"{sum(run.error_count for run in result.runs)} |"
        )
    return lines


def _latency_table(results: dict[str, ServerResult]) -> list[str]:
    lines = ["| server | req/s | p50 ms | p99 ms |", "|---|---:|---:|---:|"]
    for label in (DIRECT, ROUTER):
        runs = results[label].latency_runs
        if runs:
            result = results[label]
            lines.append(
                f"| {label} | {result.median('per_second', runs):.0f} | "
                f"{result.median('p50_ms', runs):.3f} | {result.median('p99_ms', runs):.3f} |"
            )
    return lines


def _why_missing(results: dict[str, ServerResult]) -> list[str]:
    missing = [(label, r.unavailable) for label, r in results.items() if r.unavailable]
    if not missing:
        return []
    lines = ["Not available in this run, with the error:", ""]
    for label, error in missing:
        lines += [f"- {label}:", "", "  ```", *(f"  {x}" for x in str(error).splitlines()), "  ```"]
    return [*lines, ""]


def serving_section(serving: dict[str, Any], number: int) -> list[str]:
    versions = serving["versions"]
    rounds, seconds = serving["rounds"], serving["seconds"]
    lines = [
        f"## {number}. Serving: requests/s and latency at concurrency {CONNECTIONS}",
        "",
        f"Every server runs with {WORKERS} worker processes on 127.0.0.1 (the machine has "
        f"{WORKERS} cores, shared with wrk); all servers of one model are up together. Each gets "
        f"a {WARMUP_SECONDS} s warm-up, then {rounds} rounds of one {seconds:g} s wrk run per "
        "server in turn (A, B, C, A, B, C, …), so drift hits all alike; the tables give the "
        "median of the runs (and each run's req/s, so the noise shows). Server CPU is the "
        "utime + stime of the server's processes (all descendants of the one started) during "
        "the run, over its requests; *busiest process* is the share of it that one process "
        "did: about 50% when 2 workers share the load evenly, 100% when one does it all (for "
        "the router and MMS the front process counts too).",
        "",
        f"- wrk: `{serving['wrk']}` (one load thread; the Lua script POSTs the body and prints "
        "wrk's summary as JSON)",
        f"- body: `{CSV_BODY.decode()}` (one iris row) as text/csv to every server but MLflow, "
        f"which gets `{JSON_BODY.decode()}` as application/json: its CSV reader (pandas) takes "
        "the first line as a header, so one row of CSV is no row at all. (a) echoes the bytes "
        "back; (b) answers the class (`0`).",
        "- the model: (a) handlers that return their input; (b) scikit-learn's "
        "RandomForestClassifier(n_estimators=100, random_state=0) fitted on "
        "sklearn.datasets.load_iris(), saved with joblib (for MLflow with mlflow.sklearn), "
        "n_jobs=1. raw ASGI, dockyard.serving, the router's instance and MMS run the same "
        "inference.py (model_fn, input_fn, predict_fn, output_fn): "
        "benchmarks/serving_apps/echo_inference.py and rf_inference.py.",
        "",
        "| server | how it runs | wire format |",
        "|---|---|---|",
        f"| {RAW} | benchmarks/serving_apps/raw_asgi.py, a bare ASGI callable that runs the "
        f"handlers inline, under `uvicorn --workers {WORKERS} --http httptools --loop uvloop "
        f"--no-access-log` | {WIRE[RAW]} |",
        f"| {DIRECT} | `python -m dockyard.serving` (this repository's src/) with "
        f"SAGEMAKER_MODEL_SERVER_WORKERS={WORKERS} | {WIRE[DIRECT]} |",
        f"| {ROUTER} | `python -m dockyard.api.server`; boto3 CreateModel (dockyard/python:3.11, "
        "SAGEMAKER_SUBMIT_DIRECTORY = the code folder, ModelDataUrl = model.tar.gz), "
        f"CreateEndpointConfig (1 {TIMES} ml.m5.large), CreateEndpoint; wrk POSTs to "
        f"/endpoints/NAME/invocations | {WIRE[ROUTER]} |",
        f"| {MLFLOW} | `mlflow models serve --env-manager local -w {WORKERS}` (uvicorn workers, "
        f"as shipped: access log on) | {WIRE[MLFLOW]} |",
        f"| {MMS} | `multi-model-server --start --foreground` with sagemaker-inference's default "
        f"handler service and the config its start_model_server writes, bound to 127.0.0.1, "
        f"default_workers_per_model={WORKERS} | {WIRE[MMS]} |",
        "",
        "Versions: "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + f"; the serving part took {serving['elapsed']:.0f} s.",
        "",
    ]
    for key, results in serving["results"].items():
        model = serving["models"][key]
        lines += [
            f"### {model.title}",
            "",
            *_table(results),
            "",
            f"At concurrency {LATENCY_CONNECTIONS} ({rounds} {TIMES} {LATENCY_SECONDS} s each, "
            "after the rounds above): what the router costs one request by itself.",
            "",
            *_latency_table(results),
            "",
            *_why_missing(results),
        ]
    return lines
