"""dockyard's benchmarks, one command: training (no-op job, staging), serving, the control plane,
S3 throughput, the docker runtime beside a bare `podman run`, the ray backend beside the local
one and the router with its metrics recorded or not, to RESULTS.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, machine

PARTS = ("training", "serving", "control", "s3", "containers", "cluster", "router-metrics")
ROUNDS = 3
ROUND_SECONDS = 10.0


def _block(name: str, lines: list[str]) -> str:
    """A part of RESULTS.md between markers, so a run of the other part can keep it."""
    return "\n".join([f"<!-- {name} -->", *lines, f"<!-- end {name} -->"])


def _kept_block(name: str, previous: str) -> str | None:
    match = re.search(rf"<!-- {name} -->\n.*?<!-- end {name} -->", previous, re.DOTALL)
    return match.group(0) if match else None


def _stamp(part: str, seconds: float) -> str:
    now = datetime.datetime.now().astimezone()
    return f"{part.capitalize()}: measured {now:%Y-%m-%d %H:%M %Z} in {seconds:.0f} s."


def _measure(part: str, work: Path, args: argparse.Namespace) -> dict[str, str]:
    """The blocks of one part, measured now; a failure becomes the part's text, not a crash."""
    started = time.perf_counter()
    # Each part imports its modules when it runs: one that no longer imports (the code it
    # measures moved) fails its own part only.
    try:
        if part == "training":
            from training import measure_training
            from training_report import training_ratios, training_sections

            results: Any = measure_training(work / "training")
            ratios, sections = training_ratios(results), training_sections(results)
        elif part == "control":
            from control_plane import (
                control_plane_ratios,
                control_plane_section,
                measure_control_plane,
            )

            results = measure_control_plane(work / "control")
            ratios, sections = control_plane_ratios(results), control_plane_section(results)
        elif part == "s3":
            from s3_throughput import measure_s3, s3_ratios, s3_section

            results = measure_s3(work / "s3")
            ratios, sections = s3_ratios(results), s3_section(results)
        elif part == "containers":
            from containers import measure_containers
            from containers_report import containers_ratios, containers_section

            results = measure_containers(work / "containers")
            ratios, sections = containers_ratios(results), containers_section(results)
        elif part == "router-metrics":
            from router_metrics import measure_router_metrics
            from router_metrics_report import router_metrics_ratios, router_metrics_section

            results = measure_router_metrics(work / "router-metrics")
            ratios, sections = router_metrics_ratios(results), router_metrics_section(results)
        elif part == "cluster":
            from cluster import measure_cluster
            from cluster_report import cluster_ratios, cluster_section

            results = measure_cluster(work / "cluster")
            ratios, sections = cluster_ratios(results), cluster_section(results)
        else:
            from serving import measure_serving
            from serving_report import serving_ratios, serving_section

            results = measure_serving(work / "serving", args.rounds, args.seconds)
            ratios, sections = serving_ratios(results), serving_section(results, 4)
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        ratios, sections = [f"- {part}: not measured in this run: {error}"], []
        args.failed = True
    stamp = _stamp(part, time.perf_counter() - started)
    return {
        f"{part} ratios": _block(f"{part} ratios", [stamp, "", *ratios]),
        f"{part} sections": _block(f"{part} sections", sections),
    }


def report(info: dict[str, str], blocks: dict[str, str]) -> str:
    parts = [
        "# dockyard benchmarks",
        "",
        f"Written by `.venv/bin/python benchmarks/run.py` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}.",
        "",
        f"Machine: nproc {info['nproc']} ({info['cpu']}), memory {info['memory']}, kernel "
        f"{info['kernel']}, {info['bwrap']}, Python {info['python']}; "
        f"dockyard at {info['commit']}.",
        "",
        "Medians over N interleaved repetitions (A, B, C, A, B, C, …) after a warm-up; "
        "the spread is shown beside them. The machine is shared and noisy: read the ratios.",
        "",
        "## Ratios and targets",
        "",
        blocks["training ratios"],
        "",
        blocks["serving ratios"],
        "",
        blocks["control ratios"],
        "",
        blocks["s3 ratios"],
        "",
        blocks["containers ratios"],
        "",
        blocks["cluster ratios"],
        "",
        blocks["router-metrics ratios"],
        "",
        blocks["training sections"],
        "",
        blocks["serving sections"],
        "",
        blocks["control sections"],
        "",
        blocks["s3 sections"],
        "",
        blocks["containers sections"],
        "",
        blocks["cluster sections"],
        "",
        blocks["router-metrics sections"],
    ]
    return "\n".join(parts)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM runs the finally blocks (every server started gets stopped), then exits."""

    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only", choices=PARTS, help="measure one part; RESULTS.md keeps the other's figures"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="wrk runs per server")
    parser.add_argument("--seconds", type=float, default=ROUND_SECONDS, help="each wrk run")
    args = parser.parse_args()
    args.failed = False
    info = machine()
    previous = RESULTS.read_text() if RESULTS.is_file() else ""
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    # The benchmarks' image folders and local data live here; the server reads them only
    # under DOCKYARD_LOCAL_PATHS, whose default (the home folder) does not hold it.
    os.environ["DOCKYARD_LOCAL_PATHS"] = str(work)
    blocks: dict[str, str] = {}
    try:
        with _sigterm_exits():
            for part in PARTS:
                if args.only in (None, part):
                    blocks.update(_measure(part, work, args))
                    continue
                for kind in ("ratios", "sections"):
                    name = f"{part} {kind}"
                    kept = _kept_block(name, previous)
                    placeholder = [f"- {part}: not measured (run without --only {args.only})"]
                    blocks[name] = kept or _block(name, placeholder if kind == "ratios" else [])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(info, blocks)
    RESULTS.write_text(text + "\n")
    print(text.split("<!-- training sections -->")[0])
    print(f"written to {RESULTS.relative_to(REPO)}")
    if args.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
