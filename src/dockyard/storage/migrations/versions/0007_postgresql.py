"""What PostgreSQL needs that SQLite did not: 64-bit log times (milliseconds since 1970 overflow
PostgreSQL's INTEGER) and 64-bit ids for the tables that grow with every log line and metric
point; SQLite's INTEGER is 64-bit already and does not change. On both: an index on resource
ARNs, by which tags find (and lock) their resource.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table -> its columns that become BIGINT; each table's id is a serial with its own sequence.
WIDENED = {
    "log_events": ("id", "timestamp", "ingestion_time"),
    "metric_points": ("id",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in WIDENED.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.BigInteger())
            # A serial's sequence has the column's type too, and stops at its maximum.
            op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")
    op.create_index("ix_resources_arn", "resources", ["arn"])


def downgrade() -> None:
    # The columns stay 64-bit: log times no longer fit in 32 bits, and the schema before this
    # one could not store a log line on PostgreSQL at all.
    op.drop_index("ix_resources_arn", table_name="resources")
