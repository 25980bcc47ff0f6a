"""Endpoint instances run in the same sandbox as training hosts: an unprivileged uid of their own,
no capabilities, a network of their own without the host's loopback, the model read-only; the
model's EnableNetworkIsolation decides outside access."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.api.test_endpoints_api import wait_for_endpoint
from tests.conftest import RunningServer
from tests.security.test_sandbox_network import machine_address

INSPECTOR = r"""
import http.server, json, os, socket
def probe(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "reached"
    except OSError as exc:
        return type(exc).__name__
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines()
                      if ":\t" in l)
        try:
            open("/opt/ml/model/x", "w")
            model = "writable"
        except OSError as exc:
            model = type(exc).__name__
        body = json.dumps({
            "uid": os.getuid(), "cap_eff": status["CapEff"], "seccomp": status["Seccomp"],
            "api": probe("127.0.0.1", int(os.environ["API_PORT"])),
            "outside": probe(os.environ["OUTSIDE"], int(os.environ["OUTSIDE_PORT"])),
            "model": model,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


@pytest.mark.parametrize("isolated", [False, True])
def test_an_endpoint_instance_is_sandboxed(
    server: RunningServer, tmp_path: Path, isolated: bool
) -> None:
    image = tmp_path / "inspector"
    image.mkdir()
    (image / "server.py").write_text(INSPECTOR)
    (image / "Dockerfile").write_text(
        "FROM python:3.11\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    outside = machine_address()
    listener = socket.create_server((outside, 0))
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="inspector",
        PrimaryContainer={
            "Image": str(image),
            "Environment": {
                "API_PORT": str(server.settings.port),
                "OUTSIDE": outside,
                "OUTSIDE_PORT": str(listener.getsockname()[1]),
            },
        },
        ExecutionRoleArn="arn:aws:iam::111111111111:role/r",
        EnableNetworkIsolation=isolated,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="inspector",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "inspector", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName="inspector", EndpointConfigName="inspector")
    try:
        assert wait_for_endpoint(sagemaker, "inspector")["EndpointStatus"] == "InService"
        answer = server.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="inspector", Body=b"{}", ContentType="application/json"
        )
        seen = json.loads(answer["Body"].read())
    finally:
        sagemaker.delete_endpoint(EndpointName="inspector")
        listener.close()
    assert seen["uid"] >= server.settings.sandbox_uid_base
    assert int(seen["cap_eff"], 16) == 0 and seen["seccomp"] == "2"
    assert seen["api"] == "ConnectionRefusedError"  # dockyard's API is on the host's loopback
    assert seen["model"] in ("OSError", "PermissionError")  # read-only file system
    assert seen["outside"] == ("OSError" if isolated else "reached")
