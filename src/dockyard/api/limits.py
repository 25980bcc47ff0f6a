"""Bounds on one control-plane request, from settings: its body's size (read as a stream and
stopped at the limit), its JSON's nesting depth (measured before parsing, so no RecursionError),
and the instances it may ask for."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from dockyard.contract.errors import RequestTooLarge, ResourceLimitExceeded, SerializationError
from dockyard.settings import Settings

# A JSON string, escapes included; one left open runs to the end. Every quote starts a match
# that cannot fail, so the scan never backtracks (no quadratic time on an unclosed `"\"\"...`).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = tuple(1 if b in b"[{" else -1 for b in range(256))

# Where each operation asks for instances (`*`: every item of a list), and what one count is.
INSTANCE_COUNTS: dict[str, tuple[tuple[str, ...], str]] = {
    "CreateTrainingJob": (("ResourceConfig", "InstanceCount"), "training job"),
    "CreateEndpointConfig": (
        ("ProductionVariants", "*", "InitialInstanceCount"),
        "endpoint variant",
    ),
    "UpdateEndpointWeightsAndCapacities": (
        ("DesiredWeightsAndCapacities", "*", "DesiredInstanceCount"),
        "endpoint variant",
    ),
    "CreateTransformJob": (("TransformResources", "InstanceCount"), "transform job"),
}


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or RequestTooLarge as soon as it passes `max_bytes`: a client cannot make
    the server hold more than that in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than this server accepts ({max_bytes} bytes); the "
        "operator can raise DOCKYARD_MAX_REQUEST_BYTES"
    )


def parse_json_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); SerializationError for anything else, for
    NaN and Infinity (not JSON) and for nesting deeper than `max_depth`."""
    if not raw:
        return {}
    depth = json_depth(raw)
    if depth > max_depth:
        raise SerializationError(
            f"The request body nests JSON {depth} levels deep; this server accepts at most "
            f"{max_depth} (DOCKYARD_MAX_JSON_DEPTH)"
        )
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SerializationError("The request body must be a JSON object")
    return body


def json_depth(raw: bytes) -> int:
    """How deeply `raw` nests arrays and objects, counted without parsing it (C-speed steps:
    strings removed, brackets kept, a running sum)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON value")


def check_instance_counts(operation: str, body: Mapping[str, Any], settings: Settings) -> None:
    """ResourceLimitExceeded, naming the setting, for an instance count over the server's limit.
    Run after the model's checks, so the counts are integers."""
    where = INSTANCE_COUNTS.get(operation)
    if where is None:
        return
    path, unit = where
    limit = settings.max_instance_count
    for dotted, count in _found(body, path, ""):
        if isinstance(count, int) and count > limit:
            raise ResourceLimitExceeded(
                f"{dotted} {count} is more than this server allows per {unit} ({limit}); the "
                "operator can raise DOCKYARD_MAX_INSTANCE_COUNT"
            )


def _found(value: Any, path: tuple[str, ...], dotted: str) -> list[tuple[str, Any]]:
    if not path:
        return [(dotted, value)]
    head, rest = path[0], path[1:]
    if head == "*":
        items = value if isinstance(value, list) else []
        return [
            found
            for number, item in enumerate(items, start=1)
            for found in _found(item, rest, f"{dotted}.{number}")
        ]
    if not isinstance(value, dict) or head not in value:
        return []
    return _found(value[head], rest, f"{dotted}.{head}" if dotted else head)
