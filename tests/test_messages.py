"""Messages in Vietnamese by default and English on request: the catalogues are complete,
keep every placeholder, are compiled, and the CLI speaks them; no message is left unmarked."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result
from conftest import ROOT, World, acting, compile_catalogues
from memberflow import i18n
from memberflow.cli import main

KEYWORDS = {"_": None, "N_": None, "NC_": ((1, "c"), 2), "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
SOURCES = ("cli.py", "errors.py", "i18n.py", "app", "commands", "workflow", "storage")
MESSAGE_SOURCES = ("cli.py", "app", "commands", "workflow", "storage")
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\(\w+\)[a-z]")


def catalogue(lang: str) -> Catalog:
    with (i18n.LOCALES / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as source:
        return read_po(source, locale=lang)


def in_source() -> set[tuple[str | tuple[str, ...], str | None]]:
    """Every message marked in the source, as Babel extracts it now (not the committed .pot)."""
    method_map = [(f"{top}/**.py" if (ROOT / top).is_dir() else top, "python") for top in SOURCES]
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            ROOT, method_map, keywords=KEYWORDS, comment_tags=()):
        found.add((message, context))
    return found


def entries(catalog: Catalog) -> Iterator[Message]:
    return (m for m in catalog if m.id)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text.replace("{{", "").replace("}}", "")))


def test_every_marked_message_has_a_vietnamese_translation_and_none_is_obsolete() -> None:
    vi = catalogue("vi")
    translated = {(m.id, m.context) for m in entries(vi) if _translated(m) and not m.fuzzy}
    source = in_source()
    assert sorted(map(str, source - translated)) == []
    assert sorted(map(str, {(m.id, m.context) for m in entries(vi)} - source)) == []
    assert not vi.obsolete
    assert vi.plural_forms == "nplurals=1; plural=0;"


def test_english_is_a_catalogue_of_the_same_messages() -> None:
    assert {(m.id, m.context) for m in entries(catalogue("en"))} == in_source()


def test_translations_keep_every_placeholder() -> None:
    broken = []
    for message in entries(catalogue("vi")):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if placeholders(text) != placeholders(ids[0]):
                broken.append((ids[0], text))
    assert broken == []


def _translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple | list) else [message.string]
    return all(strings)


def _hashable(value: str | list[str] | tuple[str, ...]) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def test_compiled_catalogues_match_their_sources() -> None:
    """Each .mo says what its .po says (a message left as its English source counts as untranslated)."""
    compile_catalogues()
    for lang in i18n.LANGUAGES:
        mo = i18n.LOCALES / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo"
        with mo.open("rb") as compiled:
            built = {(_hashable(m.id), m.context): _hashable(m.string) for m in read_mo(compiled)
                     if m.id and _hashable(m.string) != _hashable(m.id)}
        written = {(_hashable(m.id), m.context): _hashable(m.string) for m in entries(catalogue(lang))
                   if not m.fuzzy and _translated(m) and _hashable(m.string) != _hashable(m.id)}
        assert built == written, lang


# -- through the CLI -------------------------------------------------------------------------------
def run(world: World, *args: str, actor: str = "secretary") -> Result:
    """In the program's default language: MEMBERFLOW_LANG (set to en for the suite) cleared."""
    return CliRunner(env={"MEMBERFLOW_LANG": None}).invoke(main, [*acting(world.store.url, actor), *args])


def test_a_refused_move_is_told_in_vietnamese_by_default_and_in_english_on_request(world: World) -> None:
    case_id = world.open_case()
    refused = run(world, "case", "advance", str(case_id), "decide_admission")
    assert refused.exit_code == 1, refused.stderr
    assert "bị từ chối: không thể thực hiện thao tác decide_admission từ trạng thái" in refused.stderr
    english = run(world, "--lang", "en", "case", "advance", str(case_id), "decide_admission")
    assert english.exit_code == 1
    assert "refused: move decide_admission is not possible from state" in english.stderr
    assert "từ chối" not in english.stderr


def test_a_case_not_found_is_told_in_the_chosen_language(world: World) -> None:
    missing = run(world, "case", "show", "999999")
    assert missing.exit_code == 4
    assert missing.stderr.strip() == "lỗi: không tìm thấy hồ sơ 999999"
    assert run(world, "--lang", "en", "case", "show", "999999").stderr.strip() == \
        "error: case 999999 not found"


def test_a_listing_has_its_column_headings_in_the_chosen_language(world: World) -> None:
    world.open_case()
    listed = run(world, "case", "list")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.split()[:3] == ["mã", "số", "họ"]
    assert "full_name" not in listed.stdout
    english = run(world, "--lang", "en", "case", "list")
    assert english.stdout.split()[:3] == ["id", "full_name", "organization"]


def test_json_keeps_its_keys_in_every_language(world: World) -> None:
    world.open_case()
    listed = run(world, "case", "list", "--format", "json")
    assert '"full_name"' in listed.stdout


# -- nothing left unmarked -------------------------------------------------------------------------
DOMAIN_ERRORS = {"MemberflowError", "BadInput", "Duplicate", "DefinitionInvalid", "NotFound", "NotPermitted",
                 "MoveRefused", "Conflict", "AlreadyMoved", "AlreadyApplied", "RequestKeyTaken",
                 "Unavailable", "Busy", "AuditFailed", "StoppedPartWay"}
WORDS = re.compile(r"[A-Za-z]{2,}")


def _is_prose(node: ast.expr) -> bool:
    """A literal an officer would read: a string or f-string whose own text has words."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(WORDS.search(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and WORDS.search(v.value) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _is_prose(node.left) or _is_prose(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _is_prose(node.func.value)
    return False


def _said(tree: ast.AST) -> Iterator[tuple[int, ast.expr]]:
    """What is raised as a domain error or echoed: the first argument of each."""
    for node in ast.walk(tree):
        call = node.exc if isinstance(node, ast.Raise) else node
        if not isinstance(call, ast.Call) or not call.args:
            continue
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        raised = isinstance(node, ast.Raise) and (name in DOMAIN_ERRORS or
                                                  (isinstance(func, ast.Call) and name == ""))
        if raised or (isinstance(node, ast.Call) and name == "echo"):
            yield call.lineno, call.args[0]


def test_no_message_raised_or_echoed_is_left_unmarked() -> None:
    files = [path for top in MESSAGE_SOURCES
             for path in ([ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*.py")))
             if "schema_revisions" not in path.parts]
    unmarked = [f"{path.relative_to(ROOT)}:{line}: {ast.unparse(arg)[:80]}"
                for path in files for line, arg in _said(ast.parse(path.read_text(encoding="utf-8")))
                if _is_prose(arg)]
    assert unmarked == []


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_language_in_force_is_spoken_by_every_layer(lang: str) -> None:
    from memberflow.errors import DefinitionInvalid, Problem

    i18n.use(lang)
    error = DefinitionInvalid([Problem("a.yaml", 1, "x"), Problem("a.yaml", 2, "y")])
    expected = {"vi": "định nghĩa quy trình không hợp lệ: a.yaml:1: x (và 1 vấn đề khác)",
                "en": "invalid definition: a.yaml:1: x (and 1 more)"}
    assert str(error) == expected[lang]
