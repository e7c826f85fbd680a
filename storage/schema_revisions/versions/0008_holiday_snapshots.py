"""Holiday data stored in the database, and the calendar version of each stored deadline.

Deadlines were counted on whatever ``holidays`` release pip had installed, so one database
could give different deadlines on two machines. From this revision they are counted on a
snapshot of the package's Vietnamese day list kept here: ``holiday_snapshots`` (one row per
snapshot: package version, years, sha256 of the day list, who took it and when) and
``holiday_days`` (its days). Both are append-only, like ``calendar_days`` now is too: an
upgrade of the package becomes a new snapshot that an administrator applies
(``memberflow calendar refresh``), and the newest snapshot applies.

The first snapshot is taken here from the installed package, the pinned 0.109 (what earlier
installs resolved ``holidays>=0.60`` to). The generation and the digest are written out in
this file rather than imported, so that this revision does the same whatever later code
does; ``workflow.holiday_data`` computes the same digest (a test holds them together).

``cases.due_calendar`` records the calendar version a case's stored deadline was counted
on; rows stored before this revision have none until ``memberflow db upgrade`` counts them
again.

Revision ID: 0008
Revises: 0007
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("holiday_snapshots", "holiday_days", "calendar_days")
FIRST_YEAR, YEARS_AHEAD = 1990, 5
SWAPPED_WORKING_DAY = {"vi": "Ngày làm bù", "en": "Swapped working day"}


def _append_only(dialect: str) -> list[str]:
    statements = []
    for table in TABLES:
        if dialect == "sqlite":
            statements += [
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
            ]
        elif dialect == "postgresql":
            statements += [
                f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()",
            ]
    return statements


def _package_days(first_year: int, last_year: int) -> tuple[str, list[dict]]:
    import holidays

    years = range(first_year - 1, last_year + 2)
    vi = holidays.country_holidays("VN", years=years, language="vi")
    en = holidays.country_holidays("VN", years=years, language="en_US")
    listed = sorted(d for d in set(vi) | set(vi.weekend_workdays) if first_year <= d.year <= last_year)
    return holidays.__version__, [
        {"day": d, "working": bool(vi.is_working_day(d)),
         "name_vi": vi.get(d) or SWAPPED_WORKING_DAY["vi"],
         "name_en": en.get(d) or SWAPPED_WORKING_DAY["en"]} for d in listed]


def _digest(days: list[dict]) -> str:
    rows = [[d["day"].isoformat(), d["working"], d["name_vi"], d["name_en"]] for d in days]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.add_column("cases", sa.Column("due_calendar", sa.String(64)))
    snapshots = op.create_table(
        "holiday_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("country", sa.String(8), nullable=False),
        sa.Column("package_version", sa.String(32), nullable=False),
        sa.Column("first_year", sa.Integer, nullable=False),
        sa.Column("last_year", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    days = op.create_table(
        "holiday_days",
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("holiday_snapshots.id"),
                  primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("working", sa.Boolean, nullable=False),
        sa.Column("name_vi", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
    )
    this_year = datetime.now(timezone(timedelta(hours=7))).year  # the year in Vietnam
    version, listed = _package_days(FIRST_YEAR, this_year + YEARS_AHEAD)
    snapshot_id = op.get_bind().execute(snapshots.insert().values(
        country="VN", package_version=version, first_year=FIRST_YEAR,
        last_year=this_year + YEARS_AHEAD, digest=_digest(listed),
        changes=json.dumps({"years": [], "first": True}),
        created_by="schema revision 0008",
        created_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )).inserted_primary_key[0]
    op.bulk_insert(days, [{"snapshot_id": snapshot_id, **d} for d in listed])
    for statement in _append_only(op.get_context().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for table in TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        elif dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.drop_table("holiday_days")
    op.drop_table("holiday_snapshots")
    with op.batch_alter_table("cases") as cases:
        cases.drop_column("due_calendar")
