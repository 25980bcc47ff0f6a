"""The incremental HTTP/1.1 request parser, fed byte by byte and in bursts: what it reads, and
everything RFC 9112 lets it refuse, which it refuses with a status instead of guessing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.serving.http1 import ProtocolError, Request, RequestParser, response_head
from dockyard.serving.settings import ServingSettings

POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def feed_all(wire: bytes, step: int | None = None, max_body: int = 100) -> list[Request]:
    parser = RequestParser(max_body=max_body)
    step = step or len(wire) or 1
    requests: list[Request] = []
    for i in range(0, len(wire), step):
        requests += parser.feed(wire[i : i + step])
    return requests


def refusal(wire: bytes, step: int | None = None, max_body: int = 10) -> int:
    with pytest.raises(ProtocolError) as info:
        feed_all(wire, step, max_body)
    return info.value.status


def test_pipelined_requests_come_out_in_order_whatever_the_split() -> None:
    wire = (
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Content-Type: text/csv\r\n\r\n1,2"
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'2;ext=1\r\nab\r\n1 ; a ; b = "q\\""\r\nc\r\n0\r\nTrailer: x\r\n\r\n'
        b"GET /ping HTTP/1.0\r\n\r\n"
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
            ("GET", "/ping", b""),
        ]
        assert requests[1].headers["content-type"] == "text/csv"
        assert parser.idle


def test_keep_alive_follows_the_version_and_connection_header() -> None:
    parser = RequestParser(max_body=10)
    one_one, close, one_zero, one_zero_ka = parser.feed(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
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
    assert parser.feed(POST + b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n") == []
    assert announced == [True]
    assert parser.feed(b"hi")[0].body == b"hi"


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/invocations?x=1", "/invocations"),
        ("http://localhost:8080/ping?x", "/ping"),
        ("https://h", "/"),
        ("http://h?q", "/"),
        ("*", "*"),
    ],
)
def test_the_route_is_the_path_of_any_target_form(target: str, path: str) -> None:
    (request,) = feed_all(f"OPTIONS {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert (request.target, request.path) == (target, path)


def test_fields_are_trimmed_and_repeats_joined() -> None:
    (request,) = feed_all(
        POST + b"X-A: \t one \t\r\nx-a: two\r\nEmpty:\r\nContent-Length: 1, 1\r\n"
        b"Content-Length: 1\r\nObs-Text: caf\xe9\r\n\r\nz"
    )
    assert request.headers["x-a"] == "one, two"
    assert request.headers["empty"] == ""
    assert request.headers["content-length"] == "1"  # the same value thrice is one value
    assert request.headers["obs-text"] == "caf\xe9"
    assert request.body == b"z"


BAD_CONTENT_LENGTHS = [
    b"\xb2",  # SUPERSCRIPT TWO in latin-1: str.isdigit() and int() take it
    "\u0663".encode(),  # ARABIC-INDIC DIGIT THREE, in UTF-8
    b"1_0",  # int() takes underscores
    b"+5",
    b"-1",
    b"0x5",
    b"5 5",
    b"",
    b"9" * 5000,  # int() refuses over 4300 digits with a ValueError
    b"0" * 21,  # more than 20 digits, whatever their value
]


@pytest.mark.parametrize("value", BAD_CONTENT_LENGTHS)
def test_content_length_is_ascii_digits_only_and_bounded(value: bytes) -> None:
    assert refusal(POST + b"Content-Length: " + value + b"\r\n\r\n") == 400


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (POST + b"Content-Length: 11\r\n\r\n", 413),
        (POST + b"Content-Length: 99999999999999999999\r\n\r\n", 413),
        (POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (POST + b"Content-Length: 1, 2\r\n\r\n", 400),
        (POST + b"Content-Length: 1,\r\n\r\n", 400),
        (POST + b"Content-Length: 1\r\nContent-Length: 01\r\n\r\n", 400),
        (POST + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
        (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ],
)
def test_framing_follows_rfc_9112_section_6_3(wire: bytes, status: int) -> None:
    assert refusal(wire) == status


@pytest.mark.parametrize(
    "line",
    [
        b"0x3",
        b" 3",
        b"3 ",
        b"+3",
        b"-1",
        b"3_0",
        b"",
        b"g",
        b"1" + b"0" * 16,  # 17 hex digits
        b"3;",
        b"3;=x",
        b"3;a=",
        b'3;a="unterminated',
        b"3;a=b c",
        b"3;a\x00",
        b"3 \t",
    ],
)
def test_chunk_sizes_follow_rfc_9112_section_7_1(line: bytes) -> None:
    assert refusal(CHUNKED + line + b"\r\nabc\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize(
    "line",
    [b"3", b"03", b"0000000000000003", b"3;a", b"3;a=b;c", b'3 ; a = "x y\\"z"', b"3\t;a"],
)
def test_valid_chunk_size_lines_are_read(line: bytes) -> None:
    (request,) = feed_all(CHUNKED + line + b"\r\nabc\r\n0\r\n\r\n")
    assert request.body == b"abc"


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (CHUNKED + b"3\r\nabcd\r\n0\r\n\r\n", 400),  # longer than its size
        (CHUNKED + b"3\r\nabc\n0\r\n\r\n", 400),
        (CHUNKED + b"6\r\nabcdef\r\n6\r\n", 413),
        (CHUNKED + b"0\r\nX-T: 1\r\nNo colon\r\n\r\n", 400),
        (CHUNKED + b"0\r\nX-T: a\x00b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nX-T: a\r\n b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nX-T: 1\n\r\n", 400),
        (CHUNKED + b"0\r\n" + b"X-T: 1\r\n" * 101 + b"\r\n", 431),
        (CHUNKED + b"0\r\nX-T: " + b"a" * 70_000, 431),
        (CHUNKED + b"1" * 1100, 400),
    ],
)
def test_bad_chunks_and_trailers_are_refused(wire: bytes, status: int) -> None:
    assert refusal(wire) == status


def test_trailers_are_read_and_dropped() -> None:
    (request, after) = feed_all(
        CHUNKED + b"1\r\na\r\n0\r\nX-Checksum: 1\r\nX-Other:  two\r\n\r\nGET / HTTP/1.0\r\n\r\n"
    )
    assert (request.body, "x-checksum" in request.headers, after.path) == (b"a", False, "/")


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nName : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nN@me: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),  # bare CR
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),  # NUL
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x0bb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\nb\r\n\r\n", 400),  # bare LF
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),  # LF-only lines
        (b"GET / HTTP/1.1\r\nHost: x\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, 431),
    ],
)
def test_malformed_or_oversized_heads_are_refused_with_a_status(wire: bytes, status: int) -> None:
    assert refusal(wire) == status
    assert refusal(wire, step=1) == status  # and the same when the bytes trickle in


@pytest.mark.parametrize(
    "start",
    [
        b"GET / HTTP/1.1\n",  # the first lone LF: no need to wait for an end that never comes
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb",
        b"GET / HTTP/1.1\r\nHost: x\n",
        CHUNKED + b"3\n",
        CHUNKED + b"3\rx",
        CHUNKED + b"3\r\nabcX",  # chunk data not followed by CR
        CHUNKED + b"3\r\nabc\rX",
        CHUNKED + b"0\r\nX: 1\n",
    ],
)
def test_a_forbidden_byte_is_refused_as_soon_as_it_arrives(start: bytes) -> None:
    assert refusal(start) == 400


def test_a_cr_at_the_end_of_what_has_arrived_may_still_be_followed_by_lf() -> None:
    parser = RequestParser(max_body=10)
    assert parser.feed(b"GET / HTTP/1.1\r") == []
    assert parser.feed(b"\nHost: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert [r.path for r in parser.feed(b"\n")] == ["/"]


def test_response_head_strips_line_breaks_from_header_values() -> None:
    head = response_head(200, "text/csv", 3, [("X-A", "a\r\nInjected: 1")], keep_alive=False)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-A: a  Injected: 1\r\n" in head
    assert b"Content-Length: 3\r\n" in head
    assert head.endswith(b"Connection: close\r\n\r\n")


def test_read_deadlines_come_from_the_environment_with_defaults() -> None:
    default = ServingSettings.from_environ({})
    assert (
        default.header_timeout_seconds,
        default.body_timeout_seconds,
        default.body_min_rate,
    ) == (20.0, 30.0, 65536)
    custom = ServingSettings.from_environ(
        {
            "DOCKYARD_SERVING_HEADER_TIMEOUT": "2.5",
            "DOCKYARD_SERVING_BODY_TIMEOUT": " 4 ",
            "DOCKYARD_SERVING_BODY_MIN_RATE": "0",
        }
    )
    assert (custom.header_timeout_seconds, custom.body_timeout_seconds, custom.body_min_rate) == (
        2.5,
        4.0,
        0,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOCKYARD_SERVING_HEADER_TIMEOUT", "0"),
        ("DOCKYARD_SERVING_HEADER_TIMEOUT", "soon"),
        ("DOCKYARD_SERVING_BODY_TIMEOUT", "-1"),
        ("DOCKYARD_SERVING_BODY_TIMEOUT", "nan"),
        ("DOCKYARD_SERVING_BODY_MIN_RATE", "-1"),
        ("DOCKYARD_SERVING_BODY_MIN_RATE", "1.5"),
    ],
)
def test_a_bad_deadline_setting_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        ServingSettings.from_environ({name: value})


def outcome(wire: bytes, cuts: list[int]) -> tuple[object, ...]:
    """What the parser makes of ``wire`` fed in pieces cut at ``cuts``: the requests it read and
    how it ended (idle, waiting for more, or the status it refused with)."""
    parser = RequestParser(max_body=64)
    requests: list[tuple[str, str, dict[str, str], bytes]] = []
    bounds = [0, *sorted(set(cuts)), len(wire)]
    try:
        for start, end in itertools.pairwise(bounds):
            requests += [
                (r.method, r.target, r.headers, r.body) for r in parser.feed(wire[start:end])
            ]
    except ProtocolError as exc:
        requests += [(r.method, r.target, r.headers, r.body) for r in exc.requests]
        return (*requests, exc.status)
    return (*requests, "idle" if parser.idle else "waiting")


NEAR_HTTP = st.lists(
    st.sampled_from(
        [
            b"GET / HTTP/1.1",
            b"\r\n",
            b"\n",
            b"\r",
            b"Host: x",
            b"Content-Length: ",
            b"2",
            b"ab",
            b"Transfer-Encoding: chunked",
            b";",
            b" ",
            b"\t",
            b"\x00",
            b"0",
            b"\xb2",
            b":",
            b"z",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None, database=None)
@given(wire=st.one_of(st.binary(max_size=200), NEAR_HTTP), cuts=st.lists(st.integers(0, 200)))
def test_any_bytes_in_any_pieces_give_requests_or_a_status_never_a_crash(
    wire: bytes, cuts: list[int]
) -> None:
    """Only ProtocolError ever leaves the parser, and how the bytes are cut makes no difference."""
    whole = outcome(wire, [])
    assert outcome(wire, [cut for cut in cuts if cut < len(wire)]) == whole
    assert outcome(wire, list(range(len(wire)))) == whole
    if isinstance(whole[-1], int):
        assert whole[-1] in (400, 413, 431, 501, 505)
