"""Bulk work from CSV files: one row per case, every row reported (moved, refused, bad row).

A file that cannot be read as a whole (encoding, header, ragged rows) is refused with row
and column before anything is done; a row whose own values are wrong is reported as a bad
row. ``all_or_nothing`` runs every move in one transaction instead of one per row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .administration import person_fields
from .dates import parse_date
from .errors import BadInput, MemberflowError
from .guards import EDUCATION_LEVELS
from .inputs import clean_text, parse_bool

if TYPE_CHECKING:
    from .administration import Administration
    from .service import AdvanceRequest, Service

CASE_COLUMN, DATE_COLUMN, ROLE_COLUMN, DOCUMENT_PREFIX = "case", "date", "role", "doc:"
MAX_BYTES = 50 * 1024 * 1024
# Characters in one cell: the csv module's own default limit, checked here so that a cell
# over it is named by line and column.
MAX_CELL = 131_072


@dataclass(frozen=True)
class RowResult:
    row: int  # line number in the file (the header is line 1)
    case_id: int | None
    outcome: str  # moved | refused | bad row
    detail: str


def read_rows(path: Path, key: str = CASE_COLUMN) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (which must name ``key``) and every data row with its line number; the
    whole file or nothing."""
    if path.stat().st_size > MAX_BYTES:
        raise BadInput(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise BadInput(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") \
            from None
    limit = csv.field_size_limit(MAX_BYTES + 1)  # the file's size bounds every cell
    try:
        return _rows(path, csv.reader(io.StringIO(text, newline="")), key)
    finally:
        csv.field_size_limit(limit)


def _rows(path: Path, reader: Any, key: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_cells(path, 1, [f"header field {n}" for n in range(1, len(header) + 1)], header)
        if key not in header:
            raise BadInput(f"{path}:1: the header must have a {key!r} column (found: "
                           f"{', '.join(header) or 'nothing'})")
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise BadInput(f"{path}:1: column {duplicated[0]!r} appears twice in the header")
        rows = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise BadInput(f"{path}:{reader.line_num}: {len(fields)} fields, the header has "
                               f"{len(header)}")
            _check_cells(path, reader.line_num, [f"column {name}" for name in header], fields)
            rows.append((reader.line_num, dict(zip(header, fields, strict=True))))
    except csv.Error as exc:
        raise BadInput(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
    return header, rows


def _check_cells(path: Path, line: int, names: list[str], cells: list[str]) -> None:
    for name, cell in zip(names, cells, strict=True):
        if len(cell) > MAX_CELL:
            raise BadInput(f"{path}:{line}: {name} is {len(cell)} characters long; at most "
                           f"{MAX_CELL} allowed")


def move_request(trigger: str, values: dict[str, str], default_date: date) -> AdvanceRequest:
    """One row as a move; a wrong value is bad input naming its column."""
    from .service import AdvanceRequest

    raw_case = values[CASE_COLUMN].strip()
    if not raw_case.isdigit() or int(raw_case) <= 0:
        raise BadInput(f"column {CASE_COLUMN}: {raw_case!r} is not a case number")
    raw_date = values.get(DATE_COLUMN, "").strip()
    on = parse_date(raw_date, f"column {DATE_COLUMN}") if raw_date else default_date
    inputs, documents = {}, {}
    for column, value in values.items():
        if column in (CASE_COLUMN, DATE_COLUMN, ROLE_COLUMN) or not value.strip():
            continue
        if column.startswith(DOCUMENT_PREFIX):
            code = column[len(DOCUMENT_PREFIX):]
            documents[code] = clean_text(value, f"column {column}", 500)
        else:
            inputs[column] = value.strip()
    role = values.get(ROLE_COLUMN, "").strip() or None
    return AdvanceRequest(int(raw_case), trigger, on, inputs, documents, role)


def advance_rows(service: Service, actor: str, trigger: str, path: Path, default_date: date,
                 all_or_nothing: bool = False,
                 progress: Callable[[int], None] | None = None) -> list[RowResult]:
    _, rows = read_rows(path)
    if all_or_nothing:
        return _in_one_transaction(service, actor, trigger, rows, default_date)
    results = []
    for line, values in rows:
        results.append(_one_row(service, actor, trigger, line, values, default_date))
        if progress:
            progress(1)
    return results


def _one_row(service: Service, actor: str, trigger: str, line: int, values: dict[str, str],
             default_date: date) -> RowResult:
    try:
        request = move_request(trigger, values, default_date)
    except MemberflowError as bad:
        return RowResult(line, None, "bad row", str(bad))
    try:
        recorded = service.advance(actor, request.case_id, trigger, request.business_date,
                                   request.inputs, request.documents, request.role)
    except MemberflowError as refused:
        return RowResult(line, request.case_id, "refused", str(refused))
    return RowResult(line, request.case_id, "moved", f"{recorded.move.from_state} → "
                     f"{recorded.move.to_state} (event {recorded.seq})")


def _in_one_transaction(service: Service, actor: str, trigger: str,
                        rows: list[tuple[int, dict[str, str]]], default_date: date) -> list[RowResult]:
    """Every row planned and written in one transaction; the first problem names its row."""
    requests = []
    for line, values in rows:
        try:
            requests.append(move_request(trigger, values, default_date))
        except BadInput as bad:
            raise BadInput(f"row {line}: {bad}") from None
    lines = iter(line for line, _ in rows)
    recorded = service.advance_many(actor, requests)
    return [RowResult(next(lines), r.case_id, "moved",
                      f"{r.move.from_state} → {r.move.to_state} (event {r.seq})") for r in recorded]


def summary(results: list[RowResult]) -> str:
    counts = {outcome: sum(1 for r in results if r.outcome == outcome)
              for outcome in ("moved", "refused", "bad row")}
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) + f" of {len(results)} rows"


def failures(results: list[RowResult]) -> Iterator[RowResult]:
    return (r for r in results if r.outcome != "moved")


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
        raise BadInput(f"column gender: {cell['gender']!r} is not female/nữ or male/nam")
    if cell["education"] not in EDUCATION_LEVELS:
        raise BadInput(f"column education: {cell['education']!r} is not one of {', '.join(EDUCATION_LEVELS)}")
    return person_fields(
        clean_text(cell["full_name"], "column full_name", 300),
        parse_date(cell["birth_date"], "column birth_date"), gender=gender,
        ethnicity=cell["ethnicity"], religion=cell["religion"], education=cell["education"],
        youth_union=parse_bool(cell["youth_union"], "column youth_union"),
        trade_union=parse_bool(cell["trade_union"], "column trade_union"))


def import_people(administration: Administration, actor: str, path: Path) -> list[int]:
    """Every row checked first; one bad row (or a person already registered) and nobody is
    imported, so a file is never half-imported and can simply be fixed and run again."""
    header, rows = read_rows(path, "full_name")
    unknown = sorted(set(header) - set(PERSON_COLUMNS))
    if unknown:
        raise BadInput(f"{path}:1: unknown column {unknown[0]!r} (columns: {', '.join(PERSON_COLUMNS)})")
    people, problems, seen = [], [], {}
    for line, values in rows:
        try:
            person = person_row(values)
        except BadInput as bad:
            problems.append(f"{path}:{line}: {bad}")
            continue
        key = (person["full_name"], person["birth_date"])
        if key in seen:
            problems.append(f"{path}:{line}: the same person as row {seen[key]}")
        seen.setdefault(key, line)
        people.append(person)
    registered = administration.store.directory.registered({name for name, _ in seen})
    problems += [f"{path}:{seen[key]}: {key[0]} born {key[1]:%d/%m/%Y} is already registered as "
                 f"#{registered[key]}" for key in seen if key in registered]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise BadInput(f"{problems[0]}{more}; nothing imported")
    return administration.import_people(actor, people)
