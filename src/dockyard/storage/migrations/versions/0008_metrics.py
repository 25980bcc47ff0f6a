"""Metrics for CloudWatch: the training host that printed each metric point (the points stored
before are algo-1's), and endpoints' per-second metric buckets, per instance, with a log-scale
histogram of latencies as JSON text. 64-bit ids and seconds on both backends (SQLite's INTEGER
is 64-bit already and numbers its rows only as `INTEGER PRIMARY KEY`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "metric_points",
        sa.Column("host", sa.String(64), nullable=False, server_default="algo-1"),
    )
    op.create_table(
        "endpoint_metric_buckets",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("variant", sa.String(63), nullable=False),
        sa.Column("instance", sa.String(128), nullable=False),
        sa.Column("metric_name", sa.String(64), nullable=False),
        sa.Column("start", BIGINT, nullable=False),
        sa.Column("count", BIGINT, nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.Column("histogram", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "endpoint", "metric_name", "variant", "instance", "start",
            name="uq_endpoint_metric_buckets_key",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_endpoint_metric_buckets_metric_start",
        "endpoint_metric_buckets",
        ["endpoint", "metric_name", "start"],
    )
    op.create_index("ix_endpoint_metric_buckets_start", "endpoint_metric_buckets", ["start"])


def downgrade() -> None:
    op.drop_table("endpoint_metric_buckets")
    with op.batch_alter_table("metric_points") as batch:
        batch.drop_column("host")
