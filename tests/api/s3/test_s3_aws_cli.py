"""The real aws CLI against the S3 API: cp --recursive, ls, sync, presign + an HTTP client, and a
100 MB multipart upload checked byte for byte and by ETag."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.csv": b"1,2,3\n",
        "sub/b.txt": b"hello\n" * 100,
        "sub/deeper/c.bin": os.urandom(70_000),
        "with space/d e.txt": b"spaces",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return files


def test_cp_recursive_ls_and_sync(aws: Any, s3: Any, tmp_path: Path) -> None:
    aws("s3", "mb", "s3://cli-data")
    source = tmp_path / "source"
    files = make_tree(source)
    aws("s3", "cp", "--recursive", str(source), "s3://cli-data/in/")
    listed = aws("s3", "ls", "--recursive", "s3://cli-data/").stdout
    for name, content in files.items():
        assert f"{len(content)} in/{name}" in " ".join(listed.split()), name
    top = aws("s3", "ls", "s3://cli-data/in/").stdout
    assert "PRE sub/" in top and "PRE with space/" in top and "a.csv" in top
    assert "cli-data" in aws("s3", "ls").stdout

    back = tmp_path / "back"
    aws("s3", "cp", "--recursive", "s3://cli-data/in/", str(back))
    for name, content in files.items():
        assert (back / name).read_bytes() == content, name

    # sync copies only what changed, and --delete removes what is gone.
    (source / "a.csv").write_bytes(b"changed,and,longer\n")
    (source / "sub" / "b.txt").unlink()
    synced = aws("s3", "sync", "--delete", str(source), "s3://cli-data/in/").stdout
    assert "upload: " in synced and "a.csv" in synced
    assert "delete: s3://cli-data/in/sub/b.txt" in synced
    assert "c.bin" not in synced  # unchanged: not sent again
    got = s3.get_object(Bucket="cli-data", Key="in/a.csv")["Body"].read()
    assert got == b"changed,and,longer\n"
    assert aws("s3", "sync", str(source), "s3://cli-data/in/").stdout.strip() == ""
    down = tmp_path / "down"
    aws("s3", "sync", "s3://cli-data/in/", str(down))
    assert sorted(p.relative_to(down).as_posix() for p in down.rglob("*") if p.is_file()) == [
        "a.csv",
        "sub/deeper/c.bin",
        "with space/d e.txt",
    ]


def test_presigned_get_and_put(aws: Any, s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="report.csv", Body=b"a,b\n1,2\n")
    url = aws("s3", "presign", "s3://shared/report.csv", "--expires-in", "60").stdout.strip()
    answer = httpx.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.content == b"a,b\n1,2\n"
    tampered = url.replace("report.csv", "other.csv")
    refused = httpx.get(tampered)
    assert refused.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in refused.content
    # A presigned PUT (boto3 makes those; the CLI presigns GETs only).
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "shared", "Key": "upload.bin"}, ExpiresIn=60
    )
    assert httpx.put(put_url, content=b"from curl").status_code == 200
    assert s3.get_object(Bucket="shared", Key="upload.bin")["Body"].read() == b"from curl"


@pytest.mark.slow
def test_100_mb_multipart_upload(aws: Any, s3: Any, tmp_path: Path) -> None:
    """Over the CLI's 8 MB threshold: 13 parts of 8 MiB, ETag md5-of-md5s-13."""
    big = tmp_path / "big.bin"
    chunk = os.urandom(1024 * 1024)
    with big.open("wb") as out:
        for n in range(100):
            out.write(bytes([n]) + chunk[1:])
    aws("s3", "mb", "s3://large")
    aws("s3", "cp", str(big), "s3://large/big.bin")
    data = big.read_bytes()
    part = 8 * 1024 * 1024
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    count = -(-len(data) // part)
    expected = f'"{hashlib.md5(digests).hexdigest()}-{count}"'
    assert s3.head_object(Bucket="large", Key="big.bin")["ETag"] == expected
    back = tmp_path / "back.bin"
    aws("s3", "cp", "s3://large/big.bin", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not s3.list_multipart_uploads(Bucket="large").get("Uploads")
