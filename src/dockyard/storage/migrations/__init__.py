"""Alembic migrations of the metadata store, run programmatically when a store opens."""
