"""Administrators publish immutable definition versions (optionally maker–checker), and move
running cases to a new version with an impact report, audit events, and safe resumption."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, MEMBERSHIP, RECOGNITION_PATH, World, acting
from memberflow.app.publishing import Publishing
from memberflow.app.repinning import Migrator
from memberflow.app.service import Service
from memberflow.cli import main
from memberflow.errors import BadInput, DefinitionInvalid, MoveRefused, NotPermitted
from memberflow.storage.store import Store
from memberflow.storage.verification import verify
from memberflow.workflow.dates import add_months
from memberflow.workflow.repinning import MIGRATION_KIND

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_NOT_PERMITTED = 1, 2, 5


@pytest.fixture
def admins(world: World) -> World:
    for user in ("quantri", "quantri2"):
        world.store.directory.add_user(user, f"Quản trị {user}")
        world.store.directory.grant(user, "administrator", None)
    return world


def revised(tmp_path: Path, name: str = "v2.yaml", rename: bool = True, days: int = 90) -> Path:
    """The bundled procedure with the branch-voted state renamed and the decision deadline
    changed: what a new regulation typically does."""
    text = MEMBERSHIP.read_text(encoding="utf-8")
    if rename:
        text = re.sub(r"\bbranch_voted\b", "branch_approved", text)
    assert "within: {working_days: 60}" in text
    text = text.replace("within: {working_days: 60}", f"within: {{working_days: {days}}}", 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(world: World, *args: str, actor: str = "quantri") -> Result:
    return CliRunner().invoke(main, [*acting(world.store.url, actor), *args])


# -- publishing -----------------------------------------------------------------------------------
def test_publish_stores_a_new_version_that_new_cases_start_on(admins: World, tmp_path: Path) -> None:
    result = cli(admins, "definition", "publish", str(revised(tmp_path)), "--comment", "Quy định 2026")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"published membership@2 \(sha256 [0-9a-f]{12}\): new cases start on it; "
                        r"running cases stay on their version\n", result.stdout)
    history = admins.store.definitions.all("membership")
    assert [(r["version"], r["status"], r["author"], r["comment"]) for r in history] == \
        [(1, "published", None, None), (2, "published", "quantri", "Quy định 2026")]
    new_case = admins.open_case()
    assert admins.store.cases.load(new_case).definition_id == history[1]["id"]


def test_publishing_identical_content_is_a_no_op_that_says_so(admins: World) -> None:
    result = cli(admins, "definition", "publish", str(MEMBERSHIP), "--comment", "again")
    assert result.exit_code == 0
    assert "identical content is already stored as membership@1" in result.stdout
    assert "nothing changed" in result.stdout
    assert len(admins.store.definitions.all()) == 1


def test_invalid_definition_is_refused_with_file_and_line_and_nothing_stored(admins: World,
                                                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MEMBERSHIP.read_text(encoding="utf-8").replace("dest: probationary",
                                                                  "dest: probation_typo"))
    result = cli(admins, "definition", "publish", str(bad), "--comment", "x")
    assert result.exit_code == EXIT_BAD_INPUT
    assert re.search(rf"{re.escape(str(bad))}:\d+: .*probation_typo", result.stderr)
    assert len(admins.store.definitions.all()) == 1


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


def test_lint_error_blocks_publishing(admins: World, tmp_path: Path) -> None:
    text = MEMBERSHIP.read_text(encoding="utf-8")
    bounds = "min_years: 18, max_years: 60, consent_document: TU-DY"
    assert bounds in text
    contradictory = tmp_path / "ages.yaml"
    contradictory.write_text(text.replace(bounds, "min_years: 18, max_years: 17"), encoding="utf-8")
    with pytest.raises(DefinitionInvalid) as refused:
        Publishing(admins.store).publish("quantri", contradictory, "x")
    assert [(p.file, p.line) for p in refused.value.problems] == \
        [(str(contradictory), line_of(text, bounds))]
    assert "error: transition 'record_branch_vote' guard age_between: min_years 18 is above " \
           "max_years 17" in refused.value.problems[0].message
    assert len(admins.store.definitions.all()) == 1


def test_only_administrators_publish(admins: World, tmp_path: Path) -> None:
    result = cli(admins, "definition", "publish", str(revised(tmp_path)), "--comment", "x",
                 actor="secretary")
    assert result.exit_code == EXIT_NOT_PERMITTED
    assert result.stderr.strip() == "error: secretary is not an administrator for the whole installation"
    assert len(admins.store.definitions.all()) == 1


def test_maker_checker_keeps_a_version_pending_until_another_admin_approves(admins: World,
                                                                           tmp_path: Path) -> None:
    assert cli(admins, "definition", "require-approval", "on").exit_code == 0
    result = cli(admins, "definition", "publish", str(revised(tmp_path)), "--comment", "2026")
    assert "pending: another administrator must run 'memberflow definition approve membership@2'" \
        in result.stdout
    first = admins.store.definitions.all()[0]["id"]
    assert admins.store.cases.load(admins.open_case()).definition_id == first  # still v1

    same = cli(admins, "definition", "approve", "membership@2")
    assert same.exit_code == EXIT_NOT_PERMITTED
    assert "quantri published membership@2; a different administrator must approve it" in same.stderr
    officer = cli(admins, "definition", "approve", "membership@2", actor="secretary")
    assert officer.exit_code == EXIT_NOT_PERMITTED

    approved = cli(admins, "definition", "approve", "membership@2", actor="quantri2")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout == "membership@2 approved by quantri2: published\n"
    assert cli(admins, "definition", "approve", "membership@2", actor="quantri2").exit_code == EXIT_REFUSED
    second = admins.store.definitions.numbered("membership", 2)
    assert (second["status"], second["approved_by"]) == ("published", "quantri2")
    assert admins.store.cases.load(admins.open_case()).definition_id == second["id"]


def test_history_and_show_of_a_numbered_version(admins: World, tmp_path: Path) -> None:
    Publishing(admins.store).publish("quantri", revised(tmp_path), "Quy định 2026")
    history = cli(admins, "definition", "history", "membership", "--format", "json")
    assert history.exit_code == 0
    assert "Quy định 2026" in history.stdout
    old = cli(admins, "definition", "show", "membership@1", "--lang", "en")
    new = cli(admins, "definition", "show", "membership", "--lang", "en")
    assert "branch_voted" in old.stdout and "branch_approved" not in old.stdout
    assert "branch_approved" in new.stdout and "membership v2 (published" in new.stdout
    assert cli(admins, "definition", "show", "membership@9").exit_code == 4
    assert cli(admins, "definition", "show", "membership@x").exit_code == EXIT_BAD_INPUT


# -- migration ------------------------------------------------------------------------------------
def cases_in_every_state(world: World) -> dict[str, int]:
    """One running case in each state of the main path, admission through official member."""
    placed = {}
    for steps in range(len(ADMISSION_PATH) + len(RECOGNITION_PATH) + 1):
        case_id = world.open_case()
        ceremony = world.walk(case_id, ADMISSION_PATH[:steps], world.ago(months=20))
        world.walk(case_id, RECOGNITION_PATH[:max(0, steps - len(ADMISSION_PATH))],
                   add_months(ceremony, 12), gap_days=5)
        placed[world.store.cases.load(case_id).state] = case_id
    assert len(placed) == 12
    return placed


def finished_cases(world: World) -> list[int]:
    """Cases in terminal states of the application and removal stages: they keep their version."""
    rejected = world.open_case()
    world.step(rejected, "reject_application", world.ago(months=19))
    withdrawn = world.open_case()
    world.step(withdrawn, "withdraw_application", world.ago(months=19))
    expelled = world.official_case()
    world.step(expelled, "expel", world.ago(days=1))
    return [rejected, withdrawn, expelled]


def test_dry_run_reports_stranded_states_and_apply_is_refused(admins: World, tmp_path: Path) -> None:
    placed = cases_in_every_state(admins)
    Publishing(admins.store).publish("quantri", revised(tmp_path), "2026")
    before = {c: admins.store.cases.history(c) for c in placed.values()}
    dry = cli(admins, "definition", "migrate", "membership", "--to", "2", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert re.search(r"v1\s+branch_voted\s+1\s+STRANDED", dry.stdout)
    assert re.search(r"v1\s+committee_voted\s+1\s+committee_voted", dry.stdout)
    assert "states that vanish without a --map: branch_voted" in dry.stdout
    applied = cli(admins, "definition", "migrate", "membership", "--to", "2")
    assert applied.exit_code == EXIT_REFUSED
    assert "would be stranded" in applied.stderr and "--map OLD=NEW" in applied.stderr
    assert {c: admins.store.cases.history(c) for c in placed.values()} == before


def test_migration_repins_running_cases_with_an_audit_event_each(admins: World, tmp_path: Path) -> None:
    placed = cases_in_every_state(admins)
    finished = finished_cases(admins)
    Publishing(admins.store).publish("quantri", revised(tmp_path), "2026")
    v2 = admins.store.definitions.numbered("membership", 2)

    dry = cli(admins, "definition", "migrate", "membership", "--to", "2", "--map",
              "branch_voted=branch_approved", "--dry-run")
    assert "open deadline change: decide_admission: due" in dry.stdout
    result = cli(admins, "definition", "migrate", "membership", "--to", "2", "--map",
                 "branch_voted=branch_approved")
    assert result.exit_code == 0, result.output
    running = len(placed) + len(admins.members)  # the registered members are running cases too
    assert f"migrated {running} case(s) to membership@2" in result.stdout

    for state, case_id in placed.items():
        record = admins.store.cases.load(case_id)
        assert record.definition_id == v2["id"]
        assert record.state == ("branch_approved" if state == "branch_voted" else state)
        last = admins.store.cases.history(case_id)[-1]
        assert (last["kind"], last["from_state"], last["to_state"], last["actor"]) == \
            (MIGRATION_KIND, state, record.state, "quantri")
        assert last["definition_sha256"] == v2["sha256"]
    for case_id in finished:  # finished cases stay pinned to the version they ran under
        assert admins.store.cases.load(case_id).definition_id != v2["id"]
    assert verify(admins.store.db).ok
    assert admins.service.replay_all(workers=1).divergent == []
    # The migrated case goes on under the new rules: its decision deadline is now 90 days.
    branch = placed["branch_voted"]
    assert admins.store.cases.load(branch).due_move == "decide_admission"
    again = cli(admins, "definition", "migrate", "membership", "--to", "2")
    assert again.exit_code == 0 and "0 running case(s)" in again.stdout


def test_replay_reports_a_migration_that_lands_elsewhere_than_its_map(admins: World, tmp_path: Path) -> None:
    case_id = admins.open_case()
    admins.walk(case_id, ADMISSION_PATH[:4], admins.ago(months=20))
    Publishing(admins.store).publish("quantri", revised(tmp_path), "2026")
    row, report = Migrator(admins.service).prepare("quantri", "membership", 2,
                                                   ["branch_voted=branch_approved"])
    Migrator(admins.service).apply("quantri", row, report)
    history = admins.store.cases.history(case_id)
    assert admins.service.replayer().replay(case_id, history).ok
    bent = [dict(e) for e in history]
    bent[-1]["payload"] = bent[-1]["payload"].replace('"branch_voted":"branch_approved"',
                                                      '"branch_voted":"committee_voted"')
    replayed = admins.service.replayer().replay(case_id, bent)
    assert replayed.divergence is not None
    assert "state map does not send branch_voted to branch_approved" in replayed.divergence


def test_migration_refuses_unknown_map_and_unpublished_target(admins: World, tmp_path: Path) -> None:
    Publishing(admins.store).publish("quantri", revised(tmp_path), "2026")
    with pytest.raises(BadInput, match="has no state 'nowhere'"):
        Migrator(admins.service).prepare("quantri", "membership", 2, ["branch_voted=nowhere"])
    with pytest.raises(BadInput, match="must be OLD_STATE=NEW_STATE"):
        Migrator(admins.service).prepare("quantri", "membership", 2, ["branch_voted"])
    with pytest.raises(NotPermitted):
        Migrator(admins.service).prepare("secretary", "membership", 2, [])
    Publishing(admins.store).set_approval("quantri", True)
    Publishing(admins.store).publish("quantri", revised(tmp_path, "v3.yaml", days=80), "pending one")
    with pytest.raises(MoveRefused, match="membership@3 is pending"):
        Migrator(admins.service).prepare("quantri", "membership", 3, ["branch_voted=branch_approved"])


def test_killed_migration_resumes_without_migrating_anything_twice(admins: World, tmp_path: Path) -> None:
    for _ in range(200):
        admins.open_case()
    running = 200 + len(admins.members)
    Publishing(admins.store).publish("quantri", revised(tmp_path, rename=False), "2026")
    base = admins.store.cases.count_events()
    command = [str(ENTRY_POINT), *acting(admins.store.url, "quantri"), "definition",
               "migrate", "membership", "--to", "2", "--chunk", "1"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while admins.store.cases.count_events() == base and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    done = admins.store.cases.count_events() - base
    assert 1 <= done < running, "the run must be killed part-way"
    assert verify(admins.store.db).ok  # every chain intact, every case row matches its last event

    finish = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert f"migrated {running - done} case(s)" in finish.stdout
    assert admins.store.cases.count_events() - base == running
    for record in admins.store.cases.listing(limit=10_000):
        kinds = [e["kind"] for e in admins.store.cases.history(record["id"])]
        assert kinds.count(MIGRATION_KIND) == 1
    assert verify(admins.store.db).ok
    assert admins.service.replay_all(workers=1).divergent == []


def test_migration_stopped_by_a_storage_failure_says_how_many_cases_it_migrated(
        admins: World, db_url: str, tmp_path: Path) -> None:
    """Chunks commit one by one; a second connection holding what a chunk needs past its
    timeout stops the run (exit 6), which says which chunk and how many cases were migrated
    before it. Run again, it migrates only the rest: every case has one migration event."""
    from interruptions import storage_fails_during

    for _ in range(120):
        admins.open_case()
    ids = [r["id"] for r in admins.store.cases.listing(limit=10_000)]
    Publishing(admins.store).publish("quantri", revised(tmp_path, rename=False), "2026")
    command = ["definition", "migrate", "membership", "--to", "2", "--chunk", "5"]
    admins.store.close()
    with storage_fails_during(db_url, "migrate_definition", 20, ids[25]) as url:
        stopped = subprocess.run([str(ENTRY_POINT), *acting(url, "quantri"), *command],
                                 capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 6, stopped.stderr

    def migrations() -> list[int]:
        return [[e["kind"] for e in admins.store.cases.history(i)].count(MIGRATION_KIND) for i in ids]

    migrated = sum(migrations())
    assert 20 <= migrated < len(ids) and migrated % 5 == 0
    if db_url.startswith("postgresql"):
        assert migrated == 25  # the chunk holding the locked case stopped the run
    assert migrations() == [1] * migrated + [0] * (len(ids) - migrated)
    stop = stopped.stderr.splitlines()[-1]
    assert stop.startswith(f"error: stopped at the chunk of cases {ids[migrated]}–{ids[migrated + 4]}: ")
    assert stop.endswith(f"; {migrated} case(s) migrated and committed before it; run the migration "
                         "again to continue (cases already migrated are not moved again)")

    finish = subprocess.run([str(ENTRY_POINT), *acting(db_url, "quantri"), *command],
                            capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert f"migrated {len(ids) - migrated} case(s)" in finish.stdout
    assert migrations() == [1] * len(ids)
    assert verify(admins.store.db).ok


# -- the administrator's CLI tools on files ------------------------------------------------------
def test_lint_diff_and_graph_from_the_command_line(admins: World, tmp_path: Path) -> None:
    bad = tmp_path / "ages.yaml"
    bounds = "min_years: 18, max_years: 60, consent_document: TU-DY"
    text = MEMBERSHIP.read_text(encoding="utf-8")
    bad.write_text(text.replace(bounds, "min_years: 18, max_years: 17"), encoding="utf-8")
    linted = cli(admins, "definition", "lint", str(bad))
    assert linted.exit_code == EXIT_BAD_INPUT
    assert f"{bad}:{line_of(text, bounds)}: error: transition 'record_branch_vote' guard age_between" \
        in linted.stdout
    assert f"{bad}: 1 error, 0 warnings" in linted.stdout
    clean = cli(admins, "definition", "lint", str(MEMBERSHIP), "--strict")
    assert clean.exit_code == 0 and "0 errors, 0 warnings" in clean.stdout

    v2 = revised(tmp_path)
    diffed = cli(admins, "definition", "diff", "membership@1", str(v2))
    assert diffed.exit_code == 0, diffed.output
    assert "transition decide_admission: deadline changed from 60 working days" in diffed.stdout
    assert "state branch_voted" in diffed.stdout and "state branch_approved" in diffed.stdout

    out = tmp_path / "membership.mmd"
    drawn = cli(admins, "--lang", "vi", "definition", "graph", "membership", "-o", str(out))
    assert drawn.exit_code == 0 and out.read_text(encoding="utf-8").startswith("stateDiagram-v2")
    assert "Đảng viên chính thức" in out.read_text(encoding="utf-8")
    dot = cli(admins, "definition", "graph", str(v2), "--format", "dot")
    assert dot.stdout.startswith("digraph") and "branch_approved" in dot.stdout


# -- init publishes the bundled definitions as an administrator ---------------------------------
def run_init(db: str, *args: str, actor: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(ENTRY_POINT), *acting(db, actor), "init", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("MEMBERFLOW_")},
                               "MEMBERFLOW_LANG": "en"})


def test_a_new_installation_needs_its_first_administrator_who_publishes_the_definitions(
        db_url: str) -> None:
    """``init`` alone on a new database is bad input and creates nothing; with ``--admin`` the
    bundled definitions are published by that administrator (recorded as their author)."""
    refused = run_init(db_url)
    assert (refused.returncode, refused.stdout) == (EXIT_BAD_INPUT, "")
    assert refused.stderr == ("error: a new installation needs its first administrator: "
                              "memberflow init --admin USER --admin-name NAME\n")
    if not db_url.startswith("postgresql"):
        assert not Path(db_url).exists()
    made = run_init(db_url, "--admin", "quantri", "--admin-name", "Trịnh Công Minh")
    assert made.returncode == 0, made.stderr
    store = Store(db_url)
    try:
        assert [(r["name"], r["status"], r["author"]) for r in store.definitions.all()] == \
            [("membership", "published", "quantri")]
    finally:
        store.close()


@pytest.fixture
def upgraded_release(store: Store, db_url: str, tmp_path: Path) -> tuple[Store, str]:
    """An installation whose stored membership definition is an earlier release's: the
    bundled one now differs from every stored version. Two administrators and an officer."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    revised(tmp_path, rename=False).rename(earlier / "membership.yaml")
    Service(store).install_definitions(earlier)
    for user, role in (("quantri", "administrator"), ("quantri2", "administrator"),
                       ("kiemtra", "auditor")):
        store.directory.add_user(user, user)
        store.directory.grant(user, role, None)
    store.close()
    return store, db_url


def versions(store: Store) -> list[tuple[int, str, str | None, str | None]]:
    return [(r["version"], r["status"], r["author"], r["approved_by"])
            for r in store.definitions.all("membership")]


def test_init_publishes_a_changed_bundled_definition_only_as_a_named_administrator(
        upgraded_release: tuple[Store, str]) -> None:
    store, url = upgraded_release
    nobody = run_init(url)
    assert (nobody.returncode, nobody.stdout) == (EXIT_BAD_INPUT, "")
    assert nobody.stderr == ("error: membership.yaml differs from every stored version of "
                             "membership; init publishes it as an administrator: name one with "
                             "--actor or MEMBERFLOW_ACTOR\n")
    auditor = run_init(url, actor="kiemtra")
    assert auditor.returncode == EXIT_NOT_PERMITTED, auditor.stderr
    assert auditor.stderr == "error: kiemtra is not an administrator for the whole installation\n"
    assert versions(store) == [(1, "published", None, None)]

    published = run_init(url, actor="quantri")
    assert published.returncode == 0, published.stderr
    assert re.search(r"^membership: published as membership@2 \(sha256 [0-9a-f]{12}\)$",
                     published.stdout, re.MULTILINE), published.stdout
    assert versions(store) == [(1, "published", None, None), (2, "published", "quantri", None)]
    again = run_init(url)  # nothing new to publish: no administrator needed
    assert again.returncode == 0, again.stderr
    assert "membership: already installed" in again.stdout
    assert len(versions(store)) == 2


def test_init_respects_maker_checker_for_a_changed_bundled_definition(
        upgraded_release: tuple[Store, str]) -> None:
    """With require-approval on, what init publishes waits, like any published version, for a
    second administrator; running init again does not put it in force either."""
    store, url = upgraded_release
    Publishing(store).set_approval("quantri", True)
    store.close()
    pending = run_init(url, actor="quantri")
    assert pending.returncode == 0, pending.stderr
    assert "membership: stored as membership@2, pending: another administrator must run " \
           "'memberflow definition approve membership@2'" in pending.stdout
    assert versions(store) == [(1, "published", None, None), (2, "pending", "quantri", None)]
    assert run_init(url, actor="quantri").returncode == 0
    assert versions(store)[-1] == (2, "pending", "quantri", None)
    same = subprocess.run([str(ENTRY_POINT), *acting(url, "quantri"), "definition",
                           "approve", "membership@2"], capture_output=True, text=True, timeout=60)
    assert same.returncode == EXIT_NOT_PERMITTED
    other = subprocess.run([str(ENTRY_POINT), *acting(url, "quantri2"), "definition",
                            "approve", "membership@2"], capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert versions(store)[-1] == (2, "published", "quantri", "quantri2")
