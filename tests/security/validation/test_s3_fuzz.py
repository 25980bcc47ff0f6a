"""Issue 10, "Must show": generated requests for every S3 operation dockyard serves (from
botocore's S3 model and serializer: paths with odd keys, query parameters, headers, XML bodies,
ranges, checksums, aws-chunked bodies, multipart sequences, wrong signatures), in-process and
over HTTP. No answer is a 5xx, every error is an S3 XML error document botocore reads, and
afterwards the store is consistent: nothing left in the staging folder, nothing outside a
bucket's folder, every object whole (its content matches its ETag)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from botocore.credentials import Credentials
from botocore.parsers import RestXMLParser
from botocore.response import StreamingBody

from dockyard.api.s3.app import HANDLERS
from dockyard.settings import Settings
from dockyard.storage.local_store import ETAG_XATTR, TEMP_DIR_NAME
from dockyard.storage.objects import is_bucket_name, validate_key
from tests.conftest import RunningServer, free_port
from tests.security.validation.conftest import InProcess
from tests.security.validation.s3_requests import (
    BODY_FAULTS,
    BUCKETS,
    S3Request,
    S3RequestMaker,
    operation,
)
from tests.security.validation.wire import Api, service_model

pytestmark = pytest.mark.slow

SEED = 10
IN_PROCESS_REQUESTS = 6_000
OVER_HTTP_REQUESTS = 600
CONCURRENCY = 16
PART = 5 * 1024 * 1024  # S3's smallest part but the last
XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass
class Tally:
    sent: int = 0
    answers: Counter[tuple[int, str]] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    ok_operations: Counter[str] = field(default_factory=Counter)
    # Signed right, yet refused as SignatureDoesNotMatch: the server read another request.
    unexpected_mismatch: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    unsendable: int = 0  # refused by the HTTP client itself (over HTTP only)
    server_errors: list[tuple[str, str, int, bytes]] = field(default_factory=list)

    def add(self, request: S3Request, status: int, code: str, body: bytes) -> None:
        self.sent += 1
        self.answers[(status, code or "-")] += 1
        self.kinds[request.kind] += 1
        self.operations[request.operation] += 1
        if status < 300:
            self.ok_operations[request.operation] += 1
        if status >= 500:
            self.server_errors.append((request.operation, request.kind, status, body[:300]))

    def report(self, title: str) -> None:
        print(f"\n{title}: {self.sent} requests ({self.unsendable} refused by the client)")
        for (status, code), count in sorted(self.answers.items()):
            print(f"  {status} {code}: {count}")
        print(f"  signed right but SignatureDoesNotMatch: {len(self.unexpected_mismatch)}")
        for sample in self.unexpected_mismatch[:5]:
            print("   ", sample)
        print("  by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())))
        print(
            "  succeeded: "
            + ", ".join(
                f"{op} {self.ok_operations[op]}/{n}" for op, n in sorted(self.operations.items())
            )
        )


def check_answer(request: S3Request, response: httpx.Response) -> str:
    """The error code (or ""), after checking the answer's shape: botocore's REST-XML parser
    reads it, and an error (but HEAD's, which has no body in S3 either) is an `<Error>` document
    with a code and a message."""
    status = response.status_code
    assert response.headers.get("x-amz-request-id"), (request.operation, status)
    model = operation(request.operation)
    if status < 300 and request.kind == "broken" and not model.has_streaming_output:
        # A broken request may have lost the query parameter that named its operation
        # (GET ?acl without `acl` is GetObject): its answer is another operation's.
        return ""
    body: object = response.content
    if model.has_streaming_output and status < 300:  # botocore hands such bodies over unread
        body = StreamingBody(io.BytesIO(response.content), len(response.content))
    raw = {"status_code": status, "headers": dict(response.headers), "body": body}
    parsed = RestXMLParser().parse(raw, model.output_shape)
    if status < 300 or status == 304:
        return ""
    if request.method == "HEAD":
        assert response.content == b"", (request.operation, response.content[:200])
        return f"HEAD {status}"
    document = ET.fromstring(response.content)
    assert document.tag == "Error", response.content[:300]
    code, message = document.findtext("Code"), document.findtext("Message")
    assert code and message, response.content[:300]
    assert parsed["Error"]["Code"] == code, (parsed, response.content[:300])
    assert response.headers["content-type"] == "application/xml"
    return code


def _raw(value: str) -> bytes:
    """A header's bytes: latin-1 text stands for the bytes it holds (break_one's odd values);
    other text (botocore's metadata) goes as UTF-8, as a client that does not encode sends it."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


class S3Fuzzer:
    def __init__(self, api: Api, rng: random.Random, *, over_http: bool = False) -> None:
        self.api = api
        self.rng = rng
        self.over_http = over_http
        self.maker = S3RequestMaker(rng, api.credentials, api.base_url)
        self.tally = Tally()
        self.served: list[str] = []
        # ETags of objects that multipart uploads made here -> the MD5 of their whole content.
        self.joined: dict[str, str] = {}

    async def send(self, request: S3Request) -> httpx.Response | None:
        if self.over_http:  # h11 sends only a Content-Length that is the body's
            request.headers = {k: v for k, v in request.headers.items() if k != "Content-Length"}
        url, headers, body = self.maker.signed(request)
        raw_headers = [(k.encode("latin-1"), _raw(v)) for k, v in headers.items()]
        try:
            response = await self.api.client.request(
                request.method, url, content=body, headers=raw_headers
            )
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
            assert self.over_http, "only h11 refuses to send a request"
            self.tally.unsendable += 1
            return None
        code = check_answer(request, response)
        self.tally.add(request, response.status_code, code, response.content)
        if request.signed_ok and code == "SignatureDoesNotMatch":
            self.tally.unexpected_mismatch.append((request.operation, url, headers))
        if request.fault in BODY_FAULTS:  # refused, or failed before its body was read
            assert 400 <= response.status_code < 500, (request.fault, response.content[:300])
        elif request.fault:
            assert response.status_code == 403, (request.fault, response.content[:300])
        elif response.status_code < 300 and request.operation == "PutObject":
            self.maker.live.keys.append(self._address(url))
        return response

    def _address(self, url: str) -> tuple[str, str]:
        path = httpx.URL(url).path  # decoded
        bucket, _, key = path[1:].partition("/")
        return bucket, key

    def run(self, requests: list[S3Request]) -> list[httpx.Response | None]:
        async def together() -> list[httpx.Response | None]:
            return list(await asyncio.gather(*(self.send(r) for r in requests)))

        return self.api.run(together())

    def discover(self) -> None:
        """Every operation of botocore's S3 model, asked with its required members: those not
        answered NotImplemented are the ones dockyard serves."""
        names = service_model("s3").operation_names
        requests = [
            self.maker.request(name, self.maker.params(operation(name), plain=True))
            for name in names
        ]
        answers = self.run(requests)
        self.discovered = {
            name: (answer.status_code, answer.content[:200]) if answer is not None else None
            for name, answer in zip(names, answers, strict=True)
        }
        self.served = [
            name
            for name, answer in zip(names, answers, strict=True)
            if answer is not None and b"<Code>NotImplemented</Code>" not in answer.content
        ]

    def fuzz(self, count: int) -> None:
        batch: list[S3Request] = []
        while self.tally.sent + self.tally.unsendable < count:
            roll = self.rng.random()
            if roll < 0.03:
                self.multipart_sequence()
                continue
            if roll < 0.06:
                self.put_read_copy_sequence()
                continue
            if roll < 0.08:
                name = self.rng.choice(service_model("s3").operation_names)  # served or not
            else:
                name = self.rng.choice(self.served)
            batch.append(self.maker.make(name))
            if len(batch) == CONCURRENCY:
                self.run(batch)
                batch = []
        self.run(batch)

    # -- sequences ------------------------------------------------------------------------

    def multipart_sequence(self) -> None:
        """Create, parts (sometimes broken, sometimes at once), list, then Complete (right or
        wrong), Abort, or both at once, or neither (left in progress)."""
        maker, rng = self.maker, self.rng
        bucket, key = rng.choice(BUCKETS), maker.key()
        answer = self.run([maker.request("CreateMultipartUpload", {"Bucket": bucket, "Key": key})])[
            0
        ]
        if answer is None or answer.status_code != 200:
            return
        upload_id = ET.fromstring(answer.content).findtext(f"{XMLNS}UploadId")
        assert upload_id
        maker.live.uploads.append((bucket, key, upload_id))
        count = rng.choice((1, 1, 2, 3))
        bodies = [
            rng.randbytes(PART if number < count and rng.random() < 0.8 else rng.randint(0, 5000))
            for number in range(1, count + 1)
        ]
        parts = []
        for number, body in enumerate(bodies, start=1):
            params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number,
                      "Body": body}  # fmt: skip
            request = maker.request("UploadPart", params, "sequence")
            if rng.random() < 0.15:
                maker.break_one(request, operation("UploadPart"))
                # A broken part may be taken all the same, with the body it was given instead
                # (junk is a part like any other, and over HTTP its length is the body's): the
                # object is made of what was sent. (CI once took this for a badly joined object.)
                bodies[number - 1] = request.body
            parts.append(request)
        if rng.random() < 0.3:  # the last part copied from an object (a range of it, maybe)
            source = rng.randbytes(rng.randint(1, 5000))
            put = self.run([maker.request("PutObject", {"Bucket": bucket, "Key": "copy-source",
                                                        "Body": source})])[0]  # fmt: skip
            if put is None or put.status_code != 200:
                return  # the part would copy whatever was there: left in progress
            first = rng.randrange(len(source))
            span = rng.choice((None, (first, rng.randrange(first, len(source)))))
            bodies[-1] = source if span is None else source[span[0] : span[1] + 1]
            params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": count,
                      "CopySource": f"{bucket}/copy-source"}  # fmt: skip
            if span is not None:
                params["CopySourceRange"] = f"bytes={span[0]}-{span[1]}"
            parts[-1] = maker.request("UploadPartCopy", params, "sequence")
        answers = self.run(parts)
        etags = [_part_etag(a) for a in answers]
        self.run(
            [maker.request("ListParts", {"Bucket": bucket, "Key": key, "UploadId": upload_id})]
        )
        listed = [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
        if rng.random() < 0.2:
            rng.shuffle(listed)
        if rng.random() < 0.1 and listed:
            listed[0]["ETag"] = '"0000"'
        complete = maker.request(
            "CompleteMultipartUpload",
            {"Bucket": bucket, "Key": key, "UploadId": upload_id,
             "MultipartUpload": {"Parts": listed}},
            "sequence",
        )  # fmt: skip
        abort = maker.request(
            "AbortMultipartUpload", {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        )
        ending = rng.random()
        if ending < 0.6:
            done = self.run([complete])[0]
        elif ending < 0.75:
            done = self.run([complete, abort])[0]
        elif ending < 0.9:
            self.run([abort])
            return
        else:
            return  # left in progress
        if done is not None and done.status_code == 200:
            etag = ET.fromstring(done.content).findtext(f"{XMLNS}ETag")
            assert etag
            self.joined[etag] = hashlib.md5(b"".join(bodies)).hexdigest()
            maker.live.keys.append((bucket, key))

    def put_read_copy_sequence(self) -> None:
        """A put, then reads with ranges and conditions, and copies, some at the same time as
        a delete or another put of the same key."""
        maker, rng = self.maker, self.rng
        bucket, key = rng.choice(BUCKETS), maker.key()
        address = {"Bucket": bucket, "Key": key}
        body = maker.body()
        put = maker.request("PutObject", {**address, "Body": body}, "sequence")
        if self.run([put])[0] is None:
            return
        follow = [
            maker.request("GetObject", {**address, "Range": rng.choice(("bytes=0-3", "bytes=-2"))}),
            maker.request("HeadObject", address),
            maker.request(
                "CopyObject",
                {
                    "Bucket": rng.choice(BUCKETS),
                    "Key": maker.key(),
                    "CopySource": f"{bucket}/{key}",
                    "MetadataDirective": rng.choice(("COPY", "REPLACE")),
                },
            ),
            maker.request("PutObject", {**address, "Body": maker.body()}, "sequence"),
            maker.request("DeleteObject", address),
        ]
        self.run(rng.sample(follow, rng.randint(1, len(follow))))


def _part_etag(answer: httpx.Response | None) -> str:
    """UploadPart's ETag header, or UploadPartCopy's CopyPartResult."""
    if answer is None or answer.status_code != 200:
        return ""
    if answer.content:
        return ET.fromstring(answer.content).findtext(f"{XMLNS}ETag") or ""
    return answer.headers.get("etag", "")


# -- the store afterwards -------------------------------------------------------------------


def files_under(folder: Path) -> list[Path]:
    return [Path(top, name) for top, _, names in os.walk(folder) for name in names]


def store_consistent(settings: Settings, joined: dict[str, str]) -> dict[str, int]:
    """Nothing half-made is left, nothing is outside a bucket, and every object is whole."""
    staging = settings.home / "s3-api"
    assert files_under(staging / "tmp") == [], "bodies left in the staging folder"
    uploads = staging / "uploads"
    in_progress = sorted(uploads.iterdir()) if uploads.is_dir() else []
    for folder in in_progress:
        names = {path.name for path in folder.iterdir()}
        assert "upload.json" in names, folder
        assert not [name for name in names if name.startswith(".")], (folder, names)
    root = settings.store_root
    assert files_under(root / TEMP_DIR_NAME) == [], "temp files left in the store"
    counts: Counter[str] = Counter()
    for top, folders, names in os.walk(root):
        for name in [*folders, *names]:
            assert not Path(top, name).is_symlink(), Path(top, name)
        if Path(top) == root:
            assert not names, f"files outside any bucket: {names}"
            assert all(is_bucket_name(f) or f == TEMP_DIR_NAME for f in folders), folders
            continue
        for name in names:
            path = Path(top, name)
            key = str(path.relative_to(root)).partition("/")[2]
            validate_key(key)
            content = hashlib.md5(path.read_bytes()).hexdigest()
            etag = os.getxattr(path, ETAG_XATTR).decode()
            if "-" in etag:  # a multipart upload's: the MD5 of its parts' MD5s, then -N
                assert joined.get(etag) == content, (path, etag)
                counts["multipart"] += 1
            else:
                assert etag == f'"{content}"', (path, etag)
                counts["single"] += 1
    counts["uploads in progress"] = len(in_progress)
    return dict(counts)


def listed_and_read(fuzzer: S3Fuzzer, settings: Settings) -> None:
    """Through the API: each bucket lists exactly what is on disk, and reads match ETags."""
    maker = fuzzer.maker
    for bucket in BUCKETS:
        if not (settings.store_root / bucket).is_dir():  # the fuzz deleted it, empty
            answer = fuzzer.run([maker.request("HeadBucket", {"Bucket": bucket})])[0]
            assert answer is not None and answer.status_code == 404
            continue
        keys, token = [], None
        while True:
            # URL-encoded, as botocore asks for listings: XML cannot carry every key as it is.
            params = {"Bucket": bucket, "EncodingType": "url"}
            if token:
                params["ContinuationToken"] = token
            answer = fuzzer.run([maker.request("ListObjectsV2", params)])[0]
            assert answer is not None and answer.status_code == 200, answer
            parsed = RestXMLParser().parse(
                {"status_code": 200, "headers": dict(answer.headers), "body": answer.content},
                operation("ListObjectsV2").output_shape,
            )
            keys += [(unquote(item["Key"]), item["ETag"]) for item in parsed.get("Contents", [])]
            token = parsed.get("NextContinuationToken")
            if not token:
                break
        on_disk = sorted(
            str(path.relative_to(settings.store_root / bucket))
            for path in files_under(settings.store_root / bucket)
        )
        assert sorted(key for key, _ in keys) == on_disk, bucket
        for key, etag in keys[:50]:
            answer = fuzzer.run([maker.request("GetObject", {"Bucket": bucket, "Key": key})])[0]
            assert answer is not None and answer.status_code == 200, (key, answer.content[:300])
            assert answer.headers["etag"] == etag
            if "-" not in etag:
                assert f'"{hashlib.md5(answer.content).hexdigest()}"' == etag, key


def _prepare(fuzzer: S3Fuzzer) -> None:
    for bucket in BUCKETS:
        answer = fuzzer.run([fuzzer.maker.request("CreateBucket", {"Bucket": bucket})])[0]
        assert answer is not None and answer.status_code == 200, answer.content


@pytest.fixture
def http_api(tmp_path: Path, api_credentials: Credentials) -> Iterator[tuple[Api, Settings]]:
    settings = Settings(
        home=tmp_path / "http-home",
        port=free_port(),
        access_key_id=api_credentials.access_key,
        secret_access_key=api_credentials.secret_key,
    )
    server = RunningServer(settings)
    api = Api(api_credentials, base_url=server.url)
    try:
        yield api, settings
    finally:
        api.close()
        server.close()


def test_generated_s3_requests_get_no_5xx_and_leave_the_store_consistent(
    in_process: InProcess, http_api: tuple[Api, Settings]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    fuzzer = S3Fuzzer(in_process.api, rng)
    _prepare(fuzzer)
    fuzzer.discover()
    # ListDirectoryBuckets's request is GET /, as ListBuckets's is: ListBuckets answers it.
    assert sorted(fuzzer.served) == sorted([*HANDLERS, "ListDirectoryBuckets"]), fuzzer.discovered
    fuzzer.fuzz(IN_PROCESS_REQUESTS)
    fuzzer.tally.report(f"S3 in-process (seed {SEED}, {time.monotonic() - started:.0f} s)")
    assert fuzzer.tally.server_errors == [], fuzzer.tally.server_errors[:5]
    assert fuzzer.tally.unexpected_mismatch == [], fuzzer.tally.unexpected_mismatch[:3]
    assert set(fuzzer.tally.ok_operations) >= set(HANDLERS), "every operation succeeded sometimes"
    print("  store:", store_consistent(in_process.settings, fuzzer.joined))
    listed_and_read(fuzzer, in_process.settings)

    http, http_settings = http_api
    over_http = S3Fuzzer(http, rng, over_http=True)
    _prepare(over_http)
    over_http.served = fuzzer.served
    over_http.fuzz(OVER_HTTP_REQUESTS)
    over_http.tally.report("S3 over HTTP (uvicorn)")
    assert over_http.tally.server_errors == [], over_http.tally.server_errors[:5]
    assert over_http.tally.unexpected_mismatch == [], over_http.tally.unexpected_mismatch[:3]
    print("  store:", store_consistent(http_settings, over_http.joined))
    listed_and_read(over_http, http_settings)
    print(f"total {time.monotonic() - started:.0f} s")
