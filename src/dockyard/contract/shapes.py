"""Base classes for API shapes: snake_case in Python, PascalCase on the wire, AWS-style errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

from dockyard.contract import names
from dockyard.contract.errors import ValidationError

Shape = TypeVar("Shape", bound="WireShape")


# AWS JSON 1.1 sends timestamps as epoch seconds (botocore parses numbers back to datetimes);
# records keep them so too, so a response carries the stored time exactly.
Timestamp = float


class WireShape(BaseModel):
    """A request or response shape. Unknown members are accepted and ignored, as SageMaker's
    DebugHookConfig / ProfilerConfig and newer fields must be."""

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="ignore", frozen=True
    )

    @classmethod
    def from_wire(cls: type[Shape], body: Any) -> Shape:
        try:
            return cls.model_validate(body)
        except pydantic.ValidationError as exc:
            raise ValidationError(describe_validation_error(exc)) from None

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _short(value: object, limit: int = 60) -> str:
    """Long values (a 2,500-character hyperparameter) are cut, not echoed whole."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _camel_path(loc: tuple[int | str, ...]) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"{item + 1}")
        else:
            parts.append(_short(item[:1].lower() + item[1:]))
    return ".".join(parts) or "request"


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """The message SageMaker gives: `N validation error(s) detected: Value 'x' at 'path' failed to
    satisfy constraint: ...`, so users see the same wording they would in AWS."""
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:5]:
        where = _camel_path(tuple(err["loc"]))
        if err["type"] == "missing":
            lines.append(
                f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
            )
            continue
        value = err.get("input")
        shown = _short(value) if isinstance(value, str | int | float) else type(value).__name__
        message = _constraint(err)
        lines.append(f"Value '{shown}' at '{where}' failed to satisfy constraint: {message}")
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(lines)


_CONSTRAINTS = {
    "string_pattern_mismatch": "Member must satisfy regular expression pattern: {pattern}",
    "string_too_long": "Member must have length less than or equal to {max_length}",
    "string_too_short": "Member must have length greater than or equal to {min_length}",
    "too_long": "Member must have length less than or equal to {max_length}",
    "too_short": "Member must have length greater than or equal to {min_length}",
    "greater_than_equal": "Member must have value greater than or equal to {ge}",
    "less_than_equal": "Member must have value less than or equal to {le}",
    "literal_error": "Member must satisfy enum value set: [{expected}]",
    "enum": "Member must satisfy enum value set: [{expected}]",
}


def _constraint(err: Any) -> str:
    template = _CONSTRAINTS.get(err["type"])
    if template is not None:
        try:
            return template.format(**err.get("ctx", {}))
        except KeyError:
            pass
    return str(err["msg"]).removeprefix("Value error, ")


def utcnow() -> datetime:
    return datetime.now(UTC)


class NoState(WireShape):
    """The state of a resource that never changes once created (a model, an endpoint config)."""


class ListShape(WireShape):
    """The members every List* request shares; each adds its filters and sort keys."""

    next_token: Annotated[str, pydantic.Field(max_length=8192)] | None = None
    max_results: Annotated[int, pydantic.Field(ge=1, le=100)] = 10
    creation_time_after: float | None = None
    creation_time_before: float | None = None
    name_contains: (
        Annotated[str, pydantic.Field(max_length=63, pattern=names.NAME_CONTAINS.pattern)] | None
    ) = None
