"""Overdue flags recorded by ``memberflow tick``: one row per missed deadline, never twice.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overdue_flags",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("move", sa.String(64), primary_key=True),
        sa.Column("due_on", sa.Date, primary_key=True),
        sa.Column("flagged_on", sa.Date, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("overdue_flags")
