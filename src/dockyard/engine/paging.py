"""NextToken for List* operations: an opaque offset into the sorted listing."""

from __future__ import annotations

from dockyard.contract.errors import ValidationError


def encode_token(offset: int) -> str:
    return f"offset:{offset}"


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, value = token.split(":", 1)
        if kind != "offset" or int(value) < 0:
            raise ValueError
        return int(value)
    except ValueError:
        raise ValidationError(f"NextToken {token!r} is not one this server gave out") from None
