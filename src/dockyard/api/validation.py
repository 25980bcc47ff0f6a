"""Requests checked against botocore's own service model at the API edge: required members,
types, lengths, ranges (the wire type's own where the model gives none), enums, patterns, and
no NUL in any string. Errors read as SageMaker's do:
`1 validation error detected: Value 'x' at 'trainingJobName' failed to satisfy constraint: ...`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from dockyard.api.java_regex import compile_java
from dockyard.contract.errors import SerializationError, ValidationError
from dockyard.contract.instance_types import LOCAL_TYPES

# The wire types' own ranges, where the model sets no bound: nothing larger reaches SQLite
# (64-bit integers) or Python code that expects a Java int.
INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
# Timestamps are epoch seconds on the JSON wire: years 1 to 9999, what datetime can hold.
TIMESTAMP_RANGE = (-62135596800, 253402300799)
_LISTED = 10  # problems spelled out in one message; the count covers them all
# A request with this many problems is not looked at further (a list of 100,000 bad items
# would otherwise cost as much to describe as it did to send).
MAX_PROBLEMS = 100

# Where dockyard takes more than SageMaker does, by botocore shape name. S3 URIs may also be
# file:// URIs or absolute local paths (the server reads and writes local folders itself;
# contract/ and the engine say which members allow it), and every instance type enum also takes
# SageMaker local mode's names for the whole machine (a refusal lists botocore's values only,
# in SageMaker's words).
_LOCAL_URI_SHAPES = frozenset({"S3Uri", "Url"})
# Images are folders (or image URIs) and local URIs are paths: a name in them longer than the
# file system allows (255 bytes; 255 "é" are 510) cannot be looked up at all, so it is refused
# here instead of failing in whatever looks it up first (ENAMETOOLONG).
_IMAGE_SHAPES = frozenset({"AlgorithmImage", "ContainerImage"})
_NAME_MAX, _PATH_MAX = 255, 4095
_PATH_CONSTRAINT = (
    f"Member must be a path this machine can look up: no name in it longer than {_NAME_MAX} "
    f"bytes, at most {_PATH_MAX} bytes in all"
)
_LOCAL_MODE_TYPES = frozenset(LOCAL_TYPES)
_INSTANCE_TYPE_SHAPES = frozenset(
    {"TrainingInstanceType", "ProductionVariantInstanceType", "TransformInstanceType"}
)


@functools.cache
def service_model(name: str) -> ServiceModel:
    """botocore's model of `name` ("sagemaker", "logs", "sagemaker-runtime"), loaded once."""
    return ServiceModel(create_loader().load_service_model(name, "service-2"), name)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


@dataclass(frozen=True)
class Problem:
    path: str
    value: object
    constraint: str
    wrong_type: bool = False  # the JSON type is wrong: a SerializationException

    def __str__(self) -> str:
        if self.wrong_type:
            return f"Value {_shown(self.value)} at '{self.path}' {self.constraint}"
        return f"Value {_shown(self.value)} at '{self.path}' failed to satisfy constraint: " + (
            self.constraint
        )


def check_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Raise SerializationError (a value of the wrong JSON type) or ValidationError (a broken
    constraint) for `params` as input of `operation`; return when the request is well formed."""
    shape = operation_model(service, operation).input_shape
    problems: list[Problem] = []
    if shape is not None:
        check_structure(shape, params, "", problems)
    raise_for(problems)


def raise_for(problems: list[Problem]) -> None:
    wrong_types = [p for p in problems if p.wrong_type]
    if wrong_types:
        raise SerializationError(_message(wrong_types, "serialization"))
    if problems:
        raise ValidationError(_message(problems, "validation"))


def check_structure(
    shape: StructureShape,
    value: Mapping[str, Any],
    path: str,
    problems: list[Problem],
) -> None:
    """Check each member `shape` models (unknown ones are ignored, as SageMaker ignores them)."""
    required = shape.required_members
    for name, member in shape.members.items():
        if len(problems) >= MAX_PROBLEMS:
            return
        where = f"{path}.{_camel(name)}" if path else _camel(name)
        item = value.get(name)
        if item is None:  # absent, or JSON null: the same thing on AWS's JSON wire
            if name in required:
                problems.append(Problem(where, None, "Member must not be null"))
            continue
        check_value(member, item, where, problems)


def check_value(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    checker = _CHECKERS.get(shape.type_name)
    if checker is None:
        # A type this module does not know yet must not pass unchecked.
        raise TypeError(f"no check for botocore shape type {shape.type_name} ({shape.name})")
    checker(shape, value, path, problems)


# -- one checker per wire type ------------------------------------------------------------------


def _structure(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, dict):
        problems.append(_wrong(path, value, "an object"))
        return
    assert isinstance(shape, StructureShape)
    check_structure(shape, value, path, problems)


def _list(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, list):
        problems.append(_wrong(path, value, "an array"))
        return
    if not _length(shape, len(value), value, path, problems):
        return  # an over-long list's items are not looked at: the work stays bounded
    member = shape.member  # type: ignore[attr-defined]
    scalar = member.type_name not in ("structure", "list", "map")
    for number, item in enumerate(value, start=1):
        if len(problems) >= MAX_PROBLEMS:
            return
        if item is None:
            problems.append(Problem(path, None, "Member must not be null"))
            continue
        if scalar:
            # AWS reports a list's strings at the list, as "Member must satisfy constraint".
            _nested(member, item, path, "Member must satisfy constraint", problems)
        else:
            check_value(member, item, f"{path}.{number}.member", problems)


def _map(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, dict):
        problems.append(_wrong(path, value, "an object"))
        return
    if not _length(shape, len(value), value, path, problems):
        return
    key_shape, value_shape = shape.key, shape.value  # type: ignore[attr-defined]
    for key, item in value.items():
        if len(problems) >= MAX_PROBLEMS:
            return
        _nested(key_shape, key, path, "Map keys must satisfy constraint", problems)
        if item is None:
            problems.append(Problem(path, None, "Map value must not be null"))
        elif value_shape.type_name in ("structure", "list", "map"):
            check_value(value_shape, item, f"{path}.{key}", problems)
        else:
            _nested(value_shape, item, path, "Map value must satisfy constraint", problems)


def _nested(shape: Shape, value: Any, path: str, lead: str, problems: list[Problem]) -> None:
    """A list item or map entry: its constraints in one problem, `lead: [Member must ...]`."""
    inner: list[Problem] = []
    check_value(shape, value, path, inner)
    if any(p.wrong_type for p in inner):
        problems.extend(inner)
    elif inner:
        problems.append(Problem(path, value, f"{lead}: [{', '.join(p.constraint for p in inner)}]"))


def _string(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, str):
        problems.append(_wrong(path, value, "a string"))
        return
    if "\x00" in value:
        problems.append(Problem(path, value, "Member must not contain the NUL character (\\u0000)"))
        return
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(
                Problem(path, value, "Member must be valid Unicode (it has a lone surrogate)")
            )
            return
    # Lengths are counted as Java counts them, in UTF-16 code units.
    length = len(value) if value.isascii() else len(value.encode("utf-16-le")) // 2
    if not _length(shape, length, value, path, problems):
        return  # no pattern on an over-long value: it is bounded work only within the length
    enum = shape.metadata.get("enum")
    if enum and value not in enum and not _local_mode_type(shape, value):
        problems.append(
            Problem(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        )
    local = shape.name in _LOCAL_URI_SHAPES and value.startswith(("file://", "/"))
    if (local or shape.name in _IMAGE_SHAPES) and _unreachable_path(value):
        problems.append(Problem(path, value, _PATH_CONSTRAINT))
        return
    pattern = shape.metadata.get("pattern")
    if pattern is not None and compile_java(pattern).fullmatch(value) is None:
        if local:
            return
        shown = pattern if pattern.startswith(("^", "\\A")) else "^" + pattern
        problems.append(
            Problem(path, value, f"Member must satisfy regular expression pattern: {shown}")
        )


def _local_mode_type(shape: Shape, value: str) -> bool:
    return shape.name in _INSTANCE_TYPE_SHAPES and value in _LOCAL_MODE_TYPES


def _unreachable_path(value: str) -> bool:
    path = unquote(value.removeprefix("file://")) if value.startswith("file://") else value
    raw = path.encode("utf-8", "surrogatepass")
    return len(raw) > _PATH_MAX or any(len(name) > _NAME_MAX for name in raw.split(b"/"))


def _integer(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(_wrong(path, value, "an integer"))
        return
    _range(shape, value, INT_RANGE if shape.type_name == "integer" else LONG_RANGE, path, problems)


def _float(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(_wrong(path, value, "a number"))
        return
    if not math.isfinite(value):
        problems.append(_wrong(path, value, "a finite number"))
        return
    _range(shape, value, None, path, problems)


def _boolean(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, bool):
        problems.append(_wrong(path, value, "true or false"))


def _timestamp(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(_wrong(path, value, "a timestamp in epoch seconds"))
        return
    _range(shape, value, TIMESTAMP_RANGE, path, problems)


def _blob(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, str):
        problems.append(_wrong(path, value, "a base64 string"))
        return
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        problems.append(_wrong(path, value, "a base64 string"))
        return
    _length(shape, len(decoded), value, path, problems)


_CHECKERS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "float": _float,
    "double": _float,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "blob": _blob,
}
CHECKED_TYPES = frozenset(_CHECKERS)


# -- shared bounds ----------------------------------------------------------------------------


def _length(shape: Shape, length: int, value: Any, path: str, problems: list[Problem]) -> bool:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        problems.append(
            Problem(path, value, f"Member must have length greater than or equal to {low}")
        )
        return False
    if high is not None and length > high:
        problems.append(
            Problem(path, value, f"Member must have length less than or equal to {high}")
        )
        return False
    return True


def _range(
    shape: Shape,
    value: float,
    wire: tuple[int, int] | None,
    path: str,
    problems: list[Problem],
) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if wire is not None:
        low = wire[0] if low is None else max(low, wire[0])
        high = wire[1] if high is None else min(high, wire[1])
    if low is not None and value < low:
        problems.append(
            Problem(path, value, f"Member must have value greater than or equal to {low}")
        )
    elif high is not None and value > high:
        problems.append(
            Problem(path, value, f"Member must have value less than or equal to {high}")
        )


# -- words ----------------------------------------------------------------------------------


def _wrong(path: str, value: Any, expected: str) -> Problem:
    return Problem(path, value, f"must be {expected}, not {_json_type(value)}", wrong_type=True)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _camel(name: str) -> str:
    """`TrainingJobName` -> `trainingJobName`, the member path SageMaker's messages use."""
    return name[:1].lower() + name[1:]


def _shown(value: object, limit: int = 60) -> str:
    """`'text'` or `null`, cut at `limit` characters and with control characters escaped, so a
    2,500-character value or a NUL is not echoed back whole."""
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value[: limit + 1]
    else:
        text = json.dumps(_preview(value, limit), separators=(",", ":"), ensure_ascii=False)
    if len(text) > limit:
        text = text[:limit] + "..."
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return f"'{text}'"


def _preview(value: Any, limit: int, depth: int = 0) -> Any:
    """The start of a list or an object, enough to show: never the whole of a large one."""
    if isinstance(value, str):
        return value[: limit + 1]
    if depth > 2:
        return "..."
    if isinstance(value, list):
        return [_preview(item, limit, depth + 1) for item in value[:3]]
    if isinstance(value, dict):
        entries = itertools.islice(value.items(), 3)
        return {str(k)[:limit]: _preview(v, limit, depth + 1) for k, v in entries}
    return value


def _message(problems: list[Problem], kind: str) -> str:
    count = len(problems)
    listed = "; ".join(str(p) for p in problems[:_LISTED])
    more = f"; and {count - _LISTED} more" if count > _LISTED else ""
    noun = "error" if count == 1 else "errors"
    at_least = "at least " if count >= MAX_PROBLEMS else ""
    return f"{at_least}{count} {kind} {noun} detected: {listed}{more}"


# -- InvokeEndpoint: its path and headers -------------------------------------------------------

RUNTIME = "sagemaker-runtime"


@functools.cache
def _invoke_headers() -> dict[bytes, str]:
    """InvokeEndpoint's header members by lower-case header name (from the model)."""
    shape = operation_model(RUNTIME, "InvokeEndpoint").input_shape
    assert shape is not None
    return {
        member.serialization["name"].lower().encode("ascii"): name
        for name, member in shape.members.items()
        if member.serialization.get("location") == "header"
    }


def check_invoke_endpoint(endpoint: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """The endpoint name in the path and the modeled headers (ContentType, Accept,
    CustomAttributes, TargetVariant, InferenceId, ...); the body's size is the caller's check."""
    shape = operation_model(RUNTIME, "InvokeEndpoint").input_shape
    assert isinstance(shape, StructureShape)
    members = _invoke_headers()
    params: dict[str, str] = {"EndpointName": endpoint}
    for key, value in headers:
        member = members.get(key.lower())
        if member is not None:
            params[member] = value.decode("latin-1")
    problems: list[Problem] = []
    # Only the members present: this is the hot path, and none of the others is required.
    for name, text in params.items():
        check_value(shape.members[name], text, _camel(name), problems)
    raise_for(problems)
