"""SigV4 in S3's forms against a real server: UNSIGNED-PAYLOAD, a payload hash held to the body,
aws-chunked bodies with chunk signatures (and with trailing checksums), presigned URLs in both
signature versions; every refusal an S3 XML error botocore reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.conftest import RunningServer

EMPTY = hashlib.sha256(b"").hexdigest()


def signed(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    secret: str | None = None,
    key_id: str | None = None,
) -> tuple[dict[str, str], AWSRequest]:
    """Headers botocore's S3 signer makes (x-amz-content-sha256 as given, else the body's)."""
    key = server.access_key
    credentials = Credentials(key_id or key.access_key_id, secret or key.secret_access_key)
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=headers)
    _Signer(credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers), request


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, signing the x-amz-content-sha256 the test chose (botocore picks
    it itself from the body and the transport)."""

    def add_auth(self, request: AWSRequest) -> None:
        self._chosen = request.headers.get("X-Amz-Content-SHA256")
        super().add_auth(request)

    def payload(self, request: AWSRequest) -> str:
        return str(self._chosen) if self._chosen else str(super().payload(request))


def code(answer: httpx.Response) -> str:
    text = answer.text
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


def chunk_signing_key(secret: str, day: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def aws_chunked(
    pieces: list[bytes], seed: str, timestamp: str, secret: str, *, tamper: int | None = None
) -> bytes:
    """An aws-chunked body with chunk signatures, as AWS documents it (and as the Java and Go
    SDKs send it); `tamper`: the index of a chunk whose data is changed after signing."""
    key = chunk_signing_key(secret, timestamp[:8])
    scope = f"{timestamp[:8]}/us-east-1/s3/aws4_request"
    previous, out = seed, b""
    for index, data in enumerate([*pieces, b""]):
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                EMPTY,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = data if tamper != index else data[:-1] + b"!"
        out += f"{len(data):x};chunk-signature={signature}\r\n".encode() + sent + b"\r\n"
        previous = signature
    return out


def test_unsigned_payload_and_payload_hash(s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="sigs")
    headers, _ = signed(
        server, "PUT", "/sigs/u", b"unsigned body", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    assert httpx.put(server.url + "/sigs/u", content=b"unsigned body", headers=headers).is_success
    assert s3.get_object(Bucket="sigs", Key="u")["Body"].read() == b"unsigned body"
    # A hex hash: the body must be the one hashed, or nothing is stored.
    headers, _ = signed(server, "PUT", "/sigs/h", b"the body", {})
    answer = httpx.put(server.url + "/sigs/h", content=b"another", headers=headers)
    assert (answer.status_code, code(answer)) == (400, "XAmzContentSHA256Mismatch")
    assert s3.list_objects_v2(Bucket="sigs")["KeyCount"] == 1


def test_refusals_are_s3_xml(s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="sigs")
    cases = {
        "SignatureDoesNotMatch": signed(server, "GET", "/sigs", b"", {}, secret="wrong")[0],
        "InvalidAccessKeyId": signed(server, "GET", "/sigs", b"", {}, key_id="AKIDNOBODY")[0],
    }
    for expected, headers in cases.items():
        answer = httpx.get(server.url + "/sigs", headers=headers)
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/xml"
        assert code(answer) == expected
    # Unsigned: a path only S3 takes gets S3's XML (`aws s3 ls --no-sign-request` reads it);
    # POST / (the JSON APIs' and STS's) gets the JSON refusal.
    unsigned = httpx.get(server.url + "/sigs")
    assert (unsigned.status_code, code(unsigned)) == (403, "AccessDenied")
    assert httpx.post(server.url + "/", content=b"{}").headers["x-amzn-errortype"]
    # boto3 with the wrong secret reads the code from the XML.
    wrong = server.client_with_config("s3", Config(s3={"addressing_style": "path"}))
    wrong._request_signer._credentials = Credentials(server.access_key.access_key_id, "nope")
    try:
        wrong.list_objects_v2(Bucket="sigs")
    except Exception as exc:  # botocore's ClientError
        assert "SignatureDoesNotMatch" in str(exc)
    else:
        raise AssertionError("a wrong secret was accepted")


def test_streaming_chunk_signatures(s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="sigs")
    pieces = [b"a" * 65536, b"b" * 1000, b"c" * 7]
    body = b"".join(pieces)
    secret = server.access_key.secret_access_key
    for tamper in (None, 1):
        key = f"/sigs/streamed-{tamper}"
        headers, _ = signed(
            server,
            "PUT",
            key,
            b"",
            {
                "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                "Content-Encoding": "aws-chunked",
                "X-Amz-Decoded-Content-Length": str(len(body)),
            },
        )
        seed = headers["Authorization"].rsplit("Signature=", 1)[1]
        wire = aws_chunked(pieces, seed, headers["X-Amz-Date"], secret, tamper=tamper)
        answer = httpx.put(server.url + key, content=wire, headers=headers)
        if tamper is None:
            assert answer.status_code == 200, answer.text
            assert answer.headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
            assert s3.get_object(Bucket="sigs", Key=key[6:])["Body"].read() == body
        else:
            assert (answer.status_code, code(answer)) == (403, "SignatureDoesNotMatch")
            assert s3.list_objects_v2(Bucket="sigs", Prefix=key[6:])["KeyCount"] == 0


def test_unsigned_streaming_with_trailing_checksum(s3: Any, server: RunningServer) -> None:
    s3.create_bucket(Bucket="sigs")
    body = b"trailing checksum body"
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    for value, expected in ((crc, 200), ("AAAAAA==", 400)):
        headers, _ = signed(
            server,
            "PUT",
            "/sigs/trailer",
            b"",
            {
                "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "Content-Encoding": "aws-chunked",
                "X-Amz-Trailer": "x-amz-checksum-crc32",
                "X-Amz-Decoded-Content-Length": str(len(body)),
            },
        )
        wire = (
            f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{value}\r\n\r\n".encode()
        )
        answer = httpx.put(server.url + "/sigs/trailer", content=wire, headers=headers)
        assert answer.status_code == expected, answer.text
        if expected == 200:
            assert answer.headers["x-amz-checksum-crc32"] == crc
        else:
            assert code(answer) == "BadDigest"
    assert s3.get_object(Bucket="sigs", Key="trailer")["Body"].read() == body


def test_presigned_sigv4(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    v4 = server.client_with_config(
        "s3", Config(signature_version="s3v4", s3={"addressing_style": "path"})
    )
    v4.create_bucket(Bucket="sigs")
    put = v4.generate_presigned_url("put_object", Params={"Bucket": "sigs", "Key": "p"})
    assert "X-Amz-Signature=" in put
    assert httpx.put(put, content=b"presigned v4").status_code == 200
    get = v4.generate_presigned_url("get_object", Params={"Bucket": "sigs", "Key": "p"})
    assert httpx.get(get).content == b"presigned v4"
    other = httpx.get(get.replace("/p?", "/q?"))
    assert (other.status_code, code(other)) == (403, "SignatureDoesNotMatch")
    an_hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: an_hour_ago)
    expired = v4.generate_presigned_url(
        "get_object", Params={"Bucket": "sigs", "Key": "p"}, ExpiresIn=60
    )
    stale = httpx.get(expired)
    assert (stale.status_code, code(stale)) == (403, "AccessDenied")
    assert "expired" in stale.text
