"""Definition versions record who published them, why, whether they await approval, and who
approved them (maker–checker).

Versions stored before this revision were in force as soon as stored: they become
``published`` with no recorded author or comment.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("definition_versions") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="published"))
        batch.add_column(sa.Column("author", sa.String(64)))
        batch.add_column(sa.Column("comment", sa.Text))
        batch.add_column(sa.Column("approved_by", sa.String(64)))
        batch.add_column(sa.Column("approved_at", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("definition_versions") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("comment")
        batch.drop_column("author")
        batch.drop_column("status")
