"""Setting an installation up and keeping its schema current: ``init``, ``db upgrade``,
``db current``, and the demo database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import BadInput
from memberflow.i18n import _

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.calendar import Recounted
    from memberflow.app.demo import DemoReport
    from memberflow.app.publishing import Published
    from memberflow.storage.schema_upgrade import SchemaState
    from memberflow.workflow.calendar_files import CalendarDay, CalendarFile

BUNDLED_DEFINITIONS = Path(__file__).resolve().parent.parent / "definitions"
BUNDLED_CALENDARS = BUNDLED_DEFINITIONS / "calendars"


@dataclass(frozen=True)
class CalendarLoaded:
    path: Path
    file: CalendarFile
    added: list[CalendarDay]
    recounted: Recounted
    version: str


@dataclass
class Initialized:
    url: str
    admin_created: str | None = None  # the first administrator, when this run made them
    admin_existing: str | None = None  # ``--admin`` named the administrator already there
    admin_login: str | None = None  # PostgreSQL: the login the first administrator acts through
    published: list[Published] = field(default_factory=list)
    calendars: list[CalendarLoaded] = field(default_factory=list)
    recounted: Recounted | None = None


class Installation:
    def __init__(self, app: Application) -> None:
        self.app = app

    def initialize(self, admin: str | None, admin_name: str | None,
                   actor: str | None) -> Initialized:
        """Create or upgrade the schema, make the first administrator of a new installation,
        publish bundled definitions no stored version has, apply the bundled calendars.

        Run again, it changes nothing: ``--admin`` naming the installation's administrator
        is that, not a second first administrator."""
        from memberflow.app.administration import Administration
        from memberflow.app.publishing import Publishing
        from memberflow.storage.schema_upgrade import is_new

        store = self.app.store
        if not admin and is_new(store.db):
            raise BadInput(_("a new installation needs its first administrator: memberflow init "
                             "--admin USER --admin-name NAME"))
        store.create_schema()
        done = Initialized(store.url)
        if admin:
            if Administration(store).is_first_administrator(admin):
                done.admin_existing = admin
            else:
                Administration(store).bootstrap(admin, admin_name or admin)
                done.admin_created = admin
                done.admin_login = self._link_installing_login(admin)
        done.published = Publishing(store).install(admin or actor, BUNDLED_DEFINITIONS)
        for path in sorted(BUNDLED_CALENDARS.glob("*.yaml")):
            done.calendars.append(self.load_calendar(None, path))
        done.recounted = self.app.calendar.recount_stale()
        return done

    def _link_installing_login(self, admin: str) -> str | None:
        """On PostgreSQL the first administrator acts through the login that ran ``init``
        (who acts is the login there, and someone has to link the others)."""
        directory = self.app.store.directory
        if self.app.store.db.is_sqlite:
            return None
        login = directory.session_login()
        if directory.user_of_login(login) is not None:
            return None
        directory.link_login(admin, login)
        return login

    def load_calendar(self, actor: str | None, path: Path) -> CalendarLoaded:
        from memberflow.app.principal import Principal

        principal = Principal(actor, "established by the front end") if actor else None
        loaded, added, recounted = self.app.calendar.load_file(principal, path)
        return CalendarLoaded(path, loaded, added, recounted, self.app.calendar.version(loaded.year))

    def upgrade(self) -> tuple[str | None, str, Recounted | None]:
        """Bring the schema to this program's; deadlines stored before their calendar version
        was recorded are counted again. Returns (revision before, revision after, recounted)."""
        from memberflow.storage.schema_upgrade import upgrade

        before, after = upgrade(self.app.store.db)
        recounted = self.app.calendar.recount_stale() if before != after else None
        return before, after, recounted

    def schema(self) -> SchemaState:
        from memberflow.storage.schema_upgrade import state

        return state(self.app.store.db)


def build_demo(path: Path, echo: Any) -> DemoReport:
    """A demo bloc in an SQLite file, replacing only an earlier demo database."""
    from memberflow.app.demo import run_demo
    from memberflow.app.service import Service
    from memberflow.storage.store import Store
    from memberflow.workflow.presenting import event_row

    _clear_earlier_demo(path)
    store = Store(str(path), must_exist=False)
    store.create_schema()
    store.set_setting("demo", "true")
    service = Service(store)
    service.install_definitions(BUNDLED_DEFINITIONS)
    report = run_demo(service, echo=echo)
    featured = service.store.cases.load(report.featured_case)
    definition = service.definition(featured.definition_id)
    report.featured_history = [event_row(e, definition, "vi")
                               for e in service.store.cases.history(featured.id)]
    return report


def _clear_earlier_demo(path: Path) -> None:
    """Replace an earlier demo database, never anything else (a typo must not wipe real data)."""
    from memberflow.storage.store import Store

    if not path.exists():
        return
    try:
        is_demo = Store(str(path)).setting("demo") == "true"
    except Exception:  # noqa: BLE001 - not a database at all, or not ours
        is_demo = False
    if not is_demo:
        raise BadInput(_("refusing to replace {path}: it is not a memberflow demo database")
                       .format(path=path))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
