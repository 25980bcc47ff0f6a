"""The S3 API with boto3: buckets, objects, ranges, copies, listings, checksums and errors."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import RunningServer


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_buckets(s3: Any) -> None:
    s3.create_bucket(Bucket="alpha")
    s3.create_bucket(Bucket="alpha")  # as in us-east-1: yours already, so fine
    s3.create_bucket(Bucket="beta")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha", "beta"]
    s3.head_bucket(Bucket="alpha")
    with pytest.raises(ClientError) as missing:
        s3.head_bucket(Bucket="gamma")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_object(Bucket="beta", Key="k", Body=b"x")
    with pytest.raises(ClientError) as busy:
        s3.delete_bucket(Bucket="beta")
    assert code_of(busy) == "BucketNotEmpty"
    s3.delete_object(Bucket="beta", Key="k")
    s3.delete_bucket(Bucket="beta")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha"]
    with pytest.raises(ClientError) as bad_name:
        s3.create_bucket(Bucket="Not_A_Bucket")
    assert code_of(bad_name) == "InvalidBucketName"


def test_put_get_head_delete(s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="data")
    body = bytes(range(256)) * 1000
    put = s3.put_object(Bucket="data", Key="dir/a b+c.bin", Body=body)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ChecksumCRC32"]  # botocore sent one; it is echoed once checked
    got = s3.get_object(Bucket="data", Key="dir/a b+c.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket="data", Key="dir/a b+c.bin")
    assert (head["ETag"], head["ContentLength"]) == (put["ETag"], len(body))
    # The same object, as a job sees it: a plain file in the store.
    assert (server.settings.store_root / "data" / "dir" / "a b+c.bin").read_bytes() == body
    s3.delete_object(Bucket="data", Key="dir/a b+c.bin")
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket="data", Key="dir/a b+c.bin")
    assert code_of(gone) == "NoSuchKey"
    with pytest.raises(ClientError) as no_bucket:
        s3.put_object(Bucket="nowhere", Key="k", Body=b"x")
    assert code_of(no_bucket) == "NoSuchBucket"


def test_range_get(s3: Any) -> None:
    s3.create_bucket(Bucket="data")
    body = bytes(range(256)) * 40
    s3.put_object(Bucket="data", Key="r", Body=body)
    for wanted, expected in (
        ("bytes=0-9", body[:10]),
        ("bytes=100-", body[100:]),
        ("bytes=-7", body[-7:]),
        ("bytes=10000-99999", body[10000:]),
    ):
        part = s3.get_object(Bucket="data", Key="r", Range=wanted)
        assert part["Body"].read() == expected, wanted
        assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert part["ContentRange"].endswith(f"/{len(body)}")
    with pytest.raises(ClientError) as unsatisfiable:
        s3.get_object(Bucket="data", Key="r", Range=f"bytes={len(body)}-")
    assert code_of(unsatisfiable) == "InvalidRange"


def test_conditional_get(s3: Any) -> None:
    s3.create_bucket(Bucket="data")
    etag = s3.put_object(Bucket="data", Key="c", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket="data", Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as changed:
        s3.get_object(Bucket="data", Key="c", IfMatch='"0000"')
    assert code_of(changed) == "PreconditionFailed"


def test_copy_and_delete_objects(s3: Any) -> None:
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    s3.put_object(Bucket="src", Key="a/1", Body=b"one")
    copied = s3.copy_object(Bucket="dst", Key="b/1", CopySource={"Bucket": "src", "Key": "a/1"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"one").hexdigest()}"'
    assert s3.get_object(Bucket="dst", Key="b/1")["Body"].read() == b"one"
    for n in range(5):
        s3.put_object(Bucket="dst", Key=f"many/{n}", Body=b"x")
    deleted = s3.delete_objects(
        Bucket="dst",
        Delete={"Objects": [{"Key": f"many/{n}"} for n in range(5)] + [{"Key": "absent"}]},
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == [
        "absent",
        *(f"many/{n}" for n in range(5)),
    ]
    listed = s3.list_objects_v2(Bucket="dst")
    assert [o["Key"] for o in listed["Contents"]] == ["b/1"]


def test_list_objects_v2_paging_with_delimiter(s3: Any) -> None:
    s3.create_bucket(Bucket="tree")
    keys = [f"top-{n}" for n in range(3)]
    keys += [f"dir{d}/f{n}" for d in range(4) for n in range(3)]
    keys += ["dir1-x", "z/deep/er"]
    for key in keys:
        s3.put_object(Bucket="tree", Key=key, Body=key.encode())
    # Everything, two at a time.
    seen, token = [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket="tree", MaxKeys=2, **extra)
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] <= 2
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys)
    # With a delimiter: folders count once; pages go on past them.
    paginator = s3.get_paginator("list_objects_v2")
    prefixes, files = [], []
    for page in paginator.paginate(Bucket="tree", Delimiter="/", PaginationConfig={"PageSize": 2}):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        files += [o["Key"] for o in page.get("Contents", [])]
    assert prefixes == ["dir0/", "dir1/", "dir2/", "dir3/", "z/"]
    assert files == ["dir1-x", "top-0", "top-1", "top-2"]
    under = s3.list_objects_v2(Bucket="tree", Prefix="dir2/", Delimiter="/")
    assert [o["Key"] for o in under["Contents"]] == ["dir2/f0", "dir2/f1", "dir2/f2"]
    after = s3.list_objects_v2(Bucket="tree", StartAfter="top-0")
    assert [o["Key"] for o in after["Contents"]] == ["top-1", "top-2", "z/deep/er"]


def test_list_objects_v1_marker_paging_with_delimiter(s3: Any, server: RunningServer) -> None:
    """ListObjects, the first version: boto3's resource collections and the SageMaker SDK's
    S3Downloader.list page it with a marker (NextMarker, or the last key without one)."""
    s3.create_bucket(Bucket="tree1")
    keys = [f"top-{n}" for n in range(3)]
    keys += [f"dir{d}/f{n}" for d in range(3) for n in range(2)]
    keys += ["dir1-x", "odd key\u0001+%", "z/deep/er"]
    for key in keys:
        s3.put_object(Bucket="tree1", Key=key, Body=key.encode())
    # Without a delimiter there is no NextMarker: the client goes on from the last key.
    page = s3.list_objects(Bucket="tree1", MaxKeys=4)
    assert page["IsTruncated"] is True and "NextMarker" not in page
    assert [o["Key"] for o in page["Contents"]] == sorted(keys)[:4]
    assert page["Contents"][0]["Owner"]["ID"]
    assert page["Contents"][0]["ETag"] == s3.head_object(Bucket="tree1", Key="dir0/f0")["ETag"]
    rest = s3.list_objects(Bucket="tree1", Marker=page["Contents"][-1]["Key"])
    assert rest["IsTruncated"] is False
    assert [o["Key"] for o in rest["Contents"]] == sorted(keys)[4:]
    # boto3 sends encoding-type=url and decodes: a key with a control character comes back.
    assert "odd key\u0001+%" in [o["Key"] for o in rest["Contents"]]
    # With a delimiter a page may end on a folder: NextMarker names it, and the next page
    # starts after everything under it.
    paginator = s3.get_paginator("list_objects")
    prefixes, files, markers = [], [], []
    for page in paginator.paginate(Bucket="tree1", Delimiter="/", PaginationConfig={"PageSize": 2}):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        files += [o["Key"] for o in page.get("Contents", [])]
        markers.append(page.get("NextMarker"))
    assert prefixes == ["dir0/", "dir1/", "dir2/", "z/"]
    assert files == ["dir1-x", "odd key\u0001+%", "top-0", "top-1", "top-2"]
    assert markers[:2] == ["dir1-x", "dir2/"] and markers[-1] is None
    under = s3.list_objects(Bucket="tree1", Prefix="dir2/", Delimiter="/")
    assert [o["Key"] for o in under["Contents"]] == ["dir2/f0", "dir2/f1"]
    # The resource collection a user's code (and the SageMaker SDK) iterates.
    resource = boto3.resource(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key.access_key_id,
        aws_secret_access_key=server.access_key.secret_access_key,
    )
    collected = resource.Bucket("tree1").objects.filter(Prefix="dir").page_size(2)
    assert [o.key for o in collected] == [k for k in sorted(keys) if k.startswith("dir")]
    with pytest.raises(ClientError) as missing:
        s3.list_objects(Bucket="no-such-tree")
    assert code_of(missing) == "NoSuchBucket"


def test_multipart_upload(s3: Any) -> None:
    s3.create_bucket(Bucket="parts")
    upload = s3.create_multipart_upload(Bucket="parts", Key="big")["UploadId"]
    first, second = b"a" * (5 * 1024 * 1024), b"tail"
    e1 = s3.upload_part(Bucket="parts", Key="big", UploadId=upload, PartNumber=1, Body=first)
    e2 = s3.upload_part(Bucket="parts", Key="big", UploadId=upload, PartNumber=2, Body=second)
    parts = s3.list_parts(Bucket="parts", Key="big", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(first)), (2, 4)]
    listed = s3.list_multipart_uploads(Bucket="parts")["Uploads"]
    assert [u["UploadId"] for u in listed] == [upload]
    done = s3.complete_multipart_upload(
        Bucket="parts",
        Key="big",
        UploadId=upload,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": e1["ETag"]},
                {"PartNumber": 2, "ETag": e2["ETag"]},
            ]
        },
    )
    digests = hashlib.md5(first).digest() + hashlib.md5(second).digest()
    expected = f'"{hashlib.md5(digests).hexdigest()}-2"'
    assert done["ETag"] == expected
    assert s3.head_object(Bucket="parts", Key="big")["ETag"] == expected
    assert s3.get_object(Bucket="parts", Key="big")["Body"].read() == first + second
    with pytest.raises(ClientError) as finished:
        s3.list_parts(Bucket="parts", Key="big", UploadId=upload)
    assert code_of(finished) == "NoSuchUpload"
    # Abort, and the rules on parts.
    other = s3.create_multipart_upload(Bucket="parts", Key="small")["UploadId"]
    small = s3.upload_part(Bucket="parts", Key="small", UploadId=other, PartNumber=1, Body=b"x")
    tail = s3.upload_part(Bucket="parts", Key="small", UploadId=other, PartNumber=2, Body=b"y")
    for parts, expected in (
        ([(1, small["ETag"]), (2, tail["ETag"])], "EntityTooSmall"),
        ([(2, tail["ETag"]), (1, small["ETag"])], "InvalidPartOrder"),
        ([(1, tail["ETag"])], "InvalidPart"),
        ([(3, tail["ETag"])], "InvalidPart"),
    ):
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(
                Bucket="parts",
                Key="small",
                UploadId=other,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            )
        assert code_of(refused) == expected, parts
    s3.abort_multipart_upload(Bucket="parts", Key="small", UploadId=other)
    with pytest.raises(ClientError) as aborted:
        s3.upload_part(Bucket="parts", Key="small", UploadId=other, PartNumber=3, Body=b"z")
    assert code_of(aborted) == "NoSuchUpload"
    with pytest.raises(ClientError) as forged:
        s3.list_parts(Bucket="parts", Key="small", UploadId="../../etc")
    assert code_of(forged) == "NoSuchUpload"


def test_upload_part_copy(s3: Any) -> None:
    s3.create_bucket(Bucket="parts")
    source = bytes(range(256)) * (6 * 4096)
    s3.put_object(Bucket="parts", Key="source", Body=source)
    upload = s3.create_multipart_upload(Bucket="parts", Key="copy")["UploadId"]
    cut = 5 * 1024 * 1024
    parts = []
    for number, span in ((1, f"bytes=0-{cut - 1}"), (2, f"bytes={cut}-{len(source) - 1}")):
        copied = s3.upload_part_copy(
            Bucket="parts",
            Key="copy",
            UploadId=upload,
            PartNumber=number,
            CopySource={"Bucket": "parts", "Key": "source"},
            CopySourceRange=span,
        )
        parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(
        Bucket="parts", Key="copy", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket="parts", Key="copy")["Body"].read() == source


def test_unserved_operations_are_named(s3: Any) -> None:
    s3.create_bucket(Bucket="data")
    with pytest.raises(ClientError) as unserved:
        s3.get_bucket_acl(Bucket="data")
    assert code_of(unserved) == "NotImplemented"
    assert "GetBucketAcl" in str(unserved.value)


def test_virtual_host_addressing(s3: Any, server: RunningServer) -> None:
    """`<bucket>.localhost:<port>`, signed as botocore signs virtual-host requests."""
    s3.create_bucket(Bucket="hosted")
    s3.put_object(Bucket="hosted", Key="dir/file.txt", Body=b"virtual")
    port = server.url.rsplit(":", 1)[1]
    request = AWSRequest(method="GET", url=f"http://hosted.localhost:{port}/dir/file.txt")
    key = server.access_key
    S3SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "s3", "us-east-1").add_auth(
        request
    )
    headers = {**dict(request.headers), "Host": f"hosted.localhost:{port}"}
    answer = httpx.get(server.url + "/dir/file.txt", headers=headers)
    assert (answer.status_code, answer.content) == (200, b"virtual")
