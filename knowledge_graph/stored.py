"""The stored form of a provenance graph: a node table and edges by index, compressed.

A graph of one assessment holds about 150 nodes and 120 edges whose strings repeat a
great deal: fact ids appear as node ids, labels and `display_id`s, rule ids as firings'
`rule` and `label`, and every model's graph repeats the pack's facts, the rules' titles
and citations and much of the vocabulary of the `because` texts. The encoding keeps
each distinct string once (a table, referred to by position), each node as its id, its
attributes' key set (a table of key sets) and its values, and each edge as the
positions of its two nodes, its key set and its values; the whole is JSON compressed
with zstd against a dictionary (`derivation.zdict`, trained once on assessments of the
bundled examples and synthetic portfolios) that holds what every model's record shares.
About 3.3 KiB per model instead of 9 KiB for zlib'd JSON, and `decode` gives back the
same nodes, edges and attributes in the same order (attribute keys, and each node's
successors and predecessors, in the same order too). `encode` writes a networkx graph;
`encode_adjacency` writes the same bytes from the plain dicts such a graph keeps
(`adjacency`), and `encode_elements` from the lists of nodes and edges such a graph is
built of, which is how an assessment is stored (provenance.record_of): no networkx
graph is built until something reads the record back.

The first byte says the format: FORMAT for this one; a record stored before revision
0008 is zlib'd JSON (its first byte 0x78), which `decode` still reads. The dictionary is
part of the format: a new one would be a new format byte, the old one kept to read old
records.
"""

from __future__ import annotations

import heapq
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import zstandard

if TYPE_CHECKING:  # imported by `decode` alone: `asl why MODEL` reads a record as its
    # adjacency (`decode_adjacency`) and explains it without importing networkx
    import networkx as nx

FORMAT = b"\x01"  # node table + edges by index, zstd with derivation.zdict
LEGACY_FIRST_BYTE = 0x78  # zlib's header: orjson of {"nodes": ..., "edges": ...}
# How zstd compresses (not part of the format: any parameters give frames `unpack` reads).
# Level 9 was chosen for size (0.4 KiB a graph smaller than level 6, 1.1 KiB than 3) and
# cost about 1.3 ms a graph and 0.7 ms a result. These are level 9's search (lazy
# matching, 2^5 attempts, a 256 KiB window) with matches of at least 6 bytes (level 9
# takes 4) and a 2^17 hash table: about a quarter less CPU, and the graph, result and
# evidence together slightly smaller than at level 9 (found by trying strategies, search
# depths, match lengths and table sizes on synthetic portfolios; stored_form_bench.py
# prints the CPU and the bytes). The search goes 2^6 attempts deep: about 0.1 KiB a model
# smaller for about 0.1-0.2 ms of CPU, which keeps the record under 8 KiB a model in
# SQLite with a margin (storage_bench.py).
PARAMETERS = dict(strategy=zstandard.STRATEGY_LAZY, window_log=18, chain_log=16, hash_log=17,
                  search_log=6, min_match=6, target_length=32)


@cache
def dictionary() -> zstandard.ZstdCompressionDict:
    """The zstd dictionary of FORMAT (package data)."""
    data = files("knowledge_graph").joinpath("derivation.zdict").read_bytes()
    return zstandard.ZstdCompressionDict(data)


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor: a ZstdCompressor must not be used by two threads at once
    (the service stores assessments from several threads; sharing one corrupted frames)."""
    made = getattr(_local, "compressor", None)
    if made is None:
        made = _local.compressor = zstandard.ZstdCompressor(
            dict_data=dictionary(), compression_params=zstandard.ZstdCompressionParameters(
                write_content_size=True, write_checksum=False, **PARAMETERS))
    return made


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (not shareable between threads either)."""
    made = getattr(_local, "decompressor", None)
    if made is None:
        made = _local.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary())
    return made


def pack(data: bytes) -> bytes:
    """Bytes compressed as FORMAT compresses (with the shared dictionary)."""
    return FORMAT + _compressor().compress(data)


def unpack(blob: bytes) -> bytes:
    """Bytes compressed by `pack`."""
    if blob[:1] != FORMAT:
        raise ValueError(f"not a stored derivation record (format byte {blob[:1]!r})")
    return _decompressor().decompress(blob[1:])


def inflate(blob: bytes) -> bytes:
    """The bytes of a stored blob, whichever way it was compressed: `unpack` of one
    `pack` made, or zlib's of one stored before it (first byte LEGACY_FIRST_BYTE)."""
    if blob[:1] and blob[0] == LEGACY_FIRST_BYTE:
        return zlib.decompress(blob)
    return unpack(blob)


Node = tuple[Any, dict[str, Any]]  # a node id and its attributes
Edge = tuple[Any, Any, dict[str, Any]]  # source, target and the edge's attributes


class Adjacency(NamedTuple):
    """A graph as the plain dicts a networkx DiGraph keeps inside: each node's attributes,
    and each node's successors and predecessors with the edges' attributes (one dict per
    edge, shared by both sides), every mapping in the order things were added."""

    nodes: Mapping[Any, dict[str, Any]]
    succ: Mapping[Any, Mapping[Any, dict[str, Any]]]
    pred: Mapping[Any, Mapping[Any, dict[str, Any]]]


def adjacency(nodes: Iterable[tuple[Any, dict[str, Any]]],
              edges: Iterable[tuple[Any, Any, dict[str, Any]]]) -> Adjacency:
    """What `nx.DiGraph` keeps of `nodes`, then `edges`, added in this order (its
    `add_nodes_from` then `add_edges_from`), without building the graph: a node or edge
    added again keeps its first place and takes the later attributes over the earlier,
    and an edge's unknown end becomes a node without attributes. The store writes an
    assessment's provenance from this (`encode_adjacency`); `why` and the other readers
    build the networkx graph from the stored record (`decode`).

    >>> a = adjacency([("x", {"k": 1}), ("x", {"j": 2})], [("x", "y", {"r": 0})])
    >>> a.nodes
    {'x': {'k': 1, 'j': 2}, 'y': {}}
    >>> a.succ, a.pred
    ({'x': {'y': {'r': 0}}, 'y': {}}, {'x': {}, 'y': {'x': {'r': 0}}})
    """
    given = list(nodes)
    attrs: dict[Any, dict[str, Any]] = dict(given)
    if len(attrs) < len(given):  # a node given again: its attributes merged, in order
        attrs = {}
        for node, data in given:
            attrs[node] = {**attrs[node], **data} if node in attrs else data
    succ: dict[Any, dict[Any, dict[str, Any]]] = {node: {} for node in attrs}
    pred: dict[Any, dict[Any, dict[str, Any]]] = {node: {} for node in attrs}
    for u, v, data in edges:
        if u not in attrs or v not in attrs:
            for end in (u, v):
                if end not in attrs:
                    attrs[end] = {}
                    succ[end] = {}
                    pred[end] = {}
        out = succ[u]
        before = out.get(v)
        if before is not None:
            data = {**before, **data}
        out[v] = pred[v][u] = data
    return Adjacency(attrs, succ, pred)


def encode(graph: nx.DiGraph) -> bytes:
    """The graph in its stored form."""
    return pack(table(graph))


def encode_adjacency(graph: Adjacency) -> bytes:
    """`encode` of the networkx graph with this adjacency, the same bytes, without
    building it."""
    return pack(_table(graph))


def encode_elements(nodes: Sequence[Node], edges: Sequence[Edge]) -> bytes:
    """`encode_adjacency(adjacency(nodes, edges))`, the same bytes (how an assessment's
    provenance is stored: provenance.record_of). When no node and no edge is given twice
    and every edge's ends are among the nodes, as in an assessment's `elements`, the
    graph's order is read off the two lists without building the adjacency's dicts."""
    order = _plain_order(nodes, edges)
    if order is None:
        return encode_adjacency(adjacency(nodes, edges))
    return pack(_rows(nodes, order))


def table(graph: nx.DiGraph) -> bytes:
    """The graph as the node table and edges by index that `encode` compresses (what
    the dictionary is trained on)."""
    return _table(Adjacency(graph.nodes, graph.succ, graph.pred))


def _table(graph: Adjacency) -> bytes:
    return _rows(graph.nodes.items(), _insertion_order(graph))


def _rows(nodes: Iterable[Node], edges: Iterable[Edge]) -> bytes:
    """The node table and edges by index of these nodes and these edges, in this order
    (the edges in `_insertion_order`'s)."""
    strings: dict[str, int] = {}  # each string once, by position in the table
    shapes: dict[tuple[str, ...], int] = {}  # each attributes' key set once
    text = strings.setdefault  # text(s, len(strings)): the position of s, added if new
    shape = shapes.setdefault
    find = strings.get

    def fill(row: list[Any], attrs: dict[str, Any]) -> list[Any]:
        """`row` with `attrs`' values: a string by position, anything else in a list (as
        `text` does, without len() for a string seen before)."""
        add = row.append
        for x in attrs.values():
            if isinstance(x, str):
                at = find(x)
                if at is None:
                    at = strings[x] = len(strings)
                add(at)
            else:
                add([x])
        return row

    position: dict[Any, int] = {}
    rows = []
    for node, attrs in nodes:
        position[node] = len(position)
        rows.append(fill([text(node, len(strings)) if isinstance(node, str) else [node],
                           shape(tuple(attrs), len(shapes))], attrs))
    links = [fill([position[u], position[v], shape(tuple(attrs), len(shapes))], attrs)
             for u, v, attrs in edges]
    # the key sets' strings are added last, before the string table is complete
    key_sets = [[text(k, len(strings)) for k in keys] for keys in shapes]
    return orjson.dumps([list(strings), key_sets, rows, links])


def insertion_order(graph: nx.DiGraph) -> list[tuple[Any, Any, dict[str, Any]]]:
    """The edges in an order that, added to a graph with the same nodes, gives every node
    its successors and its predecessors in the order `graph` has them (the order of
    `graph.edges` gives the successors' only; why and why-not read predecessors too).
    The order the edges were first added is one such order, so one exists: the first
    (by `graph.edges`) found by a topological sort of the two orders' constraints.

    >>> import networkx as nx
    >>> g = nx.DiGraph([("b", "c"), ("a", "c")])
    >>> [(u, v) for u, v, _ in insertion_order(g)]
    [('b', 'c'), ('a', 'c')]
    """
    return _insertion_order(Adjacency(graph.nodes, graph.succ, graph.pred))


def _insertion_order(graph: Adjacency) -> list[tuple[Any, Any, dict[str, Any]]]:
    # Each edge waits for at most two others: the edge before it among its source's
    # successors (in `graph.edges` order, the one just before it) and the one before it
    # among its target's predecessors.
    edges: list[tuple[Any, Any, dict[str, Any]]] = []  # in the order of graph.edges
    index: dict[tuple[Any, Any], int] = {}
    waiting: list[int] = []  # how many edges each edge waits for
    for u, others in graph.succ.items():  # a node's successors, in order
        first = True
        for v, data in others.items():
            index[u, v] = len(edges)
            edges.append((u, v, data))
            waiting.append(0 if first else 1)
            first = False
    follows = [bool(n) for n in waiting]  # whether an edge waits for the one before it
    next_in: list[int] = [-1] * len(edges)  # the next edge into the same target, if any
    for node, others in graph.pred.items():  # a node's predecessors, in order
        if len(others) > 1:
            before = -1
            for other in others:
                i = index[other, node]
                if before >= 0:
                    next_in[before] = i
                    waiting[i] += 1
                before = i
    return [edges[i] for i in _first_order(follows, waiting, next_in)]


def _plain_order(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[Edge] | None:
    """`_insertion_order(adjacency(nodes, edges))` read off the two lists, or None when
    a node or an edge is given twice or an edge has an end that is not a node (then
    the adjacency merges or adds something, and decides). A graph's edges (in
    `graph.edges` order) are these edges by their source's place, then as given; a
    node's predecessors are the sources of its edges as given."""
    at = dict(zip([node for node, _ in nodes], range(len(nodes)), strict=True))
    if len(at) < len(nodes):
        return None
    try:
        sources = [at[u] for u, _, _ in edges]
        targets = [at[v] for _, v, _ in edges]
    except KeyError:
        return None
    if len(set(zip(sources, targets, strict=True))) < len(edges):
        return None
    by_source = sorted(range(len(edges)), key=sources.__getitem__)  # graph.edges order
    waiting = [0] * len(edges)
    rank = [0] * len(edges)  # each given edge's place in graph.edges order
    previous = -1
    for place, i in enumerate(by_source):
        rank[i] = place
        if sources[i] == previous:  # after the one before it among its source's edges
            waiting[place] = 1
        previous = sources[i]
    follows = [bool(n) for n in waiting]
    next_in = [-1] * len(edges)
    last_into: dict[int, int] = {}  # each target's latest edge so far, by place
    for i, target in enumerate(targets):
        place = rank[i]
        before = last_into.get(target)
        if before is not None:
            next_in[before] = place
            waiting[place] += 1
        last_into[target] = place
    return [edges[by_source[place]] for place in _first_order(follows, waiting, next_in)]


def _first_order(follows: list[bool], waiting: list[int], next_in: list[int]) -> list[int]:
    """The first topological order (by place) of edges numbered in `graph.edges` order,
    where an edge that `follows` waits for the one just before it (its source's
    previous successor) and an edge waits for its target's previous predecessor
    (`next_in` chains those); `waiting` counts both, and is used up. Of the edges
    ready, the first goes next; the one just after it, when that becomes ready and
    comes before every other ready edge, goes at once, without the heap."""
    count = len(waiting)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    pop, push = heapq.heappop, heapq.heappush
    order = []
    while ready:
        i = pop(ready)
        while True:
            order.append(i)
            then = next_in[i]
            if then >= 0:
                waiting[then] -= 1
                if not waiting[then]:
                    push(ready, then)
            then = i + 1
            if then < count and follows[then]:
                waiting[then] -= 1
                if not waiting[then]:
                    if not ready or then < ready[0]:
                        i = then
                        continue
                    push(ready, then)
            break
    return order


def decode(blob: bytes) -> nx.DiGraph:
    """A graph stored by `encode` (or, before revision 0008, by `encode_legacy`)."""
    import networkx as nx

    nodes, edges = decode_elements(blob)
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def decode_adjacency(blob: bytes) -> Adjacency:
    """What `decode` gives of a stored graph, as the mappings a networkx DiGraph keeps
    (equal to `adjacency` of the same nodes and edges, in the same order): what
    knowledge_graph.reading and explain read, without building the graph. Each node's
    attributes, successors and predecessors are decoded when first read
    (`StoredGraph`): an explanation reads a conclusion and what it rests on, a sixth of
    the nodes or less, and decoding the rest cost more than all else `why` does."""
    if blob[:1] and blob[0] == LEGACY_FIRST_BYTE:
        return adjacency(*_decode_legacy(blob))
    graph = StoredGraph(*orjson.loads(unpack(blob)))
    return Adjacency(_Lazy(graph.index, graph.node),
                     _Lazy(graph.index, graph.successors),
                     _Lazy(graph.index, graph.predecessors))


class StoredGraph:
    """A stored graph's tables (`_table`: strings, key sets, nodes, edges by index),
    read on demand: a node's attributes, successors or predecessors are decoded from
    its rows when asked for, and each edge's attributes once, one dict shared by both
    its ends as in a networkx graph."""

    def __init__(self, strings: list[str], shapes: list[list[int]], nodes: list[list[Any]],
                 edges: list[list[Any]]) -> None:
        self.strings = strings
        self.keys = [[strings[k] for k in shape] for shape in shapes]
        self.rows = nodes
        self.edges = edges
        self.ids = [strings[row[0]] if type(row[0]) is int else row[0][0] for row in nodes]
        self.index = {node: i for i, node in enumerate(self.ids)}
        self._edge_attrs: dict[int, dict[str, Any]] = {}
        self._out: list[list[int]] | None = None
        self._into: list[list[int]] | None = None

    def _ends(self, end: int) -> list[list[int]]:
        """Each node's edges (positions in `edges`) whose end `end` (0: source, 1:
        target) it is, in the stored order, which gives every node its successors and
        predecessors back in order; found once, when first needed."""
        by_node: list[list[int]] = [[] for _ in self.rows]
        for i, edge in enumerate(self.edges):
            by_node[edge[end]].append(i)
        return by_node

    def _attrs(self, row: list[Any], first: int, shape: int) -> dict[str, Any]:
        """The attributes of a node or edge row: a string by its position in the table,
        any other value in a list of one."""
        strings = self.strings
        return dict(zip(self.keys[shape], [strings[x] if type(x) is int else x[0]
                                           for x in row[first:]], strict=True))

    def node(self, i: int) -> dict[str, Any]:
        """The attributes of the node at position `i`."""
        row = self.rows[i]
        return self._attrs(row, 2, row[1])

    def edge(self, i: int) -> dict[str, Any]:
        """The attributes of the edge at position `i` (the same dict every time)."""
        found = self._edge_attrs.get(i)
        if found is None:
            row = self.edges[i]
            found = self._edge_attrs[i] = self._attrs(row, 3, row[2])
        return found

    def successors(self, i: int) -> dict[Any, dict[str, Any]]:
        """The successors of the node at position `i`, with the edges' attributes."""
        if self._out is None:
            self._out = self._ends(0)
        ids, edges = self.ids, self.edges
        return {ids[edges[e][1]]: self.edge(e) for e in self._out[i]}

    def predecessors(self, i: int) -> dict[Any, dict[str, Any]]:
        """The predecessors of the node at position `i`, with the edges' attributes."""
        if self._into is None:
            self._into = self._ends(1)
        ids, edges = self.ids, self.edges
        return {ids[edges[e][0]]: self.edge(e) for e in self._into[i]}


class _Lazy(Mapping[Any, dict[Any, Any]]):
    """A mapping of a stored graph's nodes, in order, to what `make` decodes for a
    node's position, made on first access and kept (a later access gives the same
    dict). Iterating, `len` and `in` decode nothing; `items()` and `values()` decode
    every node, as they must."""

    __slots__ = ("_index", "_made", "_make")

    def __init__(self, index: dict[Any, int], make: Callable[[int], dict[Any, Any]]) -> None:
        self._index = index
        self._make = make
        self._made: list[dict[Any, Any] | None] = [None] * len(index)

    def __getitem__(self, node: Any) -> dict[Any, Any]:
        i = self._index[node]
        made = self._made[i]
        if made is None:
            made = self._made[i] = self._make(i)
        return made

    def __iter__(self) -> Iterator[Any]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, node: object) -> bool:
        return node in self._index


def decode_elements(blob: bytes) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges of a stored graph, with their attributes, in the order that
    gives back its nodes and each node's successors and predecessors in the stored
    graph's order (`decode` adds them to a DiGraph in this order)."""
    if blob[:1] and blob[0] == LEGACY_FIRST_BYTE:
        return _decode_legacy(blob)
    graph = StoredGraph(*orjson.loads(unpack(blob)))
    ids, attrs = graph.ids, graph._attrs
    return ([(ids[i], attrs(node, 2, node[1])) for i, node in enumerate(graph.rows)],
            [(ids[edge[0]], ids[edge[1]], attrs(edge, 3, edge[2])) for edge in graph.edges])


def encode_legacy(graph: nx.DiGraph) -> bytes:
    """The graph as stored before revision 0008 (zlib'd JSON): for downgrading."""
    data = {"nodes": [[n, a] for n, a in graph.nodes(data=True)],
            "edges": [[u, v, a] for u, v, a in graph.edges(data=True)]}
    return zlib.compress(orjson.dumps(data), 3)


def _decode_legacy(blob: bytes) -> tuple[list[Node], list[Edge]]:
    data = orjson.loads(zlib.decompress(blob))
    return ([(n, a) for n, a in data["nodes"]], [(u, v, a) for u, v, a in data["edges"]])
