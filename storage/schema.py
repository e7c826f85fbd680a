"""Table definitions, kept portable across SQLite and PostgreSQL (no dialect-only types).

These models describe the schema at the newest migration; the database itself is built
and upgraded only by the Alembic revisions in ``storage/migrations`` (which also install
the triggers that make the audit table append-only).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

organizations = Table(
    "organizations", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("parent_id", Integer, ForeignKey("organizations.id")),
    Column("created_at", String(32), nullable=False),
    # ``--org``: an organization's subtree is found level by level through its children.
    Index("ix_organizations_parent", "parent_id"),
)

people = Table(
    "people", metadata,
    Column("id", Integer, primary_key=True),
    Column("full_name", String(300), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("gender", String(16), nullable=False),
    Column("ethnicity", String(100), nullable=False),
    Column("religion", String(100), nullable=False),
    Column("education", String(32), nullable=False),
    Column("youth_union", Boolean, nullable=False),
    Column("trade_union", Boolean, nullable=False),
    Column("created_at", String(32), nullable=False),
    # Where the person was registered (officers see their subtree's people); NULL before 0009.
    Column("organization_id", Integer, ForeignKey("organizations.id", name="fk_people_organization")),
    Index("ix_people_organization", "organization_id"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("full_name", String(300), nullable=False),
    Column("created_at", String(32), nullable=False),
    # The PostgreSQL login that acts as this user (``session_user``); NULL: none.
    Column("db_login", String(63)),
    Index("uq_users_db_login", "db_login", unique=True),
)

role_grants = Table(
    "role_grants", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("role", String(64), nullable=False),
    # NULL: the grant covers the whole installation (administrators, auditors).
    Column("organization_id", Integer, ForeignKey("organizations.id")),
    Column("granted_at", String(32), nullable=False),
    UniqueConstraint("user_id", "role", "organization_id"),
)

installation = Table(
    "installation", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(500), nullable=False),
)

definition_versions = Table(
    "definition_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("file", String(500), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("status", String(16), nullable=False, server_default="published"),
    Column("author", String(64)),
    Column("comment", Text),
    Column("approved_by", String(64)),
    Column("approved_at", String(32)),
    UniqueConstraint("name", "version"),
)

cases = Table(
    "cases", metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("definition_id", Integer, ForeignKey("definition_versions.id"), nullable=False),
    Column("state", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("facts", Text, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("due_on", Date),
    Column("due_move", String(64)),
    Column("updated_at", String(32), nullable=False),
    # The calendar version the stored deadline was counted on (``VN 2026 v2 (1a2b3c4d5e6f)``).
    Column("due_calendar", String(64)),
    Index("ix_cases_org_due", "organization_id", "due_on"),
    Index("ix_cases_due", "due_on"),
    Index("ix_cases_person", "person_id"),
    Index("ix_cases_state", "state"),
)

documents = Table(
    "documents", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("code", String(32), nullable=False),
    Column("reference", String(500), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Index("ix_documents_case", "case_id"),
)

# Keyed by (case, seq) and, on SQLite, stored in that order (WITHOUT ROWID), so reading a
# case's chain — and verifying all of them — is a sequential scan.
audit_events = Table(
    "audit_events", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("definition_sha256", String(64), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("from_state", String(64)),
    Column("to_state", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # A bulk move's idempotency key (also in the payload, under the chain); NULL otherwise.
    Column("request_key", String(80)),
    # Reports find the moves of a kind in a period (e.g. admissions in a year) without
    # reading every chain.
    Index("ix_audit_events_trigger_date", "trigger", "business_date", "kind"),
    # A rerun of a bulk file recognises rows already applied; two runs cannot apply one twice.
    Index("ux_audit_events_request_key", "case_id", "request_key", unique=True,
          sqlite_where=text("request_key IS NOT NULL"),
          postgresql_where=text("request_key IS NOT NULL")),
    sqlite_with_rowid=False,
)

audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("cases", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
)

# Administrators' overrides of the working-day calendar; never updated, only added to (the
# database refuses UPDATE and DELETE), so the calendar in force at any time can be told (the
# latest entry for a day wins).
calendar_days = Table(
    "calendar_days", metadata,
    Column("id", Integer, primary_key=True),
    Column("day", Date, nullable=False),
    Column("working", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("author", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_calendar_days_day", "day"),
)

# Snapshots of the ``holidays`` package's day list that deadlines are counted on (the newest
# applies); one row per snapshot says which package version made it, its sha256, who took it
# and when, and what it changed. Both tables are append-only.
holiday_snapshots = Table(
    "holiday_snapshots", metadata,
    Column("id", Integer, primary_key=True),
    Column("country", String(8), nullable=False),
    Column("package_version", String(32), nullable=False),
    Column("first_year", Integer, nullable=False),
    Column("last_year", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("changes", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
)

holiday_days = Table(
    "holiday_days", metadata,
    Column("snapshot_id", Integer, ForeignKey("holiday_snapshots.id"), primary_key=True,
           autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
    Column("name_vi", Text, nullable=False),
    Column("name_en", Text, nullable=False),
)

# A deadline found missed by ``memberflow tick`` (the key makes a second tick a no-op).
overdue_flags = Table(
    "overdue_flags", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True, autoincrement=False),
    Column("move", String(64), primary_key=True),
    Column("due_on", Date, primary_key=True),
    Column("flagged_on", Date, nullable=False),
    Column("recorded_at", String(32), nullable=False),
)

# Yearly quality ratings and the months that screening counts. Rows are only ever added: a
# correction is a newer row for the same person and year, and the newest one counts.
assessments = Table(
    "assessments", metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False),
    Column("year", Integer, nullable=False),
    Column("score", Integer, nullable=False),
    Column("rating", String(32), nullable=False),
    Column("absence_months", Integer, nullable=False),
    Column("unpaid_dues_months", Integer, nullable=False),
    Column("no_progress_months", Integer, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Index("ix_assessments_person_year", "person_id", "year"),
)
