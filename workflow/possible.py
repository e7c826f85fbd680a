"""Input no real situation could produce is bad input (exit 2), not a refusal (exit 1).

A refusal says the data is possible but the procedure does not allow the move. More votes
for than eligible voters, a vote no one was eligible for, 10^18 voters or a date before the
person was born describe nothing that happened: the request itself is wrong. What is
impossible is declared where the data is described, not coded per guard: the range of a
count, the relations a guard's parameters declare between the inputs they name
(``guards.Param.input_at_least`` / ``input_at_most``), and, for every date input, the birth
of the case's person.

Checked on a new move once who may act is settled (someone without the role learns that, not
what was wrong with their numbers) and before the rules. Never on replay: a recorded event
was judged by the checks of its day (the vote relations were refusals then, and the vote
guards still refuse them), and the record must replay as it was judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.dates import format_date
from memberflow.workflow.definition import GuardUse, Transition
from memberflow.workflow.guards import REGISTRY

# More than the Party has members (about 5.4 million): no count a move records is larger.
MAX_COUNT = 10_000_000


def check_possible(transition: Transition, inputs: Mapping[str, Any],
                   evidence: Mapping[str, Any]) -> None:
    """Refuse, in one line naming every problem, inputs that cannot be true."""
    problems = impossibilities(transition, inputs, evidence)
    if problems:
        raise BadInput("; ".join(problems))


def impossibilities(transition: Transition, inputs: Mapping[str, Any],
                    evidence: Mapping[str, Any]) -> list[str]:
    birth = _birth(evidence)
    problems = []
    for spec in transition.inputs:
        value = inputs.get(spec.name)
        if value is None:
            continue
        if spec.type == "count" and value > MAX_COUNT:
            problems.append(_("input {name} is {value}: more than any real count (at most "
                              "{max_count})").format(name=spec.name, value=value, max_count=MAX_COUNT))
        elif spec.type == "date" and birth is not None and date.fromisoformat(value) < birth:
            problems.append(_("input {name} {day} is before the person was born ({birth})").format(
                                name=spec.name, day=format_date(date.fromisoformat(value)),
                                birth=format_date(birth)))
    for guard in transition.guards:
        problems.extend(_broken_relations(guard, inputs))
    return list(dict.fromkeys(problems))


def _broken_relations(guard: GuardUse, inputs: Mapping[str, Any]) -> list[str]:
    """What the guard's parameters declare about the inputs they name, where it fails."""
    problems = []
    for key, param in REGISTRY[guard.name].params.items():
        name = guard.params.get(key)
        value = _number(inputs, name)
        if value is None:
            continue
        if param.input_at_least is not None and value < param.input_at_least:
            problems.append(_("input {name} must be at least {input_at_least} (got {value})").format(
                                name=name, input_at_least=param.input_at_least, value=value))
        bound_name = guard.params.get(param.input_at_most) if param.input_at_most else None
        bound = _number(inputs, bound_name)
        if bound is not None and value > bound:
            problems.append(_("input {name} ({value}) cannot exceed input {bound_name} ({bound})").format(
                                name=name, value=value, bound_name=bound_name, bound=bound))
    return problems


def _number(inputs: Mapping[str, Any], name: Any) -> int | None:
    value = inputs.get(name) if isinstance(name, str) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _birth(evidence: Mapping[str, Any]) -> date | None:
    raw = (evidence.get("applicant") or {}).get("birth_date")
    return date.fromisoformat(raw) if isinstance(raw, str) else None
