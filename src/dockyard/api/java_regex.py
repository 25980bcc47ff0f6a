"""botocore's `pattern` constraints are Java regular expressions: read them as Java would.

Python's `re` reads most of Java's syntax alike, but not all of it: `\\p{...}` classes, `\\z`,
`\\h`, `\\v`, `\\Q...\\E`, `(?<name>...)`, Unicode-wide `\\d \\w \\s` (ASCII in Java), and
`.` and `$`, which know more line terminators in Java than `\\n`. `translate` rewrites those and
refuses (UntranslatablePattern) what it cannot rewrite faithfully, so no pattern is ever skipped
or silently read another way."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
import warnings

# Java's line terminators: `.` matches none of them, `$` may stop before a final one.
_TERMINATORS = "\\n\\r\\x85\\u2028\\u2029"
_DOT = f"[^{_TERMINATORS}]"
_END = f"(?=(?:\\r\\n|[{_TERMINATORS}])?\\Z)"
_HORIZONTAL = "\\t \\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VERTICAL = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_PUNCT = "".join("\\" + c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

# Java's POSIX classes are US-ASCII only (without UNICODE_CHARACTER_CLASS, which botocore's
# patterns never set).
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": _PUNCT,
    "Graph": "a-zA-Z0-9" + _PUNCT,
    "Print": " a-zA-Z0-9" + _PUNCT,
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}
_CLASS_ESCAPES = frozenset("dDwWsSpPhHvV")
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_CATEGORY = re.compile(r"(?:Is|gc=|general_category=)?(L&|LC|[LMNPSZC][a-z]?)")


class UntranslatablePattern(ValueError):
    """A Java pattern with syntax Python's `re` cannot be made to read the same way."""


def translate(pattern: str) -> str:
    """The Python `re` source (to compile with re.ASCII) that matches what `pattern` matches
    in Java."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            text, after = _escape(pattern, i, in_class)
            shorthand = in_class and pattern[i + 1 : i + 2] in _CLASS_ESCAPES
            i = after
            out.append(text)
            # Java reads a `-` next to a class like \w as a plain `-` ([\w-_]); Python refuses it.
            if shorthand and pattern.startswith("-", i) and not pattern.startswith("-]", i):
                out.append("\\-")
                i += 1
            continue
        if in_class:
            if (
                c == "-"
                and pattern[i + 1 : i + 2] == "\\"
                and pattern[i + 2 : i + 3] in _CLASS_ESCAPES
            ):
                out.append("\\-")
                i += 1
                continue
            if c == "[":
                raise UntranslatablePattern(f"{pattern!r}: a class inside a class (Java union)")
            if pattern.startswith("&&", i):
                raise UntranslatablePattern(f"{pattern!r}: class intersection (&&)")
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            continue
        if c == "{" and _QUANTIFIER.match(pattern, i) is None:
            # Python reads a stray `{` (or `{,n}`) as text; Java refuses the pattern.
            raise UntranslatablePattern(f"{pattern!r}: `{{` that is not a repetition")
        if c == ".":
            out.append(_DOT)
        elif c == "$":
            out.append(_END)
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")  # a named group
            i += 3
            continue
        else:
            out.append(c)
        i += 1
    if in_class:
        raise UntranslatablePattern(f"{pattern!r}: an unclosed character class")
    return "".join(out)


@functools.cache
def compile_java(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled once for Python (use `fullmatch`, as Java's `matches` does).
    Raises UntranslatablePattern for syntax that would be read differently."""
    source = translate(pattern)
    with warnings.catch_warnings():
        # "Possible nested set" and the like: Python would read the pattern another way. Only
        # re's own categories: the filter is the whole process's while it is on, and "error"
        # for every category would turn another thread's warning (say, the ResourceWarning of a
        # socket the garbage collector finds then) into an exception there.
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return re.compile(source, re.ASCII)
        except (re.error, FutureWarning, DeprecationWarning) as exc:
            raise UntranslatablePattern(f"{pattern!r}: {exc}") from None


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Python form of the escape at `pattern[i]` (a backslash), and where to go on."""
    if i + 1 >= len(pattern):
        raise UntranslatablePattern(f"{pattern!r}: ends with a lone backslash")
    e = pattern[i + 1]
    if e == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        text = "".join(ch if ch.isalnum() else "\\" + ch for ch in literal)
        return text, len(pattern) if end < 0 else end + 2
    if e in "pP":
        name, after = _property_name(pattern, i + 2)
        content = _property(name, pattern)
        if in_class:
            if e == "P":
                raise UntranslatablePattern(f"{pattern!r}: \\P{{...}} inside a class")
            return content, after
        return ("[^" if e == "P" else "[") + content + "]", after
    simple = {
        "h": _HORIZONTAL,
        "v": _VERTICAL,  # Python's \v is the vertical tab alone
        "e": "\\x1b",
    }
    if e in simple:
        text = simple[e]
        return (text if in_class or e == "e" else f"[{text}]"), i + 2
    if e in "HV":
        if in_class:
            raise UntranslatablePattern(f"{pattern!r}: \\{e} inside a class")
        return f"[^{_HORIZONTAL if e == 'H' else _VERTICAL}]", i + 2
    if e == "R" and not in_class:
        return f"(?:\\r\\n|[{_VERTICAL}])", i + 2
    if e == "z" and not in_class:
        return "\\Z", i + 2
    if e == "Z" and not in_class:
        return _END, i + 2
    if e == "0":
        digits = re.match(r"[0-3]?[0-7]{1,2}", pattern[i + 2 :])
        if digits is None:
            raise UntranslatablePattern(f"{pattern!r}: \\0 without octal digits")
        return _char(int(digits.group(), 8)), i + 2 + len(digits.group())
    if e == "u":
        code = _hex4(pattern, i + 2)
        low = _hex4(pattern, i + 8) if pattern.startswith("\\u", i + 6) else None
        if 0xD800 <= code <= 0xDBFF and low is not None and 0xDC00 <= low <= 0xDFFF:
            # Java reads an escaped surrogate pair as the one code point it encodes.
            return _char(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
        return _char(code), i + 6
    if e == "x" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            raise UntranslatablePattern(f"{pattern!r}: unclosed \\x{{...}}")
        return _char(int(pattern[i + 3 : end], 16)), end + 1
    if e == "c":
        if i + 2 >= len(pattern):
            raise UntranslatablePattern(f"{pattern!r}: \\c without a letter")
        return _char(ord(pattern[i + 2]) ^ 64), i + 3
    if e in "GXkN":
        raise UntranslatablePattern(f"{pattern!r}: \\{e} has no Python equivalent")
    # \d \w \s \b (ASCII in both with re.ASCII), \t \n \r \f, \uXXXX, \xhh, back-references
    # and escaped punctuation mean the same in both; an unknown letter fails to compile.
    return pattern[i : i + 2], i + 2


def _hex4(pattern: str, i: int) -> int:
    digits = pattern[i : i + 4]
    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise UntranslatablePattern(f"{pattern!r}: \\u needs four hex digits")
    return int(digits, 16)


def _property_name(pattern: str, i: int) -> tuple[str, int]:
    if pattern.startswith("{", i):
        end = pattern.find("}", i)
        if end < 0:
            raise UntranslatablePattern(f"{pattern!r}: unclosed \\p{{...}}")
        return pattern[i + 1 : end], end + 1
    if i >= len(pattern):
        raise UntranslatablePattern(f"{pattern!r}: \\p without a name")
    return pattern[i], i + 1


def _property(name: str, pattern: str) -> str:
    """The contents of a character class (no brackets) for `\\p{name}`."""
    posix = _POSIX.get(name.removeprefix("Is"))
    if posix is not None:
        return posix
    match = _CATEGORY.fullmatch(name)
    if match is None:
        raise UntranslatablePattern(f"{pattern!r}: \\p{{{name}}} is not supported")
    category = match.group(1)
    if category in ("L&", "LC"):
        names: tuple[str, ...] = ("Lu", "Ll", "Lt")
    elif len(category) == 1:
        names = tuple(c for c in _categories() if c.startswith(category))
    else:
        names = (category,)
    ranges = sorted(r for c in names for r in _categories().get(c, ()))
    if not ranges:
        raise UntranslatablePattern(f"{pattern!r}: \\p{{{name}}} names no Unicode category")
    return "".join(_char(lo) + (f"-{_char(hi)}" if hi > lo else "") for lo, hi in ranges)


@functools.cache
def _categories() -> dict[str, list[tuple[int, int]]]:
    """Every Unicode general category as code point ranges (Python's Unicode database)."""
    found: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\x00")
    for cp in range(1, sys.maxunicode + 2):
        category = unicodedata.category(chr(cp)) if cp <= sys.maxunicode else ""
        if category != current:
            found.setdefault(current, []).append((start, cp - 1))
            start, current = cp, category
    return found


def _char(cp: int) -> str:
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"
