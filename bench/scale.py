"""A national-size data set, and how fast the officers' everyday commands answer on it.

``python -m bench.scale generate PATH --people 1000000`` builds an SQLite database that
memberflow accepts as its own: the schema at the Alembic head, the bundled definition, an
organization tree (provinces → committees above the grassroots → grassroots organizations →
branches), one person and one case per person, each case's audit chain, and case rows that
match their last event. ``python -m bench.scale latency PATH`` times ``case show``, ``due
--org`` and ``report admissions`` through the real CLI on it, then ``calendar set-day``
(which counts again the stored deadlines a day can move).

Why copies: running a million cases through the service would take hours, but inventing
events would prove nothing. So a few hundred *template* cases are walked through the real
service (one every week over ``--years``, each as far along the main path as its dates
allow); every other case copies one template's first k events with its own case id, person
and organization, and is re-chained with ``storage.chain``'s exact encoding. Its case row is
the template's row after those k events (state, facts, deadline, version), so replay, verify
and the deadline queries see what the service would have written. Rows are inserted with
plain ``sqlite3`` ``executemany`` in large transactions: inserts only, so the append-only
triggers are respected. The documents table is not copied (only the templates have rows
there); the document references are in every event's payload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from memberflow.app.service import Service, applicant_snapshot
from memberflow.storage.chain import GENESIS, canonical_json
from memberflow.storage.store import Store
from memberflow.workflow.dates import add_months, today

ROOT = Path(__file__).resolve().parent.parent
MEMBERFLOW = Path(sys.executable).parent / "memberflow"
# Organization tree per province: committees above the grassroots, grassroots per committee,
# branches per grassroots organization (34 provinces × 20 × 30 × 4 ≈ 82,000 branches).
PROVINCES, COMMITTEES, GRASSROOTS, BRANCHES = 34, 20, 30, 4
# (trigger, days after the start, role, user, inputs)
ADMISSION: list[tuple[str, int, str, dict[str, Any]]] = [
    ("record_training", 0, "bithu", {}),
    ("prepare_dossier", 10, "bithu", {}),
    ("verify_background", 20, "danguy", {"verification_conclusion": "Lý lịch rõ ràng"}),
    ("record_branch_vote", 30, "bithu", {"votes_for": 9, "votes_eligible": 10}),
    ("record_committee_vote", 40, "danguy", {"votes_for": 7, "votes_eligible": 9}),
    ("decide_admission", 50, "btv", {"decision_number": "12-QĐ/ĐUK"}),
    ("hold_ceremony", 60, "bithu", {}),
]
# (trigger, days after the probation ends, user, inputs)
RECOGNITION: list[tuple[str, int, str, dict[str, Any]]] = [
    ("complete_probation", 0, "bithu", {}),
    ("record_recognition_vote", 5, "bithu", {"votes_for": 10, "votes_eligible": 11}),
    ("record_recognition_committee_vote", 10, "danguy", {"votes_for": 8, "votes_eligible": 9}),
    ("recognize_official", 15, "btv", {"decision_number": "34-QĐ/ĐUK"}),
]
READER = "bench.kiemtoan"  # the auditor the latency commands read as (reads need a principal)
USERS = [("bithu", "branch_secretary"), ("danguy", "grassroots_committee"),
         ("btv", "standing_committee_above"), ("btc", "organization_department")]
# Placeholders in a template payload for what differs per copy (JSON strings, so unique).
APPLICANT, ORGANIZATION = '"@@applicant@@"', '"@@organization@@"'
CHUNK = 20_000
STALLED = 0.1  # share of cases stopped before their template's last step
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Minh", "Thanh", "Ngọc", "Hữu", "Quốc", "Thu", "Đức", "Hoài"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Lan", "Linh",
         "Long", "Mai", "Nam", "Nga", "Phong", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang",
         "Trung", "Tuấn", "Vy", "Yến"]
ETHNICITIES = [("Kinh", 85), ("Tày", 3), ("Thái", 3), ("Mường", 2), ("Khmer", 2), ("Hoa", 1),
               ("Nùng", 1), ("H'Mông", 2), ("Dao", 1)]
RELIGIONS = [("Không", 86), ("Phật giáo", 7), ("Công giáo", 5), ("Tin lành", 1), ("Cao Đài", 1)]
EDUCATION = [("university", 55), ("upper_secondary", 30), ("postgraduate", 10),
             ("lower_secondary", 5)]


@dataclass(frozen=True)
class Step:
    """One template event, split so a copy only fills in its case id, person and hash."""

    seq: int
    columns: tuple[Any, ...]  # kind, definition_sha256, trigger, from_state, to_state, actor, role
    middle: str  # the same columns joined as the chain hashes them
    recorded_at: str
    business_date: str
    payload: str  # canonical JSON with the APPLICANT / ORGANIZATION placeholders
    case_row: tuple[Any, ...]  # state, version, facts, due_on, due_move, due_calendar after it


@dataclass
class Template:
    start: date
    steps: list[Step] = field(default_factory=list)


@dataclass
class Generated:
    path: Path
    people: int
    cases: int
    events: int
    organizations: int
    seconds: float
    templates: int
    sample: dict[str, Any]


# -- the database and its directory ------------------------------------------------------------
def _organizations() -> Iterator[tuple[str, str, str, str | None]]:
    """(code, name, kind, parent code), parents first."""
    for p in range(1, PROVINCES + 1):
        province = f"T{p:02d}"
        yield province, f"Tỉnh ủy tỉnh số {p}", "province_committee", None
        for c in range(1, COMMITTEES + 1):
            committee = f"{province}-H{c:02d}"
            yield committee, f"Huyện ủy số {c} ({province})", "committee_above", province
            for g in range(1, GRASSROOTS + 1):
                grassroots = f"{committee}-C{g:02d}"
                yield grassroots, f"Đảng bộ cơ sở số {g} ({committee})", "grassroots", committee
                for b in range(1, BRANCHES + 1):
                    yield f"{grassroots}-B{b}", f"Chi bộ số {b} ({grassroots})", "branch", grassroots


def _insert_organizations(path: Path) -> list[tuple[int, str]]:
    """The whole tree in one transaction; returns the branches as (id, code)."""
    conn = sqlite3.connect(path)
    ids: dict[str, int] = {}
    branches = []
    now = "2020-01-01T00:00:00.000000Z"
    for n, (code, name, kind, parent) in enumerate(_organizations(), start=1):
        conn.execute("INSERT INTO organizations (id, code, name, kind, parent_id, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (n, code, name, kind, ids.get(parent or ""), now))
        ids[code] = n
        if kind == "branch":
            branches.append((n, code))
    conn.commit()
    conn.close()
    return branches


def _prepare(path: Path) -> Service:
    """Schema at head (as ``memberflow init`` makes it), the bundled definition, the tree, and
    the users the templates act as, each granted its role in every province."""
    if path.exists():
        raise SystemExit(f"{path} exists; choose a new path")
    store = Store(str(path), must_exist=False)
    store.create_schema()
    service = Service(store)
    service.install_definitions(ROOT / "definitions")
    _insert_organizations(path)
    directory = store.directory
    for user, role in USERS:
        directory.add_user(user, user)
        for p in range(1, PROVINCES + 1):
            directory.grant(user, role, f"T{p:02d}")
    directory.add_user(READER, "Kiểm toán (đo)")
    directory.grant(READER, "auditor", None)
    return service


# -- templates through the real service -------------------------------------------------------
def _person(service: Service, name: str, born: date) -> int:
    return service.store.directory.add_person(
        full_name=name, birth_date=born, gender="female", ethnicity="Kinh", religion="Không",
        education="university", youth_union=True, trade_union=True)


def _members(service: Service, branch: str) -> list[int]:
    """Two official members of the template branch: introducers and helper."""
    members = []
    opened = add_months(today(), -12 * 20)
    for n in range(2):
        person = _person(service, f"Đảng viên giới thiệu {n + 1}", date(1970, 1, 1 + n))
        case = service.open_case("btc", person, branch, "membership", opened)
        service.advance("btc", case, "register_existing_member", opened,
                        {"admission_date": "2000-01-01", "official_since": "2001-01-01",
                         "party_card_number": f"{n + 1:08d}"})
        members.append(person)
    return members


def _plan(start: date) -> list[tuple[str, date, str, dict[str, Any]]]:
    """The template's moves dated on or before today: (trigger, date, user, inputs)."""
    moves = [(t, start + timedelta(days=d), user, dict(i)) for t, d, user, i in ADMISSION]
    probation_end = add_months(start + timedelta(days=ADMISSION[-1][1]), 12)
    moves += [(t, probation_end + timedelta(days=d), user, dict(i)) for t, d, user, i in RECOGNITION]
    return [move for move in moves if move[1] <= today()]


def _inputs(trigger: str, on: date, given: dict[str, Any], members: list[int]) -> dict[str, Any]:
    if trigger == "record_training":
        return {"certificate_date": (on - timedelta(days=5)).isoformat()}
    if trigger == "prepare_dossier":
        return {"introducers": f"{members[0]}:24,{members[1]}:30"}
    if trigger == "hold_ceremony":
        return {"helper": members[0]}
    return given


def _steps(service: Service, case_id: int, rows: list[tuple[Any, ...]]) -> list[Step]:
    """The template's events as copyable steps, each with the case row after it."""
    steps = []
    for event, row in zip(service.store.cases.history(case_id), rows, strict=True):
        payload = json.loads(event["payload"])
        payload["evidence"]["applicant"] = APPLICANT.strip('"')
        if "organization" in payload:
            payload["organization"] = ORGANIZATION.strip('"')
        day = event["business_date"].isoformat()
        columns = (event["kind"], event["definition_sha256"], event["trigger"],
                   event["from_state"], event["to_state"], event["actor"], event["role"])
        middle = "\x1f".join(str(c) if c is not None else "" for c in columns)
        # Recorded on the business date (10:xx in Vietnam), as an officer would have.
        steps.append(Step(event["seq"], columns, middle, f"{day}T03:{event['seq']:02d}:00.000000Z",
                          day, canonical_json(payload), row))
    return steps


def _case_rows_after_each_event(service: Service, branch: str, start: date,
                                members: list[int]) -> tuple[int, list[tuple[Any, ...]]]:
    """Walk a template step by step, keeping the case row after every event."""
    person = _person(service, "Người mẫu", date(1998, 6, 15))
    case = service.open_case("bithu", person, branch, "membership", start)
    rows = [_case_row(service, case)]
    definition = service.definition(service.store.cases.load(case).definition_id)
    for trigger, on, user, given in _plan(start):
        transition = definition.transition(trigger, service.store.cases.load(case).state)
        documents = {code: f"{code}/{case}" for code in transition.documents} if transition else {}
        service.advance(user, case, trigger, on, _inputs(trigger, on, given, members), documents)
        rows.append(_case_row(service, case))
    return case, rows


def _case_row(service: Service, case_id: int) -> tuple[Any, ...]:
    with service.store.db.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT state, version, facts, due_on, due_move, due_calendar FROM cases WHERE id = ?",
            (case_id,)).one()
    return tuple(row)


def templates(service: Service, years: int, every_days: int = 7) -> list[Template]:
    """One template case started every ``every_days`` over the last ``years`` years."""
    branch = next(code for code, _, kind, _ in _organizations() if kind == "branch")
    members = _members(service, branch)
    found = []
    start = today() - timedelta(days=365 * years)
    while start < today():
        case, rows = _case_rows_after_each_event(service, branch, start, members)
        found.append(Template(start, _steps(service, case, rows)))
        start += timedelta(days=every_days)
    return found


# -- the copies --------------------------------------------------------------------------------
def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def _person_row(rng: random.Random, person_id: int, first_event: date) -> tuple[Any, ...]:
    """A person aged 20 to 40 when the case opens (the age rule holds on every vote)."""
    female = rng.random() < 0.46
    name = f"{rng.choice(FAMILY)} {'Thị' if female else rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
    born = first_event - timedelta(days=rng.randint(20 * 365, 40 * 365))
    return (person_id, name, born.isoformat(), "female" if female else "male",
            _weighted(rng, ETHNICITIES), _weighted(rng, RELIGIONS), _weighted(rng, EDUCATION),
            int(rng.random() < 0.7), int(rng.random() < 0.5), "2020-01-01T00:00:00.000000Z")


def _snapshot(row: tuple[Any, ...]) -> str:
    """The applicant's evidence as ``Service`` records it, as canonical JSON."""
    fields = dict(zip(("id", "full_name", "birth_date", "gender", "ethnicity", "religion",
                       "education", "youth_union", "trade_union"), row, strict=False))
    fields["birth_date"] = date.fromisoformat(fields["birth_date"])
    return canonical_json(applicant_snapshot(fields))


def _chain(case_id: int, steps: list[Step], applicant: str,
           organization: str) -> tuple[list[tuple[Any, ...]], str]:
    """The copied events of one case, re-chained; returns (rows, head hash)."""
    rows, prev = [], GENESIS
    sha256 = hashlib.sha256
    for step in steps:
        payload = step.payload.replace(APPLICANT, applicant)
        if step.seq == 1:
            payload = payload.replace(ORGANIZATION, organization)
        text = (f"{case_id}\x1f{step.seq}\x1f{step.middle}\x1f{step.recorded_at}\x1f"
                f"{step.business_date}\x1f{payload}\x1f{prev}")
        digest = sha256(text.encode()).hexdigest()
        rows.append((case_id, step.seq, *step.columns, step.recorded_at, step.business_date,
                     payload, prev, digest))
        prev = digest
    return rows, prev


@dataclass
class _Batch:
    people: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)


def _copy(batch: _Batch, rng: random.Random, case_id: int, person_id: int,
          template: Template, branch: tuple[int, str], definition_id: int,
          stop: str | None) -> None:
    """One copied case: its person, its events and its case row. ``stop`` (a trigger)
    cuts every copy after that move; otherwise a few copies stall before their template's
    last step."""
    steps = template.steps
    if stop is not None:
        steps = steps[:next(n for n, s in enumerate(steps, 1) if s.columns[2] == stop)]
    elif len(steps) > 1 and rng.random() < STALLED:
        steps = steps[:rng.randint(1, len(steps) - 1)]
    person = _person_row(rng, person_id, template.start)
    batch.people.append(person)
    rows, head = _chain(case_id, steps, _snapshot(person), json.dumps(branch[1]))
    batch.events += rows
    state, version, facts, due_on, due_move, due_calendar = steps[-1].case_row
    batch.cases.append((case_id, person_id, branch[0], definition_id, state, version,
                        steps[-1].seq, head, facts, template.start.isoformat(), due_on, due_move,
                        due_calendar, steps[-1].recorded_at))


def _write(conn: sqlite3.Connection, batch: _Batch) -> None:
    conn.executemany("INSERT INTO people (id, full_name, birth_date, gender, ethnicity, religion, "
                     "education, youth_union, trade_union, created_at) VALUES "
                     "(?,?,?,?,?,?,?,?,?,?)", batch.people)
    conn.executemany("INSERT INTO cases (id, person_id, organization_id, definition_id, state, "
                     "version, seq, head_hash, facts, opened_on, due_on, due_move, due_calendar, "
                     "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch.cases)
    conn.executemany("INSERT INTO audit_events (case_id, seq, kind, definition_sha256, trigger, "
                     "from_state, to_state, actor, role, recorded_at, business_date, payload, "
                     "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch.events)
    conn.commit()


def _people_without_cases(conn: sqlite3.Connection, rng: random.Random, first: int,
                          count: int) -> None:
    for start in range(first, first + count, CHUNK):
        rows = [_person_row(rng, n, today()) for n in range(start, min(first + count, start + CHUNK))]
        conn.executemany("INSERT INTO people (id, full_name, birth_date, gender, ethnicity, "
                         "religion, education, youth_union, trade_union, created_at) VALUES "
                         "(?,?,?,?,?,?,?,?,?,?)", rows)
        conn.commit()


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")  # a failed generation is simply run again
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the secondary indexes stay in memory
    return conn


def generate(path: Path, people: int, cases: int | None = None, years: int = 6, seed: int = 7,
             echo: Callable[[str], None] = print, stop: str | None = None,
             copies: int | None = None) -> Generated:
    """Build the data set; ``cases`` defaults to one per person (templates included).
    With ``stop`` every copied case ends with that move (the memory benchmark wants all of
    them in one state); ``copies`` sets the number of copied cases instead of ``cases``."""
    began = time.perf_counter()
    cases = people if cases is None else cases
    service = _prepare(path)
    made = templates(service, years)
    if stop is not None:
        made = [t for t in made if any(s.columns[2] == stop for s in t.steps)]
    definition_id = service.store.definitions.latest("membership")["id"]
    service.store.close()
    conn = _open(path)
    first_case = conn.execute("SELECT max(id) FROM cases").fetchone()[0] + 1
    first_person = conn.execute("SELECT max(id) FROM people").fetchone()[0] + 1
    copies = max(0, cases - (first_case - 1)) if copies is None else copies
    branches = [(i, c) for i, c in conn.execute(
        "SELECT id, code FROM organizations WHERE kind = 'branch' ORDER BY id")]
    echo(f"templates: {len(made)} cases through the service in {time.perf_counter() - began:.1f} s")
    rng = random.Random(seed)
    events = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    for start in range(0, copies, CHUNK):
        batch = _Batch()
        for n in range(start, min(copies, start + CHUNK)):
            _copy(batch, rng, first_case + n, first_person + n, rng.choice(made),
                  rng.choice(branches), definition_id, stop)
        _write(conn, batch)
        events += len(batch.events)
        if start // CHUNK % 10 == 9:
            echo(f"  {start + CHUNK:,} cases, {events:,} events, {time.perf_counter() - began:.0f} s")
    _people_without_cases(conn, rng, first_person + copies, max(0, people - copies - first_person + 1))
    conn.execute("ANALYZE")
    conn.commit()
    counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("people", "cases", "organizations")]
    conn.close()
    return Generated(path, counts[0], counts[1], events, counts[2], time.perf_counter() - began,
                     len(made), sample(path))


def sample(path: Path) -> dict[str, Any]:
    """What the latency checks ask for: an in-progress case, a committee with a realistic
    subtree (about 150 organizations) and the last full year."""
    conn = sqlite3.connect(path)
    case = conn.execute("SELECT max(id) FROM cases WHERE due_on IS NOT NULL").fetchone()[0]
    conn.close()
    return {"case": case, "org": "T01-H01", "year": today().year - 1}


# -- latency through the real CLI --------------------------------------------------------------
def commands(path: Path, found: dict[str, Any]) -> dict[str, list[str]]:
    db = ["--db", str(path), "--actor", READER]
    return {
        "case show": [str(MEMBERFLOW), *db, "case", "show", str(found["case"])],
        "due --org": [str(MEMBERFLOW), *db, "due", "--org", found["org"]],
        "report admissions": [str(MEMBERFLOW), *db, "report", "admissions", "--year",
                              str(found["year"])],
    }


def wall_time(command: list[str]) -> float:
    """Seconds for one run of a command; a failing command stops the benchmark."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def latency(path: Path, runs: int = 5, found: dict[str, Any] | None = None) -> dict[str, float]:
    """Median wall time (s) of each command over ``runs`` runs, after one warm-up run (the
    first run reads the file from disk; officers' later runs find it in the page cache)."""
    result = {}
    for name, command in commands(path, found or sample(path)).items():
        wall_time(command)
        result[name] = statistics.median(wall_time(command) for _ in range(runs))
    return result


def calendar_change(path: Path) -> tuple[float, int]:
    """Seconds an administrator's ``calendar set-day`` takes on the set, and how many stored
    deadlines it counts again: a day off on the first working day of the year, then the day
    back (each moves every deadline counted across it, so each counts again every deadline
    due from that day on); the mean of the two runs. Adds an administrator and two
    overrides to the set."""
    store = Store(str(path))
    store.directory.add_user("bench.quantri", "Quản trị (đo)")
    store.directory.grant("bench.quantri", "administrator", None)
    calendar = Service(store).engine.calendar
    day = calendar.add_working_days(date(today().year, 1, 1), 1)
    store.close()
    conn = sqlite3.connect(path)
    due = conn.execute("SELECT count(*) FROM cases WHERE due_on >= ?", (day.isoformat(),)).fetchone()[0]
    conn.close()
    base = [str(MEMBERFLOW), "--db", str(path), "--actor", "bench.quantri", "calendar", "set-day",
            day.strftime("%d/%m/%Y"), "--reason", "bench"]
    seconds = [wall_time([*base, flag]) for flag in ("--off", "--working")]
    return statistics.mean(seconds), due


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="build a national-size SQLite database at PATH")
    gen.add_argument("path", type=Path)
    gen.add_argument("--people", type=int, default=1_000_000)
    gen.add_argument("--cases", type=int, help="default: one per person")
    gen.add_argument("--years", type=int, default=6, help="span of the cases' start dates")
    gen.add_argument("--latency", action="store_true", help="then time the CLI on it")
    lat = sub.add_parser("latency", help="time case show, due --org, report admissions on PATH")
    lat.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "generate":
        made = generate(args.path, args.people, args.cases, args.years)
        size = args.path.stat().st_size / 1e9
        print(f"generated {made.people:,} people, {made.cases:,} cases, {made.events:,} events, "
              f"{made.organizations:,} organizations in {made.seconds:.0f} s ({size:.1f} GB)")
        print(f"sample: {made.sample}")
    if args.command == "latency" or args.latency:
        found = sample(args.path)
        for name, seconds in latency(args.path, found=found).items():
            print(f"{name:20} {seconds * 1000:8.0f} ms   {' '.join(commands(args.path, found)[name][1:])}")
        seconds, counted = calendar_change(args.path)
        print(f"{'calendar set-day':20} {seconds * 1000:8.0f} ms   "
              f"(counts again {counted:,} stored deadlines)")


if __name__ == "__main__":
    main()
