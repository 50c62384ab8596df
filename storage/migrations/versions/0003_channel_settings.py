"""per-channel digest settings, and each channel's scheduled runs

Revision ID: 0003_channel_settings
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_channel_settings"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("digest_time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekdays", sa.String(length=20), nullable=False),
        sa.Column("max_papers", sa.Integer(), nullable=False),
        sa.Column("weekly_day", sa.Integer(), nullable=True),
        sa.Column("sources", sa.String(length=64), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id"),
    )
    op.create_table(
        "channel_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "run_date"),
    )
    op.create_index("ix_channel_runs_run_date", "channel_runs", ["run_date"])


def downgrade() -> None:
    op.drop_index("ix_channel_runs_run_date", table_name="channel_runs")
    op.drop_table("channel_runs")
    op.drop_table("channel_settings")
