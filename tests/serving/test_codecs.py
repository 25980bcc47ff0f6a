"""The codec table, media-type parsing and Accept negotiation."""

from __future__ import annotations

import sys

import pytest

from dockyard.serving import codecs
from dockyard.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType


def test_media_type_parameters_are_parsed_and_the_type_lower_cased() -> None:
    assert codecs.parse_media_type("Text/CSV; Charset=UTF-8") == ("text/csv", {"charset": "UTF-8"})
    assert codecs.parse_media_type('application/json;charset="utf-8"') == (
        "application/json",
        {"charset": "utf-8"},
    )
    assert codecs.parse_media_type(None) == ("", {})


def test_accept_is_ranked_by_q_and_star_means_the_default() -> None:
    ranked = codecs.parse_accept("text/csv;q=0.5, application/jsonlines, */*;q=0.1", "x/y")
    assert ranked == ["application/jsonlines", "text/csv", "x/y"]
    assert codecs.parse_accept(None, "application/json") == ["application/json"]
    assert codecs.parse_accept("text/csv;q=0", "application/json") == []


def test_csv_decodes_numbers_as_floats_and_keeps_other_cells() -> None:
    assert codecs.decode("1,2.5\n\n3,abc\n", "text/csv") == [[1.0, 2.5], [3.0, "abc"]]


def test_csv_honours_the_charset() -> None:
    body = "é,1".encode("latin-1")
    assert codecs.decode(body, "text/csv; charset=ISO-8859-1") == [["é", 1.0]]
    with pytest.raises(BadRequest, match="not valid utf-8"):
        codecs.decode(body, "text/csv")


def test_csv_encodes_rows_and_flat_sequences_one_record_per_line() -> None:
    assert codecs.CODECS[codecs.CSV].encode([[1, 2.5], [3, "a,b"]]) == b'1,2.5\n3,"a,b"\n'
    assert codecs.CODECS[codecs.CSV].encode([0.25, 0.75]) == b"0.25\n0.75\n"
    assert codecs.CODECS[codecs.CSV].encode(7) == b"7\n"


def test_json_and_jsonlines_round_trip() -> None:
    value = [{"a": 1}, [1, 2], "x"]
    for mime in (codecs.JSON, codecs.JSONLINES):
        body, chosen = codecs.encode(value, mime)
        assert chosen == mime
        assert codecs.decode(body, mime) == value
    assert codecs.encode([1, 2], codecs.JSONLINES)[0] == b"1\n2\n"


def test_objects_with_tolist_encode_like_numpy_arrays() -> None:
    class ArrayLike:
        def tolist(self) -> list[list[int]]:
            return [[1, 2], [3, 4]]

    assert codecs.encode({"y": ArrayLike()}, "application/json")[0] == b'{"y": [[1, 2], [3, 4]]}'
    assert codecs.encode(ArrayLike(), "text/csv")[0] == b"1,2\n3,4\n"


def test_unsupported_content_type_is_415_with_the_supported_list() -> None:
    with pytest.raises(UnsupportedMediaType, match="application/json") as info:
        codecs.decode(b"x", "application/octet-stream")
    assert info.value.status == 415


def test_bad_json_is_400() -> None:
    with pytest.raises(BadRequest):
        codecs.decode(b"{", "application/json")


def test_encode_picks_the_first_producible_type_in_accept() -> None:
    assert codecs.encode([1], "image/png, text/csv;q=0.9")[1] == "text/csv"
    assert codecs.encode([1], "*/*", default="text/csv")[1] == "text/csv"
    assert codecs.encode([1], "application/*")[1] == "application/json"
    with pytest.raises(NotAcceptable) as info:
        codecs.encode([1], "image/png")
    assert info.value.status == 406


def test_npy_without_numpy_says_numpy_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    # numpy is optional in a serving image: hide it, as a None entry makes `import numpy` fail.
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(UnsupportedMediaType, match="needs numpy"):
        codecs.decode(b"\x93NUMPY", "application/x-npy")
    with pytest.raises(NotAcceptable, match="needs numpy"):
        codecs.encode([1], "application/x-npy")
    # with another acceptable type listed, that one is used instead
    assert codecs.encode([1], "application/x-npy, application/json;q=0.5")[1] == "application/json"


def test_npy_round_trip_with_numpy() -> None:
    import numpy

    body, mime = codecs.encode(numpy.arange(6).reshape(2, 3), "application/x-npy")
    assert mime == "application/x-npy"
    assert codecs.decode(body, mime).tolist() == [[0, 1, 2], [3, 4, 5]]
