"""CloudWatch's three wire protocols, each read into the request's plain shape (timestamps as
epoch seconds) and each answered in its own form, errors included:

- smithy-rpc-v2-cbor (botocore 1.40 and later): `POST /service/GraniteServiceVersion20100801/
  operation/<Op>`, `smithy-protocol: rpc-v2-cbor`, CBOR bodies, timestamps as CBOR tag 1;
- awsJson1_0 (older botocore, other SDKs): `X-Amz-Target: GraniteServiceVersion20100801.<Op>`;
- query (the aws CLI v1 of old, most other SDKs): a form with `Action=<Op>`, XML answers.

CloudWatch is "awsQueryCompatible": its JSON and CBOR errors carry the query protocol's code in
`x-amzn-query-error: <Code>;Sender`, which botocore reads to name the modeled exception.
"""

from __future__ import annotations

import datetime
import functools
import io
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

import cbor2
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from starlette.responses import Response

from dockyard.api import query_protocol
from dockyard.api.limits import parse_json_object
from dockyard.api.validation import service_model
from dockyard.contract.errors import SerializationError

SERVICE = "cloudwatch"  # botocore's name of the model
SMITHY_SERVICE = "com.amazonaws.cloudwatch"  # the service's shape id namespace (in `__type`)
_MAX_CBOR_DEPTH = 64  # no CloudWatch input nests deeper than a handful of levels

Refusal = Callable[[str, str, int], tuple[int, list[tuple[bytes, bytes]], bytes]]


class Wire(Enum):
    CBOR = "smithy-rpc-v2-cbor"
    JSON = "json"
    QUERY = "query"


@functools.cache
def model() -> ServiceModel:
    return service_model(SERVICE)


def target_prefix() -> str:
    return str(model().metadata["targetPrefix"])


def wire_of(path: str, header: Callable[[str], str | None]) -> Wire:
    """Which protocol a request speaks, from its head alone (its refusals need to know too)."""
    if path.startswith(f"/service/{target_prefix()}/operation/"):
        return Wire.CBOR
    if (header("x-amz-target") or "").startswith(f"{target_prefix()}."):
        return Wire.JSON
    return Wire.QUERY


def operation_name(
    wire: Wire, path: str, header: Callable[[str], str | None], form: Mapping[str, str]
) -> str:
    if wire is Wire.CBOR:
        return path.rsplit("/", 1)[-1]
    if wire is Wire.JSON:
        return (header("x-amz-target") or "").partition(".")[2]
    return form.get("Action", "")


def query_form(query_string: str, body: bytes) -> dict[str, str]:
    """A query-protocol request's parameters: the URL's and the form body's (the body wins)."""
    form = dict(parse_qsl(query_string, keep_blank_values=True))
    try:
        form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise SerializationError("The request body is not a UTF-8 form") from None
    return form


# -- reading requests --------------------------------------------------------------------------


def read_request(
    wire: Wire,
    operation: OperationModel,
    body: bytes,
    form: Mapping[str, str],
    max_json_depth: int = 64,
) -> dict[str, Any]:
    """The request as a plain dict of its input shape, timestamps as epoch seconds."""
    if wire is Wire.QUERY:
        return query_protocol.read_form(form, operation.input_shape)
    if wire is Wire.JSON:
        return parse_json_object(body, max_json_depth)  # the other JSON APIs' rules
    if not body:
        return {}
    stream = io.BytesIO(body)
    try:
        # One item, read byte by byte so that what follows it is seen (cbor2 has no strict
        # mode): bytes after the map are a client's bug, or a second request smuggled in.
        decoder = cbor2.CBORDecoder(stream, max_depth=_MAX_CBOR_DEPTH, read_size=1)
        value = _plain(decoder.decode())
    except (cbor2.CBORError, ValueError, RecursionError) as exc:
        raise SerializationError(f"The request body is not well-formed CBOR: {exc}") from None
    if stream.tell() != len(body):
        raise SerializationError(
            f"The request body has {len(body) - stream.tell()} bytes after its CBOR map: send "
            "one map of the operation's parameters"
        )
    if not isinstance(value, dict):
        raise SerializationError("The request body must be a map of the operation's parameters")
    return value


def _plain(value: Any) -> Any:
    """CBOR's datetimes (tag 1) as epoch seconds, the form JSON clients send them in."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- writing answers ---------------------------------------------------------------------------


def answer(wire: Wire, operation: OperationModel, result: Mapping[str, Any]) -> Response:
    request_id = str(uuid.uuid4())
    if wire is Wire.QUERY:
        document = query_protocol.write_result(operation, result, request_id)
        return _response(200, document.encode(), "text/xml", request_id)
    if wire is Wire.JSON:
        payload = json.dumps(result, separators=(",", ":")).encode()
        return _response(200, payload, "application/x-amz-json-1.0", request_id)
    shape = operation.output_shape
    tagged = _with_datetimes(shape, result) if shape is not None else {}
    payload = cbor2.dumps(tagged, datetime_as_timestamp=True)
    return _response(200, payload, "application/cbor", request_id, cbor=True)


def _with_datetimes(shape: Shape, value: Any) -> Any:
    """Timestamps (epoch seconds) as datetimes, which cbor2 writes as tag 1."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        return {
            name: _with_datetimes(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if isinstance(shape, ListShape):
        return [_with_datetimes(shape.member, item) for item in value]
    if isinstance(shape, MapShape):
        return {k: _with_datetimes(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    return value


@dataclass(frozen=True)
class ModeledError:
    shape_name: str
    status: int
    sender: bool


@functools.cache
def modeled_errors() -> dict[str, ModeledError]:
    """CloudWatch's error codes (`InvalidParameterValue`) to their shapes, from the model."""
    found = {}
    for name in model().shape_names:
        shape = model().shape_for(name)
        if shape.metadata.get("exception"):
            error = shape.metadata.get("error", {})
            found[error.get("code", name)] = ModeledError(
                name, int(error.get("httpStatusCode", 400)), bool(error.get("senderFault"))
            )
    return found


def error(wire: Wire, code: str, message: str, status: int) -> Response:
    status, headers, payload = error_parts(wire, code, message, status)
    return Response(payload, status_code=status, headers=dict(_text(headers)))


def error_parts(
    wire: Wire, code: str, message: str, status: int
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error in `wire`'s form: the modeled shape and status for CloudWatch's own codes,
    `code` itself (and `status`) for the rest (a signature refused, an unknown operation)."""
    request_id = str(uuid.uuid4())
    modeled = modeled_errors().get(code)
    if modeled is not None:
        status = modeled.status
    sender = modeled.sender if modeled is not None else status < 500
    if wire is Wire.QUERY:
        namespace = str(model().metadata.get("xmlNamespace", ""))
        document = query_protocol.error_document(namespace, code, message, request_id, sender)
        payload = document.encode()
        return status, _headers(payload, "text/xml", request_id), payload
    body: dict[str, str] = {"__type": code, "message": message}
    headers: list[tuple[bytes, bytes]] = []
    if modeled is not None:
        body["__type"] = f"{SMITHY_SERVICE}#{modeled.shape_name}"
        kind = "Sender" if sender else "Receiver"
        headers.append((b"x-amzn-query-error", f"{code};{kind}".encode()))
    if wire is Wire.JSON:
        payload = json.dumps(body).encode()
        content_type = "application/x-amz-json-1.0"
    else:
        payload = cbor2.dumps(body)
        content_type = "application/cbor"
        headers.append((b"smithy-protocol", b"rpc-v2-cbor"))
    return status, [*_headers(payload, content_type, request_id), *headers], payload


def _response(
    status: int, payload: bytes, content_type: str, request_id: str, cbor: bool = False
) -> Response:
    headers = {"x-amzn-requestid": request_id}
    if cbor:
        headers["smithy-protocol"] = "rpc-v2-cbor"
    return Response(payload, status_code=status, media_type=content_type, headers=headers)


def _headers(payload: bytes, content_type: str, request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]


def _text(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in headers if k != b"content-length"]
