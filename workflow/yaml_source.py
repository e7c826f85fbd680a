"""Line-aware, safe YAML reading for definitions.

Every mapping and list remembers the line it came from so validation can point at
file and line. Only plain YAML is accepted: no Python tags (``yaml.SafeLoader``), no
aliases (they enable "billion laughs"), no duplicate keys, bounded size and depth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from memberflow.errors import Problem
from memberflow.i18n import _

MAX_BYTES = 1_000_000
MAX_DEPTH = 40


class LineDict(dict):
    """A YAML mapping with the line of the mapping and of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A YAML sequence with the line of the sequence and of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _DefinitionLoader(yaml.SafeLoader):
    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.problems: list[Problem] = []
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(
                None, None, _("aliases (*name) are not allowed in definitions"), mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.MarkedYAMLError(
                    None, None, _("nesting deeper than {max_depth} levels").format(max_depth=MAX_DEPTH), mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_map(loader: _DefinitionLoader, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool) and key is not None:
            loader.problems.append(Problem(loader.file, line, _("mapping keys must be plain text")))
            continue
        if key in data:
            first = data.key_lines[key]
            loader.problems.append(
                Problem(loader.file, line, _("key {key!r} appears twice (first on line {first})").format(
                                               key=key, first=first))
            )
            continue
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _DefinitionLoader, node: yaml.SequenceNode) -> Any:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_DefinitionLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_DefinitionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def read_text(path: Path) -> str:
    """Read a definition file as UTF-8; oversize or undecodable files are problems, not crashes."""
    from memberflow.errors import DefinitionInvalid

    try:
        size = path.stat().st_size
        regular = path.is_file()
    except OSError as exc:
        problem = Problem(str(path), 0, _("cannot read file ({strerror})").format(strerror=exc.strerror))
        raise DefinitionInvalid([problem]) from None
    if not regular:  # a device or a pipe would be read without end
        raise DefinitionInvalid([Problem(str(path), 0, _("not a regular file"))])
    if size > MAX_BYTES:
        message = _("file is {size:,} bytes; definitions are limited to {max_bytes:,} bytes").format(
                      size=size, max_bytes=MAX_BYTES)
        raise DefinitionInvalid([Problem(str(path), 0, message)])
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DefinitionInvalid(
            [Problem(str(path), line, _("not UTF-8 text (byte 0x{raw:02x})").format(raw=raw[exc.start]))]
        ) from None


def parse_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; returns the data (or None) and the problems found."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        return None, [Problem(file, 0, _("definitions are limited to {max_bytes:,} bytes").format(
                                           max_bytes=MAX_BYTES))]
    try:
        loader = _DefinitionLoader(text, file)
    except yaml.YAMLError as exc:  # characters YAML does not allow (NUL, ESC, ...)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = text[:getattr(exc, "position", 0)].count("\n") + 1
        return None, [Problem(file, line, _("YAML error: {reason}").format(reason=reason))]
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        reason = exc.problem or exc.context or _("invalid YAML")
        return None, [*loader.problems, Problem(file, line, _("YAML error: {reason}").format(reason=reason))]
    except yaml.YAMLError as exc:
        return None, [*loader.problems, Problem(file, 0, _("YAML error: {exc}").format(exc=exc))]
    except RecursionError:
        return None, [*loader.problems, Problem(file, 0, _("YAML nesting is too deep"))]
    finally:
        loader.dispose()
    return data, loader.problems
