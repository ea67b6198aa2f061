"""The one YAML reader for everything people write: evidence, rule packs and case files.

Evidence and rule packs are data written by people: they must never be able to run code
(so only `yaml.SafeLoader` is used), and every error should point at a line. The reader
is strict where YAML is lenient:

- a key given twice in one mapping is an error (`DuplicateKeyError`), not silently the
  last value: `where: {value: crossed, value: ruled_out}` would otherwise test only
  `ruled_out`, and an evidence document could hide one score behind another;
- PyYAML reads YAML 1.1, where `4.0e26` is a string; analysts write YAML 1.2 floats, so
  those are read as numbers;
- a scalar Python cannot build (`2026-02-30`, an integer of 5,000 digits) is a YAML
  error at its line, not a stray `ValueError`.

`StrictLoader` builds plain data (evidence keeps aliases as shared objects, which its
size check relies on); `SafeLineLoader` is the same reader whose mappings also remember
their line numbers (`LineDict`), for rule packs and case files, whose problems are
reported as `file:line`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a
# decimal point, or without a sign (`1e24`, `4.0e26`).
YAML12_EXPONENT_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.composer.ComposerError):
    """A mapping gives the same key twice. `problem_mark` is the second occurrence;
    `key` and `first_line` (1-based) say which key and where it was first given."""

    def __init__(self, key: str, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(None, None, f"found duplicate key {key!r}", again)
        self.key = key
        self.first_line = first.line + 1


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys, reads YAML 1.2 floats (`1e24`) and
    reports an unbuildable scalar as a YAML error at its line."""

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], yaml.Mark] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG:
                first = seen.setdefault((key.tag, key.value), key.start_mark)
                if first is not key.start_mark:
                    raise DuplicateKeyError(key.value, first, key.start_mark)
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # 2026-02-30, a 5000-digit integer
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from exc


StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_EXPONENT_FLOAT,
                                   list("-+.0123456789"))


class LineDict(dict):
    """A mapping read from YAML that knows the line it started on (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class SafeLineLoader(StrictLoader):
    """`StrictLoader` whose mappings are `LineDict`s: each knows its line and its keys'."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        mapping = LineDict(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
        }
        return mapping


SafeLineLoader.add_constructor("tag:yaml.org,2002:map", SafeLineLoader.construct_mapping)


def load_data(text: str) -> Any:
    """Parse one YAML document into plain data (evidence); never runs code. Raises a
    `yaml.YAMLError` (a `DuplicateKeyError` for a repeated key) or `RecursionError`."""
    return StrictLoader(text).get_single_data()


def load_yaml(text: str) -> Any:
    """Parse one YAML document into plain data whose mappings carry `.line` (rule packs,
    case files); never runs code. Raises as `load_data` does."""
    return yaml.load(text, Loader=SafeLineLoader)


def line_of(value: object, key: str | None = None) -> int:
    """The line where a mapping (or one of its keys) was written, or 0 if unknown."""
    if isinstance(value, LineDict):
        if key is not None and key in value.key_lines:
            return value.key_lines[key]
        return value.line
    return 0
