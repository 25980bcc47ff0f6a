"""What the generated-request suite (tests/security/validation/test_s3_fuzz.py) found, each
pinned by a focused test: answers that were 5xx, errors botocore could not read, and an
operation that ran before its body had checked out."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.api.s3.multipart import Upload, _join, _remove
from dockyard.api.s3.wire import S3Error, xml_text
from tests.api.s3.test_s3_signatures import code, signed
from tests.conftest import RunningServer


def test_an_error_about_a_key_that_is_not_utf8_is_xml_botocore_reads(
    s3: Any, server: RunningServer
) -> None:
    s3.create_bucket(Bucket="finds")
    headers, _ = signed(server, "GET", "/finds/%ED%A0%80%01", b"", {})
    answer = httpx.get(server.url + "/finds/%ED%A0%80%01", headers=headers)
    assert (answer.status_code, code(answer)) == (400, "InvalidArgument")
    assert b"&#" not in answer.content  # no character reference XML 1.0 refuses
    assert xml_text("a\udced\x01\ufffe\tb") == "a\ufffd\ufffd\ufffd\tb"


def test_a_key_segment_longer_than_a_file_name_is_refused_not_500(s3: Any) -> None:
    s3.create_bucket(Bucket="finds")
    key = "é" * 200  # 400 bytes: a valid S3 key, too long for one file name
    for call in (
        lambda: s3.put_object(Bucket="finds", Key=key, Body=b"x"),
        lambda: s3.get_object(Bucket="finds", Key=key),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        error = raised.value.response["Error"]
        assert error["Code"] == "InvalidArgument", error
        assert "255 bytes" in error["Message"]
    s3.put_object(Bucket="finds", Key="/".join(["é" * 120] * 4), Body=b"x")  # short segments


def test_a_body_is_checked_before_an_operation_that_takes_none_runs(
    s3: Any, server: RunningServer
) -> None:
    s3.create_bucket(Bucket="finds")
    headers, _ = signed(server, "DELETE", "/finds", b"", {})  # signed for no body
    answer = httpx.request("DELETE", server.url + "/finds", content=b"smuggled", headers=headers)
    assert (answer.status_code, code(answer)) == (400, "XAmzContentSHA256Mismatch")
    s3.head_bucket(Bucket="finds")  # still there


def _upload(folder: Path) -> Upload:
    folder.mkdir(parents=True)
    return Upload("a" * 32, folder, "b", "k", datetime.now(UTC), None)


def test_completing_an_upload_aborted_meanwhile_is_no_such_upload(tmp_path: Path) -> None:
    upload = _upload(tmp_path / "uploads" / ("a" * 32))
    shutil.rmtree(upload.folder)
    with pytest.raises(S3Error) as raised:
        _join(upload, [(1, '"x"')], tmp_path / "joined")
    assert (raised.value.code, raised.value.status) == ("NoSuchUpload", 404)
    with pytest.raises(S3Error):
        upload.parts()


def test_a_removed_upload_leaves_nothing_and_a_second_removal_is_harmless(tmp_path: Path) -> None:
    upload = _upload(tmp_path / "uploads" / ("a" * 32))
    (upload.folder / "upload.json").write_text("{}")
    _remove(upload)
    _remove(upload)
    assert list((tmp_path / "uploads").iterdir()) == []
