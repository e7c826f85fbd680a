"""Yearly quality ratings (score, rating, months of absence, unpaid dues, no progress).

Append-only like the audit record, since screening proposes removals from them: a
correction is a newer row, and the database refuses UPDATE and DELETE.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS assessments_no_update BEFORE UPDATE ON assessments "
        "BEGIN SELECT RAISE(ABORT, 'assessments is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS assessments_no_delete BEFORE DELETE ON assessments "
        "BEGIN SELECT RAISE(ABORT, 'assessments is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION assessments_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'assessments is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER assessments_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON assessments FOR EACH STATEMENT EXECUTE FUNCTION assessments_append_only()",
    ],
}


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("rating", sa.String(32), nullable=False),
        sa.Column("absence_months", sa.Integer, nullable=False),
        sa.Column("unpaid_dues_months", sa.Integer, nullable=False),
        sa.Column("no_progress_months", sa.Integer, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_assessments_person_year", "assessments", ["person_id", "year"])
    for statement in APPEND_ONLY.get(op.get_context().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS assessments_append_only ON assessments")
        op.execute("DROP FUNCTION IF EXISTS assessments_append_only()")
    op.drop_index("ix_assessments_person_year", "assessments")
    op.drop_table("assessments")
