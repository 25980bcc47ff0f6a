"""The words of a Dockerfile line: JSON (exec) form, shell-like splitting with quotes and
escapes, and `$VAR` / `${VAR}` / `${VAR:-default}` substitution, as Docker's builder does them."""

from __future__ import annotations

import json
from collections.abc import Mapping

NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class SyntaxProblem(ValueError):
    """A problem in one instruction; the reader adds the file and line number."""


def json_list(text: str) -> list[str] | None:
    """The exec (JSON) form's list, or None when `text` is shell form (as Docker falls back)."""
    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def split_words(text: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes and `${...}`, keeping quotes and escapes for Expander."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    braces = 0
    in_word = False
    index = 0
    while index < len(text):
        ch = text[index]
        if ch.isspace() and quote is None and braces == 0:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            index += 1
            continue
        in_word = True
        if ch == escape and quote != "'" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif quote != "'" and text.startswith("${", index):
            braces += 1
        elif ch == "}" and braces and quote != "'":
            braces -= 1
        current.append(ch)
        index += 1
    if quote:
        raise ValueError(f"unterminated {quote} quote in {text!r}")
    if in_word:
        words.append("".join(current))
    return words


class Expander:
    """Docker's word processing: quotes removed, escapes applied, $VAR and ${VAR:-x} substituted."""

    def __init__(self, text: str, scope: Mapping[str, str], escape: str, quotes: bool) -> None:
        self.text, self.scope, self.escape, self.quotes = text, scope, escape, quotes
        self.index = 0

    def expand(self) -> str:
        out: list[str] = []
        text = self.text
        while self.index < len(text):
            ch = text[self.index]
            if self.quotes and ch == "'":
                end = text.find("'", self.index + 1)
                if end < 0:
                    raise ValueError(f"unterminated ' quote in {text!r}")
                out.append(text[self.index + 1 : end])
                self.index = end + 1
            elif self.quotes and ch == '"':
                self.index += 1
                out.append(self._double_quoted())
            elif self.quotes and ch == self.escape:
                out.append(text[self.index + 1 : self.index + 2] or ch)
                self.index += 2
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
                self.index += 1
        return "".join(out)

    def _double_quoted(self) -> str:
        out: list[str] = []
        text = self.text
        while self.index < len(text):
            ch = text[self.index]
            if ch == '"':
                self.index += 1
                return "".join(out)
            if ch == self.escape and text[self.index + 1 : self.index + 2] in (
                '"',
                "$",
                self.escape,
            ):
                out.append(text[self.index + 1])
                self.index += 2
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
                self.index += 1
        raise ValueError(f'unterminated " quote in {text!r}')

    def _variable(self) -> str:
        text = self.text
        self.index += 1  # the $
        if not text.startswith("{", self.index):
            start = self.index
            while self.index < len(text) and text[self.index] in NAME_CHARS:
                self.index += 1
            name = text[start : self.index]
            return self.scope.get(name, "") if name else "$"
        self.index += 1
        start = self.index
        while self.index < len(text) and text[self.index] in NAME_CHARS:
            self.index += 1
        name = text[start : self.index]
        if not name:
            raise ValueError(f"bad substitution in {text!r}")
        if text.startswith("}", self.index):
            self.index += 1
            return self.scope.get(name, "")
        operator = text[self.index : self.index + 2]
        if operator[:1] != ":":
            operator = operator[:1]
        if operator not in (":-", "-", ":+", "+", ":?", "?"):
            raise ValueError(f"unsupported substitution ${{{name}{operator}...}} in {text!r}")
        self.index += len(operator)
        word = self._brace_body()
        value = self.scope.get(name)
        empty_counts = operator.startswith(":")
        is_set = value is not None and (value != "" or not empty_counts)
        if operator.endswith("-"):
            return value if is_set and value is not None else word
        if operator.endswith("+"):
            return word if is_set else ""
        if not is_set:
            raise ValueError(f"{name} is not set: {word or 'it is required'}")
        return value or ""

    def _brace_body(self) -> str:
        text, depth, start = self.text, 1, self.index
        while self.index < len(text):
            if text.startswith("${", self.index):
                depth += 1
                self.index += 2
                continue
            if text[self.index] == "}":
                depth -= 1
                if depth == 0:
                    body = text[start : self.index]
                    self.index += 1
                    return Expander(body, self.scope, self.escape, self.quotes).expand()
            self.index += 1
        raise ValueError(f"missing }} in {text!r}")
