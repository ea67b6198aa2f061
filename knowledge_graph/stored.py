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
successors and predecessors, in the same order too).

The first byte says the format: FORMAT for this one; a record stored before revision
0008 is zlib'd JSON (its first byte 0x78), which `decode` still reads. The dictionary is
part of the format: a new one would be a new format byte, the old one kept to read old
records.
"""

from __future__ import annotations

import heapq
import threading
import zlib
from functools import cache
from importlib.resources import files
from itertools import pairwise
from typing import Any

import networkx as nx
import orjson
import zstandard

FORMAT = b"\x01"  # node table + edges by index, zstd with derivation.zdict
LEGACY_FIRST_BYTE = 0x78  # zlib's header: orjson of {"nodes": ..., "edges": ...}
LEVEL = 9  # zstd level: ~0.2 ms a graph, 0.4 KiB smaller than level 6, 1.1 KiB than 3


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
            level=LEVEL, dict_data=dictionary(), write_content_size=True, write_checksum=False)
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


def encode(graph: nx.DiGraph) -> bytes:
    """The graph in its stored form."""
    return pack(table(graph))


def table(graph: nx.DiGraph) -> bytes:
    """The graph as the node table and edges by index that `encode` compresses (what
    the dictionary is trained on)."""
    strings: dict[str, int] = {}
    shapes: dict[tuple[str, ...], int] = {}

    def text(value: str) -> int:
        found = strings.get(value)
        if found is None:
            found = strings[value] = len(strings)
        return found

    def shape(attrs: dict[str, Any]) -> int:
        keys = tuple(attrs)
        found = shapes.get(keys)
        if found is None:
            found = shapes[keys] = len(shapes)
        return found

    def value(item: Any) -> Any:  # a string by position, anything else in a list
        return text(item) if isinstance(item, str) else [item]

    position: dict[Any, int] = {}
    nodes = []
    for node, attrs in graph.nodes(data=True):
        position[node] = len(position)
        nodes.append([value(node), shape(attrs), *map(value, attrs.values())])
    edges = [[position[u], position[v], shape(attrs), *map(value, attrs.values())]
             for u, v, attrs in insertion_order(graph)]
    key_sets = [list(map(text, keys)) for keys in shapes]  # before the table is complete
    return orjson.dumps([list(strings), key_sets, nodes, edges])


def insertion_order(graph: nx.DiGraph) -> list[tuple[Any, Any, dict[str, Any]]]:
    """The edges in an order that, added to a graph with the same nodes, gives every node
    its successors and its predecessors in the order `graph` has them (the order of
    `graph.edges` gives the successors' only; why and why-not read predecessors too).
    The order the edges were first added is one such order, so one exists: the first
    (by `graph.edges`) found by a topological sort of the two orders' constraints.

    >>> g = nx.DiGraph([("b", "c"), ("a", "c")])
    >>> [(u, v) for u, v, _ in insertion_order(g)]
    [('b', 'c'), ('a', 'c')]
    """
    edges = list(graph.edges(data=True))
    index = {(u, v): i for i, (u, v, _) in enumerate(edges)}
    after: list[list[int]] = [[] for _ in edges]
    waiting = [0] * len(edges)
    for adjacency in (graph.succ, graph.pred):
        for node, others in adjacency.items():
            chain = [index[(node, o) if adjacency is graph.succ else (o, node)]
                     for o in others]
            for first, then in pairwise(chain):
                after[first].append(then)
                waiting[then] += 1
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(edges[i])
        for then in after[i]:
            waiting[then] -= 1
            if not waiting[then]:
                heapq.heappush(ready, then)
    return order


def decode(blob: bytes) -> nx.DiGraph:
    """A graph stored by `encode` (or, before revision 0008, by `encode_legacy`)."""
    if blob[:1] and blob[0] == LEGACY_FIRST_BYTE:
        return _decode_legacy(blob)
    strings, shapes, nodes, edges = orjson.loads(unpack(blob))
    keys = [[strings[k] for k in shape] for shape in shapes]

    def value(item: Any) -> Any:
        return strings[item] if isinstance(item, int) else item[0]

    ids = [value(node[0]) for node in nodes]
    graph = nx.DiGraph()
    graph.add_nodes_from(
        (ids[i], {k: value(v) for k, v in zip(keys[node[1]], node[2:], strict=True)})
        for i, node in enumerate(nodes))
    graph.add_edges_from(
        (ids[edge[0]], ids[edge[1]],
         {k: value(v) for k, v in zip(keys[edge[2]], edge[3:], strict=True)})
        for edge in edges)
    return graph


def encode_legacy(graph: nx.DiGraph) -> bytes:
    """The graph as stored before revision 0008 (zlib'd JSON): for downgrading."""
    data = {"nodes": [[n, a] for n, a in graph.nodes(data=True)],
            "edges": [[u, v, a] for u, v, a in graph.edges(data=True)]}
    return zlib.compress(orjson.dumps(data), 3)


def _decode_legacy(blob: bytes) -> nx.DiGraph:
    data = orjson.loads(zlib.decompress(blob))
    graph = nx.DiGraph()
    graph.add_nodes_from((n, a) for n, a in data["nodes"])
    graph.add_edges_from((u, v, a) for u, v, a in data["edges"])
    return graph
