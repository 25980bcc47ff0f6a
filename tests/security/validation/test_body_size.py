"""Issue 8, part 5: a control-plane request body is read only up to DOCKYARD_MAX_REQUEST_BYTES
(found: a 100 MB body was read whole, server RSS 104 → 412 MB). A real server process, its peak
RSS read from /proc, and a client that streams 100 MB without holding it."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from tests.conftest import free_port, wait_for_port
from tests.security.validation.wire import JSON_11, signed_headers

pytestmark = pytest.mark.slow

HUNDRED_MB = 100 * 1024 * 1024
CHUNK = 1024 * 1024


class Spaces:
    """`size` bytes of spaces as a seekable file: botocore hashes it without holding it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0

    def read(self, count: int = -1) -> bytes:
        left = self.size - self.position
        count = left if count < 0 else min(count, left)
        self.position += count
        return b" " * count

    def tell(self) -> int:
        return self.position

    def seek(self, position: int, whence: int = 0) -> int:
        self.position = position if whence == 0 else self.size + position
        return self.position


@pytest.fixture
def server_process(clean_env: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "DOCKYARD_HOME": str(clean_env), "DOCKYARD_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard.api.server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _send(url: str, credentials: Credentials, *, chunked: bool) -> tuple[int, dict[str, Any], int]:
    """POST 100 MB of spaces to ListModels; stop sending once the server answers. Returns the
    status, the JSON body and how many body bytes were sent."""
    host, port = url.removeprefix("http://").split(":")
    # Host is signed, so it is sent (botocore signs it from the URL but leaves adding it to
    # the HTTP client, and this test writes the request itself).
    headers = {"Host": f"{host}:{port}", "X-Amz-Target": "SageMaker.ListModels"}
    headers["Content-Type"] = JSON_11
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(HUNDRED_MB)
    signed = signed_headers(
        credentials, "sagemaker", "POST", url + "/", Spaces(HUNDRED_MB), headers
    )
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items())
        sock.sendall(head.encode("latin-1") + b"\r\n")
        sent = 0
        answer = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            if sent >= HUNDRED_MB:
                select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
                break
            piece = b" " * CHUNK
            frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(frame)
            except OSError:
                break  # the server answered and closed: read what it said
            sent += len(piece)
        if chunked and sent >= HUNDRED_MB:
            sock.sendall(b"0\r\n\r\n")
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer:
                head_part, _, rest = answer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head_part.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(rest) >= length:
                    break
    head_part, _, rest = answer.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ")[1])
    return status, json.loads(rest), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_body_is_refused_without_being_held(
    server_process: tuple[str, int], api_credentials: Credentials, chunked: bool
) -> None:
    url, pid = server_process
    before = _peak_rss_mib(pid)
    status, body, sent = _send(url, api_credentials, chunked=chunked)
    after = _peak_rss_mib(pid)
    print(f"peak RSS {before:.0f} -> {after:.0f} MiB; {sent / 2**20:.0f} MiB sent")
    assert status == 413, body
    assert body["__type"] == "RequestEntityTooLargeException"
    assert "DOCKYARD_MAX_REQUEST_BYTES" in body["message"]
    assert after - before < 40, f"the server's peak RSS grew {after - before:.0f} MiB"
    assert sent < HUNDRED_MB
