"""The router's connections to instances: keep-alive HTTP/1.1 as an asyncio protocol, the
responses parsed by httptools (C), since every invocation passes through here. A failed exchange
says whether the request may have reached the container: only one that did not is safe to send
anywhere again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
from typing import cast

import httptools

from dockyard.engine.instances import PORT, Instance

Headers = list[tuple[bytes, bytes]]


class ConnectionLost(Exception):
    """The connection ended after the request was sent, before a whole response arrived: the
    container may have died handling this very request, so sending it elsewhere is a risk."""


class NotDelivered(ConnectionLost):
    """The request never reached the container (the connection could not be made, or a kept-alive
    one had been closed by the container before any byte of the request went out): another
    instance may safely get it."""


class InstanceConnection(asyncio.Protocol):
    """One connection; one request at a time. `exchange` sends a POST /invocations and returns
    the status, the headers (lower-case names) and the body."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, Headers, bytes]] | None = None
        self._status = 0
        self._headers: Headers = []
        self._chunks: list[bytes] = []
        self._framed = False  # Content-Length or chunked: the end is known without a close
        self._keep_alive = False
        self._idle_check: select.poll | None = None  # made on the first reuse
        self._used = False
        self.closed = False

    @classmethod
    async def open(cls, instance: Instance) -> InstanceConnection:
        loop = asyncio.get_running_loop()
        try:
            sock = instance.connector.socket()  # one that can reach the instance's network
        except OSError as exc:
            raise NotDelivered(f"cannot make a socket in its network: {exc}") from exc
        try:
            await loop.sock_connect(sock, instance.connector.address(PORT))
            _, connection = await loop.create_connection(cls, sock=sock)
        except OSError as exc:
            sock.close()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise NotDelivered(f"cannot connect to its port {PORT}: {reason}") from exc
        except BaseException:
            sock.close()  # cancelled while connecting (the client went away): not left open
            raise
        return connection

    async def exchange(self, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        """Send the request and return the answer. Raises NotDelivered when no byte of the
        request went out, ConnectionLost when it did and no whole answer came back."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise NotDelivered("the connection was closed")
        if self._used and self._closed_by_peer():
            self.close()
            raise NotDelivered("the container had closed the kept-alive connection")
        head = [b"POST /invocations HTTP/1.1\r\nhost: localhost\r\n"]
        for name, value in headers:
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        self._status, self._headers, self._chunks, self._framed = 0, [], [], False
        self._used = True
        # Both event loops try the send at once; when it fails (EPIPE, ECONNRESET: the container
        # closed the connection just now) the transport is closing before write() returns and
        # nothing was sent. A send that went out in part, or later, counts as delivered.
        transport.write(b"".join(head) + body)
        if transport.is_closing():
            self.close()
            raise NotDelivered("the container closed the kept-alive connection as it was used")
        self._waiter = asyncio.get_running_loop().create_future()
        self._quick_ack()
        return await self._waiter

    def _closed_by_peer(self) -> bool:
        """Whether an idle connection has anything to read: its end (FIN or RST) or bytes nobody
        asked for; either way it must not carry a request. Between the container closing it and
        the event loop's next turn, only the socket knows (urllib3 and httpx check the same)."""
        if self._idle_check is None:
            sock = self._transport.get_extra_info("socket") if self._transport else None
            if sock is None:
                return False
            self._idle_check = select.poll()
            self._idle_check.register(sock.fileno(), select.POLLIN)
        return bool(self._idle_check.poll(0))

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"the instance sent a malformed response: {exc}")
            self.close()
            return
        self._quick_ack()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status and not self._framed:
            # A body delimited by the end of the connection (HTTP/1.0 style) ends here.
            waiter.set_result((self._status, self._headers, b"".join(self._chunks)))
        else:
            self._fail(f"the instance closed the connection{f': {exc}' if exc else ''}")

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding"):
            self._framed = True
        self._headers.append((lower, value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._headers, b"".join(self._chunks)))

    def _fail(self, message: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionLost(message))

    def _quick_ack(self) -> None:
        # Many servers write a response's head and body apart (http.server, Flask's dev server,
        # plumber); with Nagle on their side, a delayed ACK from ours would hold the body back
        # 40 ms. Linux leaves quick-ACK mode by itself, so it is asked for again each time.
        if self._transport is None:
            return
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
