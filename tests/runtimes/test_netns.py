"""Sandbox networks: each serving instance listens on 8080 in its own namespace, reached there;
nothing on the host's loopback is reachable from one."""

from __future__ import annotations

import http.client
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from dockyard.runtimes.images import read_image
from dockyard.runtimes.netns import NamespaceConnector, Network
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.sandbox_spec import SandboxSpec
from dockyard.runtimes.volumes import GIB, mount_points

SERVER = """
import http.server, socket
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def _get(connector: NamespaceConnector, deadline: float) -> str:
    while True:
        try:
            sock = connector.connect(8080)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    connection = http.client.HTTPConnection("127.0.0.1", 8080)
    connection.sock = sock
    connection.request("GET", "/ping")
    body = connection.getresponse().read().decode()
    connection.close()
    return body


def test_two_instances_on_port_8080_side_by_side(tmp_path: Path) -> None:
    image_dir = tmp_path / "image"
    image_dir.mkdir()
    (image_dir / "server.py").write_text(SERVER)
    (image_dir / "Dockerfile").write_text(
        "FROM scratch\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    image = read_image(str(image_dir))
    runtime = ProcessRuntime()
    hosts, connectors, resources = [], [], []
    try:
        for name in ("instance-1", "instance-2"):
            folder = runtime.prepare_host(tmp_path / name, GIB)
            network = runtime.create_network(outside=False)
            resources += [folder, network]
            spec = SandboxSpec(
                image=image,
                argv=image.argv(None, None, "serve"),
                hostname=name,
                folder=folder,
                network=network,
            )
            hosts.append(runtime.start_sandbox(spec, lambda stream, line: None))
            connectors.append(network.connector())
        deadline = time.monotonic() + 20
        answers = [_get(c, deadline) for c in connectors]
        assert answers == ["instance-1", "instance-2"]
    finally:
        for connector in connectors:
            connector.close()
        for host in hosts:
            host.kill()
            host.wait(timeout=10)
        for resource in resources:
            resource.close()


@pytest.mark.parametrize("outside", [False, True])
def test_the_hosts_loopback_is_out_of_reach(outside: bool) -> None:
    """dockyard's API listens on the host's loopback: from a sandbox network (with or without
    outside access) nothing there answers, while a server inside the namespace does."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    network = Network.create(outside=outside)
    connector = network.connector()
    try:
        for address in ("127.0.0.1", "10.0.2.2"):
            with pytest.raises(OSError):
                connector.connect(port, host=address, timeout=1.0).close()
        inside = connector.socket()  # a socket of the namespace, listening on its loopback
        inside.bind(("127.0.0.1", port))
        inside.listen()
        connector.connect(port).close()
        inside.close()
    finally:
        connector.close()
        network.close()
        listener.close()


def test_a_closed_connector_refuses_at_once() -> None:
    """The router may ask for a socket of an instance that was retired a moment before: that is
    a refused connection, not a wait on the connector's thread (which has ended)."""
    network = Network.create(outside=False)
    connector = network.connector()
    try:
        connector.socket().close()
    finally:
        connector.close()
        network.close()
    with pytest.raises(ConnectionRefusedError, match="network is closed"):
        connector.socket()
    with pytest.raises(ConnectionRefusedError):
        connector.connect(8080)


def mounted(path: Path) -> bool:
    return str(path) in mount_points()


def test_outside_access_leaves_the_hosts_shared_mounts_alone() -> None:
    """slirp4netns's own sandbox, run as root, makes only / private before it pivots and detaches
    the old root: without a mount namespace of its own, that detach reached the mounts inside the
    host's shared mounts and unmounted them (podman's /run/netns/<ns> under running containers;
    on a systemd machine, where / is shared, any mount). A mount in a shared folder must stay."""
    # As podman's /run/netns: a folder bound on itself, shared, with a mount inside.
    shared = Path(tempfile.mkdtemp(prefix="dockyard-shared-", dir="/run"))
    inside = shared / "inside"
    inside.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(inside)], check=True)
        assert mounted(inside)
        network = Network.create(outside=True)
        time.sleep(0.5)  # slirp4netns makes its sandbox once it is ready
        network.close()
        time.sleep(0.3)
        assert mounted(inside), "a job's outside network unmounted a host mount"
    finally:
        subprocess.run(["umount", "--lazy", str(inside)], check=False)
        subprocess.run(["umount", "--lazy", str(shared)], check=False)
        inside.rmdir()
        shared.rmdir()
