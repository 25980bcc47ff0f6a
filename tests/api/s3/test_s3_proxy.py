"""With an external S3-compatible store (moto_server here), the S3 API passes through the store
interface: what a client puts through dockyard lands in that store, and what is there is served."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import RunningServer, free_port


@pytest.fixture
def proxy(moto_endpoint: str, clean_env: Path) -> Iterator[RunningServer]:
    from dockyard.settings import Settings

    settings = Settings(
        home=clean_env,
        port=free_port(),
        store="s3",
        s3_endpoint_url=moto_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_s3_api_over_an_external_store(proxy: RunningServer, moto_endpoint: str) -> None:
    s3 = proxy.client_with_config("s3", Config(s3={"addressing_style": "path"}))
    moto: Any = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="proxied")
    assert "proxied" in [b["Name"] for b in moto.list_buckets()["Buckets"]]
    put = s3.put_object(Bucket="proxied", Key="a/b.txt", Body=b"through dockyard")
    assert put["ETag"] == f'"{hashlib.md5(b"through dockyard").hexdigest()}"'
    assert moto.get_object(Bucket="proxied", Key="a/b.txt")["Body"].read() == b"through dockyard"
    moto.put_object(Bucket="proxied", Key="a/c.txt", Body=b"straight into the store")
    assert s3.get_object(Bucket="proxied", Key="a/c.txt", Range="bytes=0-7")["Body"].read() == (
        b"straight"
    )
    listed = s3.list_objects_v2(Bucket="proxied", Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.txt", "a/c.txt"]
    upload = s3.create_multipart_upload(Bucket="proxied", Key="joined")["UploadId"]
    first = b"x" * (5 * 1024 * 1024)
    e1 = s3.upload_part(Bucket="proxied", Key="joined", UploadId=upload, PartNumber=1, Body=first)
    e2 = s3.upload_part(Bucket="proxied", Key="joined", UploadId=upload, PartNumber=2, Body=b"y")
    s3.complete_multipart_upload(
        Bucket="proxied",
        Key="joined",
        UploadId=upload,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1["ETag"]}, {"PartNumber": 2, "ETag": e2["ETag"]}]
        },
    )
    assert moto.get_object(Bucket="proxied", Key="joined")["Body"].read() == first + b"y"
    s3.delete_objects(
        Bucket="proxied", Delete={"Objects": [{"Key": k} for k in ("a/b.txt", "a/c.txt", "joined")]}
    )
    assert moto.list_objects_v2(Bucket="proxied")["KeyCount"] == 0
    s3.delete_bucket(Bucket="proxied")
    assert "proxied" not in [b["Name"] for b in moto.list_buckets()["Buckets"]]
