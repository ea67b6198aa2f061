"""A YAML reader that only ever builds plain data, and remembers where each mapping began.

Rule packs and evidence are data written by people: they must never be able to run code
(so only `yaml.SafeLoader` is used), and every error should point at a line. PyYAML reads
YAML 1.1, where `4.0e26` is a string; analysts write YAML 1.2 floats, so this loader also
resolves those as numbers.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a
# decimal point, or without a sign (`1e24`, `4.0e26`).
YAML12_EXPONENT_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


def accept_yaml12_floats(loader: type[yaml.SafeLoader]) -> None:
    """Teach a SafeLoader subclass to read YAML-1.2 exponent floats as numbers."""
    loader.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_EXPONENT_FLOAT,
                                 list("-+.0123456789"))


class LineDict(dict):
    """A mapping read from YAML that knows the line it started on (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class SafeLineLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` plus YAML-1.2 floats and line numbers on every mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        mapping = LineDict(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
        }
        return mapping


accept_yaml12_floats(SafeLineLoader)
SafeLineLoader.add_constructor("tag:yaml.org,2002:map", SafeLineLoader.construct_mapping)


def load_yaml(text: str) -> Any:
    """Parse one YAML document into plain data (dicts carry `.line`); never runs code."""
    return yaml.load(text, Loader=SafeLineLoader)


def line_of(value: object, key: str | None = None) -> int:
    """The line where a mapping (or one of its keys) was written, or 0 if unknown."""
    if isinstance(value, LineDict):
        if key is not None and key in value.key_lines:
            return value.key_lines[key]
        return value.line
    return 0
