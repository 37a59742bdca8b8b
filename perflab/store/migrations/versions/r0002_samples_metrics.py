"""DB schema 2: raw samples, every numeric metric of a cell (long form), and what a comparison
checks (perflab version, device build fingerprint, artifact key).

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
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("perflab_version", sa.Text))
    with op.batch_alter_table("cells") as b:
        b.add_column(sa.Column("artifact_key", sa.Text))
        b.add_column(sa.Column("device_fingerprint", sa.Text))
    op.create_table(
        "samples",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_serial", sa.Text, nullable=False),
        sa.Column("cell_id", sa.Text, nullable=False),
        sa.Column("series", sa.Text, nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "device_serial", "cell_id", "series", "iteration"),
    )
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_serial", sa.Text, nullable=False),
        sa.Column("cell_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "device_serial", "cell_id", "metric"),
    )
    op.create_index("ix_metrics_metric", "metrics", ["metric", "device_serial", "cell_id"])
    op.create_index("ix_runs_started", "runs", ["started_utc"])
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_runs_started", "runs")
    op.drop_index("ix_metrics_metric", "metrics")
    op.drop_table("metrics")
    op.drop_table("samples")
    with op.batch_alter_table("cells") as b:
        b.drop_column("device_fingerprint")
        b.drop_column("artifact_key")
    with op.batch_alter_table("runs") as b:
        b.drop_column("perflab_version")
    op.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
