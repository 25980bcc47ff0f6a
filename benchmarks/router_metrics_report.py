"""The router-metrics benchmark's part of RESULTS.md: the on/off ratio, then the table."""

from __future__ import annotations

import statistics
from typing import Any

from common import MINUS, TIMES
from router_metrics import OFF, ON
from serving import LATENCY_CONNECTIONS, LATENCY_SECONDS, WARMUP_SECONDS, ServerResult, WrkRun
from serving_servers import WORKERS

# What recording may cost the router's throughput (issue 13: "cheap: the router's hot path").
MAX_COST = 0.05


def _med(result: ServerResult, attribute: str, latency: bool = False) -> float:
    return result.median(attribute, result.latency_runs if latency else None)


def router_metrics_ratios(data: dict[str, Any]) -> list[str]:
    on, off = data["results"][ON], data["results"][OFF]
    ratio = _med(on, "per_second") / _med(off, "per_second")
    p50 = _med(on, "p50_ms") - _med(off, "p50_ms")
    p50_c1 = _med(on, "p50_ms", True) - _med(off, "p50_ms", True)
    on_rates = [r.per_second for r in on.runs]
    off_rates = [r.per_second for r in off.runs]
    # Each median inside the other's runs: the difference is within what the machine's noise
    # moves a run by, and a verdict on it would be the noise's.
    within = min(off_rates) <= _med(on, "per_second") <= max(off_rates) and min(on_rates) <= _med(
        off, "per_second"
    ) <= max(on_rates)
    record_on = statistics.median(data["record_us"][ON])
    record_off = statistics.median(data["record_us"][OFF])
    flush = statistics.median(data["record_us"]["flush"])
    per_request = _med(off, "cpu_us_per_request")
    slot_a, slot_b = (statistics.median(data["slots"][slot]) for slot in ("a", "b"))
    share = (record_on - record_off + flush) / per_request
    if within:
        judged = (
            f": no verdict, within the run-to-run spread (off's runs {min(off_rates):.0f}.."
            f"{max(off_rates):.0f} req/s, on's {min(on_rates):.0f}..{max(on_rates):.0f})"
        )
    else:
        verdict = "PASS" if ratio >= 1 - MAX_COST else "FAIL"
        judged = f" (target ≥ {1 - MAX_COST:.2f}{TIMES}): {verdict}"
    return [
        f"- **router metrics, what recording costs a request: EndpointMetrics.record() on the "
        f"request's path {record_on:.2f} µs ({record_off:.2f} µs with recording off) and "
        f"summarising and writing its seconds off the path {flush:.2f} µs, in-process: "
        f"together {share:.1%} of the server's CPU per request through the router "
        f"({per_request:.0f} µs, recording off, wrk -c{data['connections']}) (target ≤ "
        f"{MAX_COST:.0%}): {'PASS' if share <= MAX_COST else 'FAIL'}**",
        f"- router metrics under wrk, both servers side by side: recording on served "
        f"{ratio:.2f}{TIMES} the requests/s of recording off ({_med(on, 'per_second'):.0f} vs "
        f"{_med(off, 'per_second'):.0f} req/s at concurrency {data['connections']}){judged}; "
        f"p50 {p50:+.2f} ms, at concurrency 1 {p50_c1:+.3f} ms; the server started first "
        f"served {slot_a / slot_b:.2f}{TIMES} the other's requests/s whatever its setting "
        f"({slot_a:.0f} vs {slot_b:.0f}: the bias the swapped passes cancel)",
    ]


def _row(label: str, result: ServerResult, runs: list[WrkRun], sent: int, counted: float) -> str:
    rates = ", ".join(f"{r.per_second:.0f}" for r in runs)
    errors = sum(r.error_count for r in runs)
    return (
        f"| {label} | {result.median('per_second', runs):.0f} | {rates} | "
        f"{result.median('p50_ms', runs):.2f} | {result.median('p99_ms', runs):.2f} | "
        f"{result.median('cpu_us_per_request', runs):.0f} | {errors} | {sent} | {counted:.0f} |"
    )


def router_metrics_section(data: dict[str, Any]) -> list[str]:
    results, sent, counted = data["results"], data["sent"], data["counted"]
    head = (
        "| router | req/s (median) | req/s of each run | p50 ms | p99 ms | server CPU µs/req "
        "| errors | requests sent | invocations recorded |"
    )
    rule = "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    return [
        "## Router metrics: recording on vs off",
        "",
        "Two dockyard servers (`python -m dockyard.api.server`) up together on 127.0.0.1, one "
        "with the default DOCKYARD_ROUTER_METRICS=true, one with it false, in two passes with "
        "the two swapped (which server starts first: two servers with the same setting were "
        "seen to differ by about 20% by that alone); each has one endpoint "
        f"of the serving benchmark's trivial model (a) on dockyard/python:3.11, 1 {TIMES} "
        "ml.m5.large "
        f"with {WORKERS} dockyard.serving workers, made with boto3. wrk as in section 4 "
        f"(`{data['wrk']}`, a presigned URL): a {WARMUP_SECONDS} s warm-up each, then "
        f"{data['rounds']} rounds per pass of one {data['seconds']:g} s run each in turn "
        "(the order turning every round, so drift hits both alike), then "
        f"{data['rounds']} {TIMES} {LATENCY_SECONDS} s each per pass at concurrency "
        f"{LATENCY_CONNECTIONS}. "
        "Medians of the runs. Server CPU counts the server and its instance's processes. "
        "*Invocations recorded*: the server's own dockyard_router_invocations_total at the end "
        "(GET /metrics); *requests sent*: the responses wrk counted. Recording on must have "
        "recorded every one, and may have a few more: the requests still in flight when a wrk "
        "run's time is up (up to its connections' number per run) are answered, and recorded, "
        "after wrk stopped counting; so is the one check of the answer before the runs. "
        f"Recording off records none. {MINUS} The run took {data['elapsed']:.0f} s; the "
        f"machine's load average was {data.get('load', '?')} at its end (other work shares "
        "the 2 cores: compare the two rows with each other, not with section 4).",
        "",
        f"At concurrency {data['connections']}:",
        "",
        head,
        rule,
        *(
            _row(label, results[label], results[label].runs, sent[label], counted[label])
            for label in (ON, OFF)
        ),
        "",
        f"At concurrency {LATENCY_CONNECTIONS}:",
        "",
        "| router | req/s (median) | req/s of each run | p50 ms | p99 ms | server CPU µs/req "
        "| errors |",
        "|---|---:|---|---:|---:|---:|---:|",
        *(_latency_row(label, results[label]) for label in (ON, OFF)),
    ]


def _latency_row(label: str, result: ServerResult) -> str:
    runs = result.latency_runs
    rates = ", ".join(f"{r.per_second:.0f}" for r in runs)
    return (
        f"| {label} | {result.median('per_second', runs):.0f} | {rates} | "
        f"{result.median('p50_ms', runs):.3f} | {result.median('p99_ms', runs):.3f} | "
        f"{result.median('cpu_us_per_request', runs):.0f} | "
        f"{sum(r.error_count for r in runs)} |"
    )
