"""Administrators' tools on definitions: lint, diff and diagrams (``workflow.lint/diff/diagram``).

As in test_definitions.py, each case is the bundled membership.yaml with one targeted edit,
written to a file and loaded, so every line number is real and found in the edited text. Graph
rules the loader already refuses are exercised on definitions changed with
``dataclasses.replace``, which is how lint meets a definition built in code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from memberflow.workflow.definition import Definition
from memberflow.workflow.diagram import dot, mermaid, state_ids
from memberflow.workflow.diff import Change, diff
from memberflow.workflow.lint import Finding, has_errors, lint
from memberflow.workflow.loader import load_definition, parse_definition
from test_definitions import BUNDLED, MEMBERSHIP, edit, line_of, write

ALL_ROLES = {"branch_secretary", "grassroots_committee", "standing_committee_above",
             "organization_department", "inspection_commission"}


def loaded(tmp_path: Path, text: str) -> Definition:
    return load_definition(write(tmp_path, text))


def state_line(name: str) -> int:
    return line_of(BUNDLED, f"\n  {name}:\n") + 1


# -- lint: the bundled definition -------------------------------------------------------------------
def test_bundled_definition_has_no_findings() -> None:
    definition = load_definition(MEMBERSHIP)
    assert lint(definition) == []
    assert lint(definition, granted_roles=ALL_ROLES) == []


def test_finding_prints_like_a_compiler_message() -> None:
    finding = Finding("definitions/membership.yaml", 203, "error", "deadline-never-starts", "it never starts")
    assert str(finding) == "definitions/membership.yaml:203: error: it never starts"


# -- lint: one edit, one finding --------------------------------------------------------------------
@dataclass(frozen=True)
class LintCase:
    old: str
    new: str
    at: str  # fragment of the edited text on whose first line the finding belongs
    severity: str
    code: str
    message: str
    below: int = 0


LINT_CASES = {
    "deadline_from_a_later_fact": LintCase(
        "      from: decision_date\n", "      from: removal_date\n", "from: removal_date",
        "error", "deadline-never-starts",
        "transition 'hold_ceremony' deadline counts from 'removal_date', which no move that can come "
        "before it records, so its clock never starts"),
    "deadline_from_the_move_date": LintCase(
        "      from: branch_vote_date\n", "      from: business_date\n", "from: business_date",
        "error", "deadline-never-starts",
        "transition 'decide_admission' deadline counts from 'business_date', which is the date of each "
        "move, never a recorded fact, so its clock never starts"),
    "extension_no_move_grants": LintCase(
        "    extends_deadline: decide_admission\n", "", "from: branch_vote_date\n      extension:",
        "warning", "extension-never-granted",
        "transition 'decide_admission' deadline extension of 30 working days can never be granted: "
        "no move names 'decide_admission' in extends_deadline", below=1),
    "guard_reads_a_later_fact": LintCase(
        "TU-DY}\n      - certificate_valid: {date: certificate_date",
        "TU-DY}\n      - certificate_valid: {date: committee_vote_date",
        "certificate_valid: {date: committee_vote_date", "error", "unrecorded-date",
        "transition 'record_branch_vote' guard 'certificate_valid' reads 'committee_vote_date', which "
        "no move that can come before it records, so the guard never holds"),
    "guard_reads_a_fact_only_its_own_move_records": LintCase(
        "ratio: 2/3, body: chi bộ}\n    records:\n      failed_vote_date: business_date\n\n  - trigger: "
        "withdraw_application",
        "ratio: 2/3, body: chi bộ}\n      - months_elapsed: {since: failed_vote_date, months: 1}\n    "
        "records:\n      failed_vote_date: business_date\n\n  - trigger: withdraw_application",
        "{since: failed_vote_date", "error", "unrecorded-date",
        "transition 'record_failed_branch_vote' guard 'months_elapsed' reads 'failed_vote_date', which no "
        "move that can come before it records, so the guard never holds"),
    "guard_reads_the_move_date_as_a_fact": LintCase(
        "{date: certificate_date, max_age_months: 60}\n    records:\n      certificate_date: "
        "certificate_date\n\n  - trigger: renew_training",
        "{date: business_date, max_age_months: 60}\n    records:\n      certificate_date: "
        "certificate_date\n\n  - trigger: renew_training",
        "{date: business_date", "error", "unrecorded-date",
        "transition 'record_training' guard 'certificate_valid' reads 'business_date', which is the "
        "date of each move, never a recorded fact, so the guard never holds"),
    "dates_in_order_reads_a_later_fact": LintCase(
        "dates: [date_of_death, business_date]", "dates: [removal_date, business_date]",
        "dates: [removal_date", "warning", "unrecorded-date",
        "transition 'record_death' guard 'dates_in_order' reads 'removal_date', which no move that can "
        "come before it records, so the guard never compares it"),
    "record_from_a_later_fact": LintCase(
        "probation_end: {from: ceremony_date, add_months: 12}",
        "probation_end: {from: recognition_vote_date, add_months: 12}", "probation_end: {from:",
        "warning", "record-never-set",
        "transition 'hold_ceremony' records 'probation_end' from 'recognition_vote_date', which no move "
        "that can come before it records, so 'probation_end' is never recorded by this move"),
    "age_minimum_above_maximum": LintCase(
        "{min_years: 18, max_years: 60, consent_document: TU-DY}", "{min_years: 61, max_years: 60}",
        "min_years: 61", "error", "age-bounds",
        "transition 'record_branch_vote' guard age_between: min_years 61 is above max_years 60: no "
        "applicant can be at least 61 and at most 60 years old, so the guard never holds"),
    "age_minimum_above_maximum_on_its_own_line": LintCase(
        "- age_between: {min_years: 18, max_years: 60, consent_document: TU-DY}",
        "- age_between:\n          min_years: 61\n          max_years: 60",
        "max_years: 60\n", "error", "age-bounds",
        "transition 'record_branch_vote' guard age_between: min_years 61 is above max_years 60: no "
        "applicant can be at least 61 and at most 60 years old, so the guard never holds"),
    "age_minimum_above_maximum_with_consent": LintCase(
        "{min_years: 18, max_years: 60, consent_document: TU-DY}",
        "{min_years: 61, max_years: 60, consent_document: TU-DY}", "min_years: 61", "warning",
        "age-bounds",
        "transition 'record_branch_vote' guard age_between: min_years 61 is above max_years 60: every "
        "applicant old enough is over the maximum, so the move always needs document TU-DY"),
    "age_bounds_equal": LintCase(
        "{min_years: 18, max_years: 60, consent_document: TU-DY}",
        "{min_years: 18, max_years: 18, consent_document: TU-DY}", "max_years: 18", "warning",
        "age-bounds",
        "transition 'record_branch_vote' guard age_between: min_years and max_years are both 18: ages "
        "count in whole months, so only an applicant aged exactly 18 years and 0 months passes without "
        "document TU-DY"),
    "votes_at_least_two_thirds_and_below_half": LintCase(
        "ratio: 2/3, body: chi bộ}\n    records:\n      branch_vote_date",
        "ratio: 2/3, body: chi bộ}\n      - vote_ratio_below: {votes_for: votes_for, votes_eligible: "
        "votes_eligible, ratio: 1/2, body: chi bộ}\n    records:\n      branch_vote_date",
        "- vote_ratio_below: {votes_for: votes_for, votes_eligible: votes_eligible, ratio: 1/2",
        "error", "vote-contradiction",
        "transition 'record_branch_vote' guards vote_ratio_at_least 2/3 and vote_ratio_below 1/2 read "
        "the same votes (votes_for of votes_eligible) and can never both hold: votes for cannot be at "
        "least 2/3 and below 1/2 of the eligible voters at once"),
    "votes_at_least_and_below_the_same_ratio": LintCase(
        "ratio: 2/3, body: chi bộ}\n    records:\n      branch_vote_date",
        "ratio: 2/3, body: chi bộ}\n      - vote_ratio_below: {votes_for: votes_for, votes_eligible: "
        "votes_eligible, ratio: 2/3, body: chi bộ}\n    records:\n      branch_vote_date",
        "- vote_ratio_below: {votes_for: votes_for, votes_eligible: votes_eligible, ratio: 2/3, body: chi bộ}"
        "\n    records:\n      branch_vote_date",
        "error", "vote-contradiction",
        "transition 'record_branch_vote' guards vote_ratio_at_least 2/3 and vote_ratio_below 2/3 read "
        "the same votes (votes_for of votes_eligible) and can never both hold: votes for cannot be at "
        "least 2/3 and below 2/3 of the eligible voters at once"),
    "votes_more_than_all": LintCase(
        "ratio: 1/2, body: ban thường vụ", "ratio: 1, body: ban thường vụ", "ratio: 1, body",
        "error", "vote-never-holds",
        "transition 'strike_off' guard vote_ratio_above needs more than all eligible voters (ratio 1) "
        "to vote for, and votes for can never exceed eligible voters, so the guard never holds"),
    "failed_vote_reads_one_input_twice": LintCase(
        "votes_eligible: votes_eligible, ratio: 2/3, body: chi bộ}\n    records:\n      failed_vote_date:"
        " business_date\n\n  - trigger: record_recognition_committee_vote",
        "votes_eligible: votes_for, ratio: 2/3, body: chi bộ}\n    records:\n      failed_vote_date:"
        " business_date\n\n  - trigger: record_recognition_committee_vote",
        "votes_eligible: votes_for", "error", "vote-same-input",
        "transition 'record_failed_recognition_vote' guard vote_ratio_below reads input 'votes_for' as "
        "both votes for and eligible voters, so votes for always equal eligible voters and the guard "
        "never holds"),
    "passed_vote_reads_one_input_twice": LintCase(
        "votes_eligible: votes_eligible, ratio: 2/3, body: đảng ủy cơ sở}\n    records:",
        "votes_eligible: votes_for, ratio: 2/3, body: đảng ủy cơ sở}\n    records:",
        "votes_eligible: votes_for", "warning", "vote-same-input",
        "transition 'record_committee_vote' guard vote_ratio_at_least reads input 'votes_for' as both "
        "votes for and eligible voters, so votes for always equal eligible voters and the guard always "
        "holds"),
    "dates_repeated_around_another": LintCase(
        "dates: [date_of_death, business_date]", "dates: [date_of_death, business_date, date_of_death]",
        "dates: [date_of_death, business_date, date_of_death]", "warning", "dates-repeated",
        "transition 'record_death' guard dates_in_order names 'date_of_death' more than once, so "
        "business_date must fall on the same day as date_of_death; list each date once"),
    "dates_repeated_in_a_row": LintCase(
        "dates: [date_of_death, business_date]", "dates: [date_of_death, date_of_death, business_date]",
        "dates: [date_of_death, date_of_death", "warning", "dates-repeated",
        "transition 'record_death' guard dates_in_order names 'date_of_death' more than once in a row, "
        "which checks nothing; list each date once"),
    "months_against_dates_in_order": LintCase(
        "dates: [admission_date, official_since, business_date]",
        "dates: [official_since, admission_date, business_date]",
        "- months_elapsed: {since: admission_date", "error", "months-contradiction",
        "transition 'register_existing_member' guard months_elapsed needs official_since at least 12 "
        "months after admission_date, but dates_in_order puts official_since on or before "
        "admission_date, so the two guards never both hold"),
    "months_to_the_same_date": LintCase(
        "months: 12, until: official_since}", "months: 12, until: admission_date}",
        "until: admission_date", "error", "months-contradiction",
        "transition 'register_existing_member' guard months_elapsed counts 12 months from "
        "'admission_date' to the same date, so the guard never holds"),
}


@pytest.mark.parametrize("case", list(LINT_CASES.values()), ids=list(LINT_CASES))
def test_lint_rule(tmp_path: Path, case: LintCase) -> None:
    text = edit(case.old, case.new)
    path = write(tmp_path, text)
    findings = lint(load_definition(path))
    line = line_of(text, case.at) + case.below
    assert findings == [Finding(str(path), line, case.severity, case.code, case.message)]  # type: ignore[arg-type]


def test_votes_with_room_between_the_bounds_are_not_a_contradiction(tmp_path: Path) -> None:
    text = edit("ratio: 2/3, body: chi bộ}\n    records:\n      branch_vote_date",
                "ratio: 2/3, body: chi bộ}\n      - vote_ratio_below: {votes_for: votes_for, votes_eligible: "
                "votes_eligible, ratio: 3/4, body: chi bộ}\n    records:\n      branch_vote_date")
    assert lint(loaded(tmp_path, text)) == []  # 7 of 10 is at least 2/3 and below 3/4


def test_months_since_the_move_date_is_reported_by_both_rules(tmp_path: Path) -> None:
    text = edit("- months_elapsed: {since: ceremony_date, months: 12}\n\n",
                "- months_elapsed: {since: business_date, months: 12}\n\n")
    path = write(tmp_path, text)
    line = line_of(text, "{since: business_date")
    assert lint(load_definition(path)) == [
        Finding(str(path), line, "error", "months-contradiction",
                "transition 'complete_probation' guard months_elapsed counts 12 months from "
                "'business_date' to the same date, so the guard never holds"),
        Finding(str(path), line, "error", "unrecorded-date",
                "transition 'complete_probation' guard 'months_elapsed' reads 'business_date', which is "
                "the date of each move, never a recorded fact, so the guard never holds"),
    ]


# -- lint: roles ------------------------------------------------------------------------------------
def test_move_no_granted_role_can_make_is_a_warning() -> None:
    definition = load_definition(MEMBERSHIP)
    findings = lint(definition, granted_roles=ALL_ROLES - {"organization_department"})
    assert findings == [Finding(
        str(MEMBERSHIP), line_of(BUNDLED, "roles: [organization_department]"), "warning", "no-granted-role",
        "transition 'register_existing_member' may be made only by organization_department; no user of "
        "this installation holds that role, so no one can make it")]
    assert lint(definition) == [], "without granted_roles the role check does not run"


def test_with_no_role_granted_every_move_is_reported_in_line_order() -> None:
    findings = lint(load_definition(MEMBERSHIP), granted_roles=set())
    assert len(findings) == 27
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    withdraw = line_of(BUNDLED, "roles: [standing_committee_above]\n    inputs:\n      under_")
    assert str(findings[-2]) == (
        f"{MEMBERSHIP}:{withdraw}: "
        "warning: transition 'withdraw_membership' may be made only by standing_committee_above; no user "
        "of this installation holds that role, so no one can make it")
    expel = next(f for f in findings if "'expel'" in f.message)
    assert expel.message == (
        "transition 'expel' may be made only by inspection_commission, standing_committee_above; no user "
        "of this installation holds any of these roles, so no one can make it")


# -- lint: graph rules on definitions built in code -------------------------------------------------
def without(definition: Definition, trigger: str) -> Definition:
    return replace(definition, transitions=tuple(t for t in definition.transitions if t.trigger != trigger))


def with_state(definition: Definition, name: str, **changes: object) -> Definition:
    states = {**definition.states, name: replace(definition.states[name], **changes)}
    return replace(definition, states=states)


def test_unreachable_state() -> None:
    definition = without(load_definition(MEMBERSHIP), "expel")
    assert lint(definition) == [Finding(str(MEMBERSHIP), state_line("expelled"), "error", "unreachable-state",
                                        "state 'expelled' cannot be reached from 'candidate'")]


def test_non_terminal_state_without_a_way_out() -> None:
    definition = with_state(load_definition(MEMBERSHIP), "rejected", terminal=False)
    assert lint(definition) == [Finding(str(MEMBERSHIP), state_line("rejected"), "error", "dead-end-state",
                                        "state 'rejected' is not terminal but has no way out")]


def test_terminal_state_with_moves_out() -> None:
    definition = with_state(load_definition(MEMBERSHIP), "official_member", terminal=True)
    assert lint(definition) == [Finding(str(MEMBERSHIP), state_line("official_member"), "error",
                                        "terminal-exit",
                                        "terminal state 'official_member' has moves out of it")]


def test_deadline_of_a_move_from_an_unreachable_state() -> None:
    definition = without(load_definition(MEMBERSHIP), "record_recognition_committee_vote")
    deadline = line_of(BUNDLED, "deadline:\n      within: {working_days: 30}\n      from: recognition_vote")
    assert lint(definition) == [
        Finding(str(MEMBERSHIP), state_line("recognition_committee_voted"), "error", "unreachable-state",
                "state 'recognition_committee_voted' cannot be reached from 'candidate'"),
        Finding(str(MEMBERSHIP), deadline, "error", "deadline-unreachable",
                "transition 'recognize_official' has a deadline that never runs: it starts only from "
                "recognition_committee_voted, which cannot be reached from 'candidate'"),
    ]


# -- lint: strict mode ------------------------------------------------------------------------------
def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    case = LINT_CASES["extension_no_move_grants"]
    warnings = lint(loaded(tmp_path, edit(case.old, case.new)))
    assert [f.severity for f in warnings] == ["warning"]
    assert not has_errors(warnings)
    assert has_errors(warnings, strict=True)
    case = LINT_CASES["age_minimum_above_maximum"]
    errors = lint(loaded(tmp_path, edit(case.old, case.new)))
    assert has_errors(errors) and has_errors(errors, strict=True)
    assert not has_errors([]) and not has_errors([], strict=True)


# -- diff -------------------------------------------------------------------------------------------
def diff_of(text: str, lang: str = "vi") -> list[Change]:
    return diff(load_definition(MEMBERSHIP), parse_definition(text, "edited.yaml"), lang)


def test_identical_definitions_have_no_changes() -> None:
    assert diff(load_definition(MEMBERSHIP), parse_definition(BUNDLED, "elsewhere.yaml")) == []


def test_changed_vote_threshold() -> None:
    text = edit("ratio: 2/3, body: chi bộ}\n    records:\n      branch_vote_date",
                "ratio: 3/4, body: chi bộ}\n    records:\n      branch_vote_date")
    assert diff_of(text) == [Change(
        "changed", "transition record_branch_vote",
        "transition record_branch_vote: guard vote_ratio_at_least: ratio changed from 2/3 to 3/4")]


def test_removed_state_with_its_transition() -> None:
    text = edit("  expelled:\n    stage: removal\n    terminal: true\n    labels: {vi: Đã khai trừ, en: "
                "Expelled}\n", "")
    text = text[:text.index("  # Expulsion is")] + text[text.index("  - trigger: withdraw_membership"):]
    text = edit("ended_in: [struck_off, left_party, expelled]", "ended_in: [struck_off, left_party]", text)
    assert diff_of(text) == [
        Change("removed", "state expelled", "state expelled (Đã khai trừ) removed"),
        Change("removed", "transition expel", "transition expel (official_member → expelled) removed"),
        Change("changed", "readmission", "readmission: ended_in changed from [struck_off, left_party, "
               "expelled] to [struck_off, left_party]"),
    ]
    assert [str(c) for c in diff_of(text, lang="en")][:2] == [
        "state expelled (Expelled) removed", "transition expel (official_member → expelled) removed"]


def test_added_document() -> None:
    text = edit("  5-KNĐ:",
                "  4-KNĐ: {vi: Nghị quyết giới thiệu của Đoàn, en: Youth Union resolution}\n  5-KNĐ:")
    text = edit("documents: [1-KNĐ, 2-KNĐ, 3-KNĐ]", "documents: [1-KNĐ, 2-KNĐ, 3-KNĐ, 4-KNĐ]", text)
    assert diff_of(text) == [
        Change("added", "document 4-KNĐ", "document 4-KNĐ (Nghị quyết giới thiệu của Đoàn) added"),
        Change("added", "transition prepare_dossier", "transition prepare_dossier: document 4-KNĐ added"),
    ]


def test_changed_deadline() -> None:
    text = edit("within: {working_days: 60}", "within: {working_days: 90}")
    assert [str(c) for c in diff_of(text)] == [
        "transition decide_admission: deadline changed from 60 working days after branch_vote_date to "
        "90 working days after branch_vote_date"]
    text = edit("{working_days: 60}\n      from: branch_vote_date\n      extension: {working_days: 30}",
                "{months: 1}\n      from: committee_vote_date\n      extension: {working_days: 20}")
    text = edit("    deadline:\n      within: {working_days: 30}\n      from: decision_date\n", "", text)
    assert [str(c) for c in diff_of(text)] == [
        "transition decide_admission: deadline changed from 60 working days after branch_vote_date to "
        "1 month after committee_vote_date",
        "transition decide_admission: deadline extension changed from 30 working days to 20 working days",
        "transition hold_ceremony: deadline (30 working days after decision_date) removed",
    ]


def test_changes_to_a_repeated_trigger_name_its_sources() -> None:
    text = edit("    source: committee_voted\n    dest: rejected\n    roles: [standing_committee_above]",
                "    source: committee_voted\n    dest: rejected\n    roles: [standing_committee_above, "
                "grassroots_committee]")
    text = edit("branch_voted, committee_voted, admission_decided]", "branch_voted, committee_voted]", text)
    assert diff_of(text) == [
        Change("added", "transition reject_application from committee_voted",
               "transition reject_application from committee_voted: role grassroots_committee added"),
        Change("removed", "transition withdraw_application",
               "transition withdraw_application: source state admission_decided removed"),
    ]


def test_state_input_record_and_label_changes_in_order() -> None:
    text = edit("    stage: probation\n    labels: {vi: Đảng viên dự bị,",
                "    stage: official\n    labels: {vi: Đảng viên dự bị (12 tháng),")
    text = edit("      reason: {type: text, labels: {vi: Lý do gia hạn, en: Reason}}\n    extends_deadline: "
                "decide_admission",
                "      reason: {type: text, required: false, labels: {vi: Lý do gia hạn, en: Reason}}\n"
                "      note: {type: text, labels: {vi: Ghi chú, en: Note}}\n    extends_deadline: "
                "decide_admission", text)
    text = edit("probation_end: {from: ceremony_date, add_months: 12}",
                "probation_end: {from: ceremony_date, add_months: 18}", text)
    text = edit("      - months_elapsed: {since: ceremony_date, months: 12}\n\n",
                "      - months_elapsed: {since: ceremony_date, months: 12}\n      - education_at_least: "
                "{level: primary}\n\n", text)
    assert [(c.kind, c.subject, c.text) for c in diff_of(text)] == [
        ("changed", "state probationary", "state probationary: stage changed from probation to official"),
        ("changed", "state probationary",
         'state probationary: vi label changed from "Đảng viên dự bị" to "Đảng viên dự bị (12 tháng)"'),
        ("changed", "transition extend_admission_deadline",
         "transition extend_admission_deadline: input reason: required changed from yes to no"),
        ("added", "transition extend_admission_deadline",
         "transition extend_admission_deadline: input note (text) added"),
        ("changed", "transition hold_ceremony",
         "transition hold_ceremony: record probation_end: from changed from ceremony_date + 12 months to "
         "ceremony_date + 18 months"),
        ("added", "transition complete_probation",
         "transition complete_probation: guard education_at_least (level: primary) added"),
    ]


def test_diff_backwards_reverses_every_change() -> None:
    text = edit("  5-KNĐ:", "  4-KNĐ: {vi: Nghị quyết của Đoàn, en: Youth Union resolution}\n  5-KNĐ:")
    text = edit("within: {working_days: 60}", "within: {working_days: 90}", text)
    old, new = load_definition(MEMBERSHIP), parse_definition(text, "edited.yaml")
    assert [str(c) for c in diff(new, old)] == [
        "document 4-KNĐ (Nghị quyết của Đoàn) removed",
        "transition decide_admission: deadline changed from 90 working days after branch_vote_date to "
        "60 working days after branch_vote_date",
    ]
    assert diff(old, new) == diff(old, new)


# -- diagrams: Mermaid ------------------------------------------------------------------------------
IDENT = r"[A-Za-z][A-Za-z0-9_]*"
TEXT = r'(?:[^"#;%<>\n]|#\w+;)*'  # specials appear only as Mermaid entity codes
STAGE = r"(?:application|probation|official|removal)"
MERMAID_STATEMENTS = [
    rf'    state "{TEXT}" as {IDENT}',
    rf"    \[\*\] --> {IDENT}",
    rf"    {IDENT} --> {IDENT} : {TEXT}",
    rf"    {IDENT} --> \[\*\]",
    rf"    classDef {STAGE} fill:#[0-9a-f]{{6}},stroke:#[0-9a-f]{{6}}",
    rf"    class {IDENT}(?:,{IDENT})* {STAGE}",
    r"    %% [^\n]*",
]


def assert_mermaid_well_formed(text: str) -> list[str]:
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0] == "stateDiagram-v2"
    for line in lines[1:]:
        assert any(re.fullmatch(form, line) for form in MERMAID_STATEMENTS), line
    return lines


def expected_edges(definition: Definition, arrow: str) -> list[str]:
    return [f"{s}{arrow}{t.dest or s}{{}}{t.trigger} ({', '.join(t.roles)})"
            for t in definition.transitions for s in t.sources]


def test_mermaid_has_every_state_and_transition_of_the_bundled_definition() -> None:
    definition = load_definition(MEMBERSHIP)
    lines = assert_mermaid_well_formed(mermaid(definition))
    declared = [m.group(1) for line in lines
                if (m := re.fullmatch(rf'    state "{TEXT}" as ({IDENT})', line))]
    assert declared == list(definition.states)
    edges = [line.strip() for line in lines if " : " in line]
    assert edges == [e.format(" : ") for e in expected_edges(definition, " --> ")]
    assert len(edges) == 58
    assert "    [*] --> candidate" in lines
    assert {line.split()[0] for line in lines if line.endswith("--> [*]")} == {
        n for n, s in definition.states.items() if s.terminal}
    assert "    class struck_off,expelled,left_party,deceased removal" in lines


def test_mermaid_keeps_vietnamese_labels_and_switches_language() -> None:
    definition = load_definition(MEMBERSHIP)
    vi, en = mermaid(definition).splitlines(), mermaid(definition, lang="en").splitlines()
    assert '    state "Đã ra khỏi Đảng (tự nguyện, ghi là xóa tên)" as left_party' in vi
    assert '    state "Quần chúng ưu tú được giới thiệu" as candidate' in vi
    assert "    %% membership: Kết nạp, dự bị, công nhận chính thức và đưa ra khỏi Đảng" in vi
    assert '    state "Left voluntarily (recorded as struck off)" as left_party' in en


TRICKY_LABEL = r"""'Đảng viên "dự bị" #1; 100% <b> a\b {x}'"""


def tricky(tmp_path: Path) -> Definition:
    """Quotes, #, ;, %, <>, a backslash and braces in a label; a Vietnamese and a reserved state name."""
    text = BUNDLED.replace("trained", "đã học").replace("  rejected:", "  end:")
    text = text.replace("dest: rejected", "dest: end")
    text = edit("labels: {vi: Đảng viên dự bị,", f"labels: {{vi: {TRICKY_LABEL},", text)
    return loaded(tmp_path, text)


def test_mermaid_escapes_labels_and_makes_safe_ids(tmp_path: Path) -> None:
    definition = tricky(tmp_path)
    assert state_ids(definition)["đã học"] == "da_hoc"
    assert state_ids(definition)["end"] == "s_end"
    lines = assert_mermaid_well_formed(mermaid(definition))
    assert ('    state "Đảng viên #quot;dự bị#quot; #35;1#59; 100#37; #lt;b#gt; a\\b {x}" as probationary'
            in lines)
    assert "    candidate --> da_hoc : record_training (branch_secretary)" in lines
    assert "    s_end --> [*]" in lines


# -- diagrams: DOT ----------------------------------------------------------------------------------
DOT_STRING = r'"(?:[^"\\\n]|\\.)*"'


def assert_dot_well_formed(text: str) -> list[str]:
    bare = re.sub(DOT_STRING, '""', text)
    assert bare.count("{") == bare.count("}") and bare.count("[") == bare.count("]")
    assert '"' not in re.sub(DOT_STRING, "", text), "unbalanced quotes"
    lines = text.splitlines()
    assert lines[0].startswith("digraph ") and lines[0].endswith("{") and lines[-1] == "}"
    depth = 0
    for line in re.sub(DOT_STRING, '""', text).splitlines():
        depth += line.count("{") - line.count("}")
        assert depth >= 0 and (line.endswith(("{", "}", ";"))), line
    return lines


def test_dot_has_every_state_and_transition_of_the_bundled_definition() -> None:
    definition = load_definition(MEMBERSHIP)
    lines = assert_dot_well_formed(dot(definition))
    nodes = [m.groups() for line in lines
             if (m := re.fullmatch(rf"    ({IDENT}) \[label=({DOT_STRING})(.*)\];", line))]
    assert [(name, label) for name, label, _ in nodes] == [
        (n, f'"{s.labels.vi}"') for n, s in definition.states.items()]
    assert {name for name, _, rest in nodes if rest == ", peripheries=2"} == {
        n for n, s in definition.states.items() if s.terminal}
    edges = [line.strip() for line in lines if " -> " in line and "__start" not in line]
    assert edges == [e.replace("{}", ' [label="') + '"];' for e in expected_edges(definition, " -> ")]
    assert "  __start -> candidate;" in lines
    colours = [("application", "#dbeafe", "#1d4ed8"), ("probation", "#fef3c7", "#b45309"),
               ("official", "#dcfce7", "#15803d"), ("removal", "#fee2e2", "#b91c1c")]
    assert [line.strip() for line in lines if line.strip().startswith("label=")] == [
        f'label="{stage}"; style="rounded,filled"; fillcolor="{fill}"; color="{border}";'
        for stage, fill, border in colours]
    assert '    left_party [label="Đã ra khỏi Đảng (tự nguyện, ghi là xóa tên)", peripheries=2];' in lines


def test_dot_escapes_quotes_and_backslashes(tmp_path: Path) -> None:
    lines = assert_dot_well_formed(dot(tricky(tmp_path)))
    assert '    probationary [label="Đảng viên \\"dự bị\\" #1; 100% <b> a\\\\b {x}"];' in lines
    assert '  candidate -> da_hoc [label="record_training (branch_secretary)"];' in lines


def test_changed_separation_screening_and_readmission_rules_are_reported() -> None:
    text = edit("wait_months: 36", "wait_months: 24")
    text = edit("good: {min_score: 70,", "good: {min_score: 75,", text)
    text = edit("separate_from: [propose_removal]\n    inputs:\n      ground", "inputs:\n      ground", text)
    text = edit("      unless: family_hardship\n", "", text)
    text = edit("    automatic: true\n", "", text)
    assert [str(c) for c in diff_of(text, lang="en")] == [
        "transition complete_probation: automatic changed from yes to no",
        "transition strike_off: separate_from move propose_removal removed",
        "assessment: rating good: min_score changed from 70 to 75",
        "readmission: wait_months changed from 36 to 24",
        "readmission: barred category withdrew_voluntarily: unless (family_hardship) removed",
    ]
