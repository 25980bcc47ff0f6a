"""S3's REST-XML on the wire: XML documents, error bodies, timestamps, and the XML refusals of
the SigV4 check."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.responses import Response

from dockyard.api.sigv4 import (
    AuthError,
    InvalidSignature,
    MissingAuthenticationToken,
    PayloadHashMismatch,
    SignatureExpired,
    UnrecognizedClient,
)
from dockyard.contract.errors import (
    BucketNotEmpty,
    DockyardError,
    KeyConflict,
    NoSuchBucket,
    NoSuchKey,
    RequestTooLarge,
    ValidationError,
)

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML = "application/xml"
_PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class S3Error(Exception):
    """An S3 error code and message; the status is S3's for that code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        f"The specified multipart upload {upload_id[:64]!r} does not exist: it was completed, "
        "aborted, or never created",
        404,
    )


# dockyard's errors as S3 codes; the first class that matches wins (subclasses first).
_DOCKYARD_TO_S3: tuple[tuple[type[DockyardError], str, int], ...] = (
    (NoSuchBucket, "NoSuchBucket", 404),
    (NoSuchKey, "NoSuchKey", 404),
    (BucketNotEmpty, "BucketNotEmpty", 409),
    (KeyConflict, "KeyConflict", 409),
    (RequestTooLarge, "EntityTooLarge", 400),
    (ValidationError, "InvalidArgument", 400),
)


def from_dockyard(error: DockyardError) -> S3Error | None:
    """The S3 form of an error the store or a check raised; None for internal failures."""
    for kind, code, status in _DOCKYARD_TO_S3:
        if isinstance(error, kind):
            return S3Error(code, error.message, status)
    return None


def parse_request_xml(body: bytes) -> ET.Element:
    """A client's XML body (DeleteObjects, CompleteMultipartUpload). A DOCTYPE is refused
    outright: entities are how XML bombs and external references get in."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise S3Error("MalformedXML", "The XML you provided may not declare a DOCTYPE or entities")
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed") from None


def xml_tag(document: ET.Element, name: str) -> str:
    """`name` in the document's namespace (clients send S3's, or none)."""
    if document.tag.startswith("{"):
        return document.tag[: document.tag.index("}") + 1] + name
    return name


# What XML 1.0 cannot hold, not even as a character reference: control characters but tab and
# line breaks, lone surrogates (from a path that is not UTF-8), U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """`value` as text an XML parser reads back: what XML cannot hold becomes U+FFFD (keys
    with such characters reach clients whole only with encoding-type=url, as in S3)."""
    text = value if isinstance(value, str) else str(value)
    return _NOT_XML.sub("\ufffd", text)


def element(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = xml_text(text)
    return child


def root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=S3_XMLNS)


def request_id_headers() -> dict[str, str]:
    request_id = uuid.uuid4().hex[:16].upper()
    return {"x-amz-request-id": request_id, "x-amz-id-2": request_id}


def xml_response(
    document: ET.Element, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = _PROLOG + ET.tostring(document, encoding="utf-8", xml_declaration=False)
    return Response(body, status, {**request_id_headers(), **(headers or {})}, media_type=XML)


def error_body(code: str, message: str, resource: str = "") -> bytes:
    document = ET.Element("Error")
    element(document, "Code", code)
    element(document, "Message", message)
    if resource:
        element(document, "Resource", resource)
    element(document, "RequestId", uuid.uuid4().hex[:16].upper())
    return _PROLOG + ET.tostring(document, encoding="utf-8")


def error_response(error: S3Error, *, resource: str = "", head: bool = False) -> Response:
    """The XML error body botocore reads; a HEAD answer has the status alone, as S3's has."""
    headers = request_id_headers()
    if head:
        return Response(b"", error.status, {**headers, "content-length": "0"})
    body = error_body(error.code, error.message, resource)
    return Response(body, error.status, headers, media_type=XML)


def timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds, as S3 writes times in XML."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def http_date(moment: datetime) -> str:
    """RFC 7231, as S3 writes Last-Modified."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


# -- refusals of the SigV4 check -------------------------------------------------------------


def _auth_code(error: AuthError) -> tuple[str, int]:
    if isinstance(error, SignatureExpired):
        return "AccessDenied", 403
    if isinstance(error, PayloadHashMismatch):
        return "XAmzContentSHA256Mismatch", 400
    if isinstance(error, InvalidSignature):
        return "SignatureDoesNotMatch", 403
    if isinstance(error, UnrecognizedClient):
        return "InvalidAccessKeyId", 403
    if isinstance(error, MissingAuthenticationToken):
        return "AccessDenied", 403
    return "AccessDenied", 403  # IncompleteSignature: a malformed signature or aws-chunked body


def s3_refusal(error: AuthError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    code, status = _auth_code(error)
    payload = error_body(code, error.message)
    headers = [
        (b"content-type", XML.encode()),
        (b"x-amz-request-id", uuid.uuid4().hex[:16].upper().encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    return status, headers, payload
