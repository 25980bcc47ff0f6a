"""Training jobs become resources of kind training-job: one table, one shape and one query for
every kind. A job's secondary status, artifacts URI, failure reason, times and stop flag move
into its state (JSON, the names TrainingJobState reads); its transitions and metric points stay
in their tables, keyed by the job's name, without the foreign key to the table that goes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KIND = "training-job"
CHILDREN = ("status_transitions", "metric_points")
# The foreign keys 0001 made carry no name; SQLite's batch mode names them by this convention so
# they can be dropped (and made again), PostgreSQL names them <table>_<column>_fkey itself.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
# The state's members and the columns they were, as TrainingJobState spells them on the wire.
STATE_COLUMNS = {
    "SecondaryStatus": "secondary_status",
    "ModelArtifacts": "model_artifacts",
    "FailureReason": "failure_reason",
    "TrainingStartTime": "training_start_time",
    "TrainingEndTime": "training_end_time",
    "StopRequested": "stop_requested",
}

_jobs = sa.table(
    "training_jobs",
    sa.column("name", sa.String),
    sa.column("arn", sa.String),
    sa.column("status", sa.String),
    sa.column("request", sa.Text),
    sa.column("creation_time", sa.Float),
    sa.column("last_modified_time", sa.Float),
    *(sa.column(column) for column in STATE_COLUMNS.values()),
)
_resources = sa.table(
    "resources",
    sa.column("kind", sa.String),
    sa.column("name", sa.String),
    sa.column("arn", sa.String),
    sa.column("request", sa.Text),
    sa.column("creation_time", sa.Float),
    sa.column("status", sa.String),
    sa.column("state", sa.Text),
    sa.column("last_modified_time", sa.Float),
)


def _state(row: Any) -> str:
    state = {key: getattr(row, column) for key, column in STATE_COLUMNS.items()}
    state["StopRequested"] = bool(state["StopRequested"])
    return json.dumps({key: value for key, value in state.items() if value is not None})


def _foreign_key(table: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"fk_{table}_job_name"
    return f"{table}_job_name_fkey"


def upgrade() -> None:
    bind = op.get_bind()
    jobs = bind.execute(sa.select(_jobs)).all()
    if jobs:
        bind.execute(
            _resources.insert(),
            [
                {
                    "kind": KIND,
                    "name": job.name,
                    "arn": job.arn,
                    "request": job.request,
                    "creation_time": job.creation_time,
                    "status": job.status,
                    "state": _state(job),
                    "last_modified_time": job.last_modified_time,
                }
                for job in jobs
            ],
        )
    for table in CHILDREN:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(_foreign_key(table), type_="foreignkey")
    op.drop_table("training_jobs")
    # Training jobs brought their listing's indexes: creation order and status, now per kind.
    op.create_index("ix_resources_kind_created", "resources", ["kind", "creation_time"])
    op.create_index("ix_resources_kind_status", "resources", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_resources_kind_status", table_name="resources")
    op.drop_index("ix_resources_kind_created", table_name="resources")
    op.create_table(
        "training_jobs",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("secondary_status", sa.String(32), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("failure_reason", sa.String(1024)),
        sa.Column("model_artifacts", sa.String(1100), nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False, index=True),
        sa.Column("last_modified_time", sa.Float, nullable=False),
        sa.Column("training_start_time", sa.Float),
        sa.Column("training_end_time", sa.Float),
        sa.Column("stop_requested", sa.Integer, nullable=False, server_default="0"),
    )
    bind = op.get_bind()
    jobs = bind.execute(sa.select(_resources).where(_resources.c.kind == KIND)).all()
    rows = []
    for job in jobs:
        state = json.loads(job.state or "{}")
        row = {column: state.get(key) for key, column in STATE_COLUMNS.items()}
        row["stop_requested"] = int(bool(row["stop_requested"]))
        rows.append(
            {
                **row,
                "name": job.name,
                "arn": job.arn,
                "status": job.status,
                "request": job.request,
                "creation_time": job.creation_time,
                "last_modified_time": job.last_modified_time or job.creation_time,
            }
        )
    if rows:
        bind.execute(_jobs.insert(), rows)
    bind.execute(_resources.delete().where(_resources.c.kind == KIND))
    for table in CHILDREN:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(
                _foreign_key(table), "training_jobs", ["job_name"], ["name"], ondelete="CASCADE"
            )
