"""Indexes for the queries that must answer in under a second on a national record.

``report admissions`` finds its events by move and business date instead of reading every
case's chain; ``--org`` finds an organization's subtree by parent instead of scanning (or, on
SQLite, indexing on the fly) every organization at each level.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_trigger_date", "audit_events",
                    ["trigger", "business_date", "kind"])
    op.create_index("ix_organizations_parent", "organizations", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_organizations_parent", "organizations")
    op.drop_index("ix_audit_events_trigger_date", "audit_events")
