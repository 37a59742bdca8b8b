"""Results index in a SQLite file: the store's default shape, kept for its callers.

``ResultsDB(path)`` is the SQLAlchemy results store (perflab.store.sql.SqlStore) on a SQLite
file: the same Alembic-migrated schema as PostgreSQL, raw samples included. The run folder is
the source of truth; the database indexes runs and cells so history, nightly trends and the
compatibility matrix can query across runs. A file that is not a perflab index (garbage bytes,
other tables, another schema version) is a one-line StoreError naming it.
"""

from __future__ import annotations

from pathlib import Path

from perflab.store.sql import DB_SCHEMA_VERSION, SqlStore

__all__ = ["DB_SCHEMA_VERSION", "ResultsDB"]


class ResultsDB(SqlStore):
    """The results store on a SQLite file (``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"sqlite:///{path}")
