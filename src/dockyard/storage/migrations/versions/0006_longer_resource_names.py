"""Room for ECR repositories among the resources: names up to 256 characters (SageMaker's are at
most 63) and ARNs to match. SQLite does not enforce a VARCHAR's length, so only other databases
(PostgreSQL) change.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _resize(name: int, arn: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    with op.batch_alter_table("resources") as batch:
        batch.alter_column("name", type_=sa.String(name))
        batch.alter_column("arn", type_=sa.String(arn))


def upgrade() -> None:
    _resize(256, 512)


def downgrade() -> None:
    # Repositories with longer names go first: no SageMaker resource has one.
    op.execute("DELETE FROM resources WHERE kind = 'ecr-repository'")
    _resize(63, 256)
