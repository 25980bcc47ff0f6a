"""Requests generated from botocore's service model for the fuzz, from one seeded Random: valid
requests with one to three values broken (boundaries, wrong types, 2^64, NUL, odd Unicode,
over-long strings, missing required members, unknown members), requests generated whole from
the input shapes, and bodies that are not JSON objects at all."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

from tests.security.validation.wire import operation_model

# Names are drawn from small pools, so that a mutated request that happens to be valid reuses
# a few names instead of starting a sandbox under a new one each time.
NAME_POOL = ("fz-a", "fz-b")
ODD_TEXT = (
    "",
    " ",
    "a\x00b",
    "\x00",
    "\ud800",
    "\udfff\ud800",
    "💥",
    "e\u0301",
    "\u202eevil",
    "\ufeff",
    "\u2028",
    "line\nbreak",
    "tab\t",
    "%",
    "_",
    "%_%\\",
    "' OR '1'='1",
    "../../etc/passwd",
    "file:///etc/shadow",
    "/etc",
    "s3://",
    "s3://b/" + "k" * 2000,
    "ﬁ",
    "İ",
    "9" * 40,
    "-1",
    "null",
    "{}",
)
ODD_NUMBERS = (
    -1,
    0,
    1,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**64),
    10**30,
    10**300,
    1.5,
    -0.0,
    1e308,
    -1e308,
    5e-324,
)
WRONG_TYPES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    1.5,
    "text",
    "",
    [],
    [1, "a", None],
    {},
    {"a": {"b": [1]}},
    [[[[[]]]]],
)
JUNK_BODIES = (
    b"{",
    b"}",
    b"[]",
    b"null",
    b'"text"',
    b"42",
    b"{]",
    b'{"a":}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"MaxResults": 1e400}',
    b'{"MaxResults": ' + b"9" * 5000 + b"}",
    b"\xff\xfe\xfd",
    b'{"a": "\xff"}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\u0000"}',
    b'{"a": 1, "a": 2}',
    b"\x00",
    b" " * 1000,
    b'{"' + b"k" * 100_000 + b'": 1}',
)


@dataclass
class Request:
    operation: str
    body: bytes
    kind: str  # how it was made: "mutated", "generated", "junk", "deep", "seed"


class RequestMaker:
    """Bodies for the operations of one service, from valid seeds and the model's shapes."""

    def __init__(self, rng: random.Random, service: str, seeds: Mapping[str, dict[str, Any]]):
        self.rng = rng
        self.service = service
        self.seeds = seeds

    def make(self, operation: str) -> Request:
        roll = self.rng.random()
        seed = self.seeds.get(operation, {})
        if roll < 0.45:
            return Request(operation, as_json(self.mutated(operation, seed)), "mutated")
        if roll < 0.75:
            shape = operation_model(self.service, operation).input_shape
            body = self.generated(shape, 0) if shape is not None else {}
            return Request(operation, as_json(body), "generated")
        if roll < 0.85:
            return Request(operation, self.rng.choice(JUNK_BODIES), "junk")
        if roll < 0.88:
            depth = self.rng.choice((65, 200, 5_000, 100_000))
            body = b'{"X": ' + b"[" * depth + b"]" * depth + b"}"
            return Request(operation, body, "deep")
        return Request(operation, as_json(self.with_unknown_members(seed)), "seed")

    # -- one request ----------------------------------------------------------------------

    def mutated(self, operation: str, seed: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(seed)
        shape = operation_model(self.service, operation).input_shape
        if shape is None:
            return body
        for _ in range(self.rng.randint(1, 3)):
            slots = list(_slots(shape, body))
            choice = self.rng.random()
            if choice < 0.1 and shape.required_members:
                body.pop(self.rng.choice(shape.required_members), None)
            elif choice < 0.2 or not slots:
                self._add_member(shape, body)
            else:
                container, key, member = self.rng.choice(slots)
                container[key] = self.broken(member)
        return body

    def with_unknown_members(self, seed: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(seed)
        for _ in range(self.rng.randint(0, 2)):
            body[f"Unknown{self.rng.randint(0, 9)}"] = self.rng.choice(WRONG_TYPES)
        return body

    def _add_member(self, shape: Any, body: dict[str, Any]) -> None:
        if self.rng.random() < 0.5 and shape.members:
            name = self.rng.choice(list(shape.members))
            body[name] = self.generated(shape.members[name], 1)
        else:
            body["NotInTheModel"] = self.rng.choice(WRONG_TYPES)

    def broken(self, shape: Shape) -> Any:
        """A value `shape` should refuse, or a boundary it should take."""
        if self.rng.random() < 0.25:
            return self.rng.choice(WRONG_TYPES)
        kind = shape.type_name
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if kind == "string":
            options: list[Any] = list(ODD_TEXT)
            if high is not None:
                options += ["x" * high, "x" * (high + 1), "é" * high, "😀" * high]
            if low:
                options += ["x" * (low - 1), "x" * low]
            options.append("y" * self.rng.choice((256, 1025, 60_000)))
            if shape.enum:
                options += [shape.enum[0].lower(), shape.enum[0] + " ", shape.enum[-1]]
            return self.rng.choice(options)
        if kind in ("integer", "long", "float", "double", "timestamp"):
            options = list(ODD_NUMBERS)
            options += [b + d for b in (low, high) if b is not None for d in (-1, 0, 1)]
            return self.rng.choice(options)
        if kind == "boolean":
            return self.rng.choice(("true", 1, 0, None, [True]))
        if kind == "list":
            item = self.generated(shape.member, 2)  # type: ignore[attr-defined]
            count = self.rng.choice((0, 1, (high or 3) + 1, 2 * (high or 3)))
            return [item] * min(count, 1000)
        if kind == "map":
            count = self.rng.choice((0, (high or 3) + 1))
            key = self.rng.choice(("K", "bad key", "\x00", "k" * 2000, "_ok"))
            value = self.generated(shape.value, 2)  # type: ignore[attr-defined]
            return {f"{key}{i}": value for i in range(min(count, 1000))}
        if kind == "structure":
            return self.rng.choice(({}, {"Nope": 1}, self.generated(shape, 2)))
        return None

    def generated(self, shape: Shape, depth: int) -> Any:
        """A value for `shape` from scratch: mostly plausible, sometimes broken."""
        if self.rng.random() < 0.15:
            return self.broken(shape)
        kind = shape.type_name
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if kind == "structure":
            members = shape.members  # type: ignore[attr-defined]
            required = set(shape.required_members)  # type: ignore[attr-defined]
            keep = 0.6 if depth < 2 else 0.2
            return {
                name: self.generated(member, depth + 1)
                for name, member in members.items()
                if name in required or (depth < 4 and self.rng.random() < keep)
            }
        if kind == "list":
            count = self.rng.randint(low or 0, min(high or 3, 3))
            return [self.generated(shape.member, depth + 1) for _ in range(count)]  # type: ignore[attr-defined]
        if kind == "map":
            count = self.rng.randint(0, min(high or 3, 3))
            return {
                self._text(shape.key, key=True): self.generated(shape.value, depth + 1)  # type: ignore[attr-defined]
                for _ in range(count)
            }
        if kind == "string":
            return self._text(shape)
        if kind in ("integer", "long"):
            bottom = low if low is not None else 0
            return self.rng.randint(
                int(bottom), int(min(high if high is not None else 100, bottom + 100))
            )
        if kind in ("float", "double"):
            return self.rng.choice((0, 0.5, 1, 100.25))
        if kind == "timestamp":
            return self.rng.choice((0, 1_700_000_000, 1_700_000_000.5))
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "blob":
            return "YWJj"
        return None

    def _text(self, shape: Shape, key: bool = False) -> str:
        if shape.enum:
            return str(self.rng.choice(shape.enum))
        if shape.name.endswith("Name") and not key:
            return self.rng.choice(NAME_POOL)
        low = shape.metadata.get("min") or 1
        high = shape.metadata.get("max") or 32
        length = self.rng.randint(low, max(low, min(high, 24)))
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789" + ("-" if not key else "_")
        text = "".join(self.rng.choice(alphabet) for _ in range(length))
        return text if key else self.rng.choice((text, f"s3://fuzz/{text}", text.upper()))


def _slots(shape: Any, value: Any) -> list[tuple[Any, Any, Shape]]:
    """(container, key, shape) of every member present in `value`, at any depth."""
    found: list[tuple[Any, Any, Shape]] = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                found.append((value, name, member))
                found.extend(_slots(member, value[name]))
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            found.append((value, index, shape.member))
            found.extend(_slots(shape.member, item))
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            found.append((value, key, shape.value))
            found.extend(_slots(shape.value, item))
    return found


def as_json(body: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes: valid JSON, invalid Unicode.
    return json.dumps(body).encode()
