"""S3's multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

Parts wait in the staging folder (`uploads/<upload id>/`), whatever the store; Complete joins
them into one file there and moves it into the store, so the object appears whole. The ETag is
S3's: the MD5 of the parts' MD5s, then `-<number of parts>`.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from starlette.responses import Response

from dockyard.api.s3.call import S3Call
from dockyard.api.s3.objects import (
    byte_range,
    check_key,
    install_spooled,
    no_such_bucket,
    open_source,
    request_attributes,
    spool_body,
)
from dockyard.api.s3.staging import CHECKSUM_PREFIX, Spooled, Staging, checksum_of
from dockyard.api.s3.wire import (
    S3Error,
    element,
    no_such_upload,
    parse_request_xml,
    request_id_headers,
    root,
    timestamp,
    xml_response,
    xml_tag,
)
from dockyard.storage.objects import NO_ATTRIBUTES, ObjectAttributes

MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last (S3's rule)
MAX_PARTS = 10_000
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


@dataclass
class Upload:
    upload_id: str
    folder: Path
    bucket: str
    key: str
    initiated: datetime
    checksum_algorithm: str | None
    checksum_type: str | None = None  # x-amz-checksum-type: COMPOSITE (S3's default) or FULL_OBJECT
    attributes: ObjectAttributes = NO_ATTRIBUTES  # Content-Type and metadata, for the object

    def part_path(self, number: int, md5: str) -> Path:
        """A part's file, named by its content: a part uploaded again (a retry) goes to a new
        file, so a Complete that read the part's record joins the very bytes it describes."""
        return self.folder / f"part-{number:05d}-{md5}"

    def parts(self) -> list[dict[str, Any]]:
        found = []
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            raise no_such_upload(self.upload_id) from None  # completed or aborted meanwhile
        for name in sorted(names):
            if not (name.startswith("part-") and name.endswith(".json")):
                continue
            meta = self.folder / name
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(meta.read_text()))
        return sorted(found, key=lambda part: part["number"])


def _write_json(path: Path, record: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temp.write_text(json.dumps(record))
    os.replace(temp, path)


def _remove(upload: Upload) -> None:
    """Renamed away, then removed: a part that arrives meanwhile finds no folder (NoSuchUpload)
    instead of being left behind in a half-removed one."""
    gone = upload.folder.with_name(f".gone-{upload.upload_id}-{secrets.token_hex(4)}")
    try:
        os.rename(upload.folder, gone)
    except FileNotFoundError:
        return  # completed or aborted at the same time
    shutil.rmtree(gone, ignore_errors=True)


def _load(staging: Staging, upload_id: str, bucket: str, key: str) -> Upload:
    if not _UPLOAD_ID.match(upload_id):  # it names a folder: nothing else may pass
        raise no_such_upload(upload_id)
    folder = staging.uploads / upload_id
    try:
        record = json.loads((folder / "upload.json").read_text())
    except (OSError, ValueError):
        raise no_such_upload(upload_id) from None
    if (record["bucket"], record["key"]) != (bucket, key):
        raise no_such_upload(upload_id)
    return Upload(
        upload_id,
        folder,
        bucket,
        key,
        datetime.fromisoformat(record["initiated"]),
        record.get("checksum_algorithm"),
        record.get("checksum_type"),
        ObjectAttributes(record.get("content_type"), record.get("metadata") or {}),
    )


def _part_number(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
        )
    return int(text)


async def create_multipart_upload(call: S3Call) -> Response:
    check_key(call.key)
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise no_such_bucket(call.bucket)
    attributes = request_attributes(call)
    algorithm = call.header("x-amz-checksum-algorithm")
    if algorithm is not None:
        checksum_of(algorithm)
    upload_id = secrets.token_hex(16)
    folder = call.staging.uploads / upload_id
    folder.mkdir(parents=True)
    record = {
        "bucket": call.bucket,
        "key": call.key,
        "initiated": datetime.now(UTC).isoformat(),
        "checksum_algorithm": algorithm.lower() if algorithm else None,
        "checksum_type": (call.header("x-amz-checksum-type") or "").upper() or None,
        "content_type": attributes.content_type,
        "metadata": dict(attributes.metadata),
    }
    _write_json(folder / "upload.json", record)
    document = root("InitiateMultipartUploadResult")
    element(document, "Bucket", call.bucket)
    element(document, "Key", call.key)
    element(document, "UploadId", upload_id)
    headers = {"x-amz-checksum-algorithm": algorithm.upper()} if algorithm else {}
    return xml_response(document, headers=headers)


async def _keep_part(upload: Upload, number: int, spooled: Spooled) -> None:
    os.replace(spooled.path, upload.part_path(number, spooled.md5.hex()))
    record = {
        "number": number,
        "etag": spooled.etag,
        "md5": spooled.md5.hex(),
        "size": spooled.size,
        "last_modified": datetime.now(UTC).isoformat(),
        "checksums": spooled.checksums,
    }
    _write_json(upload.folder / f"part-{number:05d}.json", record)


async def upload_part(call: S3Call) -> Response:
    number = _part_number(call.query.get("partNumber"))
    upload = _load(call.staging, call.query.get("uploadId", ""), call.bucket, call.key)
    try:
        spooled = await spool_body(call, upload.folder / f".incoming-{secrets.token_hex(8)}")
        await _keep_part(upload, number, spooled)
    except FileNotFoundError:
        raise no_such_upload(upload.upload_id) from None  # aborted while the part came in
    return Response(b"", 200, {**request_id_headers(), "ETag": spooled.etag, **spooled.checksums})


async def upload_part_copy(call: S3Call) -> Response:
    number = _part_number(call.query.get("partNumber"))
    upload = _load(call.staging, call.query.get("uploadId", ""), call.bucket, call.key)
    opened = await open_source(call)
    with contextlib.closing(opened.source):
        start, length = 0, opened.info.size
        wanted = call.header("x-amz-copy-source-range")
        if wanted is not None:
            if _COPY_RANGE.match(wanted.strip()) is None:
                raise S3Error(
                    "InvalidArgument", "x-amz-copy-source-range must be bytes=<first>-<last>"
                )
            span = byte_range(wanted, opened.info.size)
            assert span is not None
            start, length = span[0], span[1] - span[0] + 1
        await call.run(opened.source.seek, start)
        try:
            spooled = await call.staging.spool_file(
                opened.source, upload.folder / f".incoming-{secrets.token_hex(8)}", length
            )
            await _keep_part(upload, number, spooled)
        except FileNotFoundError:
            raise no_such_upload(upload.upload_id) from None  # aborted meanwhile
    document = root("CopyPartResult")
    element(document, "LastModified", timestamp(datetime.now(UTC)))
    element(document, "ETag", spooled.etag)
    return xml_response(document)


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    document = parse_request_xml(body)
    parts = []
    for node in document.iter(xml_tag(document, "Part")):
        number_text = (node.findtext(xml_tag(document, "PartNumber")) or "").strip()
        etag = (node.findtext(xml_tag(document, "ETag")) or "").strip()
        if not number_text.isascii() or not number_text.isdigit():
            raise S3Error("MalformedXML", f"PartNumber {number_text[:20]!r} is not a number")
        parts.append((int(number_text), etag if etag.startswith('"') else f'"{etag}"'))
    if not parts:
        raise S3Error("MalformedXML", "You must specify at least one part")
    return parts


def _composite_checksum(upload: Upload, parts: list[dict[str, Any]]) -> dict[str, str]:
    """S3's COMPOSITE checksum of a multipart object, `<checksum of the parts' checksums>-N`,
    when the upload named an algorithm and every part came with its checksum. A FULL_OBJECT
    one (the whole object's CRC) would need the bytes read again: none is kept then."""
    algorithm = upload.checksum_algorithm
    if algorithm is None or upload.checksum_type == "FULL_OBJECT":
        return {}
    header = CHECKSUM_PREFIX + algorithm
    values = [part.get("checksums", {}).get(header) for part in parts]
    if not all(values):
        return {}
    checksum = checksum_of(algorithm)
    for value in values:
        checksum.update(base64.b64decode(str(value)))
    return {header: f"{base64.b64encode(checksum.digest()).decode()}-{len(parts)}"}


def _join(upload: Upload, wanted: list[tuple[int, str]], dest: Path) -> tuple[str, dict[str, str]]:
    """Join the named parts into `dest`; the multipart ETag and composite checksum."""
    kept = {part["number"]: part for part in upload.parts()}
    numbers = [number for number, _ in wanted]
    if numbers != sorted(set(numbers)):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order.")
    digests = b""
    for index, (number, etag) in enumerate(wanted):
        part = kept.get(number)
        if part is None or part["etag"] != etag:
            raise S3Error(
                "InvalidPart",
                f"Part {number} was not uploaded, or its ETag is not {etag}: one or more of the "
                "specified parts could not be found",
            )
        if index < len(wanted) - 1 and part["size"] < MIN_PART_BYTES:
            raise S3Error(
                "EntityTooSmall",
                f"Part {number} is {part['size']} bytes; every part but the last must be at "
                f"least {MIN_PART_BYTES} bytes",
            )
        digests += bytes.fromhex(part["md5"])
    try:
        with open(dest, "wb") as out:
            for number, _ in wanted:
                with open(upload.part_path(number, kept[number]["md5"]), "rb") as source:
                    _append(source, out)
    except FileNotFoundError:
        raise no_such_upload(upload.upload_id) from None  # aborted while it was completed
    etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(wanted)}"'
    return etag, _composite_checksum(upload, [kept[number] for number, _ in wanted])


def _append(source: BinaryIO, out: BinaryIO) -> None:
    """Append a part to the joined file inside the kernel (copy_file_range: no pass through
    this process, and a reflink where the file system shares blocks); a plain copy where the
    kernel cannot."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    # `out` is buffered: what a plain copy left in its buffer goes to the file before the kernel
    # appends at the descriptor's offset, or the parts would land out of order.
    out.flush()
    try:
        while copied < size:
            done = os.copy_file_range(source.fileno(), out.fileno(), size - copied)
            if done == 0:
                break
            copied += done
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    if copied < size:
        source.seek(copied)
        out.seek(0, os.SEEK_END)
        shutil.copyfileobj(source, out, 8 * 1024 * 1024)
        out.flush()


async def complete_multipart_upload(call: S3Call) -> Response:
    upload = _load(call.staging, call.query.get("uploadId", ""), call.bucket, call.key)
    wanted = _requested_parts(await call.small_body())
    dest = call.staging.temp_path("complete")
    try:
        etag, checksums = await call.run(_join, upload, wanted, dest)
        size = dest.stat().st_size
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    joined = Spooled(dest, size, b"", multipart_etag=etag)
    attributes = replace(upload.attributes, checksums=checksums)
    installed = await install_spooled(call, joined, upload.bucket, upload.key, attributes)
    await call.run(_remove, upload)
    document = root("CompleteMultipartUploadResult")
    element(document, "Location", f"/{upload.bucket}/{upload.key}")
    element(document, "Bucket", upload.bucket)
    element(document, "Key", upload.key)
    element(document, "ETag", installed)
    for header, value in checksums.items():
        element(document, "Checksum" + header.removeprefix(CHECKSUM_PREFIX).upper(), value)
    if checksums:
        element(document, "ChecksumType", "COMPOSITE")
    return xml_response(document)


async def abort_multipart_upload(call: S3Call) -> Response:
    upload = _load(call.staging, call.query.get("uploadId", ""), call.bucket, call.key)
    await call.run(_remove, upload)
    return Response(b"", 204, request_id_headers())


def _max(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not text.isascii() or not text.isdigit():
        raise S3Error("InvalidArgument", f"{name} must be a number from 0, not {text[:20]!r}")
    return min(int(text), default)


async def list_parts(call: S3Call) -> Response:
    upload = _load(call.staging, call.query.get("uploadId", ""), call.bucket, call.key)
    max_parts = _max(call.query.get("max-parts"), "max-parts", 1000)
    marker_text = call.query.get("part-number-marker")
    marker = _max(marker_text, "part-number-marker", MAX_PARTS) if marker_text else 0
    parts = [part for part in await call.run(upload.parts) if part["number"] > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    document = root("ListPartsResult")
    element(document, "Bucket", upload.bucket)
    element(document, "Key", upload.key)
    element(document, "UploadId", upload.upload_id)
    element(document, "PartNumberMarker", marker)
    if page:
        element(document, "NextPartNumberMarker", page[-1]["number"])
    element(document, "MaxParts", max_parts)
    element(document, "IsTruncated", "true" if truncated else "false")
    element(document, "StorageClass", "STANDARD")
    for part in page:
        node = element(document, "Part")
        element(node, "PartNumber", part["number"])
        element(node, "LastModified", timestamp(datetime.fromisoformat(part["last_modified"])))
        element(node, "ETag", part["etag"])
        element(node, "Size", part["size"])
        for header, value in part.get("checksums", {}).items():
            name = header.removeprefix("x-amz-checksum-").upper()
            element(node, f"Checksum{name}", value)
    return xml_response(document)


def _uploads(staging: Staging, bucket: str, prefix: str) -> list[Upload]:
    found: list[Upload] = []
    if not staging.uploads.is_dir():
        return found
    for folder in staging.uploads.iterdir():
        if not _UPLOAD_ID.match(folder.name):
            continue  # an upload being removed
        try:
            record = json.loads((folder / "upload.json").read_text())
            if record["bucket"] == bucket and record["key"].startswith(prefix):
                found.append(_load(staging, folder.name, record["bucket"], record["key"]))
        except (OSError, ValueError, S3Error):
            continue  # completed or aborted as we listed
    return sorted(found, key=lambda upload: (upload.key, upload.initiated))


async def list_multipart_uploads(call: S3Call) -> Response:
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise no_such_bucket(call.bucket)
    prefix = call.query.get("prefix", "")
    max_uploads = _max(call.query.get("max-uploads"), "max-uploads", 1000)
    uploads = await call.run(_uploads, call.staging, call.bucket, prefix)
    page, truncated = uploads[:max_uploads], len(uploads) > max_uploads
    document = root("ListMultipartUploadsResult")
    element(document, "Bucket", call.bucket)
    element(document, "KeyMarker", "")
    element(document, "UploadIdMarker", "")
    if prefix:
        element(document, "Prefix", prefix)
    element(document, "MaxUploads", max_uploads)
    element(document, "IsTruncated", "true" if truncated else "false")
    for upload in page:
        node = element(document, "Upload")
        element(node, "Key", upload.key)
        element(node, "UploadId", upload.upload_id)
        element(node, "Initiated", timestamp(upload.initiated))
        element(node, "StorageClass", "STANDARD")
    return xml_response(document)
