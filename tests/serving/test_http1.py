"""The incremental HTTP/1.1 request parser, fed byte by byte and in bursts."""

from __future__ import annotations

import pytest

from dockyard.serving.http1 import ProtocolError, RequestParser, response_head


def test_pipelined_requests_come_out_in_order_whatever_the_split() -> None:
    wire = (
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /invocations HTTP/1.1\r\nContent-Length: 3\r\nContent-Type: text/csv\r\n\r\n1,2"
        b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;ext=1\r\nab\r\n1\r\nc\r\n0\r\nTrailer: x\r\n\r\n"
    )
    for step in (1, 7, len(wire)):
        parser = RequestParser(max_body=100)
        requests = []
        for i in range(0, len(wire), step):
            requests += parser.feed(wire[i : i + step])
        assert [(r.method, r.path, r.body) for r in requests] == [
            ("GET", "/ping", b""),
            ("POST", "/invocations", b"1,2"),
            ("POST", "/invocations", b"abc"),
        ]
        assert requests[1].headers["content-type"] == "text/csv"
        assert parser.idle


def test_keep_alive_follows_the_version_and_connection_header() -> None:
    parser = RequestParser(max_body=10)
    one_one, close, one_zero, one_zero_ka = parser.feed(
        b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n"
        b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
    )
    assert [one_one.keep_alive, close.keep_alive, one_zero.keep_alive, one_zero_ka.keep_alive] == [
        True,
        False,
        False,
        True,
    ]


def test_expect_continue_is_announced_before_the_body() -> None:
    announced: list[bool] = []
    parser = RequestParser(max_body=10, on_continue=lambda: announced.append(True))
    assert (
        parser.feed(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n") == []
    )
    assert announced == [True]
    assert parser.feed(b"hi")[0].body == b"hi"


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, 431),
    ],
)
def test_malformed_or_oversized_requests_raise_with_a_status(wire: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as info:
        RequestParser(max_body=10).feed(wire)
    assert info.value.status == status


def test_response_head_strips_line_breaks_from_header_values() -> None:
    head = response_head(200, "text/csv", 3, [("X-A", "a\r\nInjected: 1")], keep_alive=False)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-A: a  Injected: 1\r\n" in head
    assert b"Content-Length: 3\r\n" in head
    assert head.endswith(b"Connection: close\r\n\r\n")
