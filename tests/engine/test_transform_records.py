"""Splitting batch transform input into records and packing records into request bodies."""

from __future__ import annotations

import gzip
import io
import struct

import pytest

from dockyard.engine.transform_records import (
    MIB,
    Batch,
    RecordError,
    RecordTooLarge,
    batches,
    split_records,
    split_response,
)

MAGIC = struct.pack("<I", 0xCED7230A)


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as sockets and raw files may,
    and counts what was read."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        self.data = data
        self.step = step
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = len(self.data) - self.consumed
        chunk = self.data[self.consumed : self.consumed + min(size, self.step)]
        self.consumed += len(chunk)
        return chunk


# -- a tiny MXNet RecordIO writer --------------------------------------------------------------


def frame(cflag: int, payload: bytes) -> bytes:
    header = MAGIC + struct.pack("<I", (cflag << 29) | len(payload))
    return header + payload + b"\0" * (-len(payload) % 4)


def recordio(*records: bytes) -> bytes:
    """What MXNet's writer produces: a record whose payload holds the magic number at a 4-byte
    boundary is cut there (the magic dropped) into start/middle/end frames."""
    out = []
    for record in records:
        parts, start = [], 0
        for at in range(0, len(record) - len(record) % 4, 4):
            if record[at : at + 4] == MAGIC:
                parts.append(record[start:at])
                start = at + 4
        parts.append(record[start:])
        if len(parts) == 1:
            out.append(frame(0, record))
        else:
            middle = b"".join(frame(2, part) for part in parts[1:-1])
            out.append(frame(1, parts[0]) + middle + frame(3, parts[-1]))
    return b"".join(out)


def cflags(data: bytes) -> list[int]:
    found, at = [], 0
    while at < len(data):
        _, lrecord = struct.unpack_from("<II", data, at)
        found.append(lrecord >> 29)
        at += 8 + ((lrecord & (2**29 - 1)) + 3) // 4 * 4
    return found


# -- splitting ---------------------------------------------------------------------------------


def test_split_none_is_the_whole_object_and_an_empty_object_has_no_records() -> None:
    data = b"a,1\nb,2\n" * 1000
    assert list(split_records(Trickle(data, 1000), "None")) == [data]
    assert list(split_records(io.BytesIO(b""), "None")) == []


def test_split_line_keeps_each_ending_and_a_last_line_without_one() -> None:
    data = b'1,"a,b",3\n2,x,y\r\n\n3,z,w'
    assert list(split_records(Trickle(data), "Line")) == [
        b'1,"a,b",3\n',
        b"2,x,y\r\n",
        b"\n",
        b"3,z,w",
    ]
    assert list(split_records(io.BytesIO(b"only\n"), "Line")) == [b"only\n"]
    assert list(split_records(io.BytesIO(b""), "Line")) == []


def test_split_line_across_read_chunks() -> None:
    long_line = b"x" * 200_000 + b"\n"
    data = b"a\n" + long_line + b"b"
    assert list(split_records(io.BytesIO(data), "Line")) == [b"a\n", long_line, b"b"]


def test_a_line_over_the_limit_fails_before_the_object_is_read() -> None:
    data = b"short\n" + b"y" * (5 * MIB)
    stream = Trickle(data, 64 * 1024)
    records = split_records(stream, "Line", max_record_bytes=MIB, source="s3://b/in/big.csv")
    assert next(records) == b"short\n"
    with pytest.raises(RecordTooLarge) as caught:
        next(records)
    assert caught.value.index == 2
    assert "record 2 of s3://b/in/big.csv has at least" in str(caught.value)
    assert stream.consumed < 2 * MIB


def test_a_whole_object_over_the_limit_fails_without_reading_it_all() -> None:
    stream = Trickle(b"z" * (3 * MIB), 64 * 1024)
    with pytest.raises(RecordTooLarge, match="record 1 of the input object has at least"):
        list(split_records(stream, "None", max_record_bytes=MIB))
    assert stream.consumed <= MIB + 64 * 1024


def test_recordio_single_record_sends_payloads_without_framing_or_padding() -> None:
    payloads = [b"abc", b"defgh", b"", b"ijkl"]
    data = recordio(*payloads)
    assert len(data) == sum(8 + (len(p) + 3) // 4 * 4 for p in payloads)
    assert list(split_records(Trickle(data, 5), "RecordIO", "SingleRecord")) == payloads


def test_recordio_multi_record_keeps_framing_and_padding() -> None:
    payloads = [b"abc", b"defgh", b"ijkl"]
    data = recordio(*payloads)
    records = list(split_records(io.BytesIO(data), "RecordIO", "MultiRecord"))
    assert records == [recordio(p) for p in payloads]
    assert b"".join(records) == data  # batches of them are valid RecordIO again


def test_a_record_split_over_start_middle_and_end_frames_is_put_back_together() -> None:
    split = b"head" + MAGIC + b"mid!" + MAGIC + b"tail5"
    data = recordio(b"one", split, b"two")
    assert cflags(data) == [0, 1, 2, 3, 0]
    single = list(split_records(Trickle(data), "RecordIO", "SingleRecord"))
    assert single == [b"one", split, b"two"]
    multi = list(split_records(io.BytesIO(data), "RecordIO", "MultiRecord"))
    assert len(multi) == 3
    assert multi[1] == recordio(split) and cflags(multi[1]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"not recordio at all", "at byte 0: 0x20746f6e is not the RecordIO magic number"),
        (frame(0, b"abcd")[:10], "at byte 0: the data ends inside a record"),
        (frame(0, b"abcd") + MAGIC, "at byte 12: the data ends inside a record header"),
        (frame(2, b"abcd"), "cflag 2 is out of sequence"),
        (frame(1, b"abcd") + frame(0, b"efgh"), "at byte 12: a frame with cflag 0 is out"),
        (frame(1, b"abcd"), "ends inside a split record"),
    ],
)
def test_broken_recordio_says_where(data: bytes, expected: str) -> None:
    with pytest.raises(RecordError) as caught:
        list(split_records(io.BytesIO(data), "RecordIO", "SingleRecord", source="s3://b/x.rec"))
    assert "s3://b/x.rec is not valid MXNet RecordIO" in str(caught.value)
    assert expected in str(caught.value)
    assert "use SplitType Line or None" in str(caught.value)


def test_a_recordio_record_over_the_limit_fails_before_its_payload_is_read() -> None:
    data = recordio(b"a" * 64, b"b" * 4096)
    stream = Trickle(data, 8)
    with pytest.raises(RecordTooLarge) as caught:
        list(split_records(stream, "RecordIO", "SingleRecord", max_record_bytes=1000))
    assert (caught.value.index, caught.value.size) == (2, 4096)
    assert stream.consumed < len(data) - 4000


def test_gzip_objects_are_read_through_gunzip() -> None:
    data = b"a\nb\nc\n"
    packed = io.BytesIO(gzip.compress(data))
    assert list(split_records(packed, "Line", compression="Gzip")) == [b"a\n", b"b\n", b"c\n"]
    with pytest.raises(RecordError, match=r"is not gzip data.*CompressionType None"):
        list(split_records(io.BytesIO(data), "Line", compression="Gzip"))


def test_tfrecord_is_not_split() -> None:
    with pytest.raises(RecordError, match="TFRecord"):
        split_records(io.BytesIO(b"x"), "TFRecord")


# -- batching ----------------------------------------------------------------------------------


def test_single_record_sends_one_record_per_request() -> None:
    found = list(batches([b"a\n", b"bb\n", b"c"], "SingleRecord", 10))
    assert [b.body for b in found] == [b"a\n", b"bb\n", b"c"]
    assert [(b.count, b.first) for b in found] == [(1, 1), (1, 2), (1, 3)]


def test_multi_record_packs_exactly_up_to_the_limit() -> None:
    records = [b"abc\n"] * 7  # 4 bytes each
    at_limit = list(batches(records, "MultiRecord", 12))
    assert [b.body for b in at_limit] == [b"abc\n" * 3, b"abc\n" * 3, b"abc\n"]
    assert [(b.count, b.first, b.size) for b in at_limit] == [(3, 1, 12), (3, 4, 12), (1, 7, 4)]
    below = list(batches(records, "MultiRecord", 11))
    assert [b.count for b in below] == [2, 2, 2, 1]


def test_multi_record_never_splits_a_record_and_keeps_order() -> None:
    records = [b"1234567\n", b"12\n", b"123456\n", b"1\n"]
    found = list(batches(records, "MultiRecord", 11))
    assert [b.records for b in found] == [(records[0], records[1]), (records[2], records[3])]
    assert b"".join(b.body for b in found) == b"".join(records)


def test_a_record_larger_than_the_limit_names_itself_and_the_fix() -> None:
    records = [b"small\n", b"small\n", b"x" * (MIB + 1)]
    for strategy in ("SingleRecord", "MultiRecord"):
        with pytest.raises(RecordTooLarge) as caught:
            list(batches(records, strategy, MIB, source="s3://b/in/data.csv"))
        message = str(caught.value)
        assert message.startswith(f"record 3 of s3://b/in/data.csv has {MIB + 1} bytes")
        assert "MaxPayloadInMB=1 allows" in message
        assert "raise MaxPayloadInMB (up to 100) or split the input" in message


def test_zero_means_no_limit() -> None:
    big = [b"x" * (2 * MIB), b"y\n", b"z"]
    (only,) = batches(big, "MultiRecord", 0)
    assert only.count == 3 and only.body == b"".join(big)
    assert [b.count for b in batches(big, "SingleRecord", 0)] == [1, 1, 1]
    assert list(batches([], "MultiRecord", 0)) == []


def test_prepared_records_are_sent_and_the_originals_kept_for_the_join() -> None:
    originals = [b"id1,1,2\n", b"id2,3,4\n", b"id3,5,6\n"]
    found = list(batches(originals, "MultiRecord", 8, prepare=lambda r: r.split(b",", 1)[1]))
    assert [b.body for b in found] == [b"1,2\n3,4\n", b"5,6\n"]
    assert found[0] == Batch((b"1,2\n", b"3,4\n"), (originals[0], originals[1]), 1)
    assert found[1].records == (originals[2],)


# -- responses ---------------------------------------------------------------------------------


def test_a_multi_record_response_splits_into_one_piece_per_record() -> None:
    assert split_response(b"0.1\n0.2\n0.3\n", 3) == [b"0.1", b"0.2", b"0.3"]
    assert split_response(b"0.1\r\n0.2\r\n0.3", 3) == [b"0.1", b"0.2", b"0.3"]
    assert split_response(b'{"a":1}\n\n', 2) == [b'{"a":1}', b""]
    # A batch of one record gets its whole answer, even a pretty-printed JSON document.
    assert split_response(b'{\n  "a": 1\n}\n', 1) == [b'{\n  "a": 1\n}']


def test_a_response_with_the_wrong_number_of_lines_fails_clearly() -> None:
    with pytest.raises(RecordError) as caught:
        split_response(b"0.1\n0.2\n", 3, source="records 4-6 of s3://b/in.csv")
    message = str(caught.value)
    assert "answered the 3 records of records 4-6 of s3://b/in.csv with 2 lines" in message
    assert "one line per record" in message and "SingleRecord" in message
