"""Stateful property test: officers (some without the right role, one outside the case's
subtree, an auditor, an unknown user) open cases and fire random moves — valid and invalid
triggers, good and bad inputs, documents attached or missing, business dates forward,
backward and in the future — against a real database, a fresh one per example.

After every step the record must hold together:

(a) each case's row (state and facts) is what replaying its audit events gives;
(b) ``audit verify`` finds every chain intact;
(c) every event is a transition of the definition and lands in that transition's state;
(d) a refused move or opening (any domain or storage error) wrote nothing at all;
and a recorded move is one the rules allow: right state, a role the actor holds at the
case's organization, every required document attached, a business date between the day the
case entered its state and today, exactly one new event and nothing else touched.
"""

from __future__ import annotations

import shutil
import string
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFINITIONS, MEMBERSHIP, OFFICERS, ORGS, World, postgresql_schema
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from memberflow.app import administration
from memberflow.app.service import Service
from memberflow.errors import AlreadyMoved, BadInput, MemberflowError, MoveRefused, NotPermitted
from memberflow.storage.store import Store
from memberflow.storage.verification import case_histories, verify
from memberflow.workflow import engine
from memberflow.workflow.dates import add_months
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.definition import Transition
from memberflow.workflow.loader import STATE_ENTERED, load_definition
from sqlalchemy import text
from test_transitions import EXTRA_INPUTS

DEFINITION = load_definition(MEMBERSHIP)
TRIGGERS = DEFINITION.triggers()
ROLES = list(DEFINITION.roles)
REFUSALS = (MemberflowError,)

AUDITOR, ADMIN, NOBODY = "kiemtoan", "quantri", "ai.do"  # NOBODY is no user at all
# ``memberflow tick`` (automatic moves, recorded as this actor in the system role), if present.
TICK_ACTOR = getattr(administration, "TICK_ACTOR", None)
SYSTEM_ROLE = getattr(engine, "SYSTEM_ROLE", None)
HAS_TICK = TICK_ACTOR is not None and hasattr(Service, "tick")
ACTORS = [*OFFICERS, AUDITOR, ADMIN, NOBODY]
PARENT = {code: parent for code, _, _, parent in ORGS}
OPEN_AT = ["VP", "OTHER-CB", "SGD", "NO-SUCH-ORG"]
# Strings that must never be more than inert text (or a refused input).
HOSTILE = [
    "", " ", "abc", "-1", "0", "1.5", "1e3", "99999999999999999999999", "31/02/2026",
    "2026-13-01", "01/01/1800", "9999-12-31", "x" * 2001, "a\x00b", "dòng\nmới", "yes", "no",
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "{{7*7}}",
    "${jndi:ldap://x}", "'; DROP TABLE audit_events; --", "1:12,2:24", "0:12", "1:-5", "1", "2",
    "Nguyễn Thị Hoa", "youth_union", "absence_or_unpaid_dues", "\u202etxt.exe",
]
BODY_TEXT = st.text(alphabet=string.ascii_letters + "ăâđêôơưàáạảãĐ0123456789 :/-,", max_size=20)


def _ancestors(code: str | None) -> Iterator[str]:
    while code is not None:
        yield code
        code = PARENT.get(code)


def roles_at(actor: str, org: str) -> set[str]:
    """The roles the actor holds at ``org``, worked out from conftest's grants, not by the
    code under test."""
    if actor in OFFICERS:
        role, granted_at = OFFICERS[actor]
        return {role} if granted_at in _ancestors(org) else set()
    return {"auditor"} if actor == AUDITOR else {"administrator"} if actor == ADMIN else set()


def actor_for(role: str, org: str) -> str | None:
    return next((a for a in OFFICERS if role in roles_at(a, org)), None)


@dataclass
class Bloc:
    """One example's database: the store, the service and conftest's World on it."""

    store: Store
    service: Service
    world: World
    member_cases: list[int]


class CopiedWorld(World):
    """conftest's World over a database copied from a template (already populated)."""

    def __init__(self, service: Service, members: list[int]) -> None:
        self.service, self.store = service, service.store
        self.today = business_today()
        self.members = members


def populate(store: Store) -> Bloc:
    store.create_schema()
    service = Service(store)
    service.install_definitions(DEFINITIONS)
    world = World(service)
    store.directory.add_user(AUDITOR, "Kiểm toán")
    store.directory.grant(AUDITOR, "auditor", None)
    store.directory.add_user(ADMIN, "Quản trị")
    store.directory.grant(ADMIN, "administrator", None)
    cases = [c.id for m in world.members for c in store.cases.of_person(m)]
    return Bloc(store, service, world, cases)


def sqlite_blocs(folder: Path) -> Callable[[ExitStack], Bloc]:
    """Each example gets a copy of a template file (building one costs half a second)."""
    template = folder / "template.db"
    built = populate(Store(str(template), must_exist=False))
    members, member_cases = built.world.members, built.member_cases
    built.store.close()
    counter = iter(range(10**9))

    wal = template.with_name(template.name + "-wal")  # normally folded in when the store closed

    def make(stack: ExitStack) -> Bloc:
        path = folder / f"example-{next(counter)}.db"
        shutil.copyfile(template, path)
        if wal.exists():
            shutil.copyfile(wal, path.with_name(path.name + "-wal"))
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), path):
            stack.callback(leftover.unlink, missing_ok=True)
        store = Store(str(path))
        stack.callback(store.close)
        service = Service(store)
        return Bloc(store, service, CopiedWorld(service, members), member_cases)

    return make


def postgresql_blocs(stack: ExitStack) -> Bloc:
    url = stack.enter_context(postgresql_schema())
    store = Store(url, must_exist=False)
    stack.callback(store.close)
    return populate(store)


# ---- what the machine draws ------------------------------------------------------------------

def good_inputs(world: World, trigger: str, on: date) -> dict[str, Any]:
    if trigger in EXTRA_INPUTS:
        return dict(EXTRA_INPUTS[trigger])
    return world.inputs_for(trigger, on)


def spoil_inputs(data: st.DataObject, trigger: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Good inputs, or the same with a value replaced, one missing, or one unknown added."""
    how = data.draw(st.sampled_from(["keep", "replace", "drop", "add", "votes"]), label="inputs")
    spoiled = dict(inputs)
    if how == "replace" and spoiled:
        name = data.draw(st.sampled_from(sorted(spoiled)), label="input replaced")
        spoiled[name] = data.draw(st.one_of(st.sampled_from(HOSTILE), BODY_TEXT,
                                            st.integers(-3, 2**62)), label="bad value")
    elif how == "drop" and spoiled:
        del spoiled[data.draw(st.sampled_from(sorted(spoiled)), label="input dropped")]
    elif how == "add":
        spoiled[data.draw(st.sampled_from(["evil", "votes_for", "reason", "helper"]),
                          label="input added")] = data.draw(st.sampled_from(HOSTILE))
    elif how == "votes":
        for name in [n for n in spoiled if "votes" in n]:
            spoiled[name] = data.draw(st.integers(-1, 12), label=name)
    return spoiled


def documents_for(data: st.DataObject, transition: Transition | None) -> dict[str, str]:
    required = list(transition.documents if transition else ())
    how = data.draw(st.sampled_from(["required", "one missing", "none", "extra", "unknown",
                                     "any"]), label="documents")
    codes = list(required)
    if how == "one missing" and codes:
        codes.remove(data.draw(st.sampled_from(codes), label="document left out"))
    elif how == "none":
        codes = []
    elif how == "extra":
        codes.append(data.draw(st.sampled_from(sorted(DEFINITION.documents)), label="extra"))
    elif how == "unknown":
        codes.append(data.draw(st.sampled_from(["XX-999", "9-knđ", " 9-KNĐ", ""]), label="unknown"))
    elif how == "any":
        codes = data.draw(st.lists(st.sampled_from(sorted(DEFINITION.documents)), max_size=5),
                          label="documents")
    reference = data.draw(st.one_of(st.just("{code}-ref"), st.sampled_from(HOSTILE[:20])),
                          label="reference")
    return {code: reference.replace("{code}", code) for code in codes}


def move_date(data: st.DataObject, entered: date, today: date) -> date:
    """Forward from the day the case entered its state, backward before it, or in the future."""
    kind = data.draw(st.sampled_from(["forward", "backward", "future", "today", "a year on"]),
                     label="date")
    if kind == "forward":
        return min(today, entered + timedelta(days=data.draw(st.integers(0, 60))))
    if kind == "backward":
        return entered - timedelta(days=data.draw(st.integers(1, 90)))
    if kind == "future":
        return today + timedelta(days=data.draw(st.integers(1, 30)))
    if kind == "a year on":
        return min(today, entered + timedelta(days=data.draw(st.integers(360, 420))))
    return today


def competent_date(data: st.DataObject, facts: dict[str, Any], trigger: str, today: date) -> date:
    """A date a careful officer would use: on or after the state was entered, not in the future,
    and a year after the ceremony for the moves that wait for the end of probation."""
    earliest = date.fromisoformat(facts[STATE_ENTERED])
    if trigger in ("complete_probation", "record_recognition_vote") and "ceremony_date" in facts:
        earliest = max(earliest, add_months(date.fromisoformat(facts["ceremony_date"]), 12))
    return min(today, earliest + timedelta(days=data.draw(st.integers(0, 45), label="days on")))


# ---- the machine -------------------------------------------------------------------------------

class RecordMachine(RuleBasedStateMachine):
    def __init__(self, make_bloc: Callable[[ExitStack], Bloc]) -> None:
        super().__init__()
        self.stack = ExitStack()
        bloc = make_bloc(self.stack)
        self.store, self.service, self.world = bloc.store, bloc.service, bloc.world
        self.today = self.world.today
        self.people: list[int] = list(self.world.members)
        # The two official members introduce and help every walked applicant, so no random
        # move may touch their cases; the invariants still cover them.
        self.member_cases = list(bloc.member_cases)
        self.case_ids: list[int] = []
        self.moves = self.refusals = 0

    def teardown(self) -> None:
        self.stack.close()

    # -- reading the whole record ------------------------------------------------------------
    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.store.db.connect() as conn:
            return {table: [tuple(row) for row in conn.execute(text(
                f"SELECT * FROM {table} ORDER BY {order}"))]
                for table, order in (("cases", "id"), ("audit_events", "case_id, seq"),
                                     ("documents", "id"))}

    def attempt(self, action: Callable[[], Any]) -> tuple[Any, Exception | None, dict, dict]:
        """Run an opening or a move; a refusal must leave every table exactly as it was."""
        before = self.dump()
        try:
            result = action()
        except REFUSALS as exc:
            assert self.dump() == before, f"refused ({type(exc).__name__}: {exc}) but wrote"
            assert str(exc).strip(), "a refusal must say why"
            self.refusals += 1
            return None, exc, before, before
        return result, None, before, self.dump()

    # -- rules ---------------------------------------------------------------------------------
    @rule(data=st.data())
    def add_person(self, data: st.DataObject) -> None:
        age_days = data.draw(st.integers(16 * 365, 75 * 365), label="age in days")
        self.people.append(self.world.add_person(
            data.draw(st.sampled_from(["Lò Văn Páo", "Trần Thị Mai", "!!python/name:os.system"])),
            self.today - timedelta(days=age_days),
            education=data.draw(st.sampled_from(["primary", "lower_secondary", "university"])),
            youth_union=data.draw(st.booleans()), trade_union=data.draw(st.booleans())))

    @rule(data=st.data())
    def open_case(self, data: st.DataObject) -> None:
        person = data.draw(st.one_of(st.sampled_from(self.people), st.just(10**6)), label="person")
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        org = data.draw(st.sampled_from(OPEN_AT), label="org")
        on = data.draw(st.one_of(
            st.integers(0, 1300).map(lambda d: self.today - timedelta(days=d)),
            st.integers(1, 40).map(lambda d: self.today + timedelta(days=d))), label="opened on")
        earlier = self.store.cases.of_person(person) if person in self.people else []
        had_open = [c for c in earlier if not DEFINITION.states[c.state].terminal]
        # A former member comes back only by readmission, never by an ordinary case.
        was_member = any(DEFINITION.states[c.state].terminal and
                         DEFINITION.states[c.state].stage == "removal" for c in earlier)
        case_id, refused, before, after = self.attempt(
            lambda: self.service.open_case(actor, person, org, "membership", on))
        allowed = roles_at(actor, org) & set(DEFINITION.opened_by)
        if refused is not None:
            if org != "NO-SUCH-ORG" and person in self.people and on <= self.today and \
                    not had_open:
                if allowed and was_member:
                    assert isinstance(refused, MoveRefused) and "readmission" in str(refused), refused
                else:
                    assert isinstance(refused, NotPermitted) and not allowed, refused
            return
        assert allowed, f"{actor} opened a case at {org} without a role that may open one"
        assert on <= self.today and not had_open and not was_member and person in self.people
        record = self.store.cases.load(case_id)
        assert (record.state, record.seq, record.organization_code) == (DEFINITION.initial, 1, org)
        assert after["cases"][:-1] == before["cases"] and len(after["cases"]) == len(before["cases"]) + 1
        assert after["documents"] == before["documents"]
        self.case_ids.append(case_id)

    @precondition(lambda self: self.case_ids)
    @rule(data=st.data())
    def random_move(self, data: st.DataObject) -> None:
        """Anything at all: any trigger (or none the definition knows), any actor, any role
        asked for, inputs and documents right or spoiled, any date."""
        case_id = data.draw(st.one_of(st.sampled_from(self.case_ids), st.just(10**6)), label="case")
        record = self.store.cases.load(case_id) if case_id in self.case_ids else None
        state = record.state if record else DEFINITION.initial
        possible = [t.trigger for t in DEFINITION.transitions_from(state)]
        trigger = data.draw(st.one_of(
            *([st.sampled_from(possible)] if possible else []), st.sampled_from(TRIGGERS),
            st.sampled_from(["launch_rocket", "open", "__init__", ""])), label="trigger")
        transition = DEFINITION.transition(trigger, state)
        entered = date.fromisoformat(record.facts[STATE_ENTERED]) if record else self.today
        on = move_date(data, entered, self.today)
        inputs = spoil_inputs(data, trigger, good_inputs(self.world, trigger, on)
                              if DEFINITION.any_transition(trigger) else {})
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        role = data.draw(st.one_of(st.none(), st.sampled_from([*ROLES, "auditor", "root"])),
                         label="role asked")
        self.move(case_id, trigger, on, inputs, documents_for(data, transition), actor, role)

    @precondition(lambda self: self.case_ids)
    @rule(data=st.data())
    def competent_move(self, data: st.DataObject) -> None:
        """A possible move by an officer who holds its role, with the standard inputs, the
        required documents and a sensible date (it may still be refused by a guard)."""
        self.competent(data, data.draw(st.sampled_from(self.case_ids), label="case"))

    def competent(self, data: st.DataObject, case_id: int) -> None:
        record = self.store.cases.load(case_id)
        possible = DEFINITION.transitions_from(record.state)
        if not possible:
            return
        transition = data.draw(st.sampled_from(possible), label="transition")
        role = data.draw(st.sampled_from(transition.roles), label="role")
        actor = actor_for(role, record.organization_code) or "outsider"
        on = competent_date(data, record.facts, transition.trigger, self.today)
        documents = {code: f"{code}-ref" for code in transition.documents}
        self.move(case_id, transition.trigger, on, good_inputs(self.world, transition.trigger, on),
                  documents, actor, None)

    @rule(data=st.data())
    def walk_new_case(self, data: st.DataObject) -> None:
        """A new applicant walked along the main path (every step must pass), so later rules
        find cases deep in probation and among official members."""
        path = ["record_training", "prepare_dossier", "verify_background", "record_branch_vote",
                "record_committee_vote", "decide_admission", "hold_ceremony", "complete_probation",
                "record_recognition_vote", "record_recognition_committee_vote", "recognize_official"]
        steps = data.draw(st.integers(1, len(path)), label="steps")
        person = self.world.add_person("Hà Thị Thu", self.today - timedelta(days=30 * 365))
        self.people.append(person)
        case_id = self.service.open_case("secretary", person, "VP", "membership",
                                         add_months(self.today, -30))
        self.case_ids.append(case_id)
        for trigger in path[:steps]:
            facts = self.store.cases.load(case_id).facts
            on = competent_date(data, facts, trigger, self.today)
            documents = {code: f"{code}-ref"
                         for code in DEFINITION.transition(trigger, self.store.cases.load(case_id).state)
                         .documents}
            outcome = self.move(case_id, trigger, on, good_inputs(self.world, trigger, on), documents,
                                actor_for(DEFINITION.any_transition(trigger).roles[0], "VP") or "",
                                None)
            assert outcome is None, f"{trigger} on the main path was refused: {outcome}"
        if data.draw(st.booleans(), label="then a side move"):
            self.competent(data, case_id)  # reject, withdraw, extend, strike off, expel...

    @precondition(lambda self: HAS_TICK)
    @rule(data=st.data())
    def tick(self, data: st.DataObject) -> None:
        """``memberflow tick`` for today (what cron runs) or a future day (refused): it may only
        make automatic moves, as the system, and nothing else in the cases or the audit."""
        on = data.draw(st.one_of(st.just(self.today), st.integers(1, 30).map(
            lambda d: self.today + timedelta(days=d))), label="tick as of")
        _, refused, before, after = self.attempt(lambda: self.service.tick(on))
        if refused is not None:
            assert on > self.today and isinstance(refused, BadInput), refused
            return
        new = [e for e in after["audit_events"] if e not in before["audit_events"]]
        for _case, _seq, kind, _sha, trigger, from_state, to_state, actor, role, *_ in new:
            transition = DEFINITION.transition(trigger, from_state)
            assert transition is not None and transition.automatic, trigger
            assert (kind, to_state, actor, role) == \
                ("move", transition.destination(from_state), TICK_ACTOR, SYSTEM_ROLE)
        touched = {e[0] for e in new}
        assert [c for c in after["cases"] if c[0] not in touched] == \
            [c for c in before["cases"] if c[0] not in touched]
        self.moves += len(new)

    # -- one move, checked -------------------------------------------------------------------
    def move(self, case_id: int, trigger: str, on: date, inputs: dict[str, Any],
             documents: dict[str, str], actor: str, role: str | None) -> Exception | None:
        record = self.store.cases.load(case_id) if case_id in self.case_ids else None
        recorded, refused, before, after = self.attempt(lambda: self.service.advance(
            actor, case_id, trigger, on, inputs, documents, role))
        if record is None:
            assert refused is not None, "a move on a case that does not exist was recorded"
            return refused
        transition = DEFINITION.transition(trigger, record.state)
        held = roles_at(actor, record.organization_code) & set(transition.roles if transition else ())
        if refused is not None:
            self.expect_refusal_kind(refused, trigger, transition, held, role)
            return refused
        self.moves += 1
        # The rules allowed it: possible from the state, a role held at the case's organization,
        # documents attached, a business date between entering the state and today.
        assert transition is not None, f"{trigger} recorded from {record.state}"
        assert held, f"{actor} moved {trigger} holding none of {transition.roles} at the case's org"
        assert date.fromisoformat(record.facts[STATE_ENTERED]) <= on <= self.today
        assert set(transition.documents) <= set(documents)
        # Exactly one new event on this case, its documents, this case's row: nothing else.
        events = [e for e in after["audit_events"] if e not in before["audit_events"]]
        assert len(events) == 1 and len(after["audit_events"]) == len(before["audit_events"]) + 1
        event = dict(zip(("case_id", "seq", "kind", "sha", "trigger", "from_state", "to_state",
                          "actor", "role"), events[0], strict=False))
        assert (event["case_id"], event["seq"], event["kind"], event["trigger"],
                event["from_state"], event["to_state"], event["actor"]) == \
            (case_id, record.seq + 1, "move", trigger, record.state,
             transition.destination(record.state), actor)
        assert event["role"] in held and (role is None or event["role"] == role)
        assert actor != TICK_ACTOR
        assert recorded.seq == record.seq + 1
        assert [c for c in after["cases"] if c[0] != case_id] == \
            [c for c in before["cases"] if c[0] != case_id]
        new_documents = after["documents"][len(before["documents"]):]
        assert after["documents"][:len(before["documents"])] == before["documents"]
        assert sorted((d[1], d[2], d[3], d[4]) for d in new_documents) == \
            sorted((case_id, record.seq + 1, code, ref) for code, ref in documents.items())
        return None

    @staticmethod
    def expect_refusal_kind(refused: Exception, trigger: str, transition: Transition | None,
                            held: set[str], role: str | None) -> None:
        """Where the kind of refusal is certain, it must be that kind."""
        if DEFINITION.any_transition(trigger) is None:
            assert isinstance(refused, BadInput), refused
        elif transition is None:
            assert isinstance(refused, MoveRefused | AlreadyMoved), refused
        elif not held or (role is not None and role not in held):
            assert isinstance(refused, NotPermitted), refused
            assert trigger in str(refused) or (role is not None and role in str(refused)), refused

    # -- invariants after every step -------------------------------------------------------
    @invariant()
    def chains_verify(self) -> None:
        report = verify(self.store.db, workers=1)
        assert report.ok, [str(b) for b in report.breaks]
        assert report.cases == len(self.case_ids) + len(self.member_cases)

    @invariant()
    def rows_are_their_replayed_history(self) -> None:
        replayer = self.service.replayer()
        seen = []
        for case_id, history in case_histories(self.store.db):
            seen.append(case_id)
            replayed = replayer.replay(case_id, history)
            assert replayed.ok, replayed.divergence
            record = self.store.cases.load(case_id)
            assert (replayed.state, replayed.facts) == (record.state, record.facts), case_id
            assert record.seq == len(history)
        assert sorted(seen) == sorted(self.case_ids + self.member_cases)

    @invariant()
    def events_are_transitions_of_the_definition(self) -> None:
        for case_id, history in case_histories(self.store.db):
            opening, *moves = history
            assert (opening["seq"], opening["kind"], opening["trigger"], opening["from_state"],
                    opening["to_state"]) == (1, "open", "open", None, DEFINITION.initial), case_id
            for event in history:
                assert event["definition_sha256"] == DEFINITION.sha256
            for event in moves:
                transition = DEFINITION.transition(event["trigger"], event["from_state"])
                assert event["kind"] == "move" and transition is not None, event
                assert event["to_state"] == transition.destination(event["from_state"]), event
                assert event["role"] in transition.roles or (
                    getattr(transition, "automatic", False) and
                    (event["actor"], event["role"]) == (TICK_ACTOR, SYSTEM_ROLE)), event

    @invariant()
    def one_open_case_per_person(self) -> None:
        with self.store.db.connect() as conn:
            rows = conn.execute(text("SELECT person_id, id, state FROM cases ORDER BY id")).all()
        running: dict[int, list[int]] = {}
        for person, case_id, state in rows:
            if not DEFINITION.states[state].terminal:
                running.setdefault(person, []).append(case_id)
        assert all(len(ids) == 1 for ids in running.values()), running

SETTINGS = settings(max_examples=25, stateful_step_count=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_random_moves_keep_the_record_consistent_sqlite(tmp_path_factory: pytest.TempPathFactory) -> None:
    make = sqlite_blocs(tmp_path_factory.mktemp("properties"))
    run_state_machine_as_test(lambda: RecordMachine(make), settings=SETTINGS)


def test_random_moves_keep_the_record_consistent_postgresql() -> None:
    with postgresql_schema():  # skips (or fails under CI=true) when no server answers
        pass
    run_state_machine_as_test(lambda: RecordMachine(postgresql_blocs),
                              settings=settings(SETTINGS, max_examples=8))


@pytest.mark.skipif(not HAS_TICK, reason="no memberflow tick in this version")
def test_tick_as_of_a_past_day_skips_cases_that_entered_their_state_later(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "tick.db"), must_exist=False)
    try:
        bloc = populate(store)
        world = bloc.world
        late, _ = world.admitted_case(months_ago=14)  # lower id, ceremony about 13 months ago
        early, ceremony = world.admitted_case(months_ago=30)  # ceremony about 29 months ago
        as_of = add_months(ceremony, 12) + timedelta(days=5)  # before the later case's ceremony
        report = bloc.service.tick(as_of)
        assert report.moved == {"complete_probation": 1} and report.waiting == 1
        assert store.cases.load(early).state == "probation_completed"
        assert store.cases.load(late).state == "probationary"
    finally:
        store.close()
