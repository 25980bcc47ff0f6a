"""SQL tables of the metadata store (SQLAlchemy ORM); the migrations create exactly these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# 64-bit integers: log times in milliseconds since 1970 pass 2**31 (PostgreSQL's INTEGER), and
# so may the ids of log events and metric points on a busy server. SQLite's INTEGER is 64-bit
# already, and only `INTEGER PRIMARY KEY` numbers its rows by itself: it stays INTEGER there.
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class Message(TypeDecorator[str]):
    """Free text a program wrote (log lines, failure reasons): PostgreSQL's text cannot hold NUL,
    so both backends store U+FFFD in its place and read back the same."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


class Base(DeclarativeBase):
    pass


class StatusTransitionRow(Base):
    """A training job's secondary status transition (its job: the training-job resource)."""

    __tablename__ = "status_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[float] = mapped_column(Float)
    end_time: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Message)

    __table_args__ = (Index("ix_status_transitions_job", "job_name", "id"),)


class MetricPointRow(Base):
    __tablename__ = "metric_points"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(String(63))
    metric_name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[float] = mapped_column(Float)
    # The training host that printed it; points stored before hosts were kept are algo-1's.
    host: Mapped[str] = mapped_column(String(64), server_default="algo-1")

    __table_args__ = (Index("ix_metric_points_job_metric", "job_name", "metric_name", "id"),)


class EndpointMetricBucketRow(Base):
    """One second of one metric of one instance of an endpoint's variant: its samples' count,
    sum, extremes and (latencies) log-scale histogram as JSON {bin: samples}."""

    __tablename__ = "endpoint_metric_buckets"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(63))
    variant: Mapped[str] = mapped_column(String(63))
    instance: Mapped[str] = mapped_column(String(128))
    metric_name: Mapped[str] = mapped_column(String(64))
    start: Mapped[int] = mapped_column(BigInt)  # epoch second
    count: Mapped[int] = mapped_column(BigInt)
    total: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    histogram: Mapped[str] = mapped_column(Text)

    # One bucket per key (flushes merge into it); a metric's buckets over a time range (the
    # queries); retention drops the oldest seconds.
    __table_args__ = (
        UniqueConstraint(
            "endpoint",
            "metric_name",
            "variant",
            "instance",
            "start",
            name="uq_endpoint_metric_buckets_key",
        ),
        Index("ix_endpoint_metric_buckets_metric_start", "endpoint", "metric_name", "start"),
        Index("ix_endpoint_metric_buckets_start", "start"),
    )


class LogEventRow(Base):
    __tablename__ = "log_events"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(512))
    stream_name: Mapped[str] = mapped_column(String(512))
    timestamp: Mapped[int] = mapped_column(BigInt)  # milliseconds, as CloudWatch Logs has them
    ingestion_time: Mapped[int] = mapped_column(BigInt)
    message: Mapped[str] = mapped_column(Message)

    __table_args__ = (Index("ix_log_events_stream", "group_name", "stream_name", "id"),)


class ResourceRow(Base):
    """A named resource of any kind: its validated request in wire form. Models and endpoint
    configs are immutable; training jobs, endpoints and transform jobs also have a status and a
    mutable state (JSON). storage/records.py says what each kind's request and state are."""

    __tablename__ = "resources"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    # SageMaker's names are at most 63 characters, ECR repositories' 256.
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    arn: Mapped[str] = mapped_column(String(512))
    request: Mapped[str] = mapped_column(Text)
    creation_time: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(Text)
    last_modified_time: Mapped[float | None] = mapped_column(Float)

    # One kind's listing in creation order (the List* default) without a sort; StatusEquals
    # filters, and finding the jobs a stopped server left running; tags find (and lock) their
    # resource by ARN.
    __table_args__ = (
        Index("ix_resources_kind_created", "kind", "creation_time"),
        Index("ix_resources_kind_status", "kind", "status"),
        Index("ix_resources_arn", "arn"),
    )


class TagRow(Base):
    """One tag of a resource, by the resource's ARN (tags outlive no resource: deleting a
    model, endpoint config or endpoint deletes its tags)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_arn: Mapped[str] = mapped_column(String(256))
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (UniqueConstraint("resource_arn", "key", name="uq_tags_resource_key"),)
