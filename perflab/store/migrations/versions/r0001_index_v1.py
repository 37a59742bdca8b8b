"""The results index as perflab.store.db wrote it before Alembic (DB schema 1): meta, runs, cells.

A file written by that code is adopted as this revision (stamped), never rebuilt.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False))
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("scenario", sa.Text, nullable=False),
        sa.Column("scenario_sha256", sa.Text, nullable=False),
        sa.Column("started_utc", sa.Text, nullable=False),
        sa.Column("finished_utc", sa.Text),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("results_schema", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer),
    )
    op.create_table(
        "cells",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("cell_id", sa.Text, nullable=False),
        sa.Column("device_serial", sa.Text, nullable=False),
        sa.Column("device_kind", sa.Text, nullable=False),
        sa.Column("device_model", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("variant", sa.Text, nullable=False),
        sa.Column("model_sha256", sa.Text),
        sa.Column("delegate", sa.Text, nullable=False),
        sa.Column("baseline", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("latency_median_ms", sa.Float),
        sa.Column("latency_p90_ms", sa.Float),
        sa.Column("latency_mean_ms", sa.Float),
        sa.Column("latency_n", sa.Integer),
        sa.Column("psnr_y_db", sa.Float),
        sa.Column("ssim_y", sa.Float),
        sa.Column("mem_peak_mb", sa.Float),
        sa.Column("cpu_load_pct", sa.Float),
        sa.PrimaryKeyConstraint("run_id", "device_serial", "cell_id"),
    )
    op.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")


def downgrade() -> None:
    op.drop_table("cells")
    op.drop_table("runs")
    op.drop_table("meta")
