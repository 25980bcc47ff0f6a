"""Resources with a lifecycle (endpoints, transform jobs): a status and their mutable state.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as table:
        table.add_column(sa.Column("status", sa.String(32), nullable=True))
        table.add_column(sa.Column("state", sa.Text, nullable=True))
        table.add_column(sa.Column("last_modified_time", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resources") as table:
        table.drop_column("last_modified_time")
        table.drop_column("state")
        table.drop_column("status")
