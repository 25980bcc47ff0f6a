"""Issue 8, SigV4: every API on the port refuses requests not signed by a known key, with the
403 and the code AWS answers, read back through botocore as a client sees them."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import httpx
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dockyard.api.sigv4 import SIGNATURE_MISMATCH, UNKNOWN_KEY
from tests.conftest import RunningServer, make_image, training_request

JSON_11 = "application/x-amz-json-1.1"

# One call of each API on the port, as botocore makes it.
CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "control plane": ("sagemaker", lambda c: c.list_training_jobs()),
    "runtime": (
        "sagemaker-runtime",
        lambda c: c.invoke_endpoint(EndpointName="nowhere", Body=b"1,2", ContentType="text/csv"),
    ),
    "logs": (
        "logs",
        lambda c: c.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs"),
    ),
}


def client(server: RunningServer, service: str, key_id: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def refusal(call: Callable[[Any], Any], api: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(api)
    response = caught.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


_BOTOCORE_NOW = botocore.auth.get_current_datetime


def signed_at(monkeypatch: pytest.MonkeyPatch, delta: datetime.timedelta) -> None:
    """Make botocore in this process sign as if its clock were `delta` off."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: _BOTOCORE_NOW() + delta)


@pytest.mark.parametrize("api", sorted(CALLS))
def test_signed_requests_pass_and_others_get_403(
    server: RunningServer, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, call = CALLS[api]
    key = server.access_key

    # The server's own key: the call reaches the API (the runtime says the endpoint is missing).
    good = client(server, service, key.access_key_id, key.secret_access_key)
    if api == "runtime":
        status, code, _ = refusal(call, good)
        assert (status, code) == (400, "ValidationError")
    else:
        call(good)

    unsigned = client(server, service, "x", "x", signature_version=UNSIGNED)
    status, code, message = refusal(call, unsigned)
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    assert message.startswith("Missing Authentication Token")

    wrong_secret = client(server, service, key.access_key_id, key.secret_access_key + "x")
    assert refusal(call, wrong_secret) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)

    unknown = client(server, service, "AKIAIOSFODNN7EXAMPLE", key.secret_access_key)
    assert refusal(call, unknown) == (403, "UnrecognizedClientException", UNKNOWN_KEY)

    # The dummy keys every tutorial uses, and the ones dockyard's own faces used to send.
    for dummy in ("test", "testing", "dockyard"):
        status, code, _ = refusal(call, client(server, service, dummy, dummy))
        assert (status, code) == (403, "UnrecognizedClientException")

    signed_at(monkeypatch, -datetime.timedelta(minutes=16))
    status, code, message = refusal(call, good)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired: ") and "- 15 min." in message

    signed_at(monkeypatch, datetime.timedelta(minutes=16))
    status, code, message = refusal(call, good)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature not yet current: ")

    # Within the 15 minutes, a clock off by a little is fine.
    signed_at(monkeypatch, -datetime.timedelta(minutes=14))
    if api != "runtime":
        call(good)


def test_any_region_in_the_scope_is_accepted(server: RunningServer) -> None:
    key = server.access_key
    for region in ("eu-west-3", "ap-southeast-2", "us-gov-west-1"):
        sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=server.url,
            region_name=region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
        )
        assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_a_signature_for_one_api_is_not_accepted_by_another(server: RunningServer) -> None:
    key = server.access_key
    body = json.dumps({"logGroupName": "/aws/sagemaker/TrainingJobs"}).encode()
    headers = {"X-Amz-Target": "Logs_20140328.DescribeLogStreams", "Content-Type": JSON_11}
    answer = server.post("/", body, headers, service="sagemaker")
    assert answer.status_code == 403
    assert answer.json()["__type"] == "IncompleteSignatureException"
    assert "'logs'" in answer.json()["message"]
    assert server.post("/", body, headers, service="logs").status_code == 200
    assert key.secret_access_key not in answer.text


def test_an_unsigned_create_training_job_creates_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    """The finding: an unsigned CreateTrainingJob was answered 200 and its job ran as root."""
    image = make_image(tmp_path / "img", "print('ran')")
    body = json.dumps(training_request("unsigned", image)).encode()
    headers = {"X-Amz-Target": "SageMaker.CreateTrainingJob", "Content-Type": JSON_11}
    answer = httpx.post(server.url + "/", content=body, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["__type"] == "MissingAuthenticationTokenException"

    # Signed, but with a secret that is not the server's.
    forged = client(server, "sagemaker", server.access_key.access_key_id, "not-the-secret")
    with pytest.raises(ClientError) as caught:
        forged.create_training_job(**training_request("forged", image))
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"

    sagemaker = server.client("sagemaker")
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    jobs = server.settings.jobs_dir
    assert not jobs.exists() or list(jobs.iterdir()) == []


def test_a_cross_site_form_post_to_an_endpoint_is_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    """What a page in a browser can send to 127.0.0.1: a form POST, no signature. It never
    reaches the model."""
    from tests.api.test_endpoints_api import deploy, make_echo_image

    deploy(server, make_echo_image(tmp_path), "csrf")
    runtime = server.client("sagemaker-runtime")
    assert runtime.invoke_endpoint(EndpointName="csrf", Body=b"signed")["Body"].read()

    answer = httpx.post(
        server.url + "/endpoints/csrf/invocations",
        content=b"payload=delete-everything",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://evil.example",
            "Referer": "http://evil.example/page.html",
        },
    )
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert "access-control-allow-origin" not in answer.headers
    served = {i.name: i.served for i in server.engine.endpoints._live["csrf"].instances()}
    assert sum(served.values()) == 1  # only the signed request


def presigned(
    server: RunningServer,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    expires: int = 60,
    secret: str | None = None,
) -> str:
    """A presigned URL made by botocore's SigV4QueryAuth, covering `body`'s hash."""
    key = server.access_key

    class Presign(SigV4QueryAuth):
        def payload(self, request: AWSRequest) -> str:
            return sha256(body).hexdigest()  # botocore would move a body into the query

    request = AWSRequest(method="POST", url=server.url + path, headers=headers)
    credentials = Credentials(key.access_key_id, secret or key.secret_access_key)
    Presign(credentials, "sagemaker", "us-east-1", expires=expires).add_auth(request)
    return str(request.url)


def test_presigned_requests(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": JSON_11}
    url = presigned(server, "/", headers, b"{}")
    assert "X-Amz-Signature=" in url and "Authorization" not in headers
    answer = httpx.post(url, content=b"{}", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"TrainingJobSummaries": []}

    # Replayed as another operation, with another body, or with a longer life: refused.
    other = {**headers, "X-Amz-Target": "SageMaker.ListEndpoints"}
    for changed in (
        httpx.post(url, content=b"{}", headers=other),
        httpx.post(url, content=b'{"MaxResults": 1}', headers=headers),
        httpx.post(url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"), content=b"{}",
                   headers=headers),
    ):  # fmt: skip
        assert changed.status_code == 403, changed.text
        assert changed.json()["__type"] == "InvalidSignatureException"
    unsigned_target = presigned(server, "/", {"Content-Type": JSON_11}, b"{}")
    sneaked = httpx.post(unsigned_target, content=b"{}", headers=headers)
    assert sneaked.status_code == 403
    assert sneaked.json()["__type"] == "IncompleteSignatureException"
    wrong = httpx.post(
        presigned(server, "/", headers, b"{}", secret="nope"), content=b"{}", headers=headers
    )
    assert wrong.status_code == 403 and wrong.json()["message"] == SIGNATURE_MISMATCH

    signed_at(monkeypatch, -datetime.timedelta(seconds=61))
    expired = httpx.post(presigned(server, "/", headers, b"{}"), content=b"{}", headers=headers)
    assert expired.status_code == 403
    assert expired.json()["__type"] == "InvalidSignatureException"
    assert expired.json()["message"].startswith("Signature expired: the presigned request")

    # Runtime: a presigned InvokeEndpoint reaches the runtime (no such endpoint here).
    monkeypatch.undo()
    invoke = {"Content-Type": "text/csv"}
    url = presigned(server, "/endpoints/nowhere/invocations", invoke, b"1,2")
    answer = httpx.post(url, content=b"1,2", headers=invoke)
    assert answer.status_code == 400 and answer.headers["x-amzn-errortype"] == "ValidationError"
    tampered = httpx.post(url, content=b"1,3", headers=invoke)
    assert tampered.status_code == 403
    assert tampered.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_healthz_is_open_and_tells_nothing_sensitive(server: RunningServer) -> None:
    from dockyard.client.local_server import healthy

    answer = httpx.get(server.url + "/healthz")
    assert answer.status_code == 200
    assert set(answer.json()) == {"status", "version", "home_id"}
    assert str(server.settings.home) not in answer.text
    assert healthy(server.url, server.settings.home)
    assert not healthy(server.url, server.settings.home.parent / "another-home")
