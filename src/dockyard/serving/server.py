"""The pre-fork server: one listening socket, N worker processes, each an asyncio HTTP/1.1 loop;
fast invocations run on the loop, slow ones in threads."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import invocations
from .errors import HandlerLoadError
from .handlers import Handlers, load_handlers
from .http1 import ProtocolError, Request, RequestParser, response_head
from .invocations import Result
from .settings import MIB, ServingSettings

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 75.0  # longer than common client pool idle times (60 s on AWS load balancers)
DRAIN_SECONDS = 10.0  # how long a stopping worker lets in-flight requests finish
BOOT_ERROR = 3  # a worker's exit code when the model cannot be loaded: restarting will not help
INLINE_SECONDS = 0.005  # invocations typically faster than this run on the event loop
_YIELD_SECONDS = 0.02  # the longest a busier worker leaves a new connection to the others
_MAX_QUEUED = 32  # pipelined requests buffered per connection before reading pauses
_ROUTES = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",), "/execution-parameters": ("GET",)}


class Scoreboard:
    """Per worker slot, in memory the workers share with the arbiter: its open connections (-1:
    no worker), so a worker can leave a new connection to a less loaded one; and since when it
    has been running an invocation on its event loop (0: not), so a hung one can be killed."""

    _SLOT = 16  # bytes: int64 connections, float64 busy-since (time.monotonic, machine-wide)

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, self._SLOT * slots)  # anonymous, shared with forked workers
        for slot in range(slots):
            self.set(slot, -1)

    def get(self, slot: int) -> int:
        return int(struct.unpack_from("q", self._memory, self._SLOT * slot)[0])

    def set(self, slot: int, value: int) -> None:
        struct.pack_into("q", self._memory, self._SLOT * slot, value)

    def add(self, slot: int, change: int) -> None:
        self.set(slot, self.get(slot) + change)  # only the slot's own worker writes it

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The smallest load among the other live workers; None if there is none."""
        others = [self.get(i) for i in range(self.slots) if i != slot]
        live = [load for load in others if load >= 0]
        return min(live) if live else None

    def busy_since(self, slot: int) -> float:
        return float(struct.unpack_from("d", self._memory, self._SLOT * slot + 8)[0])

    def set_busy(self, slot: int, since: float) -> None:
        struct.pack_into("d", self._memory, self._SLOT * slot + 8, since)


class Worker:
    """One worker process's state: the loaded handlers, a thread pool and the open connections."""

    def __init__(
        self,
        settings: ServingSettings,
        handlers: Handlers,
        board: Scoreboard | None = None,
        slot: int = 0,
    ) -> None:
        self.settings = settings
        self.handlers = handlers
        self.board = board or Scoreboard(1)
        self.slot = slot
        self.pool = ThreadPoolExecutor(thread_name_prefix="invocation")
        # Unknown until invocations have run: start in threads, where a slow first call is safe.
        self.typical_seconds = INLINE_SECONDS * 4
        self.connections: set[Connection] = set()
        self.stopping = False

    async def handle(self, request: Request) -> Result:
        allowed = _ROUTES.get(request.path)
        if allowed is None:
            return invocations.error(
                404, f"no route {request.path}; the routes are {', '.join(_ROUTES)}"
            )
        if request.method not in allowed:
            result = invocations.error(405, f"{request.path} takes {' or '.join(allowed)}")
            return Result(
                result.status, result.body, result.content_type, (("Allow", ", ".join(allowed)),)
            )
        if request.path == "/ping":
            return invocations.ping(self.handlers)
        if request.path == "/execution-parameters":
            return invocations.execution_parameters(
                self.handlers, self.settings.workers, self.settings.max_payload_bytes // MIB
            )
        headers = request.headers
        timings: list[float] = []

        def call() -> Result:
            started = time.perf_counter()
            try:
                return invocations.invoke(
                    request.body,
                    headers.get("content-type") or headers.get("contenttype"),
                    headers.get("accept"),
                    self.handlers,
                    request_headers=headers,
                )
            finally:
                timings.append(time.perf_counter() - started)

        if self.typical_seconds < INLINE_SECONDS:
            # Fast handlers run right here: a hop to a thread and back costs more than they do.
            # The arbiter kills the worker if one hangs past the timeout (gunicorn's rule).
            self.board.set_busy(self.slot, time.monotonic())
            try:
                return call()
            finally:
                self.board.set_busy(self.slot, 0.0)
                self._learn(timings[0])
        try:
            return await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self.pool, call),
                self.settings.timeout_seconds,
            )
        except TimeoutError:
            self._learn(self.settings.timeout_seconds)
            log.error("an invocation timed out after %s s", self.settings.timeout_seconds)
            return invocations.error(
                504,
                f"the inference handler did not answer within {self.settings.timeout_seconds:g} s "
                "(SAGEMAKER_MODEL_SERVER_TIMEOUT)",
            )
        finally:
            if timings:
                self._learn(timings[0])

    def _learn(self, seconds: float) -> None:
        """A moving average of recent invocations' durations: slow ones move to threads, where
        the event loop stays free for /ping and the timeout is enforced per request."""
        self.typical_seconds = 0.8 * self.typical_seconds + 0.2 * seconds

    def stop(self) -> None:
        """Stop reading new requests: idle connections close now, busy ones after their answer."""
        self.stopping = True
        for connection in list(self.connections):
            connection.stop()


class Connection(asyncio.Protocol):
    """One client connection: parse requests as bytes arrive, answer them in order, and close it
    when the client takes too long to send one (the deadlines are in `_deadline`)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.settings = worker.settings
        self.parser = RequestParser(worker.settings.max_payload_bytes, self._continue)
        self.queue: collections.deque[Request | ProtocolError] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        # One timer at a time, armed no later than the deadline; when it fires it looks again, so
        # progress on the client's side costs a few assignments, not a new timer per packet.
        self.timer: asyncio.TimerHandle | None = None
        self.since = 0.0  # when the wait for the next request, or for the rest of its head, began
        self.head_mark = -1  # parser.heads when `since` was set for a partial head
        self.body_mark = -1  # parser.heads when the body clocks below were started
        self.body_since = 0.0
        self.body_last = 0.0  # when the latest body bytes arrived
        self.body_bytes = 0
        self.paused = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.worker.connections.add(self)  # counted in `board` already, when accepted
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.parser.discard()
        if self in self.worker.connections:
            self.worker.connections.discard(self)
            self.worker.board.add(self.worker.slot, -1)
        if self.timer:
            self.timer.cancel()
        if self.task and not self.task.done():
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        parser = self.parser
        try:
            self.queue.extend(parser.feed(data))
        except ProtocolError as exc:
            self.queue.extend(exc.requests)
            self._refuse(exc)
        except Exception:  # a bug in the parser: still answer, and show where it is
            log.exception("could not parse a request")
            self._refuse(ProtocolError(400, "the request could not be read"))
        else:
            if not parser.idle:
                self._progress(len(data))
        if len(self.queue) >= _MAX_QUEUED:
            self._pause()
        if self.queue and (self.task is None or self.task.done()):
            self.task = self.loop.create_task(self._answer())

    def _refuse(self, exc: ProtocolError) -> None:
        assert self.transport is not None
        host, port = (self.transport.get_extra_info("peername") or ("?", 0))[:2]
        log.warning("refused a request from %s:%s: %d %s", host, port, exc.status, exc.message)
        self.queue.append(exc)  # answered in order, after any pipelined requests before it
        self.closing = True
        self._pause()

    def _progress(self, received: int) -> None:
        """Part of a request has arrived: start its clock, or note that its body moves."""
        parser, now = self.parser, self.loop.time()
        if parser.in_body:
            if self.body_mark != parser.heads:
                self.body_mark, self.body_since, self.body_bytes = parser.heads, now, 0
            self.body_bytes += received
            self.body_last = now
            self._wake_by(now + self.settings.body_timeout_seconds)
        elif self.head_mark != parser.heads:
            self.head_mark, self.since = parser.heads, now
            self._wake_by(now + self.settings.header_timeout_seconds)

    def _waiting(self) -> None:
        """Nothing is left to answer: from now on the client is the one keeping us waiting."""
        now = self.loop.time()
        self.since = self.body_since = self.body_last = now
        self.body_bytes = 0
        self._wake_by(self._deadline()[0])

    def _deadline(self) -> tuple[float, str]:
        """When the client's time is up while the server waits on it, and for what: the next
        request (a keep-alive connection), the rest of a request head, or the rest of a body."""
        settings, parser = self.settings, self.parser
        if parser.in_body:
            at = self.body_last + settings.body_timeout_seconds
            if settings.body_min_rate:
                at = min(
                    at,
                    self.body_since
                    + settings.body_timeout_seconds
                    + self.body_bytes / settings.body_min_rate,
                )
            return at, "body"
        if parser.in_head:
            return self.since + settings.header_timeout_seconds, "head"
        return self.since + KEEPALIVE_SECONDS, "next request"

    def _wake_by(self, at: float) -> None:
        timer = self.timer
        if timer is None or timer.when() > at:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closing or self.busy:
            return  # while answering, the wait is the server's; `_waiting` starts it again
        at, waiting_for = self._deadline()
        if self.loop.time() < at:
            self.timer = self.loop.call_at(at, self._on_timer)
        else:
            self._time_out(waiting_for)

    def _time_out(self, waiting_for: str) -> None:
        transport = self.transport
        assert transport is not None
        self.closing = True
        if waiting_for != "next request":  # a request has begun: say why it is cut off
            settings = self.settings
            if waiting_for == "head":
                message = (
                    f"the request head did not arrive within {settings.header_timeout_seconds:g} s"
                    " (DOCKYARD_SERVING_HEADER_TIMEOUT)"
                )
            elif self.loop.time() >= self.body_last + settings.body_timeout_seconds:
                message = (
                    f"no more of the request body arrived for {settings.body_timeout_seconds:g} s"
                    " (DOCKYARD_SERVING_BODY_TIMEOUT)"
                )
            else:
                message = (
                    f"the request body arrived slower than {settings.body_min_rate} bytes/s"
                    " (DOCKYARD_SERVING_BODY_MIN_RATE)"
                )
            host, port = (transport.get_extra_info("peername") or ("?", 0))[:2]
            log.info("closed the connection from %s:%s: %s", host, port, message)
            result = invocations.error(408, message)
            head = response_head(408, result.content_type, len(result.body), keep_alive=False)
            transport.write(head + result.body)
        transport.close()

    def _continue(self) -> None:
        # Only when nothing earlier is waiting: an interim answer must not overtake earlier ones.
        if self.transport and not self.queue and (self.task is None or self.task.done()):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _answer(self) -> None:
        transport = self.transport
        assert transport is not None
        while self.queue:
            item = self.queue.popleft()
            if isinstance(item, ProtocolError):
                result, keep_alive, head_only = (
                    invocations.error(item.status, item.message),
                    False,
                    False,
                )
            else:
                result = await self.worker.handle(item)
                keep_alive, head_only = item.keep_alive, item.method == "HEAD"
            if transport.is_closing():
                return
            keep_alive = keep_alive and not self.worker.stopping
            head = response_head(
                result.status, result.content_type, len(result.body), result.headers, keep_alive
            )
            transport.write(head if head_only or not result.body else head + result.body)
            if not keep_alive:
                self.closing = True
                transport.close()
                return
            if self.paused and len(self.queue) < _MAX_QUEUED // 2:
                self.paused = False
                transport.resume_reading()
        if self.worker.stopping:
            transport.close()
        else:
            self._waiting()

    def _pause(self) -> None:
        if not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()

    @property
    def busy(self) -> bool:
        return bool(self.queue) or (self.task is not None and not self.task.done())

    def stop(self) -> None:
        if self.transport and not self.busy and self.parser.idle:
            self.transport.close()


async def _serve_worker(sock: socket.socket, worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    starting: set[asyncio.Task[Any]] = set()  # held so they are not collected mid-way
    board, slot = worker.board, worker.slot
    board.set(slot, 0)
    # When this worker began leaving a pending connection to the others, and when it last did.
    yielding = {"since": 0.0, "last": -1.0}

    def listen() -> None:
        if not stop.is_set():
            loop.add_reader(sock.fileno(), accept_one)

    def accept_one() -> None:
        # Every worker is woken by a new connection. The one with the fewest open connections
        # takes it, one per wake-up (not asyncio's batch of up to `backlog`), so keep-alive
        # clients spread over all workers instead of piling onto whichever woke first. A worker
        # with more steps back briefly, but never longer than _YIELD_SECONDS.
        fewest = board.fewest_elsewhere(slot)
        if fewest is not None and board.get(slot) > fewest:
            now = loop.time()
            if now - yielding["last"] > _YIELD_SECONDS:  # a new connection, not the same one
                yielding["since"] = now
            if now - yielding["since"] < _YIELD_SECONDS:
                yielding["last"] = now
                loop.remove_reader(sock.fileno())
                loop.call_later(_YIELD_SECONDS / 5, listen)
                return
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError as exc:
            log.warning("accept failed: %s", exc)
            return
        conn.setblocking(False)
        board.add(slot, 1)  # now, not when the protocol starts: the next wake-up must see it
        task = loop.create_task(loop.connect_accepted_socket(lambda: Connection(worker), conn))
        starting.add(task)
        task.add_done_callback(started)

    def started(task: asyncio.Task[Any]) -> None:
        starting.discard(task)
        if task.cancelled() or task.exception() is not None:
            board.add(slot, -1)

    listen()
    await stop.wait()
    loop.remove_reader(sock.fileno())
    worker.stop()
    deadline = loop.time() + DRAIN_SECONDS
    while worker.connections and loop.time() < deadline:
        await asyncio.sleep(0.02)
    for connection in list(worker.connections):
        if connection.transport:
            connection.transport.abort()
    worker.pool.shutdown(wait=False, cancel_futures=True)


def run_worker(
    sock: socket.socket,
    settings: ServingSettings,
    handlers: Handlers | None,
    board: Scoreboard | None = None,
    slot: int = 0,
) -> int:
    """A worker process's body: load the model unless inherited, then serve until SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for the group
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if handlers is None:
        try:
            handlers = load_handlers(settings)
        except HandlerLoadError as exc:
            log.error("%s", exc)
            return BOOT_ERROR
    asyncio.run(_serve_worker(sock, Worker(settings, handlers, board, slot)))
    return 0


def _spawn(
    sock: socket.socket,
    settings: ServingSettings,
    handlers: Handlers | None,
    board: Scoreboard,
    slot: int,
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = run_worker(sock, settings, handlers, board, slot)
    except BaseException:
        log.exception("worker %d crashed", os.getpid())
    finally:
        logging.shutdown()
        os._exit(code)


@contextlib.contextmanager
def _signals_waited_for(signals: set[signal.Signals]) -> Iterator[None]:
    """Block ``signals`` so the parent takes them with sigtimedwait; restore everything on exit."""
    old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)  # make sure SIGCHLD is generated
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGCHLD, old_chld)


def bind(settings: ServingSettings) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Arbiter:
    """The parent: owns the socket, keeps ``workers`` children alive, stops them on SIGTERM."""

    def __init__(self, settings: ServingSettings, sock: socket.socket, handlers: Handlers | None):
        self.settings = settings
        self.sock = sock
        self.handlers = handlers
        self.board = Scoreboard(settings.workers)
        self.workers: dict[int, int] = {}  # pid -> slot in `board`
        self.exit_code = 0
        self.stopping = False

    def run(self) -> int:
        waited = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
        with _signals_waited_for(waited):
            for slot in range(self.settings.workers):
                self._start(slot)
            log.info(
                "serving on %s:%d with %d workers",
                self.settings.host,
                self.settings.port,
                self.settings.workers,
            )
            while not self.stopping:
                info = signal.sigtimedwait(waited, 1.0)
                self._reap()
                self._kill_hung()
                if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    log.info("stopping: %s", signal.Signals(info.si_signo).name)
                    self.stopping = True
            self._stop_workers(waited)
        return self.exit_code

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.workers.pop(pid, None)
            if slot is None:
                continue
            self.board.set(slot, -1)  # its connections died with it
            self.board.set_busy(slot, 0.0)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                continue
            if code == BOOT_ERROR:
                log.error("worker %d could not load the model; stopping the server", pid)
                self.exit_code = 1
                self.stopping = True
            else:
                log.warning("worker %d exited with %d; starting a new one", pid, code)
                self._start(slot)

    def _kill_hung(self) -> None:
        """A worker stuck in an invocation on its event loop can't time it out itself."""
        limit = self.settings.timeout_seconds + 1.0
        now = time.monotonic()
        for pid, slot in self.workers.items():
            since = self.board.busy_since(slot)
            if since and now - since > limit:
                log.error(
                    "worker %d has been in one invocation for over %g s "
                    "(SAGEMAKER_MODEL_SERVER_TIMEOUT); killing it",
                    pid,
                    self.settings.timeout_seconds,
                )
                self.board.set_busy(slot, 0.0)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _start(self, slot: int) -> None:
        pid = _spawn(self.sock, self.settings, self.handlers, self.board, slot)
        self.workers[pid] = slot

    def _stop_workers(self, waited: set[signal.Signals]) -> None:
        self.sock.close()
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_SECONDS + 2.0
        while self.workers and time.monotonic() < deadline:
            signal.sigtimedwait(waited, 0.1)
            self._reap()
        for pid in self.workers:
            log.warning("worker %d did not stop in time; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def serve() -> int:
    """Start the server from ``SAGEMAKER_*`` settings; returns the exit code (0 after SIGTERM)."""
    try:
        settings = ServingSettings.from_environ()
    except ValueError as exc:
        print(f"dockyard.serving: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    handlers = None
    if settings.preload_model:
        try:
            handlers = load_handlers(settings)
        except HandlerLoadError as exc:
            log.error("%s", exc)
            return 1
    try:
        sock = bind(settings)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    return Arbiter(settings, sock, handlers).run()
