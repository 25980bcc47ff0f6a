"""STS GetCallerIdentity: boto3 and the aws CLI learn the account and who the key belongs to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.api.sts import user_id
from tests.conftest import RunningServer, signed_request

AWS = Path(sys.executable).parent / "aws"


def test_get_caller_identity_through_boto3(server: RunningServer) -> None:
    identity = server.client("sts").get_caller_identity()
    user = server.access_key.user
    assert identity["Account"] == "000000000000" == server.settings.account_id
    assert identity["Arn"] == f"arn:aws:iam::000000000000:user/{user}"
    assert identity["UserId"] == user_id(user) and identity["UserId"].startswith("AIDA")
    assert identity["ResponseMetadata"]["RequestId"]
    assert identity["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_get_caller_identity_through_the_aws_cli(server: RunningServer, tmp_path: Path) -> None:
    key = server.access_key
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DOCKYARD_"))}
    env.update(
        HOME=str(tmp_path),  # no ~/.aws of this machine's user
        AWS_ACCESS_KEY_ID=key.access_key_id,
        AWS_SECRET_ACCESS_KEY=key.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = subprocess.run(
        [str(AWS), "sts", "get-caller-identity", "--endpoint-url", server.url, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    identity = json.loads(done.stdout)
    assert identity["Account"] == "000000000000"
    assert identity["Arn"] == f"arn:aws:iam::000000000000:user/{key.user}"


def test_other_actions_and_wrong_keys_are_refused(server: RunningServer) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    answer = signed_request(
        server.url, "POST", "/", b"Action=AssumeRole&Version=2011-06-15", form,
        server.access_key, service="sts",
    )  # fmt: skip
    assert answer.status_code == 400
    assert b"<Code>InvalidAction</Code>" in answer.content and answer.headers["x-amzn-requestid"]
    unsigned = httpx.post(server.url + "/", content=b"Action=GetCallerIdentity", headers=form)
    assert unsigned.status_code == 403
    stranger = boto3.client(
        "sts", endpoint_url=server.url, region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )  # fmt: skip
    with pytest.raises(ClientError) as refused:
        stranger.get_caller_identity()
    # In the query protocol's XML, so botocore reads the reason.
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
