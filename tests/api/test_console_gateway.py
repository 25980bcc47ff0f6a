"""The console's gateway answers what the signed API answers, operation for operation, and its
artifact download hands out a real job's model.tar.gz: over real HTTP, with a real job."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from dockyard.settings import Settings
from tests.api.console_client import Browser, signed_in
from tests.conftest import (
    RunningServer,
    free_port,
    make_image,
    training_request,
    wait_for_job,
)

JSON_11 = "application/x-amz-json-1.1"
PROGRAM = """
print("training")
open("/opt/ml/model/model.txt", "w").write("trained")
"""


# The service each target's requests are signed for (SageMaker's for the rest, as the CLI signs
# dockyard's own operations).
SIGNING_NAMES = {"Logs_20140328": "logs", "AmazonEC2ContainerRegistry_V20150921": "ecr"}


def signed(server: RunningServer, target: str, body: bytes) -> httpx.Response:
    service = SIGNING_NAMES.get(target.partition(".")[0], "sagemaker")
    headers = {"X-Amz-Target": target, "Content-Type": JSON_11}
    return server.post("/", body, headers, service=service)


def assert_same_answer(server: RunningServer, browser: Browser, target: str, body: Any) -> Any:
    """The gateway's answer is the signed API's: status, content type and JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    by_console = browser.call(target, raw)
    by_sigv4 = signed(server, target, raw)
    assert by_console.status_code == by_sigv4.status_code, (target, by_console.text)
    assert by_console.headers["content-type"] == by_sigv4.headers["content-type"] == JSON_11
    assert by_console.json() == by_sigv4.json(), target
    assert by_console.headers["cache-control"] == "no-store"
    return by_console.json()


def test_the_gateway_runs_the_signed_apis_operations(server: RunningServer, tmp_path: Path) -> None:
    browser = signed_in(server)
    image = make_image(tmp_path / "img", PROGRAM)
    request = training_request("console-1", image, Tags=[{"Key": "team", "Value": "ml"}])
    # Made through the console, seen through SigV4 (and the other way round below).
    created = browser.call("SageMaker.CreateTrainingJob", request)
    assert created.status_code == 200, created.text
    arn = created.json()["TrainingJobArn"]
    assert arn.endswith(":training-job/console-1")
    described = wait_for_job(server.client("sagemaker"), "console-1")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")

    same = assert_same_answer(
        server, browser, "SageMaker.DescribeTrainingJob", {"TrainingJobName": "console-1"}
    )
    assert same["TrainingJobStatus"] == "Completed"
    assert same["ModelArtifacts"]["S3ModelArtifacts"] == (
        "s3://bucket/out/console-1/output/model.tar.gz"
    )
    listed = assert_same_answer(server, browser, "SageMaker.ListTrainingJobs", {})
    assert [job["TrainingJobName"] for job in listed["TrainingJobSummaries"]] == ["console-1"]
    tags = assert_same_answer(server, browser, "SageMaker.ListTags", {"ResourceArn": arn})
    assert tags["Tags"] == [{"Key": "team", "Value": "ml"}]
    events = assert_same_answer(
        server,
        browser,
        "Logs_20140328.DescribeLogStreams",
        {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": "console-1"},
    )
    assert events["logStreams"]
    assert_same_answer(server, browser, "Dockyard.PruneJobFolders", {"OlderThanHours": 1000})


THOUSAND = {"InstanceCount": 1000, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}


def test_the_gateway_refuses_what_the_signed_api_refuses(server: RunningServer) -> None:
    browser = signed_in(server)
    cases: dict[str, tuple[str, Any, int, str]] = {
        "a name outside the regex": (
            "SageMaker.DescribeTrainingJob",
            {"TrainingJobName": "bad name!"},
            400,
            "ValidationException",
        ),
        "a missing job": (
            "SageMaker.DescribeTrainingJob",
            {"TrainingJobName": "nope"},
            400,
            "ValidationException",
        ),
        "a wrong type": ("SageMaker.ListTrainingJobs", {"MaxResults": "ten"}, 400, ""),
        "not JSON": ("SageMaker.ListTrainingJobs", b"{nope", 400, "SerializationException"),
        "too deep": ("SageMaker.ListTrainingJobs", b"[" * 100 + b"]" * 100, 400, ""),
        "too many instances": (
            "SageMaker.CreateTrainingJob",
            training_request("many", Path("/nonexistent"), ResourceConfig=THOUSAND),
            400,
            "ResourceLimitExceeded",
        ),
        "an unknown operation": (
            "SageMaker.CreateHyperParameterTuningJob",
            {},
            400,
            "UnknownOperationException",
        ),
        "an unknown service": ("Nope.ListThings", {}, 400, "UnknownOperationException"),
        "no operation": ("SageMaker", {}, 400, "UnknownOperationException"),
        "dockyard's own shapes": (
            "Dockyard.PruneJobFolders",
            {"OlderThanHours": -1},
            400,
            "ValidationException",
        ),
    }
    for what, (target, body, status, code) in cases.items():
        answer = assert_same_answer(server, browser, target, body)
        refused = browser.call(
            target, body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        assert refused.status_code == status, (what, refused.text)
        if code:
            assert answer["__type"] == code, (what, answer)
        assert "Traceback" not in json.dumps(answer)
    # The body limit is the signed API's too (DOCKYARD_MAX_REQUEST_BYTES, 8 MiB by default).
    huge = b'{"NameContains": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    refused = browser.call("SageMaker.ListTrainingJobs", huge)
    assert refused.status_code == 413
    assert refused.json()["__type"] == "RequestEntityTooLargeException"


def test_artifacts_download_a_real_jobs_model(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", PROGRAM)
    sagemaker.create_training_job(**training_request("artifact-1", image))
    described = wait_for_job(sagemaker, "artifact-1")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    stored = (server.settings.store_root / uri.removeprefix("s3://")).read_bytes()
    assert len(stored) > 0

    browser = signed_in(server)
    answer = browser.http.get("/console/artifacts", params={"uri": uri})
    assert answer.status_code == 200
    assert answer.content == stored
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"model.tar.gz\"; filename*=UTF-8''model.tar.gz"
    )
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"

    # A name that is not safe in a header or on a disk: a plain fallback, the name encoded.
    server.engine.store.put_bytes("bucket", 'odd/we"ird näme;.html', b"<script>x</script>")
    odd = browser.http.get(
        "/console/artifacts", params={"uri": 's3://bucket/odd/we"ird näme;.html'}
    )
    assert odd.status_code == 200
    assert odd.content == b"<script>x</script>"
    assert odd.headers["content-type"] == "application/octet-stream"  # never rendered
    assert odd.headers["content-disposition"] == (
        "attachment; filename=\"we_ird_n_me_.html\"; filename*=UTF-8''we%22ird%20n%C3%A4me%3B.html"
    )

    for bad, status, words in [
        ("s3://bucket/out/nothing-here.tar.gz", 404, "has no object"),
        ("s3://no-such-bucket/model.tar.gz", 404, "has no object"),
        ("s3://bucket/out/", 400, "names a folder"),
        ("s3://bucket", 400, "names a folder"),
        ("https://example.com/model.tar.gz", 400, "is not an S3 URI"),
        ("s3://Bad_Bucket/x", 400, "invalid S3 URI"),
        ("", 400, "Give the object"),
    ]:
        refused = browser.http.get("/console/artifacts", params={"uri": bad})
        assert refused.status_code == status, bad
        assert words in refused.text, (bad, refused.text)
        assert refused.headers["content-type"] == "text/html; charset=utf-8"
        assert "Traceback" not in refused.text


def test_artifacts_download_from_an_s3_store(moto_endpoint: str, tmp_path: Path) -> None:
    """A remote store (a real S3 endpoint): the object is fetched, then sent, and its local copy
    is gone afterwards."""
    settings = Settings(
        home=tmp_path / "home",
        port=free_port(),
        store="s3",
        s3_endpoint_url=moto_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    server = RunningServer(settings)
    try:
        payload = os.urandom(3 * 1024 * 1024 + 17)  # several pieces of the response
        server.engine.store.create_bucket("console-remote")
        server.engine.store.put_bytes("console-remote", "runs/a/model.tar.gz", payload)
        browser = signed_in(server)
        uri = "s3://console-remote/runs/a/model.tar.gz"
        answer = browser.http.get("/console/artifacts", params={"uri": uri})
        assert answer.status_code == 200
        assert answer.content == payload
        assert 'filename="model.tar.gz"' in answer.headers["content-disposition"]
        missing = browser.http.get("/console/artifacts", params={"uri": uri + ".old"})
        assert missing.status_code == 404
        leftovers = [p for p in settings.home.iterdir() if p.name.startswith("tmp")]
        assert leftovers == []
    finally:
        server.close()
