"""The real server against bad and slow clients: malformed framing gets a 4xx and one log line,
a half-sent request is cut off at its deadline while other clients are served, and the memory
such requests hold is given back."""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.serving.test_server import INFERENCE, Server, model_dir, start

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
MIN_RATE = 1000  # bytes/s
LATE = 8.0  # how much later than its deadline a close may come on a busy machine
POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = model_dir(tmp_path_factory.mktemp("http1"), **{"inference.py": INFERENCE})
    running = start(
        base,
        DOCKYARD_SERVING_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        DOCKYARD_SERVING_BODY_TIMEOUT=str(BODY_TIMEOUT),
        DOCKYARD_SERVING_BODY_MIN_RATE=str(MIN_RATE),
    )
    yield running
    assert running.stop() == 0


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=HEADER_TIMEOUT + LATE)


def answer_and_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's timeout bounds the wait)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def log_since(server: Server, offset: int) -> str:
    return server.log.read_bytes()[offset:].decode(errors="replace")


def ping_ok(server: Server) -> bool:
    began = time.monotonic()
    status = server.request("GET", "/ping")[0]
    return status == 200 and time.monotonic() - began < 2.0


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (b"\xb2", b"is not a number"),  # SUPERSCRIPT TWO: int() takes it
        (b"9" * 5000, b"more than 20 digits"),  # int() raises past 4300 digits
        (b"1_0", b"is not a number"),
        (b"7, 8", b"differing values"),
        (b"99999999999999999999", b"SAGEMAKER_MAX_PAYLOAD_IN_MB"),
    ],
)
def test_a_bad_content_length_is_answered_and_logged_in_one_line(
    server: Server, value: bytes, said: bytes
) -> None:
    offset = server.log.stat().st_size
    answer = server.raw(POST + b"Content-Length: " + value + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 " if b"PAYLOAD" in said else b"HTTP/1.1 400 ")
    assert said in answer and b"Connection: close" in answer
    log = log_since(server, offset)
    # Another worker may log its model's loading meanwhile: the refusal is one line of its own.
    lines = [line for line in log.splitlines() if "model loaded from" not in line]
    assert len(lines) == 1 and "refused a request from 127.0.0.1" in lines[0], log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "wire",
    [
        POST + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\n1,2\r\n0\r\n\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\n 3 \r\n1,2\r\n0\r\n\r\n",
        POST + b"X-Bad: a\rb\r\nContent-Length: 1\r\n\r\n1",
        POST + b"X-Bad: a\x00b\r\nContent-Length: 1\r\n\r\n1",
        POST + b"X-Folded: a\r\n b\r\nContent-Length: 1\r\n\r\n1",
        POST + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n1\r\n0\r\n\r\n",
    ],
)
def test_bad_chunk_sizes_and_header_bytes_are_400(server: Server, wire: bytes) -> None:
    answer = server.raw(wire)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"[[2.0]]" not in answer


def test_a_request_with_lone_lf_lines_is_refused_at_once(server: Server) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET /ping HTTP/1.1\nHost: x\n\n")
        answer = answer_and_close(sock)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"bare LF" in answer  # not a 408 later
    assert time.monotonic() - began < HEADER_TIMEOUT


HALF_SENT = {
    "half a request line": b"POST /invoc",
    "half the headers": POST + b"Content-Le",
    "half the body": POST + b"Content-Length: 10\r\n\r\n1,2,",
    "half a chunked body": POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\n1,",
    "no trailer end": POST + b"Transfer-Encoding: chunked\r\n\r\n1\r\n1\r\n0\r\nX-T: 1\r\n",
}


def test_half_sent_requests_are_cut_off_while_others_are_served(server: Server) -> None:
    """Ten connections of each kind stall; each is answered 408 and closed at its deadline, and
    /ping answers promptly all the while."""
    selector = selectors.DefaultSelector()
    began: dict[socket.socket, float] = {}
    for kind, wire in HALF_SENT.items():
        for _ in range(10):
            sock = connect(server)
            sock.setblocking(False)
            sock.sendall(wire)
            began[sock] = time.monotonic()
            selector.register(sock, selectors.EVENT_READ, [kind, b""])
    closed: dict[str, list[tuple[float, bytes]]] = {kind: [] for kind in HALF_SENT}
    pings = 0
    give_up = time.monotonic() + HEADER_TIMEOUT + BODY_TIMEOUT + LATE
    while selector.get_map() and time.monotonic() < give_up:
        for key, _ in selector.select(timeout=0.1):
            sock, state = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            state[1] += chunk
            if not chunk:
                closed[state[0]].append((time.monotonic() - began[sock], state[1]))
                selector.unregister(sock)
                sock.close()
        assert ping_ok(server)
        pings += 1
    left = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    assert left == 0, f"{left} half-sent requests were still open after {LATE} s past the deadline"
    assert pings >= 10
    for kind, ends in closed.items():
        deadline = HEADER_TIMEOUT if "body" not in kind and "trailer" not in kind else BODY_TIMEOUT
        for seconds, answer in ends:
            assert deadline - 0.2 <= seconds <= deadline + LATE, (kind, seconds)
            assert answer.startswith(b"HTTP/1.1 408 "), (kind, answer)
            assert b"DOCKYARD_SERVING_" in answer


def trickle(
    server: Server, head: bytes, piece: bytes, every: float, limit: float
) -> tuple[float, bytes]:
    """Send ``head``, then ``piece`` each ``every`` seconds until the server answers (or closes)
    or ``limit`` seconds pass; return when it answered, after the head, and what it said."""
    with connect(server) as sock:
        sock.sendall(head)
        began = time.monotonic()
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() - began < limit:
            if selector.select(timeout=every):  # the answer, or the close: not a fixed sleep
                return time.monotonic() - began, answer_and_close(sock)
            sock.sendall(piece)
        return time.monotonic() - began, b""


def test_the_header_deadline_holds_however_steadily_the_head_trickles_in(server: Server) -> None:
    seconds, answer = trickle(server, b"GET /ping HTTP/1.1\r\n", b"X: 1\r\n", 0.25, 30)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"DOCKYARD_SERVING_HEADER_TIMEOUT" in answer
    assert HEADER_TIMEOUT - 0.2 <= seconds <= HEADER_TIMEOUT + LATE


def test_a_body_slower_than_the_minimum_rate_is_cut_off(server: Server) -> None:
    """Five bytes every 0.25 s never leaves the body idle for BODY_TIMEOUT, but at 20 bytes/s it
    would hold the connection (and its buffer) for hours."""
    head = POST + b"Content-Length: 100000\r\n\r\n"
    seconds, answer = trickle(server, head, b"1,2,3", 0.25, 30)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"DOCKYARD_SERVING_BODY_MIN_RATE" in answer
    assert BODY_TIMEOUT - 0.2 <= seconds <= BODY_TIMEOUT + LATE


def test_a_slow_but_steady_body_is_read_past_the_body_timeout(server: Server) -> None:
    """The body deadline follows progress: 12 pieces of 1 KB, 0.3 s apart (over 3 s in all, about
    3 KB/s), are read and answered."""
    rows = b"1,2,3,4\n" * 125  # 1000 bytes
    head = POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (len(rows) * 12)
    with connect(server) as sock:
        sock.sendall(head)
        began = time.monotonic()
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        for _ in range(12):
            assert not selector.select(timeout=0.3), sock.recv(1000)  # no early 408
            sock.sendall(rows)
        answer = answer_and_close(sock)
    assert time.monotonic() - began > 2 * BODY_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"[2.0, 4.0, 6.0, 8.0]") == 1500


def worker_rss(server: Server) -> int:
    """The resident memory of the server's worker processes, in bytes."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["PPid"]) == server.process.pid:
            total += int(fields["VmRSS"].split()[0]) * 1024
    return total


def wait_for_rss(server: Server, holds: Callable[[int], bool]) -> int:
    """Poll the workers' memory until ``holds`` is true of it (or 10 s pass); return it."""
    deadline = time.monotonic() + 10
    while not holds(rss := worker_rss(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return rss


def test_stalled_bodies_do_not_pile_up_in_the_workers_memory(server: Server) -> None:
    """Four rounds of 30 connections that each send 2 MB of a 4 MB body and stall: the workers
    hold the bodies while they wait, cut every one off at the body deadline and give the memory
    back, so rounds do not add up (40 such connections used to hold about 240 MB for good)."""
    mib = 1024 * 1024
    before = worker_rss(server)
    chunk = b"1," * mib
    peaks, afters = [], []
    for _ in range(4):
        sockets = []
        for _ in range(30):
            sock = connect(server)
            sock.sendall(POST + b"Content-Length: %d\r\n\r\n" % (4 * mib) + chunk)
            sockets.append(sock)
        peaks.append(wait_for_rss(server, lambda rss: rss > before + 50 * mib))
        assert ping_ok(server)
        for sock in sockets:
            assert answer_and_close(sock).startswith(b"HTTP/1.1 408 ")
            sock.close()
        afters.append(wait_for_rss(server, lambda rss: rss < before + 20 * mib))
    report = [
        ((peak - before) // mib, (after - before) // mib)
        for peak, after in zip(peaks, afters, strict=True)
    ]
    assert min(peaks) > before + 50 * mib, f"MiB above the start, held and after: {report}"
    # Before the fix the bodies piled up round after round (60 to 261 MiB above the start).
    assert max(afters) < before + 40 * mib, f"MiB above the start, held and after: {report}"
