"""Log lines in the metadata database, as CloudWatch Logs has them (groups, streams, events in
order), and the base of the metadata store: its database, its sessions and its write
transactions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from dockyard.storage.database import Database
from dockyard.storage.tables import LogEventRow


@dataclass(frozen=True)
class LogStream:
    name: str
    first_event: int
    last_event: int
    last_ingestion: int
    stored_bytes: int


@dataclass(frozen=True)
class LogEvent:
    sequence: int
    timestamp: int
    ingestion_time: int
    message: str
    stream: str = ""


@dataclass(frozen=True)
class LogGroup:
    name: str
    creation_time: int  # the first event's ingestion (a group exists from its first event)
    stored_bytes: int


def _starts_with(column: InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    """Exactly `prefix`, case and all, on both backends (SQLite's LIKE ignores ASCII case)."""
    return func.substr(column, 1, len(prefix)) == prefix


class LogEventStore:
    """Log lines of jobs and endpoints; MetadataStore is one, with everything else."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sessions = sessionmaker(db.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(db.writer, expire_on_commit=False)

    def _write(self) -> WriteSession:
        return WriteSession(self._write_sessions(), self._db.write_lock)

    def append_log_events(self, group: str, stream: str, events: Sequence[tuple[int, str]]) -> None:
        if not events:
            return
        now = int(time.time() * 1000)
        with self._write() as session:
            self._db.lock_log_stream(session.connection(), group, stream)
            session.add_all(
                LogEventRow(
                    group_name=group,
                    stream_name=stream,
                    timestamp=ts,
                    ingestion_time=now,
                    message=message,
                )
                for ts, message in events
            )

    def log_streams(self, group: str, prefix: str = "") -> list[LogStream]:
        query = (
            select(
                LogEventRow.stream_name,
                func.min(LogEventRow.timestamp),
                func.max(LogEventRow.timestamp),
                func.max(LogEventRow.ingestion_time),
                func.sum(func.length(LogEventRow.message)),
            )
            .where(LogEventRow.group_name == group)
            .group_by(LogEventRow.stream_name)
            .order_by(self._db.binary(LogEventRow.stream_name))
        )
        if prefix:
            query = query.where(_starts_with(LogEventRow.stream_name, prefix))
        with self._sessions() as session:
            return [
                LogStream(n, int(a), int(b), int(c), int(d or 0))
                for n, a, b, c, d in session.execute(query)
            ]

    def log_events(
        self,
        group: str,
        stream: str,
        *,
        after: int | None = None,
        before: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 10000,
        from_head: bool = True,
    ) -> list[LogEvent]:
        """Events of one stream in order; `after`/`before` are sequence numbers (event ids)."""
        query = select(LogEventRow).where(
            LogEventRow.group_name == group, LogEventRow.stream_name == stream
        )
        if after is not None:
            query = query.where(LogEventRow.id > after)
        if before is not None:
            query = query.where(LogEventRow.id < before)
        if start_time is not None:
            query = query.where(LogEventRow.timestamp >= start_time)
        if end_time is not None:
            query = query.where(LogEventRow.timestamp < end_time)
        query = query.order_by(LogEventRow.id if from_head else LogEventRow.id.desc()).limit(limit)
        with self._sessions() as session:
            rows = [
                LogEvent(r.id, r.timestamp, r.ingestion_time, r.message)
                for r in session.scalars(query)
            ]
        return rows if from_head else rows[::-1]

    def log_groups(self, prefix: str = "") -> list[LogGroup]:
        query = (
            select(
                LogEventRow.group_name,
                func.min(LogEventRow.ingestion_time),
                func.sum(func.length(LogEventRow.message)),
            )
            .group_by(LogEventRow.group_name)
            .order_by(self._db.binary(LogEventRow.group_name))
        )
        if prefix:
            query = query.where(_starts_with(LogEventRow.group_name, prefix))
        with self._sessions() as session:
            return [LogGroup(n, int(c), int(b or 0)) for n, c, b in session.execute(query)]

    def filter_log_events(
        self,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        stream_prefix: str = "",
        start_time: int | None = None,
        end_time: int | None = None,
        contains: Sequence[str] = (),
        after: tuple[int, int] | None = None,
        limit: int = 10000,
    ) -> list[LogEvent]:
        """Events of a group across its streams, by (timestamp, id): time order, then the
        order they were written. `contains`: substrings every message has (SQL's LIKE, which
        may ignore case: the caller checks exactly). `after`: the (timestamp, id) to go on
        from."""
        query = select(LogEventRow).where(LogEventRow.group_name == group)
        if streams is not None:
            query = query.where(LogEventRow.stream_name.in_(list(streams)))
        if stream_prefix:
            query = query.where(_starts_with(LogEventRow.stream_name, stream_prefix))
        if start_time is not None:
            query = query.where(LogEventRow.timestamp >= start_time)
        if end_time is not None:
            query = query.where(LogEventRow.timestamp <= end_time)
        for text in contains:
            query = query.where(LogEventRow.message.contains(text, autoescape=True))
        if after is not None:
            timestamp, sequence = after
            query = query.where(
                (LogEventRow.timestamp > timestamp)
                | ((LogEventRow.timestamp == timestamp) & (LogEventRow.id > sequence))
            )
        query = query.order_by(LogEventRow.timestamp, LogEventRow.id).limit(limit)
        with self._sessions() as session:
            return [
                LogEvent(r.id, r.timestamp, r.ingestion_time, r.message, r.stream_name)
                for r in session.scalars(query)
            ]


class WriteSession:
    """A write transaction's session, which commits on success, under the store's write lock
    (SQLite's: one writer of this process at a time)."""

    def __init__(self, session: Session, lock: AbstractContextManager[Any]) -> None:
        self._session = session
        self._lock = lock

    def __enter__(self) -> Session:
        self._lock.__enter__()
        return self._session

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._session.commit()
            else:
                self._session.rollback()
        finally:
            self._session.close()
            self._lock.__exit__(None, None, None)
