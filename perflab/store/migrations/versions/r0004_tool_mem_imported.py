"""DB schema 4: a cell row keeps the tool's own memory figure (``tool_mem_mb`` with its
``tool_mem_source``, results /4) beside the sampler's ``mem_peak_mb``, and whether its numbers
were imported from a capture perflab did not measure (``imported``, with the capture's file and
sha256; results /7), so history and the dashboard can say IMPORTED without the run folder.

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
    with op.batch_alter_table("cells") as b:
        b.add_column(sa.Column("tool_mem_mb", sa.Float))
        b.add_column(sa.Column("tool_mem_source", sa.Text))
        b.add_column(sa.Column("imported", sa.Integer, nullable=False, server_default="0"))
        b.add_column(sa.Column("provenance_file", sa.Text))
        b.add_column(sa.Column("provenance_sha256", sa.Text))
    op.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")


def downgrade() -> None:
    with op.batch_alter_table("cells") as b:
        for name in ("provenance_sha256", "provenance_file", "imported", "tool_mem_source", "tool_mem_mb"):
            b.drop_column(name)
    op.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
