"""The metadata store's database connection: which driver a URL means, and what each backend needs
so that the same store behaves the same on both: SQLite's pragmas and write transactions,
PostgreSQL's driver, row order and locks."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from dockyard.contract.errors import MetadataUnavailable

# psycopg 3 is the PostgreSQL driver: `postgresql://` (and Heroku-style `postgres://`) URLs name
# it here, once, so that users write the URL every PostgreSQL tool takes.
_POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
_PSYCOPG = "postgresql+psycopg://"
# A write transaction marks its connection with this execution option (SQLite: BEGIN IMMEDIATE).
_WRITE = "dockyard_write"
# Advisory lock keys: 64-bit ones for migrations ("dockyard" in ASCII) and for the server that
# owns the database; log streams use the two-key form (this class, a hash of the stream), a space
# apart from the first.
_MIGRATIONS_LOCK = 0x646F636B79617264
_SERVER_LOCK = _MIGRATIONS_LOCK + 1
_SQLITE_BUSY_MS = 10_000
_LOG_STREAM_LOCKS = 1


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a DOCKYARD_DATABASE_URL: PostgreSQL through psycopg 3."""
    for scheme in _POSTGRESQL_SCHEMES:
        if url.startswith(scheme):
            return _PSYCOPG + url.removeprefix(scheme)
    return url


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts a transaction lazily, before the first write
    # only: a read-then-write transaction may then fail at once with "database is locked" when
    # another connection wrote in between. Transactions are begun here instead (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The busy timeout rides out writer overlap (first: the statements below may wait too).
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
    # WAL lets the API read while job threads write. The mode is kept in the file: only the
    # first connection to a new database changes it, and a change that meets another connection
    # fails at once instead of waiting (servers starting together on a new file), so it is
    # tried again until the busy timeout.
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A write transaction takes SQLite's one write lock before it reads (BEGIN IMMEDIATE): what
    # it reads cannot change under it, which is what PostgreSQL's row locks give the other side.
    # A read transaction sees one snapshot from its first read on.
    write = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@dataclass(frozen=True)
class Database:
    """Engines over one connection pool: `engine` for reads, `writer` for write transactions,
    `snapshot` for reads of several statements that must see one moment."""

    url: str
    engine: Engine
    writer: Engine
    snapshot: Engine
    postgresql: bool
    # Held by a write transaction of this process. SQLite has one writer at a time, and
    # serialising our own writers avoids its busy waits; PostgreSQL locks rows instead.
    write_lock: contextlib.AbstractContextManager[Any]

    @classmethod
    def open(cls, url: str) -> Database:
        sa_url = engine_url(url)
        if sa_url.startswith("sqlite:///"):
            Path(sa_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            postgresql = make_url(sa_url).get_backend_name() == "postgresql"
            if postgresql:
                # Pre-ping: a pooled connection that a PostgreSQL restart closed is replaced,
                # not handed to a request. The timeout bounds a server start on an unreachable
                # host.
                engine = create_engine(
                    sa_url, pool_pre_ping=True, connect_args={"connect_timeout": 10}
                )
            else:
                engine = create_engine(sa_url)
        except (ArgumentError, ImportError) as exc:
            raise MetadataUnavailable(
                f"cannot use the metadata database {shown_url(url)} ({exc}): DOCKYARD_DATABASE_URL "
                "takes sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        snapshot = engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            lock = threading.Lock()
        elif postgresql:
            # A read-only repeatable-read transaction sees one snapshot and never conflicts.
            snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
        writer = engine.execution_options(**{_WRITE: True})
        return cls(url, engine, writer, snapshot, postgresql, lock)

    def binary(
        self, column: ColumnElement[Any] | InstrumentedAttribute[Any]
    ) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
        """`column` compared byte by byte when sorting. SQLite does so already; a PostgreSQL
        database sorts by its locale (en_US puts "a-c" before "ab" before "B"), which would
        make List* pages differ between the backends."""
        return column.collate("C") if self.postgresql else column

    def lock_migrations(self, connection: Connection) -> None:
        """Servers starting together on one database migrate one after the other (SQLite: the
        migration's own write transaction does this)."""
        if self.postgresql:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATIONS_LOCK}
            )

    def lock_log_stream(self, connection: Connection, group: str, stream: str) -> None:
        """Writers of one log stream take turns until they commit, so that a stream's event ids
        are committed in order: a reader that goes on from the last id it saw misses nothing
        (a PostgreSQL sequence hands ids out before commit; SQLite has one writer)."""
        if self.postgresql:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:space, hashtext(:stream))"),
                {"space": _LOG_STREAM_LOCKS, "stream": f"{group}\n{stream}"},
            )

    def try_server_lock(self, connection: Connection) -> bool:
        """Take the lock of the one server of this PostgreSQL database on `connection`, for as
        long as that connection lives. PostgreSQL ends the connection of a machine that went
        away within about 30 s (the keepalives set here)."""
        for setting in ("tcp_keepalives_idle = 10", "tcp_keepalives_interval = 5",
                        "tcp_keepalives_count = 3"):  # fmt: skip
            connection.exec_driver_sql(f"SET {setting}")
        query = text("SELECT pg_try_advisory_lock(:key)")
        return bool(connection.execute(query, {"key": _SERVER_LOCK}).scalar())

    def server_lock_holder(self, connection: Connection) -> str:
        """Who holds the server lock, as PostgreSQL sees the session: for a message."""
        row = connection.execute(
            text(
                "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
            ),
            {"high": _SERVER_LOCK >> 32, "low": _SERVER_LOCK & 0xFFFFFFFF},
        ).first()
        if row is None:
            return "a session that has just ended"
        since = f"{row.backend_start:%Y-%m-%d %H:%M:%S %Z}"
        return f"session pid {row.pid} from {row.client_addr or 'a local socket'} since {since}"

    def unavailable(self, exc: Exception) -> MetadataUnavailable:
        """What a user reads when the database cannot be opened or migrated."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return MetadataUnavailable(
            f"cannot open the metadata database {shown_url(self.url)}: {reason}. Check "
            "DOCKYARD_DATABASE_URL, that the database server runs and that the database exists "
            "and lets this user create tables (README: Settings)"
        )

    def close(self) -> None:
        self.engine.dispose()
