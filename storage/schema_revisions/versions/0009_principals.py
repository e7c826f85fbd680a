"""Who acts and who may see whom: a user's database login, a person's registering organization.

On PostgreSQL the acting principal is the database login (``session_user``); an
administrator links a login to a memberflow user (``user link USER --db-login NAME``), and
each login acts only as its user. A person registered by an officer belongs to that officer's
organization until a case places them, so officers see the people of their own subtree.
Both columns are nullable: users without a login act through the web app or on SQLite, and
people registered before this revision are seen through their cases.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a batch copy of ``people`` on SQLite would drop a
    # table the cases refer to. A nullable column with an inline reference is allowed there.
    op.add_column("users", sa.Column("db_login", sa.String(63)))
    op.create_index("uq_users_db_login", "users", ["db_login"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE people ADD COLUMN organization_id INTEGER "
                    "REFERENCES organizations (id)")
    else:
        op.add_column("people", sa.Column("organization_id", sa.Integer))
        op.create_foreign_key("fk_people_organization", "people", "organizations",
                              ["organization_id"], ["id"])
    op.create_index("ix_people_organization", "people", ["organization_id"])


def downgrade() -> None:
    op.drop_index("ix_people_organization", "people")
    with op.batch_alter_table("people") as people:
        people.drop_column("organization_id")
    op.drop_index("uq_users_db_login", "users")
    op.drop_column("users", "db_login")
