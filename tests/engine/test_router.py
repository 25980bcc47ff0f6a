"""The router's choices (a variant by weight, then the instance with the fewest requests) and
its retries (a request no instance got goes anywhere; one an instance lost, to one more)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from dockyard.contract.errors import DockyardError, ValidationError
from dockyard.engine.instances import PORT
from dockyard.engine.router import (
    Invocation,
    NoInstanceReady,
    Reply,
    RequestCrashedInstances,
    Route,
    Router,
    Variant,
)
from dockyard.runtimes.netns import Network


@dataclass
class FakeInstance:
    """Only what selection reads; the router's real I/O is tested against real sandboxes."""

    name: str
    in_flight: int = 0
    idle: list[Any] = field(default_factory=list)


def route(*variants: Variant) -> Route:
    return Route("endpoint", variants)


def test_the_instance_with_fewest_requests_in_flight_wins() -> None:
    a, b, c = FakeInstance("a", 3), FakeInstance("b", 1), FakeInstance("c", 2)
    r = route(Variant("AllTraffic", 1.0, (a, b, c)))  # type: ignore[arg-type]
    variant = r.variant(None)
    assert [r.instance(variant, set()).name for _ in range(5)] == ["b"] * 5  # type: ignore[union-attr]


def test_ties_go_round_the_instances() -> None:
    instances = tuple(FakeInstance(n) for n in "abc")
    r = route(Variant("AllTraffic", 1.0, instances))  # type: ignore[arg-type]
    variant = r.variant(None)
    picked = [r.instance(variant, set()).name for _ in range(6)]  # type: ignore[union-attr]
    assert sorted(picked) == ["a", "a", "b", "b", "c", "c"]


def test_failed_instances_are_skipped_then_none_is_left() -> None:
    a, b = FakeInstance("a"), FakeInstance("b")
    r = route(Variant("AllTraffic", 1.0, (a, b)))  # type: ignore[arg-type]
    variant = r.variant(None)
    assert r.instance(variant, {"a"}).name == "b"  # type: ignore[union-attr]
    assert r.instance(variant, {"a", "b"}) is None


def test_weights_share_the_traffic() -> None:
    random.seed(7)
    r = route(
        Variant("Blue", 9.0, (FakeInstance("b1"),)),  # type: ignore[arg-type]
        Variant("Green", 1.0, (FakeInstance("g1"),)),  # type: ignore[arg-type]
    )
    picks = [r.variant(None).name for _ in range(2000)]
    assert 1700 < picks.count("Blue") < 1900


def test_a_variant_without_instances_gets_nothing() -> None:
    r = route(
        Variant("Blue", 1.0, ()),
        Variant("Green", 1.0, (FakeInstance("g1"),)),  # type: ignore[arg-type]
    )
    assert {r.variant(None).name for _ in range(50)} == {"Green"}
    with pytest.raises(NoInstanceReady):
        route(Variant("Blue", 1.0, ())).variant(None)


def test_an_unknown_target_variant_is_a_validation_error() -> None:
    r = route(Variant("Blue", 1.0, ()))
    with pytest.raises(ValidationError, match="Target variant Red does not exist"):
        r.variant("Red")
    assert r.variant("Blue").name == "Blue"


# -- retries: only what is safe ----------------------------------------------------------------
# Each instance is a real network namespace with a server on its port 8080 (a thread of this
# process listening on a socket of the namespace), reached the way the router reaches containers.

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"


class NamespaceServer:
    """What a container does on 8080, by `behaviour`: "answer" (keep-alive), "crash on boom"
    (closes the connection without answering when the body is `boom`, as a dying model does),
    "close idle" (answers, then closes the kept-alive connection), "down" (nothing listens)."""

    def __init__(self, name: str, behaviour: str) -> None:
        self.name = name
        self.in_flight = 0
        self.idle: list[Any] = []
        self.served = 0
        self.network = Network.create(outside=False)
        self.connector = self.network.connector()
        self.received: list[bytes] = []  # bodies of whole requests that reached it
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        if behaviour != "down":
            self._listener = self.connector.socket()
            self._listener.setblocking(True)
            self._listener.bind(("127.0.0.1", PORT))
            self._listener.listen()
            threading.Thread(target=self._accept, args=(behaviour,), daemon=True).start()

    def _accept(self, behaviour: str) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, behaviour), daemon=True).start()

    def _serve(self, conn: socket.socket, behaviour: str) -> None:
        with conn:
            while (body := _request_body(conn)) is not None:
                with self._lock:
                    self.received.append(body)
                if behaviour == "crash on boom" and body == b"boom":
                    return
                answer = self.name.encode()
                if behaviour == "close idle":
                    # The answer and the end of the connection in one segment: the router sees
                    # the answer with the close already in its socket when it reuses the connection.
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    conn.sendall(ANSWER % (len(answer), answer))
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(ANSWER % (len(answer), answer))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.connector.close()
        self.network.close()


def _request_body(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += conn.recv(65536)
    return body


@pytest.fixture
def instances() -> Iterator[Callable[..., list[NamespaceServer]]]:
    made: list[NamespaceServer] = []

    def make(*behaviours: str) -> list[NamespaceServer]:
        for n, behaviour in enumerate(behaviours, 1):
            made.append(NamespaceServer(f"AllTraffic-{n}", behaviour))
        return made

    yield make
    for server in made:
        server.close()


def invoke(servers: list[NamespaceServer], *bodies: bytes, run: Any = asyncio.run) -> list[Any]:
    """Each body through a Router over `servers`, one after the other: its Reply or its error."""

    async def main() -> list[Any]:
        router = Router(timeout=10)
        router.publish("e", [Variant("AllTraffic", 1.0, tuple(servers))])  # type: ignore[arg-type]
        results: list[Any] = []
        for body in bodies:
            try:
                results.append(await router.invoke("e", Invocation(body, [])))
            except DockyardError as exc:
                results.append(exc)
        for server in servers:
            for connection in server.idle:
                connection.close()
        return results

    return run(main())  # type: ignore[no-any-return]


def test_a_request_no_instance_got_goes_to_another(instances) -> None:  # type: ignore[no-untyped-def]
    servers = instances("down", "down", "answer")
    replies = invoke(servers, b"a", b"b", b"c")
    assert [r.instance for r in replies] == ["AllTraffic-3"] * 3
    assert servers[2].received == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    "run", [pytest.param(asyncio.run, id="asyncio"), pytest.param(uvloop.run, id="uvloop")]
)
def test_kept_alive_connections_the_container_closed_cost_nothing(instances, run, caplog) -> None:  # type: ignore[no-untyped-def]
    servers = instances("close idle", "close idle")
    bodies = [b"%d" % i for i in range(20)]
    replies = invoke(servers, *bodies, run=run)
    assert all(isinstance(r, Reply) and r.status == 200 for r in replies), replies
    assert sorted(servers[0].received + servers[1].received) == sorted(bodies)
    assert not [r for r in caplog.records if "lost a request" in r.getMessage()]


def test_a_request_that_kills_an_instance_gets_one_more_and_no_third(instances) -> None:  # type: ignore[no-untyped-def]
    servers = instances("crash on boom", "crash on boom", "crash on boom", "crash on boom")
    before, crash, after = invoke(servers, b"x", b"boom", b"y")
    assert isinstance(before, Reply) and isinstance(after, Reply)
    assert isinstance(crash, RequestCrashedInstances)
    assert (crash.code, crash.http_status) == ("ModelError", 424)
    reached = [s.name for s in servers if b"boom" in s.received]
    assert len(reached) == 2  # and not the other two

    def said(first: str, second: str) -> str:
        return (
            f"The request reached 2 instances of endpoint e and got no answer: {first}: the "
            f"instance closed the connection; {second}: the instance closed the connection. The "
            "request likely crashes the model (see the endpoint's log); it was not sent to a third"
        )

    assert crash.message in (said(*reached), said(*reversed(reached)))


def test_a_lost_request_is_retried_once_and_can_succeed(instances) -> None:  # type: ignore[no-untyped-def]
    servers = instances("crash on boom", "answer")
    replies = invoke(servers, *[b"boom"] * 4)
    # Whichever instance it reaches first: it ends on AllTraffic-2, which answers.
    assert [r.instance for r in replies] == ["AllTraffic-2"] * 4
    assert servers[1].received == [b"boom"] * 4
    assert 0 < len(servers[0].received) <= 4


def test_a_lost_request_with_no_other_instance_is_the_models_failure(instances) -> None:  # type: ignore[no-untyped-def]
    [server] = instances("crash on boom")
    [crash] = invoke([server], b"boom")
    assert isinstance(crash, RequestCrashedInstances)
    assert crash.message.endswith("no other instance could take it")
    assert "reached 1 instance of endpoint e" in crash.message
    assert server.received == [b"boom"]


def test_no_reachable_instance_is_service_unavailable(instances) -> None:  # type: ignore[no-untyped-def]
    [unavailable] = invoke(instances("down", "down"), b"x")
    assert isinstance(unavailable, NoInstanceReady)
    assert "Connection refused" in unavailable.message
