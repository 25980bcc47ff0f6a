"""Alembic environment: runs migrations on the connection the metadata store hands over."""

from __future__ import annotations

from alembic import context

from dockyard.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
