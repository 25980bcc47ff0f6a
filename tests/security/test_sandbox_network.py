"""A training job's network (issue 8's review, part 4): its own namespace, where its hosts reach
each other and nothing that listens only on the host's loopback — dockyard's API included — and
outside access only without EnableNetworkIsolation."""

from __future__ import annotations

import fcntl
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.security.sandbox_jobs import run_script_job

CONNECT = """python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("reached", sys.argv[1])
except OSError as exc:
    print("unreachable", sys.argv[1], type(exc).__name__)
' {host} {port}"""


def machine_address() -> str:
    """An IPv4 address of this machine that is not loopback (where outside peers reach it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on this interface
            return socket.inet_ntoa(reply[20:24])
    raise AssertionError("this machine has no non-loopback IPv4 address to test outside access")


@pytest.fixture
def machine_listener() -> Iterator[tuple[str, int, list[str]]]:
    """A TCP listener on the machine's own (non-loopback) address; collects who connected."""
    address = machine_address()
    server = socket.create_server((address, 0))
    accepted: list[str] = []

    def accept() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return
            accepted.append(peer[0])
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield address, server.getsockname()[1], accepted
    finally:
        server.close()


def test_a_job_cannot_reach_dockyards_api_on_the_hosts_loopback(
    server: RunningServer, tmp_path: Path
) -> None:
    # Found: a job saw every host listener and created a new job through dockyard's own API on
    # 127.0.0.1.
    port = server.settings.port
    create = (
        "python3 -c 'import urllib.request, sys; "
        'urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"{}", '
        'headers={"X-Amz-Target": "SageMaker.CreateTrainingJob"}), timeout=3)\' '
        f"http://127.0.0.1:{port}/ 2>/dev/null; echo api=$?"
    )
    script = CONNECT.format(host="127.0.0.1", port=port) + "; " + create
    described, lines = run_script_job(server, tmp_path, "reach-api", script)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines == ["unreachable 127.0.0.1 ConnectionRefusedError", "api=1"]
    jobs = server.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == ["reach-api"]


def test_a_job_cannot_open_raw_packet_sockets(server: RunningServer, tmp_path: Path) -> None:
    # Found: a job opened an AF_PACKET socket.
    script = (
        "python3 -c 'import socket\ntry:\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        '    print("opened")\nexcept OSError as e:\n    print(type(e).__name__)\''
    )
    described, lines = run_script_job(server, tmp_path, "packet", script)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines == ["PermissionError"]


def test_network_isolation_decides_outside_access(
    server: RunningServer, tmp_path: Path, machine_listener: tuple[str, int, list[str]]
) -> None:
    address, port, accepted = machine_listener
    script = CONNECT.format(host=address, port=port)
    described, lines = run_script_job(server, tmp_path, "outside", script)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines == [f"reached {address}"]
    assert len(accepted) == 1
    described, lines = run_script_job(
        server, tmp_path, "isolated", script, EnableNetworkIsolation=True
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert lines == [f"unreachable {address} OSError"]  # no route: ENETUNREACH
    assert len(accepted) == 1


def test_the_hosts_of_a_job_share_their_network(server: RunningServer, tmp_path: Path) -> None:
    script = (
        'if [ "$(hostname)" = algo-1 ]; then '
        'python3 -c \'import socket; s = socket.create_server(("algo-1", 7077)); '
        'c, _ = s.accept(); print("algo-1 got", c.recv(16).decode())\'; '
        "else python3 -c 'import socket, time\n"
        "for _ in range(200):\n    try:\n"
        '        socket.create_connection(("algo-1", 7077)).sendall(b"hello"); break\n'
        "    except OSError: time.sleep(0.05)'; fi"
    )
    request_changes = {
        "ResourceConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
    }
    described, lines = run_script_job(server, tmp_path, "pair", script, **request_changes)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert "algo-1 got hello" in lines
