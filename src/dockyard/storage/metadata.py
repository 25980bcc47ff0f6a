"""The metadata store: named resources of every kind (training jobs, models, endpoint configs,
endpoints, transform jobs), training jobs' status transitions, tags, log lines and metrics in
SQL (SQLite in WAL mode by default, or PostgreSQL), with the schema kept by Alembic migrations.
Several stores (servers) may share one database: every read-modify-write locks what it reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dockyard.contract.errors import (
    DockyardError,
    MetadataUnavailable,
    NotFoundError,
    ResourceInUse,
    ResourceLimitExceeded,
    ValidationError,
)
from dockyard.storage.database import Database, shown_url
from dockyard.storage.metrics import EndpointMetricBucket, MetricPoint, MetricStore
from dockyard.storage.records import (
    TRAINING_JOBS,
    Kind,
    Listed,
    Record,
    Request,
    State,
    TrainingJobRecord,
)
from dockyard.storage.tables import (
    MetricPointRow,
    ResourceRow,
    StatusTransitionRow,
    TagRow,
)

# Metric records live in storage/metrics.py; callers name them from here, with the store.
__all__ = ["EndpointMetricBucket", "MetadataStore", "MetricPoint", "TrainingJobView", "Transition"]

_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Transition:
    status: str
    start_time: float
    end_time: float | None
    message: str | None


@dataclass(frozen=True)
class TrainingJobView:
    """What DescribeTrainingJob shows of a job, read at one moment."""

    record: TrainingJobRecord
    transitions: list[Transition]
    final_metrics: list[MetricPoint]


def _row(kind: Kind[Request, State], record: Record[Request, State]) -> ResourceRow:
    return ResourceRow(
        kind=kind.name,
        name=record.name,
        arn=record.arn,
        request=kind.dump_request(record.request),
        creation_time=record.creation_time,
        status=record.status,
        state=kind.dump_state(record.state),
        last_modified_time=record.last_modified_time,
    )


# `row` is an ORM ResourceRow or a Core row of its table: both have the columns as attributes.
def _listed(kind: Kind[Request, State], row: Any) -> Listed[State]:
    return Listed(
        name=row.name,
        arn=row.arn,
        creation_time=row.creation_time,
        state=kind.load_state(row.state),
        status=row.status,
        last_modified_time=row.last_modified_time,
    )


def _record_of(kind: Kind[Request, State], row: Any) -> Record[Request, State]:
    return Record(
        name=row.name,
        arn=row.arn,
        creation_time=row.creation_time,
        state=kind.load_state(row.state),
        status=row.status,
        last_modified_time=row.last_modified_time,
        request=kind.load_request(row.request),
    )


class MetadataStore(MetricStore):
    """All SQL of dockyard goes through here; callers get frozen records, never ORM rows
    (log lines: storage/log_events.py; metrics: storage/metrics.py).
    `url`: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE (storage/database.py).
    Raises MetadataUnavailable when the database cannot be opened or migrated."""

    def __init__(self, url: str) -> None:
        super().__init__(Database.open(url))
        self.engine: Engine = self._db.engine
        self._claimed: Connection | None = None
        try:
            self.migrate()
        except OperationalError as exc:
            self._db.close()
            raise self._db.unavailable(exc) from exc

    def migrate(self) -> None:
        """Bring the schema to the newest migration; nothing to do when it is there already."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._db.write_lock, self._db.writer.begin() as connection:
            self._db.lock_migrations(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def claim(self, wait_seconds: float = 5.0) -> None:
        """Make the database this store's server's own, until the store closes: a second server
        on a PostgreSQL database refuses to start (it would take the first one's running jobs
        for orphans). The lock of a killed server goes with its connection; a successor waits
        up to `wait_seconds` for that. Raises MetadataUnavailable naming the holder."""
        if not self._db.postgresql:
            return  # a SQLite file is its home's, and the home's server file keeps one server
        connection = self._db.engine.connect()
        deadline = time.monotonic() + wait_seconds
        while not self._db.try_server_lock(connection):
            if time.monotonic() > deadline:
                holder = self._db.server_lock_holder(connection)
                connection.close()
                self.close()
                raise MetadataUnavailable(
                    f"another dockyard server uses the metadata database "
                    f"{shown_url(self._db.url)} ({holder}): run one server per database. Stop "
                    "that server, or give this one a database of its own (DOCKYARD_DATABASE_URL)"
                )
            connection.rollback()
            time.sleep(0.2)
        connection.commit()  # the lock outlives the transaction; an idle one would not end
        self._claimed = connection

    def close(self) -> None:
        if self._claimed is not None:
            self._claimed.close()  # its session ends with the pool's below, and the lock with it
            self._claimed = None
        self._db.close()

    def _locked(
        self, session: Session, kind: Kind[Request, State], name: str
    ) -> ResourceRow | None:
        """The resource's row, locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite:
        the write transaction holds the database's write lock already)."""
        return session.get(ResourceRow, (kind.name, name), with_for_update=True)

    # -- training jobs: resources of their own kind, with status transitions and metrics ------

    def insert_training_job(self, record: TrainingJobRecord, first_transition: Transition) -> None:
        """The job and its first transition, in one transaction."""
        try:
            with self._write() as session:
                session.add(_row(TRAINING_JOBS, record))
                session.add(
                    StatusTransitionRow(
                        job_name=record.name,
                        status=first_transition.status,
                        start_time=first_transition.start_time,
                        message=first_transition.message,
                    )
                )
        except IntegrityError:
            raise ResourceInUse(f"Training job {record.name} already exists") from None

    def training_job(self, name: str) -> TrainingJobRecord:
        found = self.resource(TRAINING_JOBS, name)
        if found is None:
            raise NotFoundError("Requested resource not found.")
        return found

    def training_job_view(self, name: str) -> TrainingJobView:
        """The job, its transitions and its last metric values in one read transaction, with
        Core queries: on a busy control plane, ORM sessions and row loading cost more than the
        three indexed lookups themselves."""
        jobs, steps = ResourceRow.__table__, StatusTransitionRow.__table__
        points = MetricPointRow.__table__
        last_ids = (
            select(func.max(points.c.id))
            .where(points.c.job_name == name)
            .group_by(points.c.metric_name)
        )
        with self._db.snapshot.connect() as connection:
            row = connection.execute(
                select(jobs).where(jobs.c.kind == TRAINING_JOBS.name, jobs.c.name == name)
            ).first()
            if row is None:
                raise NotFoundError("Requested resource not found.")
            transitions = connection.execute(
                select(steps.c.status, steps.c.start_time, steps.c.end_time, steps.c.message)
                .where(steps.c.job_name == name)
                .order_by(steps.c.id)
            ).all()
            metrics = connection.execute(
                select(points.c.metric_name, points.c.value, points.c.timestamp, points.c.host)
                .where(points.c.id.in_(last_ids))
                .order_by(self._db.binary(points.c.metric_name))
            ).all()
        return TrainingJobView(
            _record_of(TRAINING_JOBS, row),
            [Transition(*t) for t in transitions],
            [MetricPoint(*m) for m in metrics],
        )

    def transition(
        self,
        name: str,
        status: str,
        at: float,
        message: str | None,
        check: Callable[[str], str],
        fields: Mapping[str, Any] | None = None,
        final: bool = False,
    ) -> None:
        """One transaction: read the job's secondary status, let `check` approve the move and
        name the primary status, close the open transition, open the new one (closed at once
        when `final`), and write the status with any other fields of the job's state."""
        with self._write() as session:
            row = self._locked(session, TRAINING_JOBS, name)
            if row is None:
                raise NotFoundError("Requested resource not found.")
            state = TRAINING_JOBS.load_state(row.state)
            primary = check(state.secondary_status)
            session.execute(
                update(StatusTransitionRow)
                .where(StatusTransitionRow.job_name == name, StatusTransitionRow.end_time.is_(None))
                .values(end_time=at)
            )
            session.add(
                StatusTransitionRow(
                    job_name=name,
                    status=status,
                    start_time=at,
                    end_time=at if final else None,
                    message=message,
                )
            )
            changes = {**(fields or {}), "secondary_status": status}
            row.state = TRAINING_JOBS.dump_state(TRAINING_JOBS.changed_state(state, changes))
            row.status, row.last_modified_time = primary, at

    def set_transition_message(self, name: str, message: str) -> None:
        """Replace the message of the job's latest transition."""
        with self._write() as session:
            if self._locked(session, TRAINING_JOBS, name) is None:  # a transition waits for us
                return
            last = session.scalar(
                select(func.max(StatusTransitionRow.id)).where(StatusTransitionRow.job_name == name)
            )
            if last is not None:
                session.execute(
                    update(StatusTransitionRow)
                    .where(StatusTransitionRow.id == last)
                    .values(message=message)
                )

    def transitions(self, name: str) -> list[Transition]:
        with self._sessions() as session:
            rows = session.scalars(
                select(StatusTransitionRow)
                .where(StatusTransitionRow.job_name == name)
                .order_by(StatusTransitionRow.id)
            )
            return [Transition(r.status, r.start_time, r.end_time, r.message) for r in rows]

    # -- named resources of every kind -------------------------------------------------------

    def insert_resource(
        self,
        kind: Kind[Request, State],
        record: Record[Request, State],
        exists_message: str,
        exists_error: type[DockyardError] = ValidationError,
    ) -> None:
        """Store a new resource; raises `exists_error(exists_message)` when one of its kind has
        its name (the database's primary key decides, whichever server asks)."""
        try:
            with self._write() as session:
                session.add(_row(kind, record))
        except IntegrityError:
            raise exists_error(exists_message) from None

    def resource(self, kind: Kind[Request, State], name: str) -> Record[Request, State] | None:
        with self._sessions() as session:
            row = session.get(ResourceRow, (kind.name, name))
            return None if row is None else _record_of(kind, row)

    def update_resource(
        self,
        kind: Kind[Request, State],
        name: str,
        *,
        status: str | None = None,
        state: Mapping[str, Any] | None = None,
        check: Callable[[Listed[State]], None] | None = None,
        at: float | None = None,
    ) -> None:
        """Change a resource's status and set fields of its state (None clears one), in one
        transaction, after `check` has seen the current resource (it raises to refuse, e.g. a
        transition the table forbids). Nothing happens when the resource does not exist."""
        with self._write() as session:
            row = self._locked(session, kind, name)
            if row is None:
                return
            if check is not None:
                check(_listed(kind, row))
            if status is not None:
                row.status = status
            if state:
                row.state = kind.dump_state(kind.changed_state(kind.load_state(row.state), state))
            row.last_modified_time = at if at is not None else time.time()

    def delete_resource(self, kind: Kind[Request, State], name: str) -> bool:
        """Delete the resource and its tags; False when there was none."""
        with self._write() as session:
            row = self._locked(session, kind, name)
            if row is None:
                return False
            session.execute(delete(TagRow).where(TagRow.resource_arn == row.arn))
            session.delete(row)
            return True

    def list_resources(
        self,
        kind: Kind[Request, State],
        *,
        name_contains: str | None = None,
        creation_after: float | None = None,
        creation_before: float | None = None,
        modified_after: float | None = None,
        modified_before: float | None = None,
        status_equals: str | None = None,
        sort_by: str = "CreationTime",
        descending: bool = True,
        offset: int = 0,
        limit: int = 10,
    ) -> list[Listed[State]]:
        query = select(ResourceRow).where(ResourceRow.kind == kind.name)
        if status_equals is not None:
            query = query.where(ResourceRow.status == status_equals)
        if name_contains:
            # Ignoring case, as SQLite's LIKE always did: both backends answer the same.
            query = query.where(ResourceRow.name.icontains(name_contains, autoescape=True))
        if creation_after is not None:
            query = query.where(ResourceRow.creation_time > creation_after)
        if creation_before is not None:
            query = query.where(ResourceRow.creation_time < creation_before)
        # Models and endpoint configs never change: their last modification is their creation.
        modified = func.coalesce(ResourceRow.last_modified_time, ResourceRow.creation_time)
        if modified_after is not None:
            query = query.where(modified > modified_after)
        if modified_before is not None:
            query = query.where(modified < modified_before)
        name = self._db.binary(ResourceRow.name)
        column = {"Name": name, "Status": self._db.binary(ResourceRow.status)}.get(
            sort_by, ResourceRow.creation_time
        )
        query = query.order_by(column.desc() if descending else column.asc(), name)
        with self._sessions() as session:
            rows = session.scalars(query.offset(offset).limit(limit))
            return [_listed(kind, row) for row in rows]

    def resources_of_kind(
        self, kind: Kind[Request, State], statuses: Iterable[str] | None = None
    ) -> list[Listed[State]]:
        query = select(ResourceRow).where(ResourceRow.kind == kind.name)
        if statuses is not None:
            query = query.where(ResourceRow.status.in_(list(statuses)))
        with self._sessions() as session:
            return [_listed(kind, row) for row in session.scalars(query)]

    def status_counts(self, kind: Kind[Request, State]) -> dict[str, int]:
        """How many resources of the kind are in each status (Prometheus' queue series), by
        one indexed count: a scrape reads no rows."""
        query = (
            select(ResourceRow.status, func.count())
            .where(ResourceRow.kind == kind.name, ResourceRow.status.is_not(None))
            .group_by(ResourceRow.status)
        )
        with self._sessions() as session:
            return {str(status): int(n) for status, n in session.execute(query)}

    # -- tags ----------------------------------------------------------------------------------

    def arn_exists(self, arn: str) -> bool:
        """Whether a resource of any kind has this ARN."""
        with self._sessions() as session:
            query = select(ResourceRow.arn).where(ResourceRow.arn == arn).limit(1)
            return session.scalar(query) is not None

    def add_tags(self, arn: str, tags: Sequence[tuple[str, str]], limit: int) -> None:
        """Add or overwrite tags by key, in one transaction; refuses (ResourceLimitExceeded)
        when the resource would have more than `limit` tags."""
        if not tags:
            return
        wanted = dict(tags)  # a key given twice: the last value wins, as AWS does
        with self._write() as session:
            self._lock_tagged(session, arn)
            existing = {
                row.key: row
                for row in session.scalars(select(TagRow).where(TagRow.resource_arn == arn))
            }
            total = len(existing.keys() | wanted.keys())
            if total > limit:
                raise ResourceLimitExceeded(
                    f"Resource {arn} would have {total} tags; a resource has at most {limit}. "
                    "Delete some with DeleteTags first."
                )
            for key, value in wanted.items():
                if key in existing:
                    existing[key].value = value
                else:
                    session.add(TagRow(resource_arn=arn, key=key, value=value))

    def _lock_tagged(self, session: Session, arn: str) -> None:
        """Lock the resource whose tags change: changes of one resource's tags take turns, so
        the count checked against the limit is the count written, and a resource deleted
        meanwhile gets no tags."""
        query = select(ResourceRow.kind).where(ResourceRow.arn == arn).with_for_update()
        if session.execute(query).first() is None:
            raise NotFoundError(f"Resource {arn} not found.")

    def tags(self, arn: str, offset: int = 0, limit: int | None = None) -> list[tuple[str, str]]:
        query = select(TagRow.key, TagRow.value).where(TagRow.resource_arn == arn)
        query = query.order_by(TagRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._sessions() as session:
            return [(key, value) for key, value in session.execute(query)]

    def delete_tags(self, arn: str, keys: Iterable[str]) -> None:
        with self._write() as session:
            self._lock_tagged(session, arn)
            session.execute(
                delete(TagRow).where(TagRow.resource_arn == arn, TagRow.key.in_(list(keys)))
            )
