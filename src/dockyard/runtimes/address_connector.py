"""Reaching a host's ports at an address this machine routes to (a container on a bridge, a host
on a routed network): the router's sockets are plain sockets of this machine, no namespace to
join and no port published."""

from __future__ import annotations

import socket
from collections.abc import Callable
from socket import socket as Socket


def nodelay_socket() -> Socket:
    """An unconnected, non-blocking TCP socket without Nagle's delay (small requests go out at
    once)."""
    made = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    made.setblocking(False)
    made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return made


class AddressConnector:
    """A PortConnector to one address; `closed()` says when the network behind it has gone."""

    def __init__(self, address: str | None, closed: Callable[[], bool] = lambda: False) -> None:
        self._address = address
        self._closed = closed

    def _target(self, host: str = "127.0.0.1") -> str:
        if self._address is None or self._closed():
            # No instance is there (any more): to a caller that is a refused connection.
            raise ConnectionRefusedError("the instance's network is closed")
        # The instance's own loopback, seen from this machine, is its address.
        return self._address if host in ("127.0.0.1", "localhost") else host

    def address(self, port: int) -> tuple[str, int]:
        return (self._target(), port)

    def socket(self) -> Socket:
        self._target()
        return nodelay_socket()

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> Socket:
        return socket.create_connection((self._target(host), port), timeout=timeout)

    def close(self) -> None:
        self._address = None
