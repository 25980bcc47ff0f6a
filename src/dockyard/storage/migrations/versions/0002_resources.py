"""Immutable named resources: models and endpoint configurations.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("resources")
