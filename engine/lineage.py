"""Lineage: how the models of a portfolio reference each other, and what follows from it.

A model document names earlier models in two fields: `model.predecessor` (the model it
was derived from or succeeds) and `model.last_comprehensive_assessment.model` (the model
whose determination and compute it carries over). This module is the one place that
reads those references across documents:

- `Lineage` builds the graph once (an edge from each model to every portfolio model it
  references) and answers the questions every command asks of it: the order to assess
  in (`generations`: a model after each model it references, ties by id), the models on
  a cycle (`cycles`, each with the one cycle message `reference cycle: a -> b -> a`),
  and what carries over from a model (`downstream`, along carried-over references only);
- `Gate` walks a portfolio in that order and stops each model that references a model
  of the same portfolio that could not be assessed (rejected when loaded, on a cycle,
  failed, or stopped itself), with one line naming that model and why: carrying on as
  if the reference lay outside the portfolio would drop the determination it carries
  over (evidence-format.md, "Errors are part of the contract").

The loader (`engine.evidence`), the front door (`engine.api`), what-if and the batch
runner all use these; none builds its own graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from engine.errors import InputError, within

if TYPE_CHECKING:
    from engine.evidence_schema import ModelInfo

PREDECESSOR = "model.predecessor"
CARRIED = "model.last_comprehensive_assessment.model"
NOT_ASSESSED = "which could not be assessed"


@dataclass(frozen=True, slots=True)
class Links:
    """One model document's references, and where the document is (for its errors)."""

    model: str
    predecessor: str | None = None
    carried: str | None = None  # last_comprehensive_assessment.model
    file: str = ""
    where: str = ""

    @classmethod
    def of(cls, info: ModelInfo, file: str = "", where: str = "") -> Links:
        """The links of a validated document's `model` mapping."""
        lca = info.last_comprehensive_assessment
        return cls(info.id, info.predecessor, lca.model if lca is not None else None,
                   file, where)

    def references(self) -> Iterator[tuple[str, str]]:
        """(field, model) for each reference, `predecessor` first."""
        if self.predecessor is not None:
            yield PREDECESSOR, self.predecessor
        if self.carried is not None:
            yield CARRIED, self.carried

    def error(self, field: str, message: str) -> InputError:
        """An error about this document's `field` (a path such as PREDECESSOR)."""
        return InputError(self.file, within(self.where, field), message, self.model)


class Lineage:
    """The reference graph of a set of models: an edge from each model to every model of
    the set it references (the field of the first reference is the edge's `field`).

    A portfolio without cycles (the usual case, and every batch's: the loader rejects the
    models on a cycle) is ordered by peeling models whose references are all placed, on
    plain dicts of ids; the networkx graph (`graph`) is built only when a cycle needs
    finding or `downstream` is asked, since for 100,000 models it would hold about a
    hundred megabytes for the whole of a batch.

    `links` are the models' links, or a mapping of them by model id, used as it is (a
    batch's spool, which holds them as columns and builds each when asked)."""

    def __init__(self, links: Iterable[Links] | Mapping[str, Links]) -> None:
        self.links: Mapping[str, Links]
        if isinstance(links, Mapping):
            self.links = links
        else:
            self.links = by_model = {}
            for item in links:
                by_model.setdefault(item.model, item)
        self._graph: nx.DiGraph | None = None

    @property
    def graph(self) -> nx.DiGraph:
        """The reference graph as networkx, built on first use."""
        if self._graph is None:
            graph = nx.DiGraph()
            graph.add_nodes_from(self.links)
            for item in self.links.values():
                for field, target in item.references():
                    if target in self.links and not graph.has_edge(item.model, target):
                        graph.add_edge(item.model, target, field=field)
            self._graph = graph
        return self._graph

    def _peeled(self) -> tuple[list[list[str]], int]:
        """Generations of the models not on or after a cycle (each sorted: a model after
        every model of the set it references), and how many models are left over (on a
        cycle, or referencing one). With none left over these are `generations`."""
        links = self.links
        waiting: dict[str, int] = {}
        after: dict[str, list[str]] = {}  # model -> the models referencing it
        ready = []
        for model, item in links.items():
            targets = {target for _, target in item.references() if target in links}
            for target in targets:
                after.setdefault(target, []).append(model)
            if targets:
                waiting[model] = len(targets)
            else:
                ready.append(model)
        found = []
        while ready:
            ready.sort()
            found.append(ready)
            following = []
            for model in ready:
                for later in after.pop(model, ()):
                    waiting[later] -= 1
                    if not waiting[later]:
                        del waiting[later]
                        following.append(later)
            ready = following
        return found, len(waiting)

    def generations(self) -> list[list[str]]:
        """Model ids in generations, each sorted: every model comes in a generation after
        each model it references. Models on one cycle share a generation (they cannot be
        assessed; see `cycles`), so the order exists whatever the input."""
        found, left = self._peeled()
        if not left:
            return found
        del found
        condensed = nx.condensation(self.graph)
        members = condensed.graph["mapping"]
        groups: dict[int, list[str]] = {}
        for model, group in members.items():
            groups.setdefault(group, []).append(model)
        return [sorted(m for group in generation for m in groups[group])
                for generation in nx.topological_generations(condensed.reverse(copy=False))]

    def order(self) -> list[str]:
        """Every model id, each after the models it references (`generations`, flat)."""
        return [model for generation in self.generations() for model in generation]

    def downstream(self, models: Iterable[str]) -> set[str]:
        """The models that carry over, directly or through others, a determination from
        any of `models` (`last_comprehensive_assessment` references only), those included."""
        carried = nx.DiGraph((target, model) for model, target in self.graph.edges
                             if self.links[model].carried == target)
        found = set(models)
        for model in list(found):
            if model in carried:
                found |= nx.descendants(carried, model)
        return found

    def cycles(self) -> list[tuple[Links, str, str]]:
        """(links, field, message) for each model on a cycle of references, by model id:
        the field of its reference along the shortest cycle back to it, and that cycle
        (`reference cycle: a -> b -> a`; a model naming itself is `a -> a`)."""
        if not self._peeled()[1]:
            return []
        found = []
        for component in nx.strongly_connected_components(self.graph):
            within_cycle = self.graph.subgraph(component)
            for node in sorted(component):
                back = [nx.shortest_path(within_cycle, after, node)
                        for after in within_cycle.successors(node)]
                if back:  # a lone model is on a cycle only if it names itself
                    cycle = [node, *min(back, key=lambda path: (len(path), path))]
                    field = self.graph.edges[node, cycle[1]]["field"]
                    found.append((self.links[node], field,
                                  f"reference cycle: {' -> '.join(cycle)}"))
        return sorted(found, key=lambda found: found[0].model)


@dataclass(frozen=True)
class _Unassessable:
    """Why a model could not be assessed: its first problem, or the model it references
    that could not be assessed (`via`)."""

    problem: InputError | None = None
    via: str | None = None

    def reason(self, seen_from: str) -> str:
        if self.via is not None:
            return f"it references {self.via!r}, {NOT_ASSESSED}"
        problem = self.problem
        assert problem is not None
        shown = str(problem) if problem.file != seen_from else (
            f"{problem.path}: {problem.message}" if problem.path else problem.message)
        return shown


class Gate:
    """Walks a portfolio in lineage order and stops every model that references a model of
    the portfolio that could not be assessed, transitively.

    `rejected` are the input's problems: those naming a model (`InputError.model`) that
    is not among `links` make it a model of the portfolio that could not be assessed
    (a document rejected when loaded). Models on a cycle of references are stopped with
    the cycle's message. The walker asks `stop` for each model in `order()` and reports
    an assessment that failed with `failed`.
    """

    def __init__(self, links: Iterable[Links] | Mapping[str, Links],
                 rejected: Iterable[InputError] = ()) -> None:
        self.lineage = Lineage(links)
        self._unassessable: dict[str, _Unassessable] = {}
        for problem in sorted(rejected):
            if problem.model is not None and problem.model not in self.lineage.links:
                self._unassessable.setdefault(problem.model, _Unassessable(problem))
        self._cycles = {links.model: links.error(field, message)
                        for links, field, message in self.lineage.cycles()}

    def order(self) -> list[str]:
        """The models to walk, each after those it references."""
        return self.lineage.order()

    def generations(self) -> list[list[str]]:
        """The models to walk in generations (see `Lineage.generations`)."""
        return self.lineage.generations()

    def stopped(self, model: str) -> bool:
        """Whether `model` is known to be one that could not be assessed."""
        return model in self._unassessable

    def outside(self) -> set[str]:
        """The models that are carried over from but are not in the portfolio, and were
        not rejected from it: what an external record may supply (`ReferenceInfo`)."""
        links = self.lineage.links
        return {item.carried for item in links.values() if item.carried is not None
                and item.carried not in links and item.carried not in self._unassessable}

    def stop(self, model: str) -> InputError | None:
        """The error that stops `model`, or None when it may be assessed: it is on a
        cycle, or its `last_comprehensive_assessment` (checked first, being what is
        carried over) or `predecessor` names a model that could not be assessed."""
        links = self.lineage.links[model]
        problem = self._cycles.get(model)
        if problem is not None:
            self._unassessable[model] = _Unassessable(problem)
            return problem
        for field, target in sorted(links.references(), key=lambda ref: ref[0] != CARRIED):
            why = self._unassessable.get(target)
            if why is not None:
                self._unassessable[model] = _Unassessable(via=target)
                return links.error(field, f"references {target!r}, {NOT_ASSESSED} "
                                          f"({why.reason(links.file)})")
        return None

    def failed(self, problem: InputError) -> None:
        """Record that the model `problem.model` could not be assessed (its assessment
        failed), so that the models referencing it are stopped."""
        if problem.model is not None:
            self._unassessable.setdefault(problem.model, _Unassessable(problem))
