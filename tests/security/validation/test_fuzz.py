"""Issue 8, "Must show": over 10,000 requests generated from botocore's service model for every
operation dockyard serves, sent to a real app in-process and a few hundred to a real uvicorn
server. No answer is a 5xx, botocore's own parser reads every error, and afterwards the
database is sound, every listing works, everything listed can be described and nothing is
left in a transitional status."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.credentials import Credentials

from dockyard.api.app import create_app
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.api.test_endpoints_api import ECHO_SERVER
from tests.conftest import RunningServer, free_port, make_image
from tests.security.validation.fuzz_requests import NAME_POOL, ODD_TEXT, RequestMaker, as_json
from tests.security.validation.wire import Answer, Api, operation_model, read_answer, service_model

pytestmark = pytest.mark.slow

SEED = 8
IN_PROCESS_REQUESTS = 10_000
OVER_HTTP_REQUESTS = 400
CONCURRENCY = 16
SETTLE_SECONDS = 180.0
NAME = NAME_POOL[0]
MODEL_ARN = f"arn:aws:sagemaker:us-east-1:000000000000:model/{NAME}"
TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSITIONAL = {
    "endpoint": {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"},
    "job": {"InProgress", "Stopping"},
}
PLAUSIBLE_HEADERS = {
    "Content-Type": ("text/csv", "application/json", "application/x-npy"),
    "Accept": ("application/json", "text/csv, application/json;q=0.5", "*/*"),
    "X-Amzn-SageMaker-Custom-Attributes": ("trace=1", "a=b; c=d"),
    "X-Amzn-SageMaker-Target-Variant": ("AllTraffic", "Other"),
    "X-Amzn-SageMaker-Inference-Id": ("id-1", "a b c"),
}
# Each List operation, the key of its items and the Describe that takes them.
LISTINGS = {
    "ListTrainingJobs": ("TrainingJobSummaries", "DescribeTrainingJob", "TrainingJobName"),
    "ListModels": ("Models", "DescribeModel", "ModelName"),
    "ListEndpointConfigs": ("EndpointConfigs", "DescribeEndpointConfig", "EndpointConfigName"),
    "ListEndpoints": ("Endpoints", "DescribeEndpoint", "EndpointName"),
    "ListTransformJobs": ("TransformJobSummaries", "DescribeTransformJob", "TransformJobName"),
}


def echo_image(folder: Path) -> Path:
    """The endpoint tests' echo model, made to take any bytes: the API tests' version closes the
    connection on a body that is not UTF-8, which the router reports as 503 (no instance could
    be reached); that is the model's failure, not dockyard's handling of bad input."""
    folder.mkdir(parents=True)
    program = ECHO_SERVER.replace("body.decode()", "body.decode(errors='replace')")
    assert program != ECHO_SERVER
    (folder / "server.py").write_text(program)
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    return folder


def seeds(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """One valid request per operation, by service, on resources named NAME."""
    train = make_image(folder / "train-image", "print('trained')")
    serve = echo_image(folder / "serve-image")
    source = folder / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,2\n3,4\n")
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": NAME,
        "InitialInstanceCount": 1,
        "InstanceType": "local",
        "InitialVariantWeight": 1.0,
    }
    listing = {"MaxResults": 5, "NameContains": "fz", "SortBy": "Name", "SortOrder": "Ascending"}
    sagemaker = {
        "CreateTrainingJob": {
            "TrainingJobName": NAME,
            "RoleArn": "arn:aws:iam::111111111111:role/fuzz",
            "AlgorithmSpecification": {"TrainingImage": str(train), "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://fuzz/out"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            "HyperParameters": {"epochs": "1"},
            "Environment": {"MODE": "fuzz"},
            "Tags": [{"Key": "k", "Value": "v"}],
        },
        "DescribeTrainingJob": {"TrainingJobName": NAME},
        "StopTrainingJob": {"TrainingJobName": NAME},
        "ListTrainingJobs": {**listing, "StatusEquals": "Completed"},
        "CreateModel": {
            "ModelName": NAME,
            "PrimaryContainer": {"Image": str(serve), "Environment": {"MODE": "fuzz"}},
        },
        "DescribeModel": {"ModelName": NAME},
        "DeleteModel": {"ModelName": NAME},
        "ListModels": listing,
        "CreateEndpointConfig": {"EndpointConfigName": NAME, "ProductionVariants": [variant]},
        "DescribeEndpointConfig": {"EndpointConfigName": NAME},
        "DeleteEndpointConfig": {"EndpointConfigName": NAME},
        "ListEndpointConfigs": listing,
        "CreateEndpoint": {"EndpointName": NAME, "EndpointConfigName": NAME},
        "UpdateEndpoint": {"EndpointName": NAME, "EndpointConfigName": NAME},
        "DescribeEndpoint": {"EndpointName": NAME},
        "DeleteEndpoint": {"EndpointName": NAME},
        "ListEndpoints": {**listing, "StatusEquals": "InService"},
        "UpdateEndpointWeightsAndCapacities": {
            "EndpointName": NAME,
            "DesiredWeightsAndCapacities": [
                {"VariantName": "AllTraffic", "DesiredWeight": 1.0, "DesiredInstanceCount": 1}
            ],
        },
        "CreateTransformJob": {
            "TransformJobName": NAME,
            "ModelName": NAME,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": str(folder / "output"), "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 1,
        },
        "DescribeTransformJob": {"TransformJobName": NAME},
        "StopTransformJob": {"TransformJobName": NAME},
        "ListTransformJobs": {**listing, "StatusEquals": "Completed"},
        "AddTags": {"ResourceArn": MODEL_ARN, "Tags": [{"Key": "k", "Value": "v"}]},
        "ListTags": {"ResourceArn": MODEL_ARN, "MaxResults": 50},
        "DeleteTags": {"ResourceArn": MODEL_ARN, "TagKeys": ["k"]},
    }
    logs = {
        "DescribeLogStreams": {
            "logGroupName": TRAINING_GROUP,
            "logStreamNamePrefix": f"{NAME}/",
            "orderBy": "LogStreamName",
            "descending": False,
            "limit": 5,
        },
        "GetLogEvents": {
            "logGroupName": TRAINING_GROUP,
            "logStreamName": f"{NAME}/algo-1",
            "startTime": 0,
            "endTime": 2**40,
            "limit": 10,
            "startFromHead": True,
        },
        "DescribeLogGroups": {"logGroupNamePrefix": "/aws/sagemaker/", "limit": 5},
        "FilterLogEvents": {
            "logGroupName": TRAINING_GROUP,
            "logStreamNamePrefix": f"{NAME}/",
            "startTime": 0,
            "endTime": 2**40,
            "filterPattern": '"trained" ?a -b',
            "limit": 10,
        },
    }
    return {"sagemaker": sagemaker, "logs": logs}


@dataclass
class Tally:
    sent: int = 0
    answers: Counter[tuple[int, str]] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    invocations: Counter[tuple[int, str]] = field(default_factory=Counter)
    server_errors: list[tuple[str, str, int, bytes]] = field(default_factory=list)

    def add(self, operation: str, kind: str, answer: Answer) -> None:
        self.sent += 1
        self.answers[(answer.status, answer.code or "-")] += 1
        if kind == "invoke":
            self.invocations[(answer.status, answer.code or "-")] += 1

        self.kinds[kind] += 1
        self.operations[operation] += 1
        if answer.status >= 500:
            self.server_errors.append((operation, kind, answer.status, answer.body[:300]))

    def report(self, title: str) -> None:
        print(f"\n{title}: {self.sent} requests")
        for (status, code), count in sorted(self.answers.items()):
            print(f"  {status} {code}: {count}")
        print("  by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())))
        print(
            "  InvokeEndpoint: "
            + ", ".join(f"{s} {c} {n}" for (s, c), n in sorted(self.invocations.items()))
        )
        print(f"  operations: {len(self.operations)}")


class Fuzzer:
    """Sends generated requests through one Api and tallies the answers."""

    def __init__(
        self, api: Api, rng: random.Random, seeds: dict[str, dict[str, dict[str, Any]]]
    ) -> None:
        self.api = api
        self.rng = rng
        self.makers = {s: RequestMaker(rng, s, seeds[s]) for s in seeds}
        self.served: dict[str, list[str]] = {}
        self.tally = Tally()

    def discover(self) -> None:
        """Every operation of the two models, asked with `{}`: those that are not
        UnknownOperationException are the ones dockyard serves."""
        for service in ("sagemaker", "logs"):
            operations = service_model(service).operation_names
            answers = self._run(
                [self._control(service, op, b"{}", "discover") for op in operations]
            )
            self.served[service] = [
                op
                for op, answer in zip(operations, answers, strict=True)
                if answer.code != "UnknownOperationException"
            ]

    def fuzz(self, count: int, *, over_http: bool = False) -> None:
        calls: list[Callable[[], Awaitable[Answer]]] = []
        for _ in range(count):
            roll = self.rng.random()
            if roll < 0.8:
                service = "sagemaker" if self.rng.random() < 0.8 else "logs"
                operation = self.rng.choice(self.served[service])
                request = self.makers[service].make(operation)
                calls.append(self._deferred(service, request.operation, request.body, request.kind))
            elif roll < 0.95:
                calls.append(self._invocation(over_http))
            else:
                calls.append(self._odd_route())
        for start in range(0, len(calls), CONCURRENCY):
            if start % 512 == 0:
                self.revive()
            self._run([call() for call in calls[start : start + CONCURRENCY]])

    def revive(self) -> None:
        """Create the seed model, configuration and endpoint again where the fuzz deleted them,
        so that invocations keep meeting a live endpoint (not only "not found")."""
        seeds = self.makers["sagemaker"].seeds
        for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
            self._run([self._control("sagemaker", operation, as_json(seeds[operation]), "seed")])

    # -- request kinds --------------------------------------------------------------------

    def _deferred(
        self, service: str, operation: str, body: bytes, kind: str
    ) -> Callable[[], Awaitable[Answer]]:
        return lambda: self._control(service, operation, body, kind)

    async def _control(self, service: str, operation: str, body: bytes, kind: str) -> Answer:
        answer = await self.api.send(service, operation, body)
        self.tally.add(operation, kind, answer)
        return answer

    def _invocation(self, over_http: bool) -> Callable[[], Awaitable[Answer]]:
        rng = self.rng
        endpoint = NAME if rng.random() < 0.7 else rng.choice((*NAME_POOL, *ODD_TEXT, "e" * 64))
        if over_http:
            # A real client cannot put these in a request line or a header.
            endpoint = "".join(c for c in endpoint if c.isascii() and c.isprintable()) or "x"
        shape = operation_model("sagemaker-runtime", "InvokeEndpoint").input_shape
        headers = {"Content-Type": "text/csv"}
        for member in shape.members.values():
            if member.serialization.get("location") != "header" or rng.random() < 0.8:
                continue
            header = member.serialization["name"]
            if rng.random() < 0.6 and header in PLAUSIBLE_HEADERS:
                value = rng.choice(PLAUSIBLE_HEADERS[header])
            else:
                value = rng.choice((*ODD_TEXT, "x" * 1025, "NEW_SESSION"))
            raw = value.encode("utf-8", "surrogatepass").decode("latin-1")
            if over_http and (raw != raw.strip() or not all(" " <= c <= "~" for c in raw)):
                continue  # h11 (rightly) sends no such header
            if not any(c in raw for c in "\r\n"):
                headers[header] = raw
        body = rng.choice((b"1,2", b"", rng.randbytes(rng.randint(0, 4096)), b"fail"))

        async def send() -> Answer:
            if not endpoint:  # /endpoints//invocations is no runtime path: the control plane's
                response = await self.api.client.post("/endpoints//invocations", content=body)
                answer = read_answer("sagemaker", "ListModels", response)
                self.tally.add("InvokeEndpoint", "invoke", answer)
                return answer
            answer = await self.api.send_invoke(endpoint, body, headers)
            self.tally.add("InvokeEndpoint", "invoke", answer)
            return answer

        return send

    def _odd_route(self) -> Callable[[], Awaitable[Answer]]:
        method, path, target = self.rng.choice(
            (
                ("GET", "/", "SageMaker.ListModels"),
                ("POST", "/", "SageMaker.NoSuchOperation"),
                ("POST", "/", "Nope_20200101.ListModels"),
                ("POST", "/", ""),
                ("POST", "/", "SageMaker"),
                ("PUT", "/endpoints/fz-a/invocations", None),
                ("POST", "/endpoints//invocations", None),
                ("POST", "/endpoints/a/b/invocations", None),
                ("POST", "/nowhere", "SageMaker.ListModels"),
                ("DELETE", "/healthz", None),
            )
        )

        async def send() -> Answer:
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            if target is not None:
                headers["X-Amz-Target"] = target
            response = await self.api.client.request(method, path, content=b"{}", headers=headers)
            # Only POST /endpoints/<name>/invocations is the runtime (rest-json); the rest is
            # the control plane's (JSON 1.1).
            runtime = method == "POST" and path.count("/") == 3 and "//" not in path
            if response.headers.get("content-type") == "application/xml":
                # Unsigned, with no X-Amz-Target, on a path only S3 takes: S3's XML refusal.
                assert target is None and not runtime, (method, path, target)
                error = ElementTree.fromstring(response.content)
                assert response.status_code == 403, (method, path, response.status_code)
                assert error.findtext("Code") == "AccessDenied", response.content[:300]
                parsed = {"Error": {"Code": "AccessDenied", "Message": error.findtext("Message")}}
                answer = Answer(
                    response.status_code, dict(response.headers), response.content, parsed
                )
                self.tally.add(f"{method} {path}", "route", answer)
                return answer
            service, operation = (
                ("sagemaker-runtime", "InvokeEndpoint") if runtime else ("sagemaker", "ListModels")
            )
            answer = read_answer(service, operation, response)
            assert answer.status >= 400, (method, path, target, answer.status)
            self.tally.add(f"{method} {path}", "route", answer)
            return answer

        return send

    def _run(self, calls: list[Awaitable[Answer]]) -> list[Answer]:
        async def together() -> list[Answer]:
            return list(await asyncio.gather(*calls))

        return self.api.run(together())


# -- the engine before and after ------------------------------------------------------------


def prepare(api: Api, seed: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Create the seed resources, so valid requests meet real ones (an endpoint that serves)."""
    sagemaker = seed["sagemaker"]
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateTrainingJob"):
        answer = api.sagemaker(operation, sagemaker[operation])
        assert answer.status == 200, (operation, answer.message)
    deadline = time.monotonic() + 60
    while (
        api.sagemaker("DescribeEndpoint", {"EndpointName": NAME}).parsed.get("EndpointStatus")
        != "InService"
    ):
        assert time.monotonic() < deadline, "the seed endpoint did not come up"
        time.sleep(0.1)
    answer = api.sagemaker("CreateTransformJob", sagemaker["CreateTransformJob"])
    assert answer.status == 200, answer.message


def listing(api: Api, operation: str) -> list[dict[str, Any]]:
    key = LISTINGS[operation][0]
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"MaxResults": 7}
    while True:
        answer = api.sagemaker(operation, request)
        assert answer.status == 200, (operation, answer.message)
        items += answer.parsed[key]
        if "NextToken" not in answer.parsed:
            return items
        request = {"MaxResults": 7, "NextToken": answer.parsed["NextToken"]}


def settled(api: Api) -> None:
    """Wait until no endpoint and no job is in a transitional status."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        busy = [
            (operation, item)
            for operation in ("ListEndpoints", "ListTrainingJobs", "ListTransformJobs")
            for item in listing(api, operation)
            if (
                item.get("EndpointStatus") in TRANSITIONAL["endpoint"]
                or item.get("TrainingJobStatus") in TRANSITIONAL["job"]
                or item.get("TransformJobStatus") in TRANSITIONAL["job"]
            )
        ]
        if not busy:
            return
        assert time.monotonic() < deadline, f"still transitional: {busy}"
        time.sleep(0.5)


def consistent(api: Api, settings: Settings) -> dict[str, int]:
    """The database is sound and the API agrees with itself; returns counts per listing."""
    database = sqlite3.connect(settings.home / "dockyard.db")
    try:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert database.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        database.close()
    counts = {}
    for operation, (_, describe, name_key) in LISTINGS.items():
        items = listing(api, operation)
        counts[operation] = len(items)
        assert len({item[name_key] for item in items}) == len(items), operation
        for item in items:
            answer = api.sagemaker(describe, {name_key: item[name_key]})
            assert answer.status == 200, (describe, item[name_key], answer.message)
    streams = api.logs("DescribeLogStreams", {"logGroupName": TRAINING_GROUP})
    assert streams.status == 200, streams.message
    return counts


# -- the test -------------------------------------------------------------------------------


@pytest.fixture
def fuzz_folder(tmp_path: Path) -> Path:
    return tmp_path / "fuzz"


def _engine(home: Path, **changes: Any) -> Settings:
    return Settings(home=home, stop_grace_seconds=2.0, max_instance_count=3, **changes)


@pytest.fixture
def in_process_api(clean_env: Path, api_credentials: Credentials) -> Iterator[tuple[Api, Settings]]:
    settings = _engine(clean_env)
    engine = Engine.open(settings)
    api = Api(api_credentials, app=create_app(engine, close_engine=False))
    try:
        yield api, settings
    finally:
        api.close()
        engine.close()


@pytest.fixture
def http_api(tmp_path: Path, api_credentials: Credentials) -> Iterator[tuple[Api, Settings]]:
    settings = _engine(
        tmp_path / "http-home",
        port=free_port(),
        access_key_id=api_credentials.access_key,  # the same pair as the in-process app's
        secret_access_key=api_credentials.secret_key,
    )
    server = RunningServer(settings)
    api = Api(api_credentials, base_url=server.url)
    try:
        yield api, settings
    finally:
        api.close()
        server.close()


def test_generated_requests_get_no_5xx_and_leave_everything_consistent(
    in_process_api: tuple[Api, Settings],
    http_api: tuple[Api, Settings],
    fuzz_folder: Path,
) -> None:
    fuzz_folder.mkdir()
    seed = seeds(fuzz_folder)
    rng = random.Random(SEED)
    started = time.monotonic()

    api, settings = in_process_api
    prepare(api, seed)
    fuzzer = Fuzzer(api, rng, seed)
    fuzzer.discover()
    assert set(seed["sagemaker"]) <= set(fuzzer.served["sagemaker"])
    assert set(fuzzer.served["logs"]) == {
        "DescribeLogGroups",
        "DescribeLogStreams",
        "GetLogEvents",
        "FilterLogEvents",
    }
    fuzzer.fuzz(IN_PROCESS_REQUESTS)
    fuzzer.tally.report(f"in-process (seed {SEED}, {time.monotonic() - started:.0f} s)")
    assert fuzzer.tally.server_errors == [], fuzzer.tally.server_errors[:5]
    assert fuzzer.tally.sent >= 10_000
    assert len(fuzzer.tally.operations) >= 30  # 25 SageMaker, 4 Logs, InvokeEndpoint, routes
    assert fuzzer.tally.answers[(200, "-")] > 0  # some generated requests were valid
    settled(api)
    print("  after settling:", consistent(api, settings))

    http, http_settings = http_api
    over_http = Fuzzer(http, rng, seed)
    over_http.served = fuzzer.served
    over_http.fuzz(OVER_HTTP_REQUESTS, over_http=True)
    over_http.tally.report("uvicorn over HTTP")
    assert over_http.tally.server_errors == [], over_http.tally.server_errors[:5]
    settled(http)
    print("  after settling:", consistent(http, http_settings))
    print(f"total {time.monotonic() - started:.0f} s")
