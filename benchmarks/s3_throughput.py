"""S3 PUT and GET throughput through dockyard's S3 API, side by side with moto_server and the raw
disk (`dd`), for 1 MiB and 256 MiB objects, with boto3's own transfer calls (upload_file and
download_file: multipart above 8 MiB, as users' code and the SageMaker SDK do)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from common import MIB, TIMES, Samples, free_port
from local_servers import moto_server
from serving_servers import _env, server_process

SIZES = {"1 MiB": 1, "256 MiB": 256}
REPS = {"1 MiB": 20, "256 MiB": 3}
DOCKYARD, MOTO, DISK = "dockyard S3 API", "moto_server", "raw disk (dd)"
FLOOR = "boto3's floor (a server that drops bodies, serves pre-made bytes)"


@dataclass
class S3Results:
    put: dict[tuple[str, str], Samples]  # (size, target) -> MB/s
    get: dict[tuple[str, str], Samples]


def _client(url: str, key: str, secret: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )  # fmt: skip


def _mb_per_s(size_mib: int, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return size_mib * MIB / 1e6 / (time.perf_counter() - started)


def measure_s3(work: Path) -> S3Results:
    work.mkdir(parents=True, exist_ok=True)
    sources = {}
    for label, mib in SIZES.items():
        path = work / f"object-{mib}"
        with open(path, "wb") as out:
            for _ in range(mib):
                out.write(secrets.token_bytes(MIB))
        sources[label] = path
    port, key, secret = free_port(), "BENCH", secrets.token_urlsafe(30)
    env = _env(
        DOCKYARD_HOME=str(work / "dockyard-home"),
        DOCKYARD_HOST="127.0.0.1",
        DOCKYARD_PORT=str(port),
        DOCKYARD_ACCESS_KEY_ID=key,
        DOCKYARD_SECRET_ACCESS_KEY=secret,
    )
    url = f"http://127.0.0.1:{port}"
    transfer = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
    put: dict[tuple[str, str], Samples] = {}
    get: dict[tuple[str, str], Samples] = {}
    argv = [sys.executable, "-m", "dockyard.api.server"]
    floor_port = free_port()
    floor_url = f"http://127.0.0.1:{floor_port}"
    floor_argv = [sys.executable, str(Path(__file__).with_name("s3_floor.py")), str(floor_port)]
    with (
        server_process(argv, env, work / "dockyard.log", f"{url}/healthz"),
        server_process(floor_argv, _env(), work / "floor.log", f"{floor_url}/healthz"),
        moto_server() as moto_url,
    ):
        clients = {DOCKYARD: _client(url, key, secret), MOTO: _client(moto_url, "x", "x")}
        floor = _client(floor_url, "x", "x")
        for client in clients.values():
            client.create_bucket(Bucket="bench")
        for label, source in sources.items():
            mib = SIZES[label]
            copy = work / "dd-copy"
            backs = {name: work / f"download-{i}" for i, name in enumerate(clients)}

            def dd_put(source: Path = source, copy: Path = copy) -> None:
                subprocess.run(
                    ["dd", f"if={source}", f"of={copy}", "bs=1M", "status=none"],
                    check=True,
                )

            def dd_get(copy: Path = copy) -> None:
                subprocess.run(["dd", f"if={copy}", "of=/dev/null", "bs=1M", "status=none"])

            runs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
                DISK: (dd_put, dd_get)
            }
            for name, client in clients.items():
                runs[name] = (
                    lambda c=client, s=source: c.upload_file(
                        str(s), "bench", s.name, Config=transfer
                    ),
                    lambda c=client, s=source, b=backs[name]: c.download_file(
                        "bench", s.name, str(b), Config=transfer
                    ),
                )
            floor_back = work / "floor-download"
            runs[FLOOR] = (
                lambda s=source: floor.upload_file(str(s), "bench", s.name, Config=transfer),
                lambda s=source, b=floor_back: floor.download_file(
                    "bench", s.name, str(b), Config=transfer
                ),
            )
            for name in runs:
                put[(label, name)], get[(label, name)] = Samples(), Samples()
            for do_put, do_get in runs.values():  # warm-up
                do_put()
                do_get()
            names = list(runs)
            for round_ in range(REPS[label]):
                # The order turns each round, so what a target leaves behind (dd's dirty pages
                # being written back, a server still freeing 256 MiB) does not always land on
                # the same next one.
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    do_put, do_get = runs[name]
                    put[(label, name)].values.append(_mb_per_s(mib, do_put))
                    get[(label, name)].values.append(_mb_per_s(mib, do_get))
            for name, back in backs.items():
                if back.read_bytes() != source.read_bytes():
                    raise AssertionError(f"{label}: the object {name} read back differs")
            if floor_back.stat().st_size != source.stat().st_size:
                raise AssertionError(f"{label}: the floor served the wrong size")
    return S3Results(put, get)


def _verdict(ours: float, needed: float, floor: float) -> str:
    """PASS or FAIL, and beside a FAIL whether boto3 could reach the target here at all."""
    if ours >= needed:
        return "PASS"
    reach = "beyond" if needed > floor else "within"
    return f"FAIL (needs {needed:.0f} MB/s, {reach} boto3's floor of {floor:.0f} MB/s)"


def s3_ratios(results: S3Results) -> list[str]:
    lines = []
    for direction, table in (("PUT", results.put), ("GET", results.get)):
        for label in SIZES:
            ours = table[(label, DOCKYARD)].median
            moto = table[(label, MOTO)].median
            disk = table[(label, DISK)].median
            floor = table[(label, FLOOR)].median
            disk_target = f" (target ≥ 0.5{TIMES})" if label == "256 MiB" else ""
            verdicts = []
            if label == "256 MiB":
                verdicts.append(_verdict(ours, 0.5 * disk, floor))
            verdicts.append(_verdict(ours, 5 * moto, floor))
            action = "drops bodies" if direction == "PUT" else "serves pre-made bytes"
            lines.append(
                f"- **S3 {direction} {label}: dockyard {ours:.0f} MB/s = "
                f"{ours / disk:.2f}{TIMES} the raw disk ({disk:.0f} MB/s){disk_target}, "
                f"{ours / moto:.1f}{TIMES} moto_server "
                f"({moto:.0f} MB/s) (target ≥ 5{TIMES}): {' / '.join(verdicts)}**; "
                f"boto3 itself reaches {floor:.0f} MB/s against a server that {action} = "
                f"{floor / disk:.2f}{TIMES} the disk, and dockyard {ours / floor:.2f}{TIMES} that"
                + (
                    " (above the floor: in this run the shared machine's noise was larger than "
                    "the gap, so the floor is no ceiling here)"
                    if ours > floor
                    else ""
                )
            )
    return lines


def s3_section(results: S3Results) -> list[str]:
    rows = []
    for direction, table in (("PUT", results.put), ("GET", results.get)):
        for (label, name), samples in table.items():
            values = samples.values
            rows.append(
                f"| {direction} {label} | {name} | {samples.median:.0f} | {min(values):.0f} | "
                f"{max(values):.0f} | {len(values)} |"
            )
    return [
        "## S3 throughput",
        "",
        "boto3 `upload_file` / `download_file` with its default TransferConfig (multipart above "
        "8 MiB, 10 threads) against `python -m dockyard.api.server`'s S3 API (local object "
        "store) and moto_server, both on loopback; the raw disk is `dd bs=1M` copying the same "
        "file on the same file system (PUT, into the page cache, as the servers' writes go) and "
        "`dd` reading it back (GET, from the page cache, as the servers' reads are). Random "
        "content; runs interleaved after a warm-up, the order turning each round; every "
        "server's object read back is compared with the one put. boto3's floor: the same "
        "uploads and downloads against a stand-in server "
        "(`s3_floor.py`) that reads and drops every body, keeping only sizes, and answers "
        "HeadObject and GetObject (whole, with the CRC32 boto3 checks, or ranged) with pre-made "
        "bytes: the most boto3 reaches on this machine whatever the server; the machine's 2 "
        "cores are shared with other work, so the figures are noisy.",
        "",
        "| transfer | target | median MB/s | min | max | N |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]
