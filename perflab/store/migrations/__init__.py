"""Alembic migrations of the results store (run programmatically by perflab.store.sql)."""
