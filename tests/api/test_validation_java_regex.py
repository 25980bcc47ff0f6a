"""botocore's patterns read as Java reads them: every pattern of the models dockyard serves
compiles (none is skipped), and each construct Python reads differently is translated."""

from __future__ import annotations

import pytest

from dockyard.api.java_regex import UntranslatablePattern, compile_java, translate
from dockyard.api.validation import service_model

SERVED_MODELS = ("sagemaker", "logs", "sagemaker-runtime")


def test_every_pattern_of_the_served_models_compiles() -> None:
    """Every shape of the three models, not only the operations served today: an operation
    added later must not meet a pattern that is skipped or read another way."""
    seen = 0
    for service in SERVED_MODELS:
        model = service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern is not None:
                compile_java(pattern)  # raises UntranslatablePattern, never skips
                seen += 1
    assert seen > 500


def _matches(pattern: str, text: str) -> bool:
    return compile_java(pattern).fullmatch(text) is not None


def test_dot_and_dollar_know_javas_line_terminators() -> None:
    for terminator in "\n\r\x85\u2028\u2029":
        assert not _matches(".*", f"a{terminator}b")
    assert _matches(".*", "a\tb\x0b")
    assert _matches("a$", "a")
    assert not _matches("a$", "a\r")  # fullmatch, as Java's matches(): nothing may remain


def test_shorthand_classes_are_ascii_as_in_java() -> None:
    assert _matches(r"\d+", "123") and not _matches(r"\d+", "١٢٣")
    assert _matches(r"\w+", "a_1") and not _matches(r"\w+", "é")
    assert _matches(r"\S+", "é") and not _matches(r"\s", "\u00a0")


def test_property_classes() -> None:
    assert _matches(r"\p{ASCII}*", "plain text ~") and not _matches(r"\p{ASCII}*", "é")
    assert _matches(r"\A\S[\p{Print}]*\z", "id-1 x") and not _matches(r"\A\S[\p{Print}]*\z", " x")
    assert not _matches(r"\A\S[\p{Print}]*\z", "x\n")
    tag = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
    assert _matches(tag, "Ünïcode names 12 ٣ ok")  # letters, spaces, numbers of any script
    assert not _matches(tag, "tab\there") and not _matches(tag, "semi;colon")
    assert _matches(r"[\p{Alnum}\-]+", "aws-cn") and not _matches(r"[\p{Alnum}\-]+", "é")
    assert _matches(r"\P{Lu}+", "abc") and not _matches(r"\P{Lu}+", "aBc")


def test_java_only_escapes() -> None:
    assert _matches(r"\Qa.b*\E", "a.b*") and not _matches(r"\Qa.b*\E", "axbb")
    assert _matches(r"\h", "\u00a0") and not _matches(r"\h", "\n")
    assert _matches(r"\v", "\n") and not _matches(r"\v", " ")
    assert _matches(r"\e", "\x1b") and _matches(r"\0101", "A") and _matches(r"\x{1F600}", "😀")
    assert _matches(r"(?<name>a)\1", "aa")
    # An escaped surrogate pair is one code point in Java.
    assert _matches(r"[\uD800\uDC00-\uDBFF\uDFFF]", "😀")
    # `-` next to a class shorthand is a plain dash in Java.
    assert _matches(r"[\w-_]*", "a-b_c") and not _matches(r"[\w-_]*", "a.b")


@pytest.mark.parametrize(
    "pattern",
    [r"[a-z&&[^aeiou]]", r"[a[bc]]", r"[\P{L}x]", r"\G", r"\p{IsLatin}", r"(abc", r"x{2", "["],
)
def test_what_cannot_be_read_the_same_way_fails_loudly(pattern: str) -> None:
    with pytest.raises(UntranslatablePattern):
        compile_java(pattern)


def test_compiled_once() -> None:
    assert compile_java("[a-z]+") is compile_java("[a-z]+")
    assert translate("[a-z]+") == "[a-z]+"
