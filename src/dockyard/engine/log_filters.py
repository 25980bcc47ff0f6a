"""CloudWatch Logs filter patterns for FilterLogEvents: terms, quoted phrases, `?` and `-`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.contract.errors import DockyardError

# A term: an optional `?` (any of these) or `-` (none of these), then a quoted phrase (`\"`
# inside it is a quote) or a run of non-blank characters.
_TERM = re.compile(r'\s*([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')


class InvalidFilterPattern(DockyardError):
    code = "InvalidParameterException"


@dataclass(frozen=True)
class FilterPattern:
    """Which messages match, case-sensitively as in CloudWatch: every required term, at least
    one `?` term when there are any, and no `-` term."""

    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()

    def matches(self, message: str) -> bool:
        return (
            all(term in message for term in self.required)
            and (not self.any_of or any(term in message for term in self.any_of))
            and not any(term in message for term in self.none_of)
        )


def parse(pattern: str | None) -> FilterPattern:
    text = (pattern or "").strip()
    if text.startswith(("{", "[")):
        raise InvalidFilterPattern(
            "dockyard matches terms and quoted phrases in filter patterns (ERROR, "
            '"exact phrase", ?either, -not); JSON ({ $.x = ... }) and space-delimited '
            "([a, b]) patterns are not supported"
        )
    required: list[str] = []
    any_of: list[str] = []
    none_of: list[str] = []
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            raise InvalidFilterPattern(f"Invalid filter pattern near {text[position:][:40]!r}")
        position = match.end()
        sign, quoted, bare = match.groups()
        term = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        if not term:
            continue
        {"": required, "?": any_of, "-": none_of}[sign].append(term)
    return FilterPattern(tuple(required), tuple(any_of), tuple(none_of))
