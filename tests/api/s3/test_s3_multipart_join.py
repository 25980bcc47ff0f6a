"""CompleteMultipartUpload through boto3 and the in-process server: the object is its parts in
order and whole, however the kernel copies them and whatever other requests for the same parts
do meanwhile.

The kernel's copy_file_range is wrapped where it must misbehave on purpose (refuse a part, stop
short, copy a little at a time): these happen on other file systems and kernels, not on demand
here. The real call does the copying that is done."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

PART = 5 * 1024 * 1024  # S3's smallest part but the last
_REAL_COPY = os.copy_file_range
CopyFileRange = Callable[..., int]


def _every_other_part_refused() -> CopyFileRange:
    """Parts 1 and 3 go through the plain copy (EXDEV, as across file systems), part 2 through
    the kernel: the mix that once put part 2 before what part 1 left in Python's buffer."""
    sources: list[int] = []

    def copy(src: int, dst: int, count: int, *args: Any) -> int:
        inode = os.fstat(src).st_ino
        if inode not in sources:
            sources.append(inode)
        if sources.index(inode) % 2 == 0:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return _REAL_COPY(src, dst, count, *args)

    return copy


def _stops_short() -> CopyFileRange:
    """Each part: one piece in the kernel, then 0 (as some file systems answer), so the rest
    goes through the plain copy from the middle of the part."""
    started: set[int] = set()

    def copy(src: int, dst: int, count: int, *args: Any) -> int:
        inode = os.fstat(src).st_ino
        if inode in started:
            return 0
        started.add(inode)
        return _REAL_COPY(src, dst, min(count, 200), *args)

    return copy


def _small_pieces() -> CopyFileRange:
    def copy(src: int, dst: int, count: int, *args: Any) -> int:
        return _REAL_COPY(src, dst, min(count, 1024 * 1024 + 5), *args)

    return copy


def _upload(s3: Any, key: str, bodies: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    upload = s3.create_multipart_upload(Bucket="joins", Key=key)["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        sent = s3.upload_part(
            Bucket="joins", Key=key, UploadId=upload, PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
    return upload, parts


def _multipart_etag(bodies: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(body).digest() for body in bodies)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(bodies)}"'


@pytest.mark.parametrize(
    "kernel_copy",
    [None, _every_other_part_refused, _stops_short, _small_pieces],
    ids=["kernel", "every-other-part-refused", "stops-short", "small-pieces"],
)
def test_the_object_is_its_parts_in_order(
    s3: Any, monkeypatch: pytest.MonkeyPatch, kernel_copy: Callable[[], CopyFileRange] | None
) -> None:
    if kernel_copy is not None:
        monkeypatch.setattr(os, "copy_file_range", kernel_copy())
    rng = random.Random(8)
    # The plain copy reads 8 MiB at a time, and a write that large goes straight to the file:
    # only a part's last few bytes under 8 KiB can wait in Python's buffer. Part 1 leaves 300
    # (copied whole by the plain copy) or 100 (after the kernel's first 200).
    bodies = [rng.randbytes(8 * 1024 * 1024 + 300), rng.randbytes(PART + 3), rng.randbytes(7777)]
    s3.create_bucket(Bucket="joins")
    upload, parts = _upload(s3, "joined", bodies)
    done = s3.complete_multipart_upload(
        Bucket="joins", Key="joined", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"] == _multipart_etag(bodies)
    content = s3.get_object(Bucket="joins", Key="joined")["Body"].read()
    assert len(content) == sum(len(body) for body in bodies)
    assert content == b"".join(bodies)


def test_a_part_number_uploaded_at_once_several_times_is_the_last_one_recorded(s3: Any) -> None:
    s3.create_bucket(Bucket="joins")
    upload = s3.create_multipart_upload(Bucket="joins", Key="raced")["UploadId"]
    rng = random.Random(9)
    bodies = [rng.randbytes(100_000 + i) for i in range(8)]
    start = threading.Barrier(len(bodies))

    def send(body: bytes) -> None:
        start.wait()
        s3.upload_part(Bucket="joins", Key="raced", UploadId=upload, PartNumber=1, Body=body)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [listed] = s3.list_parts(Bucket="joins", Key="raced", UploadId=upload)["Parts"]
    by_etag = {f'"{hashlib.md5(body).hexdigest()}"': body for body in bodies}
    assert listed["Size"] == len(by_etag[listed["ETag"]])
    s3.complete_multipart_upload(
        Bucket="joins",
        Key="raced",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": listed["ETag"]}]},
    )
    assert s3.get_object(Bucket="joins", Key="raced")["Body"].read() == by_etag[listed["ETag"]]


def _complete_while_part_2_is_sent_again(
    s3: Any, key: str, bodies: list[bytes], again: bytes
) -> tuple[str, str]:
    """How Complete ended, and how the second UploadPart of part 2 did, sent at once."""
    upload, parts = _upload(s3, key, bodies)
    start = threading.Barrier(2)
    replaced: list[str] = []

    def replace_part_2() -> None:
        start.wait()
        try:
            s3.upload_part(Bucket="joins", Key=key, UploadId=upload, PartNumber=2, Body=again)
        except ClientError as exc:  # completed first: the upload is gone
            replaced.append(exc.response["Error"]["Code"])
        else:
            replaced.append("replaced")

    replacer = threading.Thread(target=replace_part_2)
    replacer.start()
    start.wait()
    try:
        s3.complete_multipart_upload(
            Bucket="joins", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
        completed = "joined"
    except ClientError as exc:
        completed = exc.response["Error"]["Code"]
    finally:
        replacer.join()
    return completed, replaced[0]


def test_a_part_uploaded_again_while_complete_joins_does_not_change_the_object(s3: Any) -> None:
    """Complete joins the bytes the ETags it was given name, or refuses (InvalidPart) when the
    part was replaced before it read the part's record; never a mix."""
    s3.create_bucket(Bucket="joins")
    rng = random.Random(10)
    outcomes = []
    for round_ in range(8):
        key = f"replaced-{round_}"
        bodies = [rng.randbytes(PART), rng.randbytes(PART), rng.randbytes(5000)]
        # Small, so that it often lands while Complete runs.
        completed, replaced = _complete_while_part_2_is_sent_again(
            s3, key, bodies, rng.randbytes(1000)
        )
        outcomes.append((completed, replaced))
        assert completed in ("joined", "InvalidPart")
        assert replaced in ("replaced", "NoSuchUpload")
        if completed == "joined":
            content = s3.get_object(Bucket="joins", Key=key)["Body"].read()
            assert content == b"".join(bodies)
    print("Complete, and part 2 sent again at once:", outcomes)
