"""papers from several sources: their sources, arXiv categories, primary category; where an
interrupted arXiv harvest stopped

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sources", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("categories", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("primary_category", sa.String(length=32), nullable=True))
    op.execute("UPDATE papers SET sources = source")
    op.create_table(
        "harvest_points",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("set_spec", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "day", "set_spec"),
    )


def downgrade() -> None:
    op.drop_table("harvest_points")
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_column("primary_category")
        batch_op.drop_column("categories")
        batch_op.drop_column("sources")
