"""A bulk move's idempotency key, kept with its audit event and unique per case.

``case advance-many`` gives every row a key (the row's ``request_id``, or a digest of the row
itself); the event records it in its payload (under the hash chain) and in this column, whose
unique index lets a rerun of the file recognise a row already applied and stops two runs
racing from applying it twice. Events written before this revision, and moves made one at a
time, have no key (NULL); the index is partial, so they cost it nothing.

``ALTER TABLE … ADD COLUMN`` of a nullable column rewrites no row on either database, and
fires none of the append-only triggers (they guard UPDATE and DELETE of rows).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ux_audit_events_request_key"


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("request_key", sa.String(80)))
    op.create_index(INDEX, "audit_events", ["case_id", "request_key"], unique=True,
                    sqlite_where=sa.text("request_key IS NOT NULL"),
                    postgresql_where=sa.text("request_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_index(INDEX, "audit_events")
    op.drop_column("audit_events", "request_key")
