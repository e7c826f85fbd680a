"""Shared fixtures: a real SQLite file per test, the bundled definition installed, and a
small bloc (organizations, officers, two official members) to run moves against."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from memberflow import i18n
from memberflow.app.service import Service
from memberflow.storage.store import Store
from memberflow.workflow.dates import add_months, today
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

ROOT = Path(__file__).resolve().parent.parent
# Messages are asserted in the source language (English) unless a test is about Vietnamese,
# the program's default: it then says --lang vi, or clears MEMBERFLOW_LANG.
os.environ["MEMBERFLOW_LANG"] = "en"


@pytest.fixture(autouse=True)
def messages_in_english() -> None:
    """Each test starts in English: a CLI run in the same process may have switched."""
    i18n.use("en")


def compile_catalogues() -> list[Path]:
    """Compile each ``.po`` whose ``.mo`` is missing or older (what ``make catalogues`` does), so
    no test depends on a forgotten make step; returns the catalogues compiled."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for po in sorted(i18n.LOCALES.glob(f"*/LC_MESSAGES/{i18n.DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        partial = mo.with_name(f"{mo.name}.{os.getpid()}")
        with partial.open("wb") as target:
            write_mo(target, catalog)
        partial.replace(mo)
        compiled.append(mo)
    if compiled:
        i18n._catalogues.clear()
    return compiled


@pytest.fixture(scope="session", autouse=True)
def catalogues_compiled() -> None:
    compile_catalogues()
DEFINITIONS = ROOT / "definitions"
MEMBERSHIP = DEFINITIONS / "membership.yaml"

ORGS = [
    ("TU", "Tỉnh ủy", "province_committee", None),
    ("DBK", "Đảng bộ Khối", "committee_above", "TU"),
    ("SGD", "Đảng bộ Sở Giáo dục", "grassroots", "DBK"),
    ("VP", "Chi bộ Văn phòng", "branch", "SGD"),
    ("OTHER", "Đảng bộ khác", "grassroots", "TU"),
    ("OTHER-CB", "Chi bộ khác", "branch", "OTHER"),
]
OFFICERS = {
    "secretary": ("branch_secretary", "VP"),
    "committee": ("grassroots_committee", "SGD"),
    "standing": ("standing_committee_above", "DBK"),
    "inspector": ("inspection_commission", "DBK"),
    "department": ("organization_department", "TU"),
    "outsider": ("branch_secretary", "OTHER-CB"),
}
# Documents each trigger needs, so tests can attach exactly what the definition requires.
STANDARD_INPUTS: dict[str, dict[str, Any]] = {
    "verify_background": {"verification_conclusion": "Lý lịch rõ ràng"},
    "record_branch_vote": {"votes_for": 9, "votes_eligible": 10},
    "record_committee_vote": {"votes_for": 7, "votes_eligible": 9},
    "decide_admission": {"decision_number": "12-QĐ/ĐUK"},
    "extend_admission_deadline": {"reason": "Chờ kết quả thẩm tra bổ sung"},
    "record_recognition_vote": {"votes_for": 10, "votes_eligible": 11},
    "record_recognition_committee_vote": {"votes_for": 8, "votes_eligible": 9},
    "recognize_official": {"decision_number": "34-QĐ/ĐUK"},
    "extend_recognition_deadline": {"reason": "Chờ ý kiến"},
    "reject_application": {"reason": "Không đủ điều kiện"},
    "withdraw_application": {"reason": "Xin rút"},
    "expel": {"violation": "Vi phạm nghiêm trọng", "decision_number": "5-QĐ/UBKT"},
    "withdraw_membership": {"under_discipline": "no", "decision_number": "6-QĐ/ĐUK"},
    "strike_off": {
        "ground": "absence_or_unpaid_dues", "branch_votes_for": 9, "branch_votes_eligible": 10,
        "committee_votes_for": 7, "committee_votes_eligible": 9, "standing_votes_for": 4,
        "standing_votes_eligible": 7, "decision_number": "7-QĐ/ĐUK"},
}
AUDITOR = "kiemtra"  # reads the whole record in every world (and in CLI_BLOC)
ACTING = {
    "record_training": "secretary", "renew_training": "secretary", "prepare_dossier": "secretary",
    "verify_background": "committee", "record_branch_vote": "secretary",
    "record_committee_vote": "committee", "decide_admission": "standing",
    "extend_admission_deadline": "standing", "hold_ceremony": "secretary",
    "reject_application": "secretary", "withdraw_application": "secretary",
    "complete_probation": "secretary", "record_recognition_vote": "secretary",
    "record_recognition_committee_vote": "committee", "recognize_official": "standing",
    "extend_recognition_deadline": "standing", "register_existing_member": "department",
    "strike_off": "standing", "expel": "inspector", "withdraw_membership": "standing",
    "record_death": "secretary",
}
# The bloc the CLI tests build through the command line: run as administrator quantri after
# ``init --admin quantri``.
CLI_BLOC: list[list[str]] = [
    ["org", "add", "TU", "--name", "Tỉnh ủy", "--kind", "province_committee"],
    ["org", "add", "DBK", "--name", "Đảng bộ Khối", "--kind", "committee_above", "--parent", "TU"],
    ["org", "add", "SGD", "--name", "Đảng bộ Sở Giáo dục", "--kind", "grassroots", "--parent", "DBK"],
    ["org", "add", "VP", "--name", "Chi bộ Văn phòng", "--kind", "branch", "--parent", "SGD"],
    ["user", "add", "bithu", "--name", "Nguyễn Thị Hương"],
    ["user", "grant", "bithu", "branch_secretary", "--org", "VP"],
    ["user", "add", "btc", "--name", "Đặng Văn Hùng"],
    ["user", "grant", "btc", "organization_department", "--org", "TU"],
    ["user", "add", "kiemtra", "--name", "Ngô Thị Mai"],
    ["user", "grant", "kiemtra", "auditor"],
]
ADMISSION_PATH = ["record_training", "prepare_dossier", "verify_background", "record_branch_vote",
                  "record_committee_vote", "decide_admission", "hold_ceremony"]
RECOGNITION_PATH = ["complete_probation", "record_recognition_vote",
                    "record_recognition_committee_vote", "recognize_official"]


class World:
    """A bloc with officers and two official members; walks cases along the main path."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store
        self.today = today()
        for code, name, kind, parent in ORGS:
            self.store.directory.add_organization(code, name, kind, parent)
        for user, (role, org) in OFFICERS.items():
            self.store.directory.add_user(user, f"Cán bộ {user}")
            self.store.directory.grant(user, role, org)
        self.store.directory.add_user(AUDITOR, "Kiểm toán viên")
        self.store.directory.grant(AUDITOR, "auditor", None)
        self.members = [self.register_member(f"Đảng viên {n}") for n in ("Một", "Hai")]

    def add_person(self, name: str = "Nguyễn Thị Hoa", born: date | None = None,
                   **fields: Any) -> int:
        values = {"full_name": name, "birth_date": born or date(1995, 6, 15), "gender": "female",
                  "ethnicity": "Kinh", "religion": "Không", "education": "university",
                  "youth_union": True, "trade_union": False}
        values.update(fields)
        return self.store.directory.add_person(**values)

    def register_member(self, name: str) -> int:
        person = self.add_person(name, date(1970, 1, 1))
        case_id = self.service.open_case("department", person, "VP", "membership",
                                         self.ago(months=60))
        self.service.advance("department", case_id, "register_existing_member", self.ago(months=60),
                             {"admission_date": "2000-05-19", "official_since": "2001-05-19",
                              "party_card_number": "001"})
        return person

    def ago(self, months: int = 0, days: int = 0) -> date:
        return add_months(self.today, -months) - timedelta(days=days)

    def open_case(self, person: int | None = None, on: date | None = None) -> int:
        return self.service.open_case("secretary", person or self.add_person(), "VP",
                                      "membership", on or self.ago(months=20))

    def inputs_for(self, trigger: str, on: date) -> dict[str, Any]:
        values = dict(STANDARD_INPUTS.get(trigger, {}))
        if trigger in ("record_training", "renew_training"):
            values["certificate_date"] = (on - timedelta(days=10)).isoformat()
        elif trigger == "prepare_dossier":
            values["introducers"] = f"{self.members[0]}:24,{self.members[1]}:36"
        elif trigger == "hold_ceremony":
            values["helper"] = self.members[0]
        elif trigger == "record_death":
            values["date_of_death"] = on.isoformat()
        return values

    def documents_for(self, case_id: int, trigger: str) -> dict[str, str]:
        record = self.store.cases.load(case_id)
        transition = self.service.definition(record.definition_id).transition(trigger, record.state)
        return {code: f"{code}-ref" for code in (transition.documents if transition else ())}

    def step(self, case_id: int, trigger: str, on: date, **overrides: Any) -> Any:
        inputs = overrides.pop("inputs", None)
        if inputs is None:
            inputs = self.inputs_for(trigger, on)
        documents = overrides.pop("documents", None)
        if documents is None:
            documents = self.documents_for(case_id, trigger)
        actor = overrides.pop("actor", ACTING[trigger])
        return self.service.advance(actor, case_id, trigger, on, inputs, documents, **overrides)

    def walk(self, case_id: int, triggers: list[str], start: date, gap_days: int = 10) -> date:
        """Fire each trigger ``gap_days`` apart from ``start``; returns the last date used."""
        on = start
        for index, trigger in enumerate(triggers):
            on = start + timedelta(days=gap_days * index)
            self.step(case_id, trigger, on)
        return on

    def admitted_case(self, months_ago: int = 20) -> tuple[int, date]:
        """A case that has held its ceremony; returns (case id, ceremony date)."""
        start = self.ago(months=months_ago)
        case_id = self.open_case(on=start)
        ceremony = self.walk(case_id, ADMISSION_PATH, start)
        return case_id, ceremony

    def verified_cases(self, count: int) -> list[int]:
        """``count`` new cases whose background is verified (where a failed branch vote is
        recorded and the case stays), walked there in three batches."""
        from memberflow.app.service import AdvanceRequest

        cases = [self.open_case() for _ in range(count)]
        for months, trigger in ((19, "record_training"), (18, "prepare_dossier"),
                                (17, "verify_background")):
            on = self.ago(months=months)
            self.service.advance_many(ACTING[trigger], [
                AdvanceRequest(case_id, trigger, on, self.inputs_for(trigger, on),
                               self.documents_for(case_id, trigger)) for case_id in cases])
        return cases

    def official_case(self) -> int:
        case_id, ceremony = self.admitted_case(20)
        self.walk(case_id, RECOGNITION_PATH, add_months(ceremony, 12), gap_days=5)
        return case_id


PG_URL = os.environ.get("MEMBERFLOW_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``db_url`` (directly or through ``store``, ``service``, ``world``)
    runs on SQLite and on PostgreSQL; asking for ``db_path`` means the test opens the SQLite
    file itself, so it runs on SQLite only."""
    if "db_url" in metafunc.fixturenames:
        backends = ["sqlite"] if "db_path" in metafunc.fixturenames else list(BACKENDS)
        metafunc.parametrize("db_url", backends, indirect=True)


@lru_cache(maxsize=1)
def postgresql_problem() -> str | None:
    """Why no PostgreSQL server answers at PG_URL (None when one does); asked once per run."""
    engine = create_engine(PG_URL)
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def postgresql_schema() -> Iterator[str]:
    """A fresh, empty schema on the test server; yields a URL whose search_path is it.

    Locally the test is skipped with the reason when no server answers; under CI
    (``CI=true``) that is a failure, so a missing server can never pass for a green run.
    """
    problem = postgresql_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no PostgreSQL at {PG_URL}: {problem}")
        pytest.skip(f"no PostgreSQL at {PG_URL}: {problem}")
    schema = f"mf_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            for login in _LOGINS.pop(schema, []):
                conn.execute(text(f"DROP OWNED BY {login}"))
                conn.execute(text(f"DROP ROLE {login}"))
        admin.dispose()


_LOGINS: dict[str, list[str]] = {}  # test schema → the login roles made for it


def _schema_of(url: str) -> str:
    return make_url(url).query["options"].split("search_path=", 1)[1]


def login_url(db_url: str, username: str) -> str:
    """The ``--db`` a command acting as ``username`` takes.

    On PostgreSQL the principal is the database login, so the user gets a login role of its
    own (made once per test schema, with the privileges of the schema's tables) linked to it
    (``users.db_login``), and the URL connects as that login; an SQLite file is the same file
    for everyone (``--actor`` names the user there)."""
    if not is_postgresql_url(db_url):
        return db_url
    schema = _schema_of(db_url)
    login = re.sub(r"[^a-z0-9_]", "_", f"l{schema[3:15]}_{username}".lower())[:63]
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            if login not in _LOGINS.get(schema, []):
                conn.execute(text(f"CREATE ROLE {login} LOGIN"))
                conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {login}"))
                conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {login}"))
                conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {login}"))
                _LOGINS.setdefault(schema, []).append(login)
            conn.execute(text("UPDATE users SET db_login = NULL WHERE db_login = :login"), {"login": login})
            conn.execute(text("UPDATE users SET db_login = :login WHERE username = :user"),
                         {"login": login, "user": username})
    finally:
        engine.dispose()
    return make_url(db_url).set(username=login).render_as_string(hide_password=False)


def acting(db_url: str, username: str | None) -> list[str]:
    """``--db`` and ``--actor`` for a command run as ``username`` (None: no one named)."""
    if username is None:
        return ["--db", db_url]
    return ["--db", login_url(db_url, username), "--actor", username]


def is_postgresql_url(db_url: str) -> bool:
    return db_url.startswith("postgresql")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What ``--db`` takes: a SQLite file path, or a PostgreSQL URL with its own schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "memberflow.db")
        return
    with postgresql_schema() as url:
        yield url


@pytest.fixture
def db_path(db_url: str) -> Path:
    return Path(db_url)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    created = Store(db_url, must_exist=False)
    created.create_schema()
    yield created
    created.close()


@pytest.fixture
def service(store: Store) -> Service:
    svc = Service(store)
    svc.install_definitions(DEFINITIONS)
    return svc


@pytest.fixture
def world(service: Service) -> World:
    return World(service)
