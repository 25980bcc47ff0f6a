"""NextToken for List* operations: an opaque offset into the sorted listing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockyard.contract.errors import ValidationError
from dockyard.contract.shapes import ListShape
from dockyard.storage.metadata import MetadataStore, ResourceRecord


def encode_token(offset: int) -> str:
    return f"offset:{offset}"


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, value = token.split(":", 1)
        # An offset beyond 64 bits would overflow SQL's OFFSET: not a token this server gave.
        if kind != "offset" or not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise ValueError
        return int(value)
    except ValueError:
        raise ValidationError(f"NextToken {token!r} is not one this server gave out") from None


def resource_page(
    metadata: MetadataStore,
    kind: str,
    request: ListShape,
    key: str,
    summary: Callable[[ResourceRecord], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a List* answer over named resources: `{key: [summary...], NextToken}`."""
    offset = decode_token(request.next_token)
    rows = metadata.list_resources(
        kind,
        name_contains=request.name_contains,
        creation_after=request.creation_time_after,
        creation_before=request.creation_time_before,
        modified_after=getattr(request, "last_modified_time_after", None),
        modified_before=getattr(request, "last_modified_time_before", None),
        status_equals=getattr(request, "status_equals", None),
        sort_by=getattr(request, "sort_by", "CreationTime"),
        descending=getattr(request, "sort_order", "Descending") == "Descending",
        offset=offset,
        limit=request.max_results + 1,
    )
    page = rows[: request.max_results]
    out: dict[str, Any] = {key: [summary(row) for row in page]}
    if len(rows) > request.max_results:
        out["NextToken"] = encode_token(offset + len(page))
    return out
