"""Endpoints through boto3 against a real server: create, invoke, update, delete, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import RunningServer

ECHO_SERVER = r"""
import http.server, json, os, signal, socket, sys
VERSION = os.environ.get("ANSWER_VERSION", "v1")
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/ping":
            self.reply(200, b"")
        else:
            self.reply(404, b"no")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if body == b"fail":
            self.reply(400, b"the model refuses 'fail'", "text/plain")
            return
        answer = {
            "version": VERSION,
            "host": socket.gethostname(),
            "body": body.decode(),
            "content_type": self.headers.get("Content-Type"),
            "accept": self.headers.get("Accept"),
            "attributes": self.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            "inference_id": self.headers.get("X-Amzn-SageMaker-Inference-Id"),
            "model_files": sorted(os.listdir("/opt/ml/model")),
        }
        extra = [("X-Amzn-SageMaker-Custom-Attributes", "seen=yes")]
        self.reply(200, json.dumps(answer).encode(), extra=extra)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print("serving on 8080", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def make_echo_image(root: Path, version: str = "v1") -> Path:
    folder = root / f"echo-{version}"
    folder.mkdir(parents=True)
    (folder / "server.py").write_text(ECHO_SERVER)
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        f"ENV ANSWER_VERSION={version}\n"
        "COPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    return folder


def wait_for_endpoint(sagemaker: Any, name: str, deadline: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        described = sagemaker.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating", "SystemUpdating"):
            return described
        assert time.monotonic() < end, f"endpoint {name} still {described['EndpointStatus']}"
        time.sleep(0.1)


def deploy(
    server: RunningServer, image: Path, name: str, count: int = 1, model: str | None = None
) -> dict[str, Any]:
    sagemaker = server.client("sagemaker")
    model = model or f"{name}-model"
    sagemaker.create_model(
        ModelName=model,
        PrimaryContainer={"Image": str(image)},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/dockyard",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{model}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": count,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{model}-config")
    return wait_for_endpoint(sagemaker, name)


@pytest.mark.slow
def test_endpoint_serves_with_headers_both_ways(server: RunningServer, tmp_path: Path) -> None:
    described = deploy(server, make_echo_image(tmp_path), "echo", count=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    variant = described["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 2
    runtime = server.client("sagemaker-runtime")
    hosts = set()
    for i in range(6):
        response = runtime.invoke_endpoint(
            EndpointName="echo",
            Body=f"1,2,{i}".encode(),
            ContentType="text/csv",
            Accept="application/json",
            CustomAttributes="trace=1",
            InferenceId=f"id-{i}",
        )
        answer = json.loads(response["Body"].read())
        assert answer["body"] == f"1,2,{i}"
        assert answer["content_type"] == "text/csv"
        assert answer["accept"] == "application/json"
        assert answer["attributes"] == "trace=1"
        assert answer["inference_id"] == f"id-{i}"
        assert response["InvokedProductionVariant"] == "AllTraffic"
        assert response["CustomAttributes"] == "seen=yes"
        assert response["ContentType"] == "application/json"
        hosts.add(answer["host"])
    assert hosts == {"AllTraffic-1", "AllTraffic-2"}


@pytest.mark.slow
def test_container_error_is_model_error(server: RunningServer, tmp_path: Path) -> None:
    deploy(server, make_echo_image(tmp_path), "echo")
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="echo", Body=b"fail", ContentType="text/plain")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert error["OriginalMessage"] == "the model refuses 'fail'"


def test_invoking_a_missing_endpoint_is_a_validation_error(server: RunningServer) -> None:
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="nothing-here", Body=b"1")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nothing-here of account" in raised.value.response["Error"]["Message"]
    sagemaker = server.client("sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_endpoint(EndpointName="nothing-here")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


class Load:
    """Threads invoking an endpoint without pause; counts requests, errors and answers."""

    def __init__(self, server: RunningServer, name: str, threads: int = 8) -> None:
        import threading

        from botocore.config import Config

        self.name = name
        self.requests = 0
        self.errors: list[str] = []
        self.answers: list[str] = []
        self.timeline: list[tuple[float, float, str | None]] = []  # start, end, error
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # No botocore retries: every failure the router lets through is counted.
        config = Config(retries={"total_max_attempts": 1}, read_timeout=70)
        self._clients = [
            server.client_with_config("sagemaker-runtime", config) for _ in range(threads)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(client,), daemon=True)
            for client in self._clients
        ]

    def _run(self, client: Any) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                response = client.invoke_endpoint(
                    EndpointName=self.name, Body=b"1,2,3", ContentType="text/csv"
                )
                answer = json.loads(response["Body"].read())
                with self._lock:
                    self.requests += 1
                    self.answers.append(answer["version"] + "@" + answer["host"])
                    self.timeline.append((start, time.monotonic(), None))
            except Exception as exc:
                with self._lock:
                    self.requests += 1
                    self.errors.append(repr(exc))
                    self.timeline.append((start, time.monotonic(), repr(exc)))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def wait_until(predicate: Any, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.slow
def test_killing_an_instance_under_load_fails_no_request(
    server: RunningServer, tmp_path: Path
) -> None:
    deploy(server, make_echo_image(tmp_path), "steady", count=2)
    deployment = server.engine.endpoints._live["steady"]
    victim = next(i for i in deployment.instances() if i.name == "AllTraffic-1")
    with Load(server, "steady") as load:
        wait_until(lambda: load.requests >= 200)
        victim.host.kill()  # a crash: SIGKILL to the whole sandbox
        before = load.requests
        wait_until(lambda: "AllTraffic-3" in {i.name for i in deployment.variants()[0].instances})
        wait_until(lambda: any(a.endswith("AllTraffic-3") for a in load.answers[-100:]))
        after = load.requests
        wait_until(lambda: load.requests >= after + 200)  # and it goes on serving
    print(f"requests={load.requests} errors={len(load.errors)} during replacement={after - before}")
    assert load.errors == []
    assert load.requests >= 400
    described = server.client("sagemaker").describe_endpoint(EndpointName="steady")
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2


@pytest.mark.slow
def test_a_request_that_kills_the_model_reaches_two_instances_and_no_third(
    server: RunningServer, tmp_path: Path
) -> None:
    image = make_echo_image(tmp_path)
    server_py = image / "server.py"
    server_py.write_text(
        server_py.read_text().replace(
            '        if body == b"fail":',
            '        if body == b"poison":\n            os._exit(1)\n        if body == b"fail":',
        )
    )
    deploy(server, image, "fragile", count=3)
    deployment = server.engine.endpoints._live["fragile"]
    originals = {i.name: i for i in deployment.instances()}
    assert sorted(originals) == ["AllTraffic-1", "AllTraffic-2", "AllTraffic-3"]
    runtime = server.client("sagemaker-runtime")  # botocore's default retries on
    with Load(server, "fragile", threads=4) as load:
        wait_until(lambda: load.requests >= 100)
        sent = time.monotonic()
        with pytest.raises(ClientError) as raised:
            runtime.invoke_endpoint(EndpointName="fragile", Body=b"poison")
        answered = time.monotonic()
        mark = load.requests
        wait_until(lambda: load.requests >= mark + 200)  # the others go on serving meanwhile
        wait_until(lambda: len(deployment.variants()[0].instances) == 3)  # replaced
        mark = load.requests
        wait_until(lambda: load.requests >= mark + 100)
    error = raised.value.response
    message = error["Error"]["Message"]
    print(message)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["ResponseMetadata"]["RetryAttempts"] == 0
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 0
    assert "reached 2 instances of endpoint fragile and got no answer" in message
    assert "likely crashes the model" in message and "not sent to a third" in message
    died = sorted(name for name, instance in originals.items() if instance.exited)
    assert len(died) == 2, died  # the third original never got it, and serves on
    assert all(f"{name}: the instance closed the connection" in message for name in died)
    [survivor] = set(originals) - set(died)
    assert not originals[survivor].exited
    serving = {i.name for i in deployment.variants()[0].instances}
    assert survivor in serving and not serving & set(died)
    # Every request sent after the answer succeeded; one that failed was in flight on an
    # instance as the poison killed it, and was lost on a second one as well (both died with a
    # request in flight): the same ModelError, never a 5xx.
    after = [end for start, end, failed in load.timeline if start > answered]
    assert len(after) >= 300
    failed = [(start, end, e) for start, end, e in load.timeline if e is not None]
    print(f"requests={load.requests} errors={len(failed)} after the answer={len(after)}")
    for start, end, e in failed:
        assert start < answered and end > sent, e
        assert "ModelError" in e and "got no answer" in e, e
    described = server.client("sagemaker").describe_endpoint(EndpointName="fragile")
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 3


@pytest.mark.slow
def test_update_under_load_fails_no_request_and_switches(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    deploy(server, make_echo_image(tmp_path, "v1"), "switch", count=2)
    sagemaker.create_model(
        ModelName="switch-v2",
        PrimaryContainer={"Image": str(make_echo_image(tmp_path, "v2"))},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/dockyard",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="switch-v2-config",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "switch-v2", "InitialInstanceCount": 2,
             "InstanceType": "ml.m5.large"}
        ],
    )  # fmt: skip
    with Load(server, "switch") as load:
        wait_until(lambda: load.requests >= 200)
        sagemaker.update_endpoint(EndpointName="switch", EndpointConfigName="switch-v2-config")
        assert sagemaker.describe_endpoint(EndpointName="switch")["EndpointStatus"] == "Updating"
        described = wait_for_endpoint(sagemaker, "switch")
        mark = load.requests
        wait_until(lambda: load.requests >= mark + 200)
    print(f"requests={load.requests} errors={len(load.errors)}")
    assert load.errors == []
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "switch-v2-config"
    versions = [answer.split("@")[0] for answer in load.answers]
    switch = versions.index("v2")
    assert set(versions[:switch]) == {"v1"} and switch >= 200
    assert set(versions[-150:]) == {"v2"}


@pytest.mark.slow
def test_endpoints_come_back_after_a_server_restart(dockyard_settings: Any, tmp_path: Path) -> None:
    first = RunningServer(dockyard_settings)
    try:
        deploy(first, make_echo_image(tmp_path), "durable", count=2)
    finally:
        first.close()
    started = time.monotonic()
    second = RunningServer(dockyard_settings)
    try:
        sagemaker = second.client("sagemaker")
        assert sagemaker.describe_endpoint(EndpointName="durable")["EndpointStatus"] in (
            "SystemUpdating",
            "InService",
        )
        described = wait_for_endpoint(sagemaker, "durable")
        elapsed = time.monotonic() - started
        assert described["EndpointStatus"] == "InService"
        print(f"InService again {elapsed:.2f} s after the restart")
        assert elapsed < 10
        response = second.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="durable", Body=b"again", ContentType="text/plain"
        )
        assert json.loads(response["Body"].read())["body"] == "again"
    finally:
        second.close()


@pytest.mark.slow
def test_variant_weights_and_target_variant(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    for version in ("v1", "v2"):
        sagemaker.create_model(
            ModelName=f"weights-{version}",
            PrimaryContainer={"Image": str(make_echo_image(tmp_path, version))},
        )
    sagemaker.create_endpoint_config(
        EndpointConfigName="weighted",
        ProductionVariants=[
            {"VariantName": "Blue", "ModelName": "weights-v1", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 3.0},
            {"VariantName": "Green", "ModelName": "weights-v2", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName="weighted", EndpointConfigName="weighted")
    described = wait_for_endpoint(sagemaker, "weighted")
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Blue", "Green"]
    runtime = server.client("sagemaker-runtime")
    counts = {"Blue": 0, "Green": 0}
    for _ in range(400):
        response = runtime.invoke_endpoint(EndpointName="weighted", Body=b"x")
        variant = response["InvokedProductionVariant"]
        version = json.loads(response["Body"].read())["version"]
        assert version == {"Blue": "v1", "Green": "v2"}[variant]
        counts[variant] += 1
    # 3:1 weights: Blue gets about 300 of 400 (binomial sd ~ 8.7; 5 sd either way).
    assert 256 <= counts["Blue"] <= 344, counts
    for _ in range(5):
        response = runtime.invoke_endpoint(
            EndpointName="weighted", Body=b"x", TargetVariant="Green"
        )
        assert response["InvokedProductionVariant"] == "Green"
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="weighted", Body=b"x", TargetVariant="Red")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Red" in raised.value.response["Error"]["Message"]


@pytest.mark.slow
def test_bodies_over_6_mb_are_refused(server: RunningServer, tmp_path: Path) -> None:
    deploy(server, make_echo_image(tmp_path), "limits")
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="limits", Body=b"x" * (6 * 1024 * 1024 + 1))
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "6291456" in raised.value.response["Error"]["Message"]
    exact = runtime.invoke_endpoint(EndpointName="limits", Body=b"y" * (6 * 1024 * 1024))
    assert len(json.loads(exact["Body"].read())["body"]) == 6 * 1024 * 1024


@pytest.mark.slow
def test_a_container_that_exits_fails_the_endpoint_with_its_words(
    server: RunningServer, tmp_path: Path
) -> None:
    image = tmp_path / "broken"
    image.mkdir()
    (image / "Dockerfile").write_text(
        'FROM scratch\nENTRYPOINT ["python3", "-c", '
        "\"import sys; print('cannot load the model: weights.bin missing'); sys.exit(3)\"]\n"
    )
    described = deploy(server, image, "broken")
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "exited with code 3" in reason and "weights.bin missing" in reason
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="broken", Body=b"x")
    assert "Failed" in raised.value.response["Error"]["Message"]
    sagemaker = server.client("sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.update_endpoint(EndpointName="broken", EndpointConfigName="broken-model-config")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.slow
def test_delete_stops_every_instance(server: RunningServer, tmp_path: Path) -> None:
    deploy(server, make_echo_image(tmp_path), "brief", count=2)
    instances = server.engine.endpoints._live["brief"].instances()
    assert len(instances) == 2
    sagemaker = server.client("sagemaker")
    listed = sagemaker.list_endpoints()["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [("brief", "InService")]
    sagemaker.delete_endpoint(EndpointName="brief")
    waiter = sagemaker.get_waiter("endpoint_deleted")
    waiter.wait(EndpointName="brief", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert all(i.host.returncode is not None for i in instances)
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert not (server.settings.home / "endpoints" / "brief").exists()
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="brief", Body=b"x")
    assert "not found" in raised.value.response["Error"]["Message"]


def test_bad_endpoint_requests_are_refused_and_change_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")

    def refused(call: Any, **request: Any) -> str:
        with pytest.raises(ClientError) as raised:
            call(**request)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(raised.value.response["Error"]["Message"])

    message = refused(sagemaker.create_endpoint, EndpointName="e", EndpointConfigName="none")
    assert 'Could not find endpoint configuration "arn:aws:sagemaker:' in message
    message = refused(sagemaker.create_endpoint, EndpointName="bad_name", EndpointConfigName="c")
    assert "endpointName" in message or "EndpointName" in message
    refused(sagemaker.update_endpoint, EndpointName="none", EndpointConfigName="c")
    refused(sagemaker.delete_endpoint, EndpointName="none")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert not (server.settings.home / "endpoints").exists()


@pytest.mark.slow
def test_an_instance_that_stops_answering_ping_is_replaced(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockyard.engine import deployments

    monkeypatch.setattr(deployments, "PING_INTERVAL", 0.2)  # SageMaker-like 5 s is slow for a test
    image = make_echo_image(tmp_path)
    # This container turns unhealthy once the endpoint has served a request: its process stays.
    server_py = image / "server.py"
    server_py.write_text(
        server_py.read_text()
        .replace("    def do_GET(self):\n", "    def do_GET(self):\n        global SICK\n")
        .replace(
            '        if self.path == "/ping":', '        if self.path == "/ping" and not SICK:'
        )
        .replace(
            "    def do_POST(self):\n",
            "    def do_POST(self):\n        global SICK\n        SICK = True\n",
        )
        .replace("VERSION = os.environ", "SICK = False\nVERSION = os.environ")
    )
    deploy(server, image, "sickly")
    deployment = server.engine.endpoints._live["sickly"]
    first = deployment.instances()[0]
    runtime = server.client("sagemaker-runtime")
    runtime.invoke_endpoint(EndpointName="sickly", Body=b"x")  # from now on /ping says 404
    wait_until(lambda: [i.name for i in deployment.variants()[0].instances] == ["AllTraffic-2"])
    assert first.host.returncode is not None  # the unhealthy one was stopped
    answer = runtime.invoke_endpoint(EndpointName="sickly", Body=b"y")
    assert json.loads(answer["Body"].read())["host"] == "AllTraffic-2"


@pytest.mark.slow
def test_weights_and_capacities_scale_out_and_in_under_load(
    dockyard_settings: Any, tmp_path: Path
) -> None:
    server = RunningServer(dockyard_settings)
    try:
        deploy(server, make_echo_image(tmp_path), "elastic", count=1)
        sagemaker = server.client("sagemaker")
        with Load(server, "elastic", threads=4) as load:
            wait_until(lambda: load.requests >= 100)
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName="elastic",
                DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": 3, "DesiredWeight": 2.0}
                ],
            )
            described = wait_for_endpoint(sagemaker, "elastic")
            variant = described["ProductionVariants"][0]
            assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (3, 3)
            assert variant["CurrentWeight"] == 2.0
            mark = load.requests
            wait_until(lambda: load.requests >= mark + 300)
            assert {a.split("@")[1] for a in load.answers[-150:]} == {
                "AllTraffic-1", "AllTraffic-2", "AllTraffic-3"
            }  # fmt: skip
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName="elastic",
                DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}
                ],
            )
            described = wait_for_endpoint(sagemaker, "elastic")
            mark = load.requests
            wait_until(lambda: load.requests >= mark + 200)
        assert load.errors == []
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        assert {a.split("@")[1] for a in load.answers[-100:]} == {"AllTraffic-1", "AllTraffic-2"}
        with pytest.raises(ClientError) as raised:
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName="elastic",
                DesiredWeightsAndCapacities=[{"VariantName": "Nope", "DesiredInstanceCount": 2}],
            )
        assert "Nope does not exist" in raised.value.response["Error"]["Message"]
    finally:
        server.close()
    # A restart brings the endpoint back at the size it was given, not the config's.
    again = RunningServer(dockyard_settings)
    try:
        described = wait_for_endpoint(again.client("sagemaker"), "elastic")
        variant = described["ProductionVariants"][0]
        assert (described["EndpointStatus"], variant["CurrentInstanceCount"]) == ("InService", 2)
        assert variant["CurrentWeight"] == 2.0
    finally:
        again.close()


@pytest.mark.slow
def test_one_failing_instance_fails_the_endpoint_without_waiting_for_the_others(
    server: RunningServer, tmp_path: Path
) -> None:
    image = tmp_path / "half-broken"
    image.mkdir()
    # AllTraffic-1 exits at once; AllTraffic-2 never answers /ping (its window is 60 s).
    (image / "serve.py").write_text(
        "import socket, sys, time\n"
        "if socket.gethostname() == 'AllTraffic-1':\n"
        "    print('weights missing on this one'); sys.exit(3)\n"
        "time.sleep(3600)\n"
    )
    (image / "Dockerfile").write_text(
        "FROM scratch\nCOPY serve.py /opt/program/serve.py\n"
        'ENTRYPOINT ["python3", "/opt/program/serve.py"]\n'
    )
    started = time.monotonic()
    described = deploy(server, image, "half", count=2)
    assert described["EndpointStatus"] == "Failed"
    assert "exited with code 3" in described["FailureReason"]
    assert "weights missing" in described["FailureReason"]
    assert time.monotonic() - started < 20  # not the 240 s start-up window of AllTraffic-2
