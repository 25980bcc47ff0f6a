"""Training jobs, their status transitions, metric points and log events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.create_table(
        "status_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "job_name",
            sa.String(63),
            sa.ForeignKey("training_jobs.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_status_transitions_job", "status_transitions", ["job_name", "id"])
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "job_name",
            sa.String(63),
            sa.ForeignKey("training_jobs.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("metric_name", sa.String(255), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_metric_points_job_metric", "metric_points", ["job_name", "metric_name", "id"]
    )
    op.create_table(
        "log_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_name", sa.String(512), nullable=False),
        sa.Column("stream_name", sa.String(512), nullable=False),
        sa.Column("timestamp", sa.Integer, nullable=False),
        sa.Column("ingestion_time", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_log_events_stream", "log_events", ["group_name", "stream_name", "id"])


def downgrade() -> None:
    op.drop_table("log_events")
    op.drop_table("metric_points")
    op.drop_table("status_transitions")
    op.drop_table("training_jobs")
