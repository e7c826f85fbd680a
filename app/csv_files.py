"""Bulk work from CSV files: one row per case, every row reported (moved, already done,
refused, bad row) as soon as its transaction commits.

A file that cannot be read as a whole (encoding, header, ragged rows) is refused with row
and column before anything is done; a row whose own values are wrong is reported as a bad
row. ``all_or_nothing`` runs every move in one transaction instead of one per row.

Nothing is applied twice. Every row carries a request key, recorded with its move's audit
event and unique per case, so running a file again (after a crash, a kill, a busy database,
or to redo the rows fixed since) reports the rows already applied as ``already done`` and
applies only the others. The key is the row's ``request_id`` cell when the file has that
column (scoped by the move: the same id may name a move of another kind on the same case);
otherwise it is derived from the row itself, never from the whole file — fixing one refused
row must not make every committed row new again. A derived key is the digest of what the row
asks for: the move, the case, the row's date (else the ``--date`` given, else none: a rerun
the next morning without ``--date`` is still the same request), the role, the inputs and
the documents (cells trimmed, empty ones ignored, column order irrelevant), plus how many
identical rows come before it in the file, so two identical rows are two moves. A genuinely
new move identical to one already made (a second failed vote with the same counts) needs a
``date`` or ``request_id`` cell that tells it apart.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import AlreadyApplied, BadInput, MemberflowError, NotFound, StoppedPartWay, Unavailable
from memberflow.i18n import N_, _
from memberflow.storage.chain import canonical_json
from memberflow.workflow.dates import format_timestamp, parse_date
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.directory import person_fields
from memberflow.workflow.guards import EDUCATION_LEVELS
from memberflow.workflow.inputs import clean_text, parse_bool

if TYPE_CHECKING:
    from memberflow.app.service import AdvanceRequest, Recorded, Service
    from memberflow.storage.directory import Directory

CASE_COLUMN, DATE_COLUMN, ROLE_COLUMN, DOCUMENT_PREFIX = "case", "date", "role", "doc:"
REQUEST_COLUMN = "request_id"
MAX_BYTES = 50 * 1024 * 1024
OUTCOMES = (N_("moved"), N_("already done"), N_("refused"), N_("bad row"))
RERUN = N_("run the file again to continue (rows already done are recognised)")
# Characters in one cell: the csv module's own default limit, checked here so that a cell
# over it is named by line and column.
MAX_CELL = 131_072


@dataclass(frozen=True)
class RowResult:
    row: int  # line number in the file (the header is line 1)
    case_id: int | None
    outcome: str  # moved | already done | refused | bad row (screening: moved | skipped | refused)
    detail: str


def read_rows(path: Path, key: str = CASE_COLUMN) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (which must name ``key``) and every data row with its line number; the
    whole file or nothing."""
    if path.stat().st_size > MAX_BYTES:
        raise BadInput(_("{path}: larger than {value} MB").format(
                           path=path, value=MAX_BYTES // (1024 * 1024)))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise BadInput(_("{path}:{line}: not UTF-8 text (byte {start}); save the file as UTF-8").format(
                           path=path, line=line, start=exc.start)) \
            from None
    limit = csv.field_size_limit(MAX_BYTES + 1)  # the file's size bounds every cell
    try:
        return _rows(path, csv.reader(io.StringIO(text, newline="")), key)
    finally:
        csv.field_size_limit(limit)


def _rows(path: Path, reader: Any, key: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_cells(path, 1, [_("header field {n}").format(n=n) for n in range(1, len(header) + 1)], header)
        if key not in header:
            raise BadInput(_("{path}:1: the header must have a {key!r} column (found: {value})").format(
                               path=path, key=key, value=', '.join(header) or _('nothing')))
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise BadInput(_("{path}:1: column {duplicated!r} appears twice in the header").format(
                               path=path, duplicated=duplicated[0]))
        rows = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise BadInput(_("{path}:{line}: {count} fields, the header has {header}").format(
                                   path=path, line=reader.line_num, count=len(fields), header=len(header)))
            _check_cells(path, reader.line_num, [_("column {name}").format(name=name) for name in header],
                         fields)
            rows.append((reader.line_num, dict(zip(header, fields, strict=True))))
    except csv.Error as exc:
        raise BadInput(_("{path}:{line_num}: not readable as CSV ({exc})").format(
                           path=path, line_num=reader.line_num, exc=exc)) from None
    return header, rows


def _check_cells(path: Path, line: int, names: list[str], cells: list[str]) -> None:
    for name, cell in zip(names, cells, strict=True):
        if len(cell) > MAX_CELL:
            raise BadInput(_("{path}:{line}: {name} is {count} characters long; at most {max_cell} "
                             "allowed").format(path=path, line=line, name=name, count=len(cell),
                                               max_cell=MAX_CELL))


def move_request(trigger: str, values: dict[str, str], default_date: date) -> AdvanceRequest:
    """One row as a move; a wrong value is bad input naming its column."""
    from memberflow.app.service import AdvanceRequest

    raw_case = values[CASE_COLUMN].strip()
    if not raw_case.isdigit() or int(raw_case) <= 0:
        raise BadInput(_("column {case_column}: {raw_case!r} is not a case number").format(
                           case_column=CASE_COLUMN, raw_case=raw_case))
    raw_date = values.get(DATE_COLUMN, "").strip()
    on = parse_date(raw_date, _("column {date_column}").format(
                                  date_column=DATE_COLUMN)) if raw_date else default_date
    inputs, documents = {}, {}
    for column, value in values.items():
        if column in (CASE_COLUMN, DATE_COLUMN, ROLE_COLUMN, REQUEST_COLUMN) or not value.strip():
            continue
        if column.startswith(DOCUMENT_PREFIX):
            code = column[len(DOCUMENT_PREFIX):]
            documents[code] = clean_text(value, _("column {column}").format(column=column), 500)
        else:
            inputs[column] = value.strip()
    role = values.get(ROLE_COLUMN, "").strip() or None
    return AdvanceRequest(int(raw_case), trigger, on, inputs, documents, role)


Planned = tuple[int, "AdvanceRequest | BadInput"]  # (line, the row's move or why it is bad)


def plan_rows(path: Path, trigger: str, given_date: date | None) -> list[Planned]:
    """Every row of the file as a keyed move (or the bad input it is). A ``request_id`` that
    names two rows of one case makes the whole file bad input: nothing is done."""
    _header, rows = read_rows(path)
    default_date = given_date or business_today()
    planned: list[Planned] = []
    seen: dict[str, int] = {}  # key material → rows with it so far
    explicit: dict[tuple[int, str], int] = {}  # (case, request_id) → its line
    for line, values in rows:
        try:
            request = move_request(trigger, values, default_date)
            raw_id = values.get(REQUEST_COLUMN, "")
            request_id = clean_text(raw_id, _("column {request_column}").format(
                                                request_column=REQUEST_COLUMN), 200) if raw_id.strip() else ""
        except BadInput as bad:
            planned.append((line, bad))
            continue
        if request_id:
            earlier = explicit.setdefault((request.case_id, request_id), line)
            if earlier != line:
                raise BadInput(_("{path}:{line}: {request_column} {request_id!r} of case {case_id} is also "
                                 "on row {earlier}").format(
                                   path=path, line=line, request_column=REQUEST_COLUMN,
                                   request_id=request_id, case_id=request.case_id, earlier=earlier))
            material: dict[str, Any] = {"move": trigger, REQUEST_COLUMN: request_id}
        else:
            material = _row_material(trigger, values, request, given_date)
            text = canonical_json(material)
            seen[text] = seen.get(text, 0) + 1
            material["occurrence"] = seen[text]
        planned.append((line, replace(request, request_key=_digest(material))))
    return planned


def _row_material(trigger: str, values: Mapping[str, str], request: AdvanceRequest,
                  given_date: date | None) -> dict[str, Any]:
    """What a row without a request_id asks for, as the text its key is the digest of."""
    row_date = values.get(DATE_COLUMN, "").strip()
    on = request.business_date if row_date else given_date
    return {"move": trigger, "case": request.case_id, "date": on.isoformat() if on else None,
            "role": request.role, "inputs": dict(request.inputs),
            "documents": dict(request.documents)}


def _digest(material: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def advance_rows(service: Service, actor: str, trigger: str, path: Path, given_date: date | None,
                 all_or_nothing: bool = False) -> tuple[int, Iterator[RowResult]]:
    """The number of rows, and each row's result yielded once its transaction has committed
    (with ``all_or_nothing``, the whole file's transaction has committed before this
    returns). The file is read and checked first, so a file refused as a whole (or a
    refused batch) is refused before anything is shown.
    A storage failure that is not the row's own (a busy or full database) stops the run:
    ``StoppedPartWay`` says where, and how many rows were committed before it."""
    planned = plan_rows(path, trigger, given_date)
    if all_or_nothing:
        bad = next(((line, r) for line, r in planned if isinstance(r, BadInput)), None) or \
            _unknown_case(service, planned)
        if bad is not None:
            raise BadInput(_("row {line}: {problem}").format(line=bad[0], problem=bad[1]))
        return len(planned), iter(_in_one_transaction(service, actor, planned))
    return len(planned), _row_by_row(service, actor, planned)


def _unknown_case(service: Service, planned: Sequence[Planned]) -> tuple[int, NotFound] | None:
    """The first row naming a case the database does not hold: a bad row, not a refusal."""
    asked = {request.case_id for _, request in planned if not isinstance(request, BadInput)}
    missing = service.store.cases.missing(asked)
    for line, request in planned:
        if not isinstance(request, BadInput) and request.case_id in missing:
            return line, NotFound(_("case {case_id} not found").format(case_id=request.case_id))
    return None


def _row_by_row(service: Service, actor: str, planned: Sequence[Planned]) -> Iterator[RowResult]:
    moved = 0
    for line, request in planned:
        try:
            result = _one_row(service, actor, line, request)
        except Exception as cause:
            case = _(" (case {case_id})").format(
                       case_id=request.case_id) if not isinstance(request, BadInput) else ""
            raise StoppedPartWay(_("stopped at row {line}{case}: {reason}; {moved} row(s) moved and "
                                   "committed before it; {rerun}").format(
                                     line=line, case=case, reason=StoppedPartWay.reason(cause), moved=moved,
                                     rerun=_(RERUN)), cause) from cause
        moved += result.outcome == "moved"
        yield result


def _one_row(service: Service, actor: str, line: int, request: AdvanceRequest | BadInput) -> RowResult:
    """One row in its own transaction. Whatever is the row's own trouble is its result; a
    database that cannot be written at all (``Unavailable``) is not, and stops the run."""
    if isinstance(request, BadInput):
        return RowResult(line, None, "bad row", str(request))
    try:
        recorded = service.advance(actor, request.case_id, request.trigger, request.business_date,
                                   request.inputs, request.documents, request.role,
                                   request_key=request.request_key)
    except AlreadyApplied as done:
        return RowResult(line, request.case_id, "already done", already_done(done, actor))
    except Unavailable:
        raise
    except NotFound as unknown:
        return RowResult(line, request.case_id, "bad row", str(unknown))
    except MemberflowError as refused:
        return RowResult(line, request.case_id, "refused", str(refused))
    return RowResult(line, request.case_id, "moved", moved_detail(recorded))


def moved_detail(recorded: Recorded) -> str:
    """``candidate → trained (event 2)``."""
    return _("{from_state} → {to_state} (event {seq})").format(
        from_state=recorded.move.from_state, to_state=recorded.move.to_state, seq=recorded.seq)


def already_done(done: AlreadyApplied, actor: str) -> str:
    """``already done by you at 02/12/2026 14:03 (event 7); nothing written``."""
    who = "you" if done.actor == actor else done.actor
    return (_("already done by {who} at {recorded_at} (event {seq}); nothing written").format(
                who=who, recorded_at=format_timestamp(done.recorded_at), seq=done.seq))


def _in_one_transaction(service: Service, actor: str, planned: Sequence[Planned]) -> list[RowResult]:
    """Every row written in one transaction (no row is bad: checked before); the first
    refusal names its case."""
    requests = [request for _, request in planned if not isinstance(request, BadInput)]
    results = []
    for (line, request), done in zip(planned, service.advance_many(actor, requests), strict=True):
        if isinstance(done, AlreadyApplied):
            results.append(RowResult(line, request.case_id, "already done", already_done(done, actor)))
        else:
            results.append(RowResult(line, done.case_id, "moved", moved_detail(done)))
    return results


def summary(counts: Mapping[str, int]) -> str:
    """``3 moved, 1 already done, 0 refused, 0 bad row of 4 rows``."""
    return _("{counts} of {total} rows").format(
        counts=", ".join(f"{counts.get(outcome, 0)} {_(outcome)}" for outcome in OUTCOMES),
        total=sum(counts.values()))


PERSON_COLUMNS = ("full_name", "birth_date", "gender", "ethnicity", "religion", "education",
                  "youth_union", "trade_union")
PERSON_DEFAULTS = {"ethnicity": "Kinh", "religion": "Không", "education": "upper_secondary",
                   "youth_union": "no", "trade_union": "no"}
GENDERS = {"female": "female", "nữ": "female", "male": "male", "nam": "male"}


def person_row(values: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a person's record; a wrong value is bad input naming its column."""
    cell = {c: (values.get(c) or "").strip() or PERSON_DEFAULTS.get(c, "") for c in PERSON_COLUMNS}
    gender = GENDERS.get(cell["gender"].lower())
    if gender is None:
        raise BadInput(_("column gender: {gender!r} is not female/nữ or male/nam").format(
            gender=cell["gender"]))
    if cell["education"] not in EDUCATION_LEVELS:
        raise BadInput(_("column education: {education!r} is not one of {education_levels}").format(
                           education=cell['education'], education_levels=', '.join(EDUCATION_LEVELS)))
    return person_fields(
        clean_text(cell["full_name"], _("column full_name"), 300),
        parse_date(cell["birth_date"], _("column birth_date")), gender=gender,
        ethnicity=cell["ethnicity"], religion=cell["religion"], education=cell["education"],
        youth_union=parse_bool(cell["youth_union"], _("column youth_union")),
        trade_union=parse_bool(cell["trade_union"], _("column trade_union")))


@dataclass(frozen=True)
class Imported:
    """What ``person import`` did: the people it registered, or (``rerun``) none because
    every row was registered already — the file was imported before."""

    ids: list[int]
    rerun: bool = False


class _Registered(Exception):
    """Every row of the file is registered already: it was imported before."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(ids)
        self.ids = ids


def import_people(directory: Directory, organization_id: int | None, path: Path) -> Imported:
    """Every row checked first; one bad row (or a person already registered) and nobody is
    imported, so a file is never half-imported and can simply be fixed and run again. A file
    whose every row is registered already was imported before (a rerun after a crash): that
    is reported, not refused, and nothing is registered twice. Who is registered is read
    inside the writing transaction, so two runs of one file at once register it once."""
    header, rows = read_rows(path, "full_name")
    unknown = sorted(set(header) - set(PERSON_COLUMNS))
    if unknown:
        raise BadInput(_("{path}:1: unknown column {unknown!r} (columns: {person_columns})").format(
                           path=path, unknown=unknown[0], person_columns=', '.join(PERSON_COLUMNS)))
    people, problems, seen = [], [], {}
    for line, values in rows:
        try:
            person = person_row(values)
        except BadInput as bad:
            problems.append(f"{path}:{line}: {bad}")
            continue
        key = (person["full_name"], person["birth_date"])
        if key in seen:
            problems.append(_("{path}:{line}: the same person as row {seen}").format(
                                path=path, line=line, seen=seen[key]))
        seen.setdefault(key, line)
        people.append({**person, "organization_id": organization_id})
    _refuse(problems)

    def none_registered(registered: dict[tuple[str, Any], int]) -> None:
        if seen and all(key in registered for key in seen):
            raise _Registered(sorted(registered[key] for key in seen))
        _refuse([_("{path}:{line}: {name} born {born:%d/%m/%Y} is already registered as #{person}").format(
                     path=path, line=seen[key], name=key[0], born=key[1], person=registered[key])
                 for key in seen if key in registered])

    try:
        return Imported(directory.add_people(people, none_registered))
    except _Registered as before:
        return Imported(before.ids, rerun=True)


def _refuse(problems: Sequence[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise BadInput(_("{problems}{more}; nothing imported").format(problems=problems[0], more=more))
