"""DB schema 3: each run's results.json kept in the store, so a run whose folder lives on another
rack host (or is gone) can still be compared and reported from the store alone.

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
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("results_json", sa.Text))
    op.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.drop_column("results_json")
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
