"""SQL tables of the metadata store (SQLAlchemy ORM); the migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TrainingJobRow(Base):
    __tablename__ = "training_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32), index=True)
    secondary_status: Mapped[str] = mapped_column(String(32))
    # The CreateTrainingJob request as validated, in wire form (JSON text).
    request: Mapped[str] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(1024))
    model_artifacts: Mapped[str] = mapped_column(String(1100))
    creation_time: Mapped[float] = mapped_column(Float, index=True)
    last_modified_time: Mapped[float] = mapped_column(Float)
    training_start_time: Mapped[float | None] = mapped_column(Float)
    training_end_time: Mapped[float | None] = mapped_column(Float)
    # Set by StopTrainingJob; the job's runner reads it (survives a server restart).
    stop_requested: Mapped[int] = mapped_column(Integer, default=0)


class StatusTransitionRow(Base):
    __tablename__ = "status_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(ForeignKey("training_jobs.name", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[float] = mapped_column(Float)
    end_time: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_status_transitions_job", "job_name", "id"),)


class MetricPointRow(Base):
    __tablename__ = "metric_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(ForeignKey("training_jobs.name", ondelete="CASCADE"))
    metric_name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_metric_points_job_metric", "job_name", "metric_name", "id"),)


class LogEventRow(Base):
    __tablename__ = "log_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(512))
    stream_name: Mapped[str] = mapped_column(String(512))
    timestamp: Mapped[int] = mapped_column(Integer)  # milliseconds, as CloudWatch Logs has them
    ingestion_time: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_log_events_stream", "group_name", "stream_name", "id"),)


class ResourceRow(Base):
    """A named resource: its validated request in wire form. Models and endpoint configs are
    immutable; endpoints and transform jobs also have a status and a mutable state (JSON)."""

    __tablename__ = "resources"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    request: Mapped[str] = mapped_column(Text)
    creation_time: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(Text)
    last_modified_time: Mapped[float | None] = mapped_column(Float)


class TagRow(Base):
    """One tag of a resource, by the resource's ARN (tags outlive no resource: deleting a
    model, endpoint config or endpoint deletes its tags)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_arn: Mapped[str] = mapped_column(String(256))
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (UniqueConstraint("resource_arn", "key", name="uq_tags_resource_key"),)
