"""S3's presigned URLs in Signature Version 2 (`AWSAccessKeyId`, `Expires`, `Signature` in the
query): what boto3's generate_presigned_url and `aws s3 presign` make for S3 unless told to use
SigV4. Checked with botocore's own HMAC-SHA1 signer; only S3 takes them."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import HmacV1Auth
from botocore.awsrequest import HTTPHeaders
from botocore.credentials import Credentials

from dockyard.api.keys import KeyRing
from dockyard.api.sigv4 import (
    SIGNATURE_MISMATCH,
    UNKNOWN_KEY,
    Check,
    Claim,
    IncompleteSignature,
    InvalidSignature,
    RequestHead,
    SignatureExpired,
    UnrecognizedClient,
)

_PARAMS = ("AWSAccessKeyId", "Expires", "Signature")


def is_presigned_v2(head: RequestHead) -> bool:
    return "Signature=" in head.query and "AWSAccessKeyId=" in head.query


class _Signer(HmacV1Auth):
    """botocore's SigV2 canonicalization, with the URL's Expires where a Date would be."""

    def __init__(self, credentials: Credentials, expires: str) -> None:
        super().__init__(credentials)
        self._expires = expires

    def _get_date(self) -> str:
        return self._expires


def check_presigned_v2(head: RequestHead, keys: KeyRing, now: float) -> Check:
    """A Check of the URL's key for S3 (its signature verified here: a SigV2 URL signs no body,
    so there is nothing left to verify as the body arrives)."""
    if head.header("authorization") is not None:
        raise IncompleteSignature("Only one auth mechanism allowed")
    params = dict(parse_qsl(head.query, keep_blank_values=True))
    missing = [name for name in _PARAMS if not params.get(name)]
    if missing:
        raise IncompleteSignature(f"A presigned URL needs {', '.join(missing)} in its query")
    expires = params["Expires"]
    if not expires.isascii() or not expires.isdigit():
        raise IncompleteSignature(f"Expires must be seconds since the epoch, not {expires[:20]!r}")
    key = keys.get(params["AWSAccessKeyId"])
    if key is None:
        raise UnrecognizedClient(UNKNOWN_KEY)
    if now > int(expires):
        moment = datetime.fromtimestamp(int(expires), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise SignatureExpired(f"Request has expired: the URL was valid until {moment}")
    headers = HTTPHeaders()
    for name, value in head.headers:
        if name in ("content-md5", "content-type") or name.startswith("x-amz-"):
            headers[name] = value
    signer = _Signer(Credentials(key.access_key_id, key.secret_access_key), expires)
    split = urlsplit(f"http://dockyard{head.path}?{head.query}")
    # botocore reads the headers with get_all, which HTTPHeaders has (its stubs say Mapping).
    expected = signer.get_signature(head.method, split, headers)  # type: ignore[arg-type]
    if not hmac.compare_digest(expected.encode(), params["Signature"].encode("latin-1")):
        raise InvalidSignature(SIGNATURE_MISMATCH)
    timestamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    claim = Claim(
        key.access_key_id, timestamp, "us-east-1", "s3", ("host",), params["Signature"],
        int(expires), head.query,
    )  # fmt: skip
    return Check(head, claim, key)
