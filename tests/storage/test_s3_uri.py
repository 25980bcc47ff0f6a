"""S3Uri parsing, printing and joining, and the bucket and key rules behind them."""

from __future__ import annotations

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.storage.objects import S3Uri, is_s3_uri, validate_bucket, validate_key


@pytest.mark.parametrize(
    ("text", "bucket", "key"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my-bucket/a/b", "my-bucket", "a/b"),
        ("s3://my-bucket/train/", "my-bucket", "train/"),
        ("s3://b.with.dots/x", "b.with.dots", "x"),
        ("s3://123/x y.csv", "123", "x y.csv"),
    ],
)
def test_parse_splits_bucket_and_key(text: str, bucket: str, key: str) -> None:
    uri = S3Uri.parse(text)
    assert (uri.bucket, uri.key) == (bucket, key)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("s3://my-bucket/a/b.csv", "s3://my-bucket/a/b.csv"),
        ("s3://my-bucket/train/", "s3://my-bucket/train/"),
        ("s3://my-bucket", "s3://my-bucket/"),
        ("s3://my-bucket/", "s3://my-bucket/"),
    ],
)
def test_str_gives_back_the_uri(text: str, printed: str) -> None:
    assert str(S3Uri.parse(text)) == printed
    assert S3Uri.parse(str(S3Uri.parse(text))) == S3Uri.parse(text)


@pytest.mark.parametrize(
    ("base", "parts", "joined"),
    [
        ("s3://b-1/out", ("job", "output", "model.tar.gz"), "s3://b-1/out/job/output/model.tar.gz"),
        ("s3://b-1/out/", ("job",), "s3://b-1/out/job"),
        ("s3://b-1/out", ("/job/", "/model.tar.gz"), "s3://b-1/out/job/model.tar.gz"),
        ("s3://b-1", ("a", "b"), "s3://b-1/a/b"),
        ("s3://b-1/", ("a",), "s3://b-1/a"),
        ("s3://b-1/out", ("train/",), "s3://b-1/out/train/"),
        ("s3://b-1/out", ("", "x"), "s3://b-1/out/x"),
        ("s3://b-1/out/", (), "s3://b-1/out/"),
        ("s3://b-1", (), "s3://b-1/"),
        ("s3://b-1/a", ("b/c", "d"), "s3://b-1/a/b/c/d"),
    ],
)
def test_join_puts_one_slash_between_parts(base: str, parts: tuple[str, ...], joined: str) -> None:
    assert str(S3Uri.parse(base).join(*parts)) == joined


def test_join_returns_a_new_uri_and_keeps_the_bucket() -> None:
    base = S3Uri.parse("s3://my-bucket/out")
    joined = base.join("x")
    assert joined == S3Uri("my-bucket", "out/x")
    assert base.key == "out"


def test_join_refuses_parts_that_climb_out() -> None:
    with pytest.raises(ValidationError, match=r"'\.\.' path segment"):
        S3Uri.parse("s3://my-bucket/out").join("..", "secret")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http://my-bucket/x", "must start with 's3://'"),
        ("my-bucket/x", "must start with 's3://'"),
        ("S3://my-bucket/x", "must start with 's3://'"),
        ("s3://", "0 characters long"),
        ("s3:///key", "0 characters long"),
        ("s3://ab/x", "2 characters long"),
        ("s3://" + "a" * 64 + "/x", "64 characters long"),
        ("s3://My-Bucket/x", "lowercase letters"),
        ("s3://my_bucket/x", "lowercase letters"),
        ("s3://-bucket/x", "start and end with a letter or digit"),
        ("s3://bucket-/x", "start and end with a letter or digit"),
        ("s3://.bucket/x", "start and end with a letter or digit"),
        ("s3://my..bucket/x", "two dots in a row"),
        ("s3://192.168.1.10/x", "IP address"),
        ("s3://my-bucket/a/../b", "'..' path segment"),
        ("s3://my-bucket//abs", "starts with '/'"),
    ],
)
def test_parse_rejects_bad_uris_saying_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        S3Uri.parse(text)
    message = str(caught.value)
    assert reason in message
    assert "s3://my-bucket/path/to/key" in message  # and what a valid one looks like
    assert not is_s3_uri(text)


def test_constructing_directly_validates_too() -> None:
    with pytest.raises(ValidationError, match="lowercase"):
        S3Uri("Bad_Bucket", "x")


@pytest.mark.parametrize("text", ["s3://my-bucket", "s3://my-bucket/a/b.csv", "s3://abc/"])
def test_is_s3_uri_accepts_valid_uris(text: str) -> None:
    assert is_s3_uri(text)


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "my.bucket-1", "0bucket9"])
def test_validate_bucket_accepts_s3_names(bucket: str) -> None:
    validate_bucket(bucket)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "is empty"),
        ("/abs", "starts with '/'"),
        (".", "'.' path segment"),
        ("..", "'..' path segment"),
        ("a/./b", "'.' path segment"),
        ("a/../b", "'..' path segment"),
        ("a/..", "'..' path segment"),
        ("nul\0byte", "NUL"),
        ("k" * 1025, "1025 bytes"),
        ("é" * 513, "1026 bytes"),
        ("\udcff", "not valid UTF-8"),
    ],
)
def test_validate_key_names_the_problem(key: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_key(key)
    assert reason in str(caught.value)
    assert "object key" in str(caught.value)


@pytest.mark.parametrize(
    "key", ["a", "a/b/c.csv", "train/", "..a/b..", ".hidden", "k" * 1024, "é" * 512, "a b/ü"]
)
def test_validate_key_accepts_s3_keys(key: str) -> None:
    validate_key(key)
