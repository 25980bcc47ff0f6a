"""NextToken for List* operations: an opaque offset into the sorted listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard.contract.errors import ValidationError
from dockyard.contract.shapes import ListShape
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.records import Kind, Listed, Request, State

Item = TypeVar("Item")


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


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a List* answer, and the token for the next (None on the last)."""

    items: list[Item]
    next_token: str | None = None


def resource_page(
    metadata: MetadataStore, kind: Kind[Request, State], request: ListShape
) -> Page[Listed[State]]:
    """One page of a List* answer over named resources."""
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
    more = len(rows) > request.max_results
    return Page(page, encode_token(offset + len(page)) if more else None)
