"""The real server: ``python -m dockyard.serving`` on a free loopback port, driven over sockets."""

from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

INFERENCE = textwrap.dedent(
    """
    import os
    import time

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "factor.txt")) as f:
            return float(f.read())

    def predict_fn(data, model, context):
        attributes = context.custom_attributes or ""
        if attributes == "fail":
            raise ValueError("bad input")
        if attributes.startswith("sleep="):
            time.sleep(float(attributes[6:]))
        if attributes == "pid":
            return {"pid": os.getpid()}
        if attributes:
            context.response_custom_attributes = "seen=" + attributes
        return [[value * model for value in row] for row in data]
    """
)

TRANSFORM = textwrap.dedent(
    """
    def model_fn(model_dir):
        return "upper"

    def transform_fn(model, data, content_type, accept):
        return data.upper(), "text/plain"
    """
)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        connection = self.connect()
        try:
            names = {key.replace("_", "-"): value for key, value in headers.items()}
            connection.request(method, path, body=body, headers=names)
            response = connection.getresponse()
            return response.status, response.read(), response
        finally:
            connection.close()

    def raw(self, wire: bytes) -> bytes:
        """Send bytes, read until the server closes the connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(wire)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start(base_dir: Path, wait: bool = True, **env: str) -> Server:
    port = free_port()
    log = base_dir / f"server-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SM_"))}
    environ.update(
        {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "DOCKYARD_SERVING_HOST": "127.0.0.1",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            **env,
        }
    )
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard.serving"], env=environ, stderr=stderr
        )
    server = Server(process, port, log)
    if wait:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{log.read_text()}")
            try:
                if server.request("GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"/ping never answered 200:\n{log.read_text()}")
            time.sleep(0.02)
    return server


def model_dir(base: Path, **programs: str) -> Path:
    code = base / "model" / "code"
    code.mkdir(parents=True)
    (base / "model" / "factor.txt").write_text("2")
    for name, source in programs.items():
        (code / name).write_text(source)
    return base


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = model_dir(
        tmp_path_factory.mktemp("serving"), **{"inference.py": INFERENCE, "upper.py": TRANSFORM}
    )
    running = start(base, SAGEMAKER_MODEL_SERVER_TIMEOUT="1")
    yield running
    assert running.stop() == 0


def test_ping_is_200_with_an_empty_body(server: Server) -> None:
    assert server.request("GET", "/ping")[:2] == (200, b"")


def test_json_in_json_out(server: Server) -> None:
    status, body, response = server.request(
        "POST", "/invocations", b"[[1, 2], [3]]", Content_Type="application/json"
    )
    assert (status, json.loads(body)) == (200, [[2.0, 4.0], [6.0]])
    assert response.getheader("Content-Type") == "application/json"


def test_csv_with_charset_in_csv_out(server: Server) -> None:
    status, body, response = server.request(
        "POST",
        "/invocations",
        b"1,2\n3,4\n",
        Content_Type="text/csv; charset=utf-8",
        Accept="text/csv",
    )
    assert (status, body) == (200, b"2.0,4.0\n6.0,8.0\n")
    assert response.getheader("Content-Type") == "text/csv"


def test_accept_it_cannot_produce_is_406(server: Server) -> None:
    status, body, _ = server.request(
        "POST", "/invocations", b"1", Content_Type="text/csv", Accept="image/png"
    )
    assert status == 406
    assert b"image/png" in body


def test_unsupported_content_type_is_415(server: Server) -> None:
    status, _, _ = server.request("POST", "/invocations", b"\x00", Content_Type="image/png")
    assert status == 415


def test_handler_error_is_500_with_a_short_message(server: Server) -> None:
    status, body, _ = server.request(
        "POST",
        "/invocations",
        b"1",
        Content_Type="text/csv",
        X_Amzn_SageMaker_Custom_Attributes="fail",
    )
    assert (status, body) == (500, b"the inference handler failed: ValueError: bad input\n")
    assert "Traceback" in server.log.read_text()


def test_custom_attributes_round_trip(server: Server) -> None:
    status, _, response = server.request(
        "POST",
        "/invocations",
        b"1",
        Content_Type="text/csv",
        X_Amzn_SageMaker_Custom_Attributes="trace=42",
    )
    assert status == 200
    assert response.getheader("X-Amzn-SageMaker-Custom-Attributes") == "seen=trace=42"


def test_slow_handler_is_504_and_the_connection_stays_usable(server: Server) -> None:
    connection = server.connect()
    headers = {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "sleep=3"}
    connection.request("POST", "/invocations", b"1", headers)
    response = connection.getresponse()
    assert response.status == 504
    assert b"did not answer within 1 s" in response.read()
    connection.request("GET", "/ping")
    assert connection.getresponse().status == 200
    connection.close()


def test_keep_alive_serves_several_requests_on_one_connection(server: Server) -> None:
    connection = server.connect()
    for value in range(5):
        connection.request(
            "POST", "/invocations", f"{value}".encode(), {"Content-Type": "text/csv"}
        )
        response = connection.getresponse()
        assert json.loads(response.read()) == [[2.0 * value]]
    connection.close()


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    one = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1"
    one += b"\r\n\r\n"
    wire = one + b"1" + one + b"2" + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = server.raw(wire)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.index(b"[[2.0]]") < answer.index(b"[[4.0]]")


def test_chunked_request_body(server: Server) -> None:
    connection = server.connect()
    chunks = iter([b"1,", b"2\n", b"3,4"])
    connection.request(
        "POST", "/invocations", chunks, {"Content-Type": "text/csv"}, encode_chunked=True
    )
    response = connection.getresponse()
    assert json.loads(response.read()) == [[2.0, 4.0], [6.0, 8.0]]
    connection.close()


def test_expect_100_continue(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 1\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"5")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"[[10.0]]")


def test_body_over_6_mib_is_413(server: Server) -> None:
    answer = server.raw(
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 6291457\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"SAGEMAKER_MAX_PAYLOAD_IN_MB" in answer


def test_malformed_request_is_400_and_closed(server: Server) -> None:
    answer = server.raw(b"HELLO WORLD\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer


def test_unknown_route_is_404(server: Server) -> None:
    assert server.request("GET", "/nope")[0] == 404
    assert server.request("GET", "/invocations")[0] == 405


def test_execution_parameters(server: Server) -> None:
    status, body, _ = server.request("GET", "/execution-parameters")
    assert (status, json.loads(body)) == (
        200,
        {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6},
    )


def worker_pid(server: Server) -> int:
    _, body, _ = server.request(
        "POST",
        "/invocations",
        b"1",
        Content_Type="text/csv",
        X_Amzn_SageMaker_Custom_Attributes="pid",
    )
    return int(json.loads(body)["pid"])


def test_both_workers_serve(server: Server) -> None:
    # The kernel spreads new connections over the workers; one still loading its model on a
    # busy machine takes none for a while, so ask until both have answered.
    deadline = time.monotonic() + 20
    pids: set[int] = set()
    while len(pids) < 2:
        assert time.monotonic() < deadline, f"only {pids} answered"
        pids.add(worker_pid(server))
    assert len(pids) == 2
    assert server.process.pid not in pids


def test_a_killed_worker_is_replaced(server: Server) -> None:
    victim = worker_pid(server)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    pids: set[int] = set()
    while len(pids - {victim}) < 2:
        assert time.monotonic() < deadline, f"only {pids} answered after killing {victim}"
        pids.add(worker_pid(server))
    assert victim not in pids - {victim}


def test_transform_fn_program(tmp_path: Path) -> None:
    base = model_dir(tmp_path, **{"upper.py": TRANSFORM})
    server = start(base, SAGEMAKER_PROGRAM="upper.py", SAGEMAKER_MODEL_SERVER_WORKERS="1")
    try:
        status, body, response = server.request(
            "POST", "/invocations", b"abc", Content_Type="text/csv"
        )
        assert (status, body, response.getheader("Content-Type")) == (200, b"ABC", "text/plain")
    finally:
        assert server.stop() == 0


def test_missing_model_fn_stops_the_server_with_a_clear_error(tmp_path: Path) -> None:
    base = model_dir(tmp_path, **{"inference.py": "def predict_fn(data, model):\n    return 1\n"})
    server = start(base, wait=False)
    assert server.process.wait(timeout=30) == 1
    assert "inference.py defines no model_fn" in server.log.read_text()


def test_sigterm_exits_0_promptly(tmp_path: Path) -> None:
    server = start(model_dir(tmp_path, **{"inference.py": INFERENCE}))
    connection = server.connect()  # an idle keep-alive connection must not hold the shutdown up
    connection.request("GET", "/ping")
    connection.getresponse().read()
    began = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - began < 3
    connection.close()


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    server = start(model_dir(tmp_path, **{"inference.py": INFERENCE}))
    connection = server.connect()
    headers = {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "sleep=1"}
    connection.request("POST", "/invocations", b"1", headers)
    time.sleep(0.3)  # the request must be in the handler before SIGTERM; nothing to poll on
    server.process.send_signal(signal.SIGTERM)
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"[[2.0]]")
    assert response.getheader("Connection") == "close"
    assert server.stop() == 0


def test_keep_alive_connections_spread_over_the_workers(server: Server) -> None:
    """16 clients connecting at once (as wrk or the router do) land on both workers, not all on
    whichever woke first: each worker accepts one connection per wake-up."""
    deadline = time.monotonic() + 20
    while len({worker_pid(server) for _ in range(20)}) < 2:  # both workers are up
        assert time.monotonic() < deadline
    time.sleep(0.3)  # and have seen those connections close
    barrier, done = threading.Barrier(16), threading.Barrier(16)
    pids: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        barrier.wait()
        connection.connect()
        connection.request(
            "POST",
            "/invocations",
            b"1",
            {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "pid"},
        )
        pid = int(json.loads(connection.getresponse().read())["pid"])
        with lock:
            pids.append(pid)
        done.wait()  # keep-alive clients hold their connections
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = collections.Counter(pids)
    print(sorted(counts.values()))
    # Each worker takes a new connection only when it has no more than the others.
    assert len(counts) == 2 and min(counts.values()) >= 6, counts


THREADS = textwrap.dedent(
    """
    import threading
    import time

    def model_fn(model_dir):
        return None

    def transform_fn(model, data, content_type, accept):
        if data == "hang":
            time.sleep(3600)
        return threading.current_thread().name, "text/plain"
    """
)


def test_fast_handlers_run_on_the_loop_and_a_hung_one_is_killed(tmp_path: Path) -> None:
    base = model_dir(tmp_path, **{"threads.py": THREADS})
    server = start(
        base,
        SAGEMAKER_PROGRAM="threads.py",
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="1",
    )
    try:
        names = [
            server.request("POST", "/invocations", b"x", Content_Type="text/csv")[1].decode()
            for _ in range(30)
        ]
        # Unknown handlers start in a thread; once they prove fast, they run on the event loop.
        assert names[0].startswith("invocation")
        assert names[-1] == "MainThread"
        first_pid = worker_pid_of(server)
        started = time.monotonic()
        with pytest.raises((OSError, http.client.HTTPException)):
            server.request("POST", "/invocations", b"hang", Content_Type="text/csv")
        # SAGEMAKER_MODEL_SERVER_TIMEOUT=1: the arbiter killed the worker a second or two later.
        assert time.monotonic() - started < 8
        assert "killing it" in server.log.read_text()
        deadline = time.monotonic() + 20
        while True:  # a new worker serves again
            try:
                answer = server.request("POST", "/invocations", b"x", Content_Type="text/csv")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert answer[0] == 200
        assert worker_pid_of(server) != first_pid
    finally:
        server.stop()


def worker_pid_of(server: Server) -> int:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text()
    return int(children.split()[0])
