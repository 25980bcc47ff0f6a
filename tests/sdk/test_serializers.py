"""Serializers and deserializers: the bodies and media types of the SDK's, each a pure function
of its input (deserializers read real botocore StreamingBody objects, as boto3 returns them)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest
from botocore.response import StreamingBody

from dockyard.sdk import deserializers, serializers
from dockyard.sdk.deserializers import (
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    StreamDeserializer,
    StringDeserializer,
)
from dockyard.sdk.serializers import (
    CSVSerializer,
    DataSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    LibSVMSerializer,
    NumpySerializer,
    StringSerializer,
)


class Tracked(StreamingBody):
    """A real StreamingBody that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def body(data: bytes) -> Tracked:
    return Tracked(io.BytesIO(data), len(data))


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    numpy.save(buffer, numpy.asarray(array))
    return buffer.getvalue()


# -- serializers ------------------------------------------------------------------------------


def test_media_types_are_the_sdks() -> None:
    assert CSVSerializer().CONTENT_TYPE == "text/csv"
    assert JSONSerializer().CONTENT_TYPE == "application/json"
    assert JSONLinesSerializer().CONTENT_TYPE == "application/jsonlines"
    assert NumpySerializer().CONTENT_TYPE == "application/x-npy"
    assert IdentitySerializer().CONTENT_TYPE == "application/octet-stream"
    assert StringSerializer().CONTENT_TYPE == "text/plain"
    assert LibSVMSerializer().CONTENT_TYPE == "text/libsvm"
    assert DataSerializer().CONTENT_TYPE == "file-path/raw-bytes"
    assert CSVSerializer(content_type="text/csv; charset=utf-8").CONTENT_TYPE == (
        "text/csv; charset=utf-8"
    )
    with pytest.raises(ValueError, match="content_type must be a string"):
        JSONSerializer(content_type=None)  # type: ignore[arg-type]


def test_csv_rows_from_lists_arrays_and_strings() -> None:
    csv = CSVSerializer()
    assert csv.serialize([[1, 2, 3], [4, 5, 6]]) == "1,2,3\n4,5,6"
    assert csv.serialize([1.5, "a b", 3]) == "1.5,a b,3"
    assert csv.serialize(["1,2", "3,4"]) == "1,2\n3,4"
    assert csv.serialize("1,2,3") == "1,2,3"
    assert csv.serialize(numpy.array([[1, 2], [3, 4]])) == "1,2\n3,4"
    assert csv.serialize(numpy.array([1.0, 2.5])) == "1.0,2.5"
    assert csv.serialize(('say "hi"', "x,y")) == '"say ""hi""","x,y"'
    assert csv.serialize(io.StringIO("7,8\n")) == "7,8\n"
    # As the SDK: only mutable sequences are split into rows; a tuple of tuples is one row.
    assert csv.serialize(((1, 2), (3, 4))) == '"(1, 2)","(3, 4)"'


def test_csv_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="Cannot serialize empty array"):
        CSVSerializer().serialize([])
    with pytest.raises(ValueError, match="Unable to handle input format"):
        CSVSerializer().serialize(7)


def test_json_of_values_arrays_and_dicts_of_arrays() -> None:
    js = JSONSerializer()
    assert json.loads(js.serialize([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert json.loads(js.serialize({"instances": numpy.array([1, 2])})) == {"instances": [1, 2]}
    assert json.loads(js.serialize(numpy.array([[0.5]]))) == [[0.5]]
    assert js.serialize(io.StringIO('{"a": 1}')) == '{"a": 1}'
    with pytest.raises(TypeError):
        js.serialize(object())


def test_json_lines_one_value_per_line() -> None:
    lines = JSONLinesSerializer()
    assert lines.serialize([{"a": 1}, [2, 3], "x"]) == '{"a": 1}\n[2, 3]\n"x"'
    assert lines.serialize('{"a": 1}\n') == '{"a": 1}\n'
    with pytest.raises(ValueError, match="not JSON Lines serializable"):
        lines.serialize(3)


def test_numpy_writes_npy() -> None:
    npy_serializer = NumpySerializer()
    loaded = numpy.load(io.BytesIO(npy_serializer.serialize([[1, 2], [3, 4]])))
    assert loaded.tolist() == [[1, 2], [3, 4]]
    typed = NumpySerializer(dtype="float32").serialize([1, 2])
    assert numpy.load(io.BytesIO(typed)).dtype == numpy.float32
    assert numpy.load(io.BytesIO(npy_serializer.serialize(numpy.eye(2)))).tolist() == [
        [1.0, 0.0],
        [0.0, 1.0],
    ]
    with pytest.raises(ValueError, match="empty array"):
        npy_serializer.serialize(numpy.array([]))
    with pytest.raises(ValueError, match="empty array"):
        npy_serializer.serialize([])


def test_identity_string_libsvm_and_data(tmp_path: Path) -> None:
    assert IdentitySerializer().serialize(b"\x00\x01") == b"\x00\x01"
    assert StringSerializer().serialize("héllo") == "héllo".encode()
    with pytest.raises(ValueError, match="not String serializable"):
        StringSerializer().serialize(b"x")
    assert LibSVMSerializer().serialize("1 3:0.5") == "1 3:0.5"
    image = tmp_path / "cat.jpg"
    image.write_bytes(b"\xff\xd8jpeg")
    assert DataSerializer().serialize(str(image)) == b"\xff\xd8jpeg"
    assert DataSerializer().serialize({"data": b"raw"}) == b"raw"
    with pytest.raises(ValueError, match="Could not open/read file"):
        DataSerializer().serialize(str(tmp_path / "missing.jpg"))


# -- deserializers ----------------------------------------------------------------------------


def test_accept_is_a_tuple_of_media_types() -> None:
    assert BytesDeserializer().ACCEPT == ("*/*",)
    assert StringDeserializer().ACCEPT == ("application/json",)
    assert CSVDeserializer().ACCEPT == ("text/csv",)
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert JSONLinesDeserializer().ACCEPT == ("application/jsonlines",)
    assert NumpyDeserializer().ACCEPT == ("application/x-npy",)
    assert StreamDeserializer().ACCEPT == ("*/*",)
    both = JSONDeserializer(accept=("application/json", "text/csv"))
    assert both.ACCEPT == ("application/json", "text/csv")


def test_each_deserializer_reads_and_closes_the_body() -> None:
    cases: list[tuple[Any, bytes, str, Any]] = [
        (BytesDeserializer(), b"\x00raw", "application/octet-stream", b"\x00raw"),
        (StringDeserializer(), "héllo".encode(), "text/plain", "héllo"),
        (CSVDeserializer(), b"1,2\n3,4\n", "text/csv", [["1", "2"], ["3", "4"]]),
        (JSONDeserializer(), b'{"p": [0.5, 1]}', "application/json", {"p": [0.5, 1]}),
        (JSONLinesDeserializer(), b'{"a": 1}\n[2]\n', "application/jsonlines", [{"a": 1}, [2]]),
    ]
    for deserializer, data, content_type, expected in cases:
        stream = body(data)
        assert deserializer.deserialize(stream, content_type) == expected, deserializer
        assert stream.closed, deserializer


def test_stream_deserializer_hands_over_the_open_stream() -> None:
    stream = body(b"abc")
    got, content_type = StreamDeserializer().deserialize(stream, "text/plain")
    assert got is stream and content_type == "text/plain" and not stream.closed
    assert got.read() == b"abc"


def test_numpy_reads_npy_csv_and_json() -> None:
    des = NumpyDeserializer()
    assert des.deserialize(body(npy([[1, 2], [3, 4]])), "application/x-npy").tolist() == [
        [1, 2],
        [3, 4],
    ]
    assert des.deserialize(body(b"1,2\n3,4\n"), "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert des.deserialize(body(b"[[1, 2]]"), "application/json").tolist() == [[1, 2]]
    # dockyard.serving may answer with parameters; the SDK would refuse them.
    assert des.deserialize(body(b"5,6\n"), "text/csv; charset=utf-8").tolist() == [5.0, 6.0]
    typed = NumpyDeserializer(dtype="float32").deserialize(body(b"[1, 2]"), "application/json")
    assert typed.dtype == numpy.float32
    with pytest.raises(ValueError, match="cannot read content type text/html"):
        des.deserialize(body(b"<p>"), "text/html")


def test_numpy_refuses_pickles_unless_allowed() -> None:
    buffer = io.BytesIO()
    numpy.save(buffer, numpy.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        NumpyDeserializer().deserialize(body(buffer.getvalue()), "application/x-npy")
    allowed = NumpyDeserializer(allow_pickle=True)
    assert allowed.deserialize(body(buffer.getvalue()), "application/x-npy")[0] == {"a": 1}


def test_round_trips_through_matching_pairs() -> None:
    rows = [[1.0, 2.0], [3.0, 4.0]]
    csv_text = CSVSerializer().serialize(rows).encode()
    got = CSVDeserializer().deserialize(body(csv_text), "text/csv")
    assert got == [["1.0", "2.0"], ["3.0", "4.0"]]
    js = JSONSerializer().serialize(rows).encode()
    assert JSONDeserializer().deserialize(body(js), "application/json") == rows
    lines = JSONLinesSerializer().serialize(rows).encode()
    assert JSONLinesDeserializer().deserialize(body(lines), "application/jsonlines") == rows
    array = numpy.arange(6).reshape(2, 3)
    sent = NumpySerializer().serialize(array)
    assert (NumpyDeserializer().deserialize(body(sent), "application/x-npy") == array).all()


def test_modules_export_the_sdks_names() -> None:
    assert set(serializers.__all__) >= {
        "CSVSerializer",
        "JSONSerializer",
        "NumpySerializer",
        "IdentitySerializer",
        "JSONLinesSerializer",
        "DataSerializer",
        "BaseSerializer",
        "SimpleBaseSerializer",
    }
    assert set(deserializers.__all__) >= {
        "BytesDeserializer",
        "StringDeserializer",
        "CSVDeserializer",
        "JSONDeserializer",
        "NumpyDeserializer",
        "JSONLinesDeserializer",
        "StreamDeserializer",
        "BaseDeserializer",
    }
    for name in serializers.__all__:
        assert getattr(serializers, name).__module__ == "dockyard.sdk.serializers"


def test_without_numpy_only_the_numpy_pair_fails_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now fails, as if missing
    assert CSVSerializer().serialize([[1, 2]]) == "1,2"
    assert JSONSerializer().serialize({"a": [1]}) == '{"a": [1]}'
    with pytest.raises(ImportError, match="NumpySerializer needs numpy"):
        NumpySerializer().serialize([1, 2])
    with pytest.raises(ImportError, match="NumpyDeserializer needs numpy"):
        NumpyDeserializer().deserialize(body(b"[1]"), "application/json")
