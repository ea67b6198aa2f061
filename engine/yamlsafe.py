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

The work of reading is bounded by the text, not by what it builds: `load_data` and
`load_yaml` refuse a document of more than `MAX_NODES` nodes (`TooManyNodes`) before
building it, so anything under the 50 MB file limit is refused or read in seconds and a
few hundred MB (JSON, parsed in C, has only the evidence limit of 2,000,000 values).
That needs libyaml (PyYAML's C parser, present in its wheels), which first counts the
parser's events in C and then composes in C; the checks the pure-Python reader makes
while composing (duplicate keys) are then made on the composed nodes, and a syntax error
found early in the text is re-read with the pure-Python reader so its message is the
same either way. Without libyaml the pure-Python reader counts nodes as its composer
builds them and stops at the cap (bounded, but slower).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python reader only
    CParser = None

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a
# decimal point, or without a sign (`1e24`, `4.0e26`).
YAML12_EXPONENT_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
MERGE_TAG = "tag:yaml.org,2002:merge"
# Scalars, collections and aliases, keys included, in one YAML document. Building a
# node costs about 10 us and 600 bytes even with libyaml (the tree, then the data), so
# this many is read in seconds and a few hundred MB; a portfolio of some thousands of
# models fits, and a larger one is given as JSON Lines (read in C, without this limit).
MAX_NODES = 500_000
# A syntax error libyaml finds within this many characters of the start is re-read with
# the pure-Python reader, whose wording the error messages have always had; its cost is
# bounded by where the error is.
REREAD_ERRORS_WITHIN = 200_000


class DuplicateKeyError(yaml.composer.ComposerError):
    """A mapping gives the same key twice. `problem_mark` is the second occurrence;
    `key` and `first_line` (1-based) say which key and where it was first given."""

    def __init__(self, key: str, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(None, None, f"found duplicate key {key!r}", again)
        self.key = key
        self.first_line = first.line + 1


class TooManyNodes(yaml.YAMLError):
    """A document holds more than `MAX_NODES` nodes; refused before it is built."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit:,} YAML nodes (values, keys and aliases); "
                         "give a portfolio this large as JSON Lines")


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    """Raise `DuplicateKeyError` at the second of two equal scalar keys of one mapping."""
    seen: dict[tuple[str, str], yaml.Mark] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG:
            first = seen.setdefault((key.tag, key.value), key.start_mark)
            if first is not key.start_mark:
                raise DuplicateKeyError(key.value, first, key.start_mark)


class StrictConstructor(yaml.constructor.SafeConstructor):
    """`SafeConstructor` that reports an unbuildable scalar as a YAML error at its line."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # 2026-02-30, a 5000-digit integer
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from exc


class StrictResolver(yaml.resolver.Resolver):
    """The YAML 1.1 resolver that also reads YAML 1.2 floats (`1e24`) as numbers."""


StrictResolver.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_EXPONENT_FLOAT,
                                     list("-+.0123456789"))


class StrictLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                   yaml.composer.Composer, StrictConstructor, StrictResolver):
    """The pure-Python safe reader that refuses duplicate keys, reads YAML 1.2 floats
    (`1e24`), reports an unbuildable scalar as a YAML error at its line, and stops
    composing past `max_nodes` nodes."""

    def __init__(self, stream: Any, max_nodes: int = MAX_NODES) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        StrictConstructor.__init__(self)
        StrictResolver.__init__(self)
        self.max_nodes, self.nodes = max_nodes, 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise TooManyNodes(self.max_nodes)
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        _refuse_duplicate_keys(node)
        return node


class LineDict(dict):
    """A mapping read from YAML that knows the line it started on (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


def _construct_line_mapping(self: Any, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    """A mapping as a `LineDict` that knows its line and its keys'."""
    mapping = LineDict(yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
    }
    return mapping


class SafeLineLoader(StrictLoader):
    """`StrictLoader` whose mappings are `LineDict`s: each knows its line and its keys'."""

    construct_mapping = _construct_line_mapping


SafeLineLoader.add_constructor("tag:yaml.org,2002:map", SafeLineLoader.construct_mapping)

_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent,
                yaml.AliasEvent)


def _count_nodes(text: str, max_nodes: int) -> None:
    """Refuse `text` if its parse holds more than `max_nodes` nodes, counting events in C
    where that decides it (a node is one or two events) and otherwise event by event,
    stopping at the cap. Builds nothing; memory stays flat."""
    parser = CParser(text)
    try:
        events = parser.raw_parse()
    finally:
        parser.dispose()
    if events <= max_nodes:
        return
    if events > 2 * max_nodes + 4:  # a node is at most two events; the stream adds four
        raise TooManyNodes(max_nodes)
    parser, nodes = CParser(text), 0
    try:
        while not isinstance(event := parser.get_event(), yaml.StreamEndEvent):
            if isinstance(event, _NODE_EVENTS):
                nodes += 1
                if nodes > max_nodes:
                    raise TooManyNodes(max_nodes)
    finally:
        parser.dispose()


def _refuse_duplicates_in(root: yaml.Node) -> None:
    """Check every mapping of a composed document for duplicate keys, in the order the
    pure-Python composer does (a mapping once its children are composed, each node once
    however many aliases name it), so the same key is reported either way."""
    done: set[int] = set()
    if type(root) is yaml.ScalarNode:
        return
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            _refuse_duplicate_keys(node)
            continue
        if id(node) in done:
            continue
        done.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.append((node, True))
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value
        # scalars hold no mappings: only collections need a visit
        stack.extend([(child, False) for child in reversed(children)
                      if type(child) is not yaml.ScalarNode])


def _c_loader(constructor: type) -> type | None:
    """A libyaml-composing loader with `constructor`'s construction, or None without
    libyaml."""
    if CParser is None:
        return None

    class Loader(CParser, constructor, StrictResolver):  # type: ignore[valid-type,misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            constructor.__init__(self)
            StrictResolver.__init__(self)

        def get_single_node(self) -> Any:
            node = CParser.get_single_node(self)
            if node is not None:
                _refuse_duplicates_in(node)
            return node

    Loader.__name__ = Loader.__qualname__ = f"C{constructor.__name__}"
    return Loader


class LineConstructor(StrictConstructor):
    """`StrictConstructor` whose mappings are `LineDict`s (as `SafeLineLoader`'s)."""

    construct_mapping = _construct_line_mapping


LineConstructor.add_constructor("tag:yaml.org,2002:map", LineConstructor.construct_mapping)
_C_DATA_LOADER = _c_loader(StrictConstructor)
_C_LINE_LOADER = _c_loader(LineConstructor)


def _load(text: str, fast: type | None, slow: Callable[..., Any], max_nodes: int) -> Any:
    """One document read with libyaml (`fast`) where available, else with `slow`; a
    syntax error libyaml finds early is re-read with `slow` for its usual wording."""
    if fast is None:
        return _run(slow(text, max_nodes=max_nodes))
    try:
        _count_nodes(text, max_nodes)
        return _run(fast(text))
    except yaml.MarkedYAMLError as exc:
        if isinstance(exc, DuplicateKeyError | yaml.constructor.ConstructorError):
            raise
        mark = exc.problem_mark or exc.context_mark
        if mark is None or mark.index > REREAD_ERRORS_WITHIN:
            if "maximum nesting depth" in (exc.problem or ""):
                raise RecursionError("nested deeper than libyaml allows") from None
            raise
        return _run(slow(text, max_nodes=max_nodes))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        if exc.position > REREAD_ERRORS_WITHIN:
            raise
        return _run(slow(text, max_nodes=max_nodes))


def _run(loader: Any) -> Any:
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_data(text: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document into plain data (evidence); never runs code. Raises a
    `yaml.YAMLError` (a `DuplicateKeyError` for a repeated key, `TooManyNodes` past
    `max_nodes`) or `RecursionError`."""
    return _load(text, _C_DATA_LOADER, StrictLoader, max_nodes)


def load_yaml(text: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document into plain data whose mappings carry `.line` (rule packs,
    case files); never runs code. Raises as `load_data` does."""
    return _load(text, _C_LINE_LOADER, SafeLineLoader, max_nodes)


def line_of(value: object, key: str | None = None) -> int:
    """The line where a mapping (or one of its keys) was written, or 0 if unknown."""
    if isinstance(value, LineDict):
        if key is not None and key in value.key_lines:
            return value.key_lines[key]
        return value.line
    return 0
