"""``memberflow tick``: the moves time makes (automatic in the definition) and overdue flags;
a second run changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, MEMBERSHIP, World, acting
from memberflow.app.administration import Administration
from memberflow.cli import main
from memberflow.errors import BadInput, DefinitionInvalid
from memberflow.storage.verification import verify
from memberflow.workflow.directory import TICK_ACTOR
from memberflow.workflow.loader import parse_definition


def tick(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, [*acting(world.store.url, "secretary"), "tick", *args])


def test_tick_completes_probation_once_twelve_months_have_passed(world: World) -> None:
    due, _ = world.admitted_case(months_ago=14)  # ceremony about 13 months ago
    early, _ = world.admitted_case(months_ago=7)
    first = tick(world)
    assert first.exit_code == 0, first.output
    assert "automatic moves made: 1 complete_probation; not yet due: 1" in first.stdout
    assert world.store.cases.load(due).state == "probation_completed"
    assert world.store.cases.load(early).state == "probationary"
    last = world.store.cases.history(due)[-1]
    assert (last["trigger"], last["actor"], last["role"], last["business_date"]) == \
        ("complete_probation", TICK_ACTOR, "system", world.today)
    second = tick(world)
    assert "automatic moves made: none; not yet due: 1" in second.stdout
    assert "deadlines newly flagged overdue: 0" in second.stdout
    assert len(world.store.cases.history(due)) == len(ADMISSION_PATH) + 2
    assert verify(world.store.db).ok
    assert world.service.replay_all(workers=1).divergent == []


def test_tick_flags_a_missed_deadline_once(world: World) -> None:
    case_id = world.open_case(on=world.ago(months=8))
    world.walk(case_id, ADMISSION_PATH[:5], world.ago(months=8))  # committee voted: decision due long ago
    record = world.store.cases.load(case_id)
    assert record.due_move == "decide_admission" and record.due_on < world.today
    first = tick(world)
    assert "deadlines newly flagged overdue: 1" in first.stdout
    flags = world.store.cases.overdue_flags(case_id)
    assert [(f["move"], f["due_on"], f["flagged_on"]) for f in flags] == \
        [("decide_admission", record.due_on, world.today)]
    assert "deadlines newly flagged overdue: 0" in tick(world).stdout
    assert len(world.store.cases.overdue_flags(case_id)) == 1


def test_tick_refuses_a_future_date_and_the_reserved_name(world: World) -> None:
    future = tick(world, "--as-of", (world.today + timedelta(days=1)).strftime("%d/%m/%Y"))
    assert future.exit_code == 2 and "is in the future" in future.stderr
    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    with pytest.raises(BadInput, match="reserved"):
        Administration(world.store).add_user("quantri", TICK_ACTOR, "x")


def test_an_officer_cannot_act_in_the_system_role(world: World) -> None:
    case_id, _ = world.admitted_case(months_ago=14)
    with pytest.raises(Exception, match="role system may not fire complete_probation"):
        world.service.advance("secretary", case_id, "complete_probation", world.today, role="system")


def test_an_automatic_move_with_inputs_is_refused_by_the_loader() -> None:
    text = MEMBERSHIP.read_text(encoding="utf-8")
    text = text.replace("automatic: true\n", "automatic: true\n    inputs:\n"
                        "      note: {type: text, labels: {vi: Ghi chú, en: Note}}\n", 1)
    with pytest.raises(DefinitionInvalid) as refused:
        parse_definition(text, "auto.yaml")
    assert any("an automatic move can take no inputs or documents" in p.message
               for p in refused.value.problems)


def test_tick_counts_again_a_deadline_stored_on_a_calendar_changed_meanwhile(world: World) -> None:
    """The officer's program read the calendar before an administrator's extra day off was
    committed and then made its move, so the deadline it stored was counted on the calendar
    before. ``due`` marks it, and ``tick`` counts it again before flagging anything."""
    import json

    from memberflow.workflow.dates import format_date
    from memberflow.workflow.workdays import default_calendar

    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    vote = world.ago(days=20)
    case_id = world.open_case(on=vote - timedelta(days=40))
    world.walk(case_id, ADMISSION_PATH[:3], vote - timedelta(days=30))
    day_off = default_calendar().add_working_days(vote, 3)
    set_day = CliRunner().invoke(main, [*acting(world.store.url, "quantri"), "calendar",
                                        "set-day", format_date(day_off), "--off", "--reason", "Nghỉ bù"])
    assert set_day.exit_code == 0, set_day.output
    world.step(case_id, "record_branch_vote", vote)  # world.service read the calendar before
    on_old = default_calendar().add_working_days(vote, 60)
    assert world.store.cases.load(case_id).due_on == on_old

    def listed() -> tuple[dict, str]:
        result = CliRunner().invoke(main, [*acting(world.store.url, AUDITOR), "due", "--within", "100",
                                           "--format", "json"])
        return next(r for r in json.loads(result.stdout) if r["case"] == case_id), result.stderr

    row, warning = listed()
    assert row["stale"] is True and row["due_on"] == on_old.isoformat()
    assert warning == ("warning: 1 deadline(s) were stored on a calendar version other than the one "
                       "in force; 'memberflow tick' counts them again\n")
    shown = CliRunner().invoke(main, [*acting(world.store.url, AUDITOR), "case", "show", str(case_id),
                                      "--format", "json"])
    counted = json.loads(shown.stdout)["deadlines"][0]
    assert counted["due_on"] > on_old.isoformat()

    ticked = tick(world)
    assert "stored deadlines counted again on the calendar in force: 1" in ticked.stdout
    row, warning = listed()
    assert (row["due_on"], row["calendar_version"], row["stale"], warning) == \
        (counted["due_on"], counted["calendar_version"], False, "")
