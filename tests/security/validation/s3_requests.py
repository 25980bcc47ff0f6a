"""S3 requests for the fuzz, generated from botocore's S3 model and serialized by botocore's own
REST-XML serializer, then broken at the HTTP level (odd keys, query values, headers and XML
bodies, wrong checksums, aws-chunked bodies) and signed with botocore's S3 signer: mostly with
the right key, so they reach the handlers, some with a wrong one."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape
from botocore.serialize import create_serializer

from tests.security.validation.fuzz_requests import ODD_TEXT
from tests.security.validation.wire import REGION, service_model

BUCKETS = ("fz-bucket", "fz-other")  # made before the fuzz
ABSENT_BUCKET = "fz-absent"
ODD_BUCKETS = ("A", "ab", "b" * 64, "-x-", "1.2.3.4", "a..b", ".tmp", "s3-api", "x_y")
PLAIN_KEYS = (
    "a.csv",
    "dir/b.csv",
    "dir/sub/c.bin",
    "dir/sub/",
    "with space",
    "unicode/ünïcödé/😀.txt",
    "%2F",
    "a%2Fb",
    "plus+sign",
    "q?mark",
    "hash#tag",
    "semi;colon",
    "tilde~",
    "k" * 1024,
    "é" * 512,
)
ODD_KEYS = (
    "..",
    ".",
    "../x",
    "./a",
    "a/..",
    "a/../../etc/passwd",
    "../../../../etc/passwd",
    "a//b",
    "/lead",
    "a\x00b",
    "\x00",
    "\ud800",
    "k" * 1025,
    "é" * 513,
    "\u202eevil",
    "a\nb",
    "a\rb",
    "\ufeff",
    ".tmp/x",
    "dir",  # a folder of other keys in the local store
    "a.csv/under-an-object",
)
CONTENT_TYPES = ("text/csv", "application/json", "application/x-tar", "", 'a/b; x="y"')
RANGES = (
    "bytes=0-0",
    "bytes=0-9",
    "bytes=5-",
    "bytes=-3",
    "bytes=-0",
    "bytes=3-1",
    "bytes=999999-",
    "bytes=0-99999999999999999999",
    "bytes=0-1,4-5",
    "bytes=",
    "bytes=-",
    "items=0-1",
    "bytes=a-b",
    "bytes=" + "9" * 400 + "-",
)
ETAGS = ('"0123456789abcdef0123456789abcdef"', "*", "", '"x"', 'W/"w"', "\x00")
CHECKSUMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME", "MD5", "crc32", "", "nope")
JUNK_XML = (
    b"",
    b"<",
    b"not xml",
    b"<Delete></Delete>",
    b"<Delete><Object><Key></Key></Object></Delete>",
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>99999999999999999999</PartNumber>"
    b"<ETag>e</ETag></Part></CompleteMultipartUpload>",
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
    b"<a>" * 5000 + b"</a>" * 5000,
    b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
    b"\xff\xfe<\x00a\x00>",
    b"<Delete><Object><Key>\xff</Key></Object></Delete>",
    b"<x>" + b"y" * 300_000 + b"</x>",
)


@dataclass
class S3Request:
    operation: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    kind: str  # "generated", "broken", "chunked", "bad-signature", "sequence"
    signed_ok: bool = True  # False: the signature is meant to fail
    # What is wrong with a bad signature; the ones in BODY_FAULTS show only once the body is
    # read, so an operation that fails before (NoSuchUpload) may answer first.
    fault: str = ""


BODY_FAULTS = {"body changed after signing", "x-amz-content-sha256 not the body's"}
FAULTS = (
    "wrong secret",
    "unknown key",
    "an hour old",
    "no Authorization",
    *sorted(BODY_FAULTS),
)


@dataclass
class Live:
    """What the fuzz has made and may reuse: multipart uploads in progress, keys written."""

    uploads: list[tuple[str, str, str]] = field(default_factory=list)  # bucket, key, upload id
    keys: list[tuple[str, str]] = field(default_factory=list)


def operation(name: str) -> OperationModel:
    return service_model("s3").operation_model(name)


def checksum(algorithm: str, data: bytes) -> str:
    """x-amz-checksum-<algorithm>'s value for `data` (the algorithms computed without awscrt)."""
    if algorithm == "crc32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class S3RequestMaker:
    """Requests for S3's operations, from one seeded Random."""

    def __init__(self, rng: random.Random, credentials: Credentials, base_url: str) -> None:
        self.rng = rng
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.serializer = create_serializer("rest-xml", include_validation=False)
        self.live = Live()

    # -- values ---------------------------------------------------------------------------

    def bucket(self) -> str:
        roll = self.rng.random()
        if roll < 0.85:
            return self.rng.choice(BUCKETS)
        if roll < 0.93:
            return ABSENT_BUCKET
        return self.rng.choice(ODD_BUCKETS)

    def key(self) -> str:
        roll = self.rng.random()
        if roll < 0.3 and self.live.keys:
            return self.rng.choice(self.live.keys)[1]
        if roll < 0.8:
            return self.rng.choice(PLAIN_KEYS)
        return self.rng.choice(ODD_KEYS)

    def body(self) -> bytes:
        size = self.rng.choice((0, 1, 10, 100, 4096, 70_000, 1024 * 1024 + 7))
        return self.rng.randbytes(size)

    def copy_source(self) -> str:
        if self.live.keys and self.rng.random() < 0.6:
            bucket, key = self.rng.choice(self.live.keys)
        else:
            bucket, key = self.bucket(), self.key()
        return quote(f"{bucket}/{key}".encode("utf-8", "surrogatepass"), safe="/")

    def upload_id(self) -> str:
        roll = self.rng.random()
        if roll < 0.7 and self.live.uploads:
            return self.rng.choice(self.live.uploads)[2]
        return self.rng.choice(("0" * 32, "../../etc", "", "%00", "a" * 32, "f" * 33, "\x00"))

    def member(self, name: str, shape: Shape, depth: int = 0) -> Any:
        """A plausible value for one member of an S3 input (by its name where S3 gives names a
        meaning, else by its shape)."""
        rng = self.rng
        named: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "UploadId": self.upload_id,
            "CopySource": self.copy_source,
            "CopySourceRange": lambda: rng.choice(RANGES),
            "Range": lambda: rng.choice(RANGES),
            "Delimiter": lambda: rng.choice(("/", "", "/", "a", "//", "\x00")),
            "Prefix": lambda: rng.choice(("", "dir/", "dir", "d", "unicode/", "../", "a//")),
            "ContentType": lambda: rng.choice(CONTENT_TYPES),
            "IfMatch": lambda: rng.choice(ETAGS),
            "IfNoneMatch": lambda: rng.choice(ETAGS),
            "CopySourceIfMatch": lambda: rng.choice(ETAGS),
            "CopySourceIfNoneMatch": lambda: rng.choice(ETAGS),
            "ChecksumAlgorithm": lambda: rng.choice(CHECKSUMS),
            "MetadataDirective": lambda: rng.choice(("COPY", "REPLACE", "copy", "MOVE")),
            "ChecksumMode": lambda: rng.choice(("ENABLED", "DISABLED")),
            "EncodingType": lambda: rng.choice(("url", "url", "base64")),
            "PartNumber": lambda: rng.choice((1, 2, 3, 0, 10_000, 10_001, 2**31)),
            "MaxKeys": lambda: rng.choice((0, 1, 2, 1000, 1001, 2**31 - 1)),
            "MaxParts": lambda: rng.choice((0, 1, 2, 1000, 1001)),
            "MaxUploads": lambda: rng.choice((0, 1, 1000, 1001)),
            "PartNumberMarker": lambda: rng.choice(("0", "1", "2", "x", "-1")),
            "Marker": lambda: rng.choice(("", "a", "dir/", "dir/sub/", "zzz", "\x00")),
            "StartAfter": lambda: rng.choice(("", "a", "dir/", "zzz")),
            "ContinuationToken": lambda: rng.choice(("", "abc", "WyJhIiwgZmFsc2Vd", "%%%")),
            "Metadata": lambda: {
                rng.choice(("k", "name", "Mixed-Case", "under_score")): rng.choice(
                    ("v", "", "ünïcödé", "x" * 3000, " padded ")
                )
                for _ in range(rng.randint(1, 3))
            },
            "Body": self.body,
        }
        if name in named and (shape.type_name not in ("structure", "list") or depth == 0):
            return named[name]()
        kind = shape.type_name
        if kind == "string":
            if shape.enum:
                return rng.choice(shape.enum)
            return rng.choice(("x", "value-1", *ODD_TEXT[:8]))
        if kind in ("integer", "long"):
            return rng.choice((0, 1, 5, 2**31 - 1))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            return datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 3000))
        if kind == "blob":
            return self.body()
        if kind == "structure" and depth < 3:
            members = shape.members  # type: ignore[attr-defined]
            required = set(shape.required_members)  # type: ignore[attr-defined]
            values = {
                member_name: self.member(member_name, member, depth + 1)
                for member_name, member in members.items()
                if member_name in required or rng.random() < 0.3
            }
            return {name: value for name, value in values.items() if value is not None}
        if kind == "list" and depth < 3:
            member = shape.member  # type: ignore[attr-defined]
            items = [self.member(member.name, member, depth + 1) for _ in range(rng.randint(0, 3))]
            return [item for item in items if item is not None]
        if kind == "map":
            return {"k": "v"}
        return None

    def params(self, model: OperationModel, *, plain: bool = False) -> dict[str, Any]:
        """Values for the operation's members; `plain`: its required members only, as plain
        as they come (a bucket made before the fuzz, key `k`, text `x`)."""
        shape = model.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            if plain and name in shape.required_members:
                plain_values = {"Bucket": BUCKETS[0], "Key": "k", "CopySource": f"{BUCKETS[0]}/k"}
                value = plain_values.get(name) or self.member(name, member)
                params[name] = "x" if isinstance(value, str) and name not in plain_values else value
            elif member.serialization.get("hostLabel"):
                params[name] = "route"  # a host name's label: botocore refuses anything else
            elif name in shape.required_members or (not plain and self.rng.random() < 0.3):
                value = self.member(name, member)
                if value is not None:
                    params[name] = value
        if model.name == "DeleteObjects" and not plain:
            params["Delete"] = {
                "Objects": [{"Key": self.key()} for _ in range(self.rng.randint(1, 4))],
                "Quiet": self.rng.random() < 0.5,
            }
        return params

    # -- requests -------------------------------------------------------------------------

    def serialize(
        self, name: str, params: dict[str, Any]
    ) -> tuple[str, str, dict[str, str], bytes]:
        """method, url, headers, body as botocore would send them (before checksums)."""
        model = operation(name)
        serialized = self.serializer.serialize_to_request(_encodable(params, model), model)
        # WriteGetObjectResponse names a host prefix (`route.<host>`): over HTTP that host
        # cannot be resolved (the request would never be sent), so it goes to the server's own.
        serialized.pop("host_prefix", None)
        prepare_request_dict(serialized, self.base_url)
        serialized["url"] = _dots_encoded(serialized["url"])
        body = serialized["body"]
        if not isinstance(body, bytes):
            body = body.encode() if isinstance(body, str) else b""
        # Header text as the bytes that go on the wire (latin-1 text stands for bytes): UTF-8
        # for what latin-1 cannot hold, signed as sent.
        headers = {k: _wire_text(str(v)) for k, v in serialized["headers"].items()}
        return serialized["method"], serialized["url"], headers, body

    def request(self, name: str, params: dict[str, Any], kind: str = "generated") -> S3Request:
        method, url, headers, body = self.serialize(name, params)
        if body and self.rng.random() < 0.5:
            headers["Content-MD5"] = content_md5(body)
        return S3Request(name, method, url, headers, body, kind)

    def make(self, name: str) -> S3Request:
        """One request for operation `name`: plausible, or broken in one to three ways."""
        model = operation(name)
        request = self.request(name, self.params(model))
        roll = self.rng.random()
        if roll < 0.4:
            return request
        if roll < 0.85:
            for _ in range(self.rng.randint(1, 3)):
                self.break_one(request, model)
            request.kind = "broken"
            return request
        if roll < 0.93:
            return self.chunked(request)
        return self.bad_signature(request)

    def break_one(self, request: S3Request, model: OperationModel) -> None:
        rng = self.rng
        parts = urlsplit(request.url)
        choice = rng.randrange(8)
        if choice == 0 and parts.query:  # one query value odd, or a parameter dropped
            pairs = parts.query.split("&")
            index = rng.randrange(len(pairs))
            name = pairs[index].partition("=")[0]
            if rng.random() < 0.5:
                odd = rng.choice((*ODD_TEXT, "%ZZ", "%", "9" * 30, "-1"))
                pairs[index] = f"{name}={quote(odd.encode('utf-8', 'surrogatepass'))}"
            else:
                del pairs[index]
            request.url = urlunsplit(parts._replace(query="&".join(pairs)))
        elif choice == 1:  # the key's slashes encoded, or the path's encoding broken
            path = parts.path
            head, _, rest = path[1:].partition("/")
            rest = rng.choice((rest.replace("/", "%2F"), rest + "%", rest + "%C3", "%00" + rest))
            request.url = urlunsplit(parts._replace(path=f"/{head}/{rest}"))
        elif choice == 2:  # an odd value in a header the operation takes
            headers = [
                m.serialization["name"]
                for m in model.input_shape.members.values()  # type: ignore[union-attr]
                if m.serialization.get("location") == "header"
            ] or ["x-amz-meta-x"]
            value = rng.choice((*ODD_TEXT, "x" * 9000, "ü"))
            raw = value.encode("utf-8", "surrogatepass").decode("latin-1")
            if not any(c in raw for c in "\r\n\x00"):
                request.headers[rng.choice(headers)] = raw
        elif choice == 3:  # a junk body, XML or not
            request.body = rng.choice(JUNK_XML) if rng.random() < 0.7 else self.body()
            request.headers.pop("Content-MD5", None)
        elif choice == 4:  # a checksum that is wrong, unknown, or of an algorithm not sent
            algorithm = rng.choice(("crc32", "sha1", "sha256", "crc32c", "md5", "crc64nvme"))
            value = rng.choice(("AAAAAA==", "", "!!", checksum("sha256", b"other")))
            request.headers[f"x-amz-checksum-{algorithm}"] = value
        elif choice == 5:  # a right checksum (of the algorithms computed here), maybe two
            for algorithm in rng.sample(("crc32", "sha1", "sha256"), rng.randint(1, 2)):
                request.headers[f"x-amz-checksum-{algorithm}"] = checksum(algorithm, request.body)
        elif choice == 6:  # a wrong Content-MD5
            request.headers["Content-MD5"] = rng.choice(("AAAA", "not base64!", content_md5(b"x")))
        else:  # metadata headers, plausible and odd
            for _ in range(rng.randint(1, 5)):
                name = rng.choice(("a", "B", "x-y", "a_b", "k" * 300))
                request.headers[f"x-amz-meta-{name}"] = rng.choice(("v", "", "x" * 2100, "é"))

    def chunked(self, request: S3Request) -> S3Request:
        """The body as aws-chunked with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
        botocore's form over HTTPS), sometimes malformed."""
        rng = self.rng
        data = request.body
        pieces = [data[i : i + 8192] for i in range(0, len(data), 8192)] or []
        trailer = rng.choice(("x-amz-checksum-crc32", "x-amz-checksum-sha256", ""))
        wire = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n"
        if trailer:
            value = checksum(trailer.rsplit("-", 1)[1], data)
            if rng.random() < 0.2:
                value = "AAAAAA=="
            wire += f"{trailer}:{value}\r\n".encode()
            request.headers["x-amz-trailer"] = trailer
        wire += b"\r\n"
        cut = rng.random()
        if cut < 0.15:
            wire = wire[: rng.randrange(len(wire) + 1)]  # ends early
        elif cut < 0.25:
            wire = wire.replace(b"\r\n", b"\n", 1)
        elif cut < 0.3:
            wire = b"zz\r\n" + wire
        request.headers["Content-Encoding"] = "aws-chunked"
        request.headers["x-amz-decoded-content-length"] = str(
            len(data) if rng.random() < 0.9 else len(data) + 1
        )
        request.headers["X-Amz-Content-SHA256"] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        request.body = wire
        request.kind = "chunked"
        return request

    def bad_signature(self, request: S3Request) -> S3Request:
        request.kind = "bad-signature"
        request.signed_ok = False
        request.fault = self.rng.choice(FAULTS)
        return request

    # -- signing --------------------------------------------------------------------------

    def signed(self, request: S3Request) -> tuple[str, dict[str, str], bytes]:
        """URL, headers and body to send: signed as botocore signs S3 requests, or (for a
        bad-signature request) signed wrongly in one of the ways clients get it wrong."""
        rng = self.rng
        credentials = self.credentials
        headers = dict(request.headers)
        body = request.body
        fault = request.fault
        if fault == "wrong secret":
            credentials = Credentials(credentials.access_key, credentials.secret_key + "x")
        elif fault == "unknown key":
            credentials = Credentials("AKIANOTAKEY", credentials.secret_key)
        if request.signed_ok and rng.random() < 0.3 and "X-Amz-Content-SHA256" not in headers:
            headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        if fault == "x-amz-content-sha256 not the body's":
            headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"not the body").hexdigest()
        aws_request = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        signer = _Signer(credentials, "s3", REGION)
        signer.stale = fault == "an hour old"
        signer.add_auth(aws_request)
        signed = dict(aws_request.headers.items())
        if fault == "body changed after signing":
            body = body + b"!"
        elif fault == "no Authorization":
            signed.pop("Authorization", None)
        return request.url, signed, body


class _Signer(S3SigV4Auth):
    """botocore's S3 signer; keeps an x-amz-content-sha256 the request already has (the aws-
    chunked and UNSIGNED-PAYLOAD forms, or a wrong hash), and can sign an hour in the past."""

    stale = False

    def add_auth(self, request: AWSRequest) -> None:
        self._chosen = request.headers.get("X-Amz-Content-SHA256")
        super().add_auth(request)

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        if self.stale:
            an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
            request.context["timestamp"] = an_hour_ago.strftime("%Y%m%dT%H%M%SZ")
        super()._modify_request_before_signing(request)

    def payload(self, request: AWSRequest) -> str:
        return str(self._chosen) if self._chosen else str(super().payload(request))


def _encodable(params: dict[str, Any], model: OperationModel) -> dict[str, Any]:
    """Text that is not Unicode (lone surrogates) as the bytes a client would send: in the
    path and the query as UTF-8 with the surrogates kept (botocore percent-encodes bytes);
    elsewhere (headers, XML) no client can send it: plain text instead."""
    shape = model.input_shape
    out = {}
    for name, value in params.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                location = shape.members[name].serialization.get("location")  # type: ignore[union-attr]
                if location in ("uri", "querystring"):
                    value = value.encode("utf-8", "surrogatepass")
                else:
                    value = "x"
        out[name] = value
    return out


def _wire_text(value: str) -> str:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("latin-1")
    return value


def _dots_encoded(url: str) -> str:
    """`.` and `..` path segments percent-encoded: HTTP clients (httpx, urllib3) remove them
    from a URL before sending it (RFC 3986), so a key with such a segment reaches a server only
    encoded, and the signature must cover what is sent."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    encoded = [{".": "%2E", "..": "%2E%2E"}.get(segment, segment) for segment in segments]
    return urlunsplit(parts._replace(path="/".join(encoded)))
