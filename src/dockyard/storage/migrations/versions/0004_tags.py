"""Tags: key-value pairs per resource ARN (AddTags, ListTags, DeleteTags, `Tags` on create).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tags",
        # The id keeps the order tags were first added in, which ListTags answers in.
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("resource_arn", sa.String(256), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.UniqueConstraint("resource_arn", "key", name="uq_tags_resource_key"),
    )


def downgrade() -> None:
    op.drop_table("tags")
