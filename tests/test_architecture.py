"""The layout is the architecture: each layer imports only what it may.

``workflow`` (rules) knows nothing of storage or the application; ``storage`` (tables)
nothing of rules; the CLI (``cli.py`` and ``commands/``) talks only to the application
layer, never to storage; and the installed distribution is one package, ``memberflow``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def sources(*folders: str) -> list[Path]:
    paths = []
    for folder in folders:
        target = ROOT / folder
        paths += [target] if target.is_file() else sorted(target.rglob("*.py"))
    return [p for p in paths if "schema_revisions" not in p.parts]


LAYERS = [
    (("workflow",), ("memberflow.storage", "memberflow.app", "memberflow.commands", "memberflow.cli")),
    (("storage",), ("memberflow.workflow", "memberflow.app", "memberflow.commands", "memberflow.cli")),
    (("app",), ("memberflow.commands", "memberflow.cli")),
    (("cli.py", "commands"), ("memberflow.storage",)),
]


@pytest.mark.parametrize(("folders", "forbidden"), LAYERS, ids=["workflow", "storage", "app", "cli"])
def test_each_layer_imports_only_what_it_may(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    breaches = [f"{path.relative_to(ROOT)} imports {module}"
                for path in sources(*folders) for module in sorted(imported_modules(path))
                if module.startswith(forbidden)]
    assert breaches == []


def test_no_module_is_imported_under_a_bare_top_level_name() -> None:
    """Everything is ``memberflow.…``: a bare ``workflow`` or ``storage`` would be a second
    copy of the same module (and a name other distributions also install)."""
    bare = [f"{path.relative_to(ROOT)} imports {module}"
            for path in sources("cli.py", "errors.py", "i18n.py", "workflow", "storage", "app",
                                "commands", "tests", "bench")
            for module in imported_modules(path)
            if module.split(".")[0] in ("workflow", "storage", "app", "commands", "cli", "errors", "i18n")]
    assert bare == []
    assert not {"workflow", "storage", "app", "commands"} & set(sys.modules)


def test_tests_find_the_program_beside_the_interpreter_running_them() -> None:
    """Issue 19 item 8: pytest run from any environment (not only make's .venv) finds the
    ``memberflow`` it installed, so no test names a virtual environment's path."""
    venv = "." + "venv"  # spelled apart so this file does not find itself
    named = [path.name for path in sorted((ROOT / "tests").glob("*.py"))
             if f'"{venv}"' in path.read_text(encoding="utf-8")]
    assert named == []
