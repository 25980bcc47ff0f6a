"""Two sandboxes with their own networks both serve on port 8080, each reached on its own."""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

from dockyard.contract.errors import SandboxError
from dockyard.runtimes.base import HostSpec
from dockyard.runtimes.images import read_image
from dockyard.runtimes.netns import NamespaceConnector, sandbox_netns
from dockyard.runtimes.process import ProcessRuntime

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
    hosts, connectors = [], []
    try:
        for name in ("instance-1", "instance-2"):
            opt_ml = tmp_path / name
            opt_ml.mkdir()
            spec = HostSpec(
                image=image,
                argv=image.argv(None, None, "serve"),
                hostname=name,
                opt_ml=opt_ml,
                network="private",
            )
            hosts.append(runtime.start(spec, lambda stream, line: None))
        deadline = time.monotonic() + 20
        for host in hosts:
            while True:
                try:
                    netns = sandbox_netns(os.getpgid(host.pid))
                    break
                except SandboxError:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            connectors.append(NamespaceConnector(netns))
        answers = [_get(c, deadline) for c in connectors]
        assert answers == ["instance-1", "instance-2"]
    finally:
        for connector in connectors:
            connector.close()
        for host in hosts:
            host.kill()
            host.wait(timeout=10)
