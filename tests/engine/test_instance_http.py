"""The router's instance connections against raw servers: framing, keep-alive, failures, on
both event loops the server may run (asyncio's and uvloop's)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import uvloop

from dockyard.engine.instance_http import ConnectionLost, InstanceConnection


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes, bool], int]]:
    """A server answering every request on a connection with fixed bytes, then maybe closing."""
    servers: list[socket.socket] = []

    def start(answer: bytes, close_after: bool) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        servers.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    while True:
                        request = conn.recv(65536)
                        if not request:
                            break
                        conn.sendall(answer)
                        if close_after:
                            break

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in servers:
        listener.close()


def exchange_twice(port: int, run: Callable[..., object]) -> list[object]:
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(InstanceConnection, "127.0.0.1", port)
        results: list[object] = []
        for body in (b"one", b"two"):
            try:
                results.append(await connection.exchange([(b"accept", b"text/csv")], body))
                results.append(connection.reusable)
            except ConnectionLost as lost:
                results.append(f"lost: {lost}")
        connection.close()
        return results

    return run(main())  # type: ignore[return-value]


LOOPS = [pytest.param(asyncio.run, id="asyncio"), pytest.param(uvloop.run, id="uvloop")]


@pytest.mark.parametrize("run", LOOPS)
def test_content_length_keeps_the_connection(raw_server, run) -> None:  # type: ignore[no-untyped-def]
    port = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 2\r\n\r\nok", False
    )
    assert exchange_twice(port, run) == [
        (200, [(b"content-type", b"text/csv"), (b"content-length", b"2")], b"ok"),
        True,
        (200, [(b"content-type", b"text/csv"), (b"content-length", b"2")], b"ok"),
        True,
    ]


@pytest.mark.parametrize("run", LOOPS)
def test_chunked_bodies_are_joined(raw_server, run) -> None:  # type: ignore[no-untyped-def]
    port = raw_server(
        b"HTTP/1.1 424 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        False,
    )
    first = exchange_twice(port, run)[0]
    assert first == (424, [(b"transfer-encoding", b"chunked")], b"abcde")


@pytest.mark.parametrize("run", LOOPS)
def test_a_body_ended_by_close_is_whole_and_the_connection_is_not_reused(
    raw_server,
    run,  # type: ignore[no-untyped-def]
) -> None:
    port = raw_server(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", True)
    results = exchange_twice(port, run)
    assert results[0] == (200, [(b"content-type", b"text/plain")], b"until close")
    assert results[1] is False
    assert str(results[2]).startswith("lost: ")


@pytest.mark.parametrize("run", LOOPS)
def test_garbage_and_early_close_are_connection_losses(raw_server, run) -> None:  # type: ignore[no-untyped-def]
    port = raw_server(b"NOT HTTP AT ALL\r\n\r\n", False)
    assert str(exchange_twice(port, run)[0]).startswith("lost: the instance sent a malformed")
    port = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", True)
    assert exchange_twice(port, run)[0] == "lost: the instance closed the connection"
