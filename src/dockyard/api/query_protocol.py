"""The AWS query protocol, driven by botocore's shapes: a form's flat `Dimensions.member.1.Name`
keys read back into the request's plain shape, and an answer written as the XML that botocore's
QueryParser reads (`<OpResponse><OpResult>...</OpResult><ResponseMetadata>`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.utils import parse_timestamp

from dockyard.contract.errors import SerializationError

_MAX_LIST = 10_000  # no query API takes longer lists; bounds the work of a hostile form
# Characters XML 1.0 cannot hold, even escaped: a label a client sent with one would make the
# whole answer unreadable, so they are answered as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def read_form(params: Mapping[str, str], shape: Shape | None) -> dict[str, Any]:
    """The input structure `params` (Action and Version aside) encode; values typed by `shape`,
    timestamps as epoch seconds. Keys the shape does not model are ignored, as AWS does."""
    if shape is None:
        return {}
    value = _read(params, shape, "")
    return value if isinstance(value, dict) else {}


def _read(params: Mapping[str, str], shape: Shape, prefix: str) -> Any:
    if isinstance(shape, StructureShape):
        found = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            item = _read(params, member, f"{prefix}.{key}" if prefix else key)
            if item is not None:
                found[name] = item
        return found if found or prefix == "" else None
    if isinstance(shape, ListShape):
        if params.get(prefix) == "":
            return []  # botocore's form of an empty list
        flattened = shape.serialization.get("flattened", False)
        base = (
            prefix if flattened else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        )
        items = []
        for i in range(1, _MAX_LIST + 1):
            item = _read(params, shape.member, f"{base}.{i}")
            if item is None:
                break
            items.append(item)
        return items or None
    if isinstance(shape, MapShape):
        base = prefix if shape.serialization.get("flattened", False) else f"{prefix}.entry"
        entries = {}
        for i in range(1, _MAX_LIST + 1):
            key = _read(params, shape.key, f"{base}.{i}.key")
            if key is None:
                break
            entries[key] = _read(params, shape.value, f"{base}.{i}.value")
        return entries or None
    text = params.get(prefix)
    if text is None:
        return None
    return _scalar(shape, text, prefix)


def _scalar(shape: Shape, text: str, where: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("double", "float"):
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind == "timestamp":
            return parse_timestamp(text).timestamp()
    except (ValueError, OverflowError):
        raise SerializationError(
            f"Value {text[:64]!r} at '{where}' is not a valid {kind}"
            + (": use ISO 8601, e.g. 2026-01-01T00:00:00Z" if kind == "timestamp" else "")
        ) from None
    return text


def write_result(operation: OperationModel, result: Mapping[str, Any], request_id: str) -> str:
    """The answer document of `operation` holding `result` (timestamps as epoch seconds)."""
    name = operation.name
    shape = operation.output_shape
    inner = _write(shape, result) if shape is not None else ""
    wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
    body = f"<{wrapper}>{inner}</{wrapper}>" if wrapper else inner
    namespace = operation.metadata.get("xmlNamespace", "")
    return (
        f'<{name}Response xmlns="{namespace}">{body}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{name}Response>"
    )


def error_document(namespace: str, code: str, message: str, request_id: str, sender: bool) -> str:
    return (
        f'<ErrorResponse xmlns="{namespace}"><Error>'
        f"<Type>{'Sender' if sender else 'Receiver'}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(_NOT_XML.sub(chr(0xFFFD), message))}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )


def _write(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        parts = []
        for name, member in shape.members.items():
            if value.get(name) is None:
                continue
            tag = member.serialization.get("name", name)
            parts.append(f"<{tag}>{_write(member, value[name])}</{tag}>")
        return "".join(parts)
    if isinstance(shape, ListShape):
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_write(shape.member, item)}</{tag}>" for item in value)
    if isinstance(shape, MapShape):
        return "".join(
            f"<entry><key>{_write(shape.key, k)}</key><value>{_write(shape.value, v)}</value>"
            "</entry>"
            for k, v in value.items()
        )
    if kind == "timestamp":
        moment = datetime.fromtimestamp(value, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("double", "float"):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)
    return escape(_NOT_XML.sub("\ufffd", str(value)))
