"""Answer "why not this conclusion?" for one assessment: what stands in the way.

A target names a conclusion the analyst expected (`asl=ASL-2`, `decision=proceed`,
`action:safeguards_report=absent`; parsed by `knowledge_graph.whynot_target`). `why_not` returns,
as JSON-ready data:
- `standing`: the conclusions that prevent the target, each with the rules that derived
  it (a few levels), the evidence it rests on (`roots` of the provenance graph) and its
  full `why_tree`. They are the conclusion reached instead (`asl` ASL-3 for `asl=ASL-2`),
  the facts blocking a negated condition of a rule that would conclude the target (the
  `required` standards above ASL-2), and, for an `=absent` target, the facts present;
- for each evidence fact there: the tests it passed in the rules that read it, and its
  *alternatives*, the rules that would have read it into a different conclusion, with
  the test that failed (`score is 0.64, needs < warning_score 0.5`);
- `rules`: each rule whose `then` could conclude the target, diagnosed by
  `engine.diagnose_want` (its best partial matches and each failed test), going down to the
  rules for a derived fact a failed condition needed.
Everything comes from the engine's record (the derivation and its provenance graph) and
the rules as data; nothing here restates the policy.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.assess import Assessment
from engine.diagnose import (
    BLOCKED,
    FAILED_TEST,
    MAX_DEPTH,
    NEGATED_OP,
    NO_FACT,
    Added,
    ConditionFailure,
    Extra,
    Inconsistency,
    PartialMatch,
    RuleDiagnosis,
    Want,
    WantDiagnosis,
    firing_outcomes,
    match_rule,
    satisfies,
)
from engine.diagnose_want import diagnose
from engine.evaluator import Derivation, Fact, Firing
from engine.facts_id import render_value
from engine.model import OPERATOR_TEXT, Condition, Operand, Pack, Rule, Test
from engine.ruletext import condition_text, operand_text, test_text
from knowledge_graph.explain import why_tree
from knowledge_graph.provenance import (
    CONCLUSION,
    DEFAULT,
    EVIDENCE,
    matched,
    roots,
    supports,
)
from knowledge_graph.whynot_target import Target
from knowledge_graph.whynot_target import TargetError as TargetError
from knowledge_graph.whynot_target import parse_target as parse_target
from knowledge_graph.whynot_target import target_forms as target_forms

CHAIN_DEPTH = 3  # levels of rule firings shown under a conclusion standing in the way

def why_not(assessment: Assessment, target: Target, graph: nx.DiGraph,
            max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The whole answer for one assessment and target, as plain data (see the module)."""
    pack, derivation = assessment.pack, assessment.derivation
    view = _View(pack, derivation, graph)
    want = target.want
    present = [f for f in derivation.of_kind(want.kind) if satisfies(want, f, pack.kinds)]
    holds = not present if target.absent else bool(present)
    report: dict[str, Any] = {"model": assessment.model, "target": target.text,
                              "wanted": ("no " if target.absent else "") + want.text(),
                              "holds": holds, "present": [f.id for f in present],
                              "standing": [], "rules": [], "never": [],
                              "inconsistencies": []}
    if holds:
        return report
    if target.absent:
        for fact in present:
            view.stand(fact.id, "concluded")
    else:
        key = Want(want.kind, tuple(t for t in want.tests if t.field in want.key))
        for fact in derivation.of_kind(want.kind):
            if satisfies(key, fact, pack.kinds):
                view.stand(fact.id, "instead")
        tree = diagnose(pack, derivation, want, max_depth=max_depth)
        for rule in tree.rules:
            for partial in rule.best:
                for failure in partial.failures:
                    if failure.reason == BLOCKED and failure.fact is not None:
                        view.stand(failure.fact, "blocks", rule.rule.id)
        data = view.want_data(tree)
        report["rules"], report["never"] = data["rules"], data["never"]
    report["standing"] = list(view.standing.values())
    report["inconsistencies"] = [
        {"rule": i.rule, "binding": [list(b) for b in i.binding], "message": i.message}
        for i in sorted(set(view.inconsistencies), key=lambda i: (i.rule, i.binding))]
    return report


class _View:
    """Builds the report's parts for one assessment, collecting every inconsistency."""

    def __init__(self, pack: Pack, derivation: Derivation, graph: nx.DiGraph) -> None:
        self.pack, self.derivation, self.graph = pack, derivation, graph
        self.pack_fact_ids = {f.id for f in pack.facts}
        self.standing: dict[str, dict[str, Any]] = {}
        self.inconsistencies: list[Inconsistency] = []

    def label(self, fact_id: str) -> str:
        fact = self.derivation.facts.get(fact_id)
        return str(fact.info.get("display_id", fact_id)) if fact else fact_id

    def stand(self, fact_id: str, role: str, rule: str | None = None) -> None:
        """Add a conclusion standing in the way (once; `blocks` lists the rules it blocks)."""
        entry = self.standing.get(fact_id)
        if entry is None:
            fact = self.derivation.facts[fact_id]
            entry = {"id": fact_id, "kind": fact.kind, "values": fact.values, "role": role,
                     "blocks": [], "chain": self.chain(fact_id), "evidence": self.evidence(fact_id),
                     "why": why_tree(self.graph, fact_id)}
            self.standing[fact_id] = entry
        if rule is not None and rule not in entry["blocks"]:
            entry["blocks"].append(rule)

    def chain(self, fact_id: str) -> list[dict[str, Any]]:
        """The firings behind a conclusion, depth first, CHAIN_DEPTH levels deep."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()

        def walk(node: str, depth: int) -> None:
            for firing in supports(self.graph, node):
                data = self.graph.nodes[firing]
                deeper = [f for f in matched(self.graph, firing)
                          if self.graph.nodes[f]["node"] == CONCLUSION]
                out.append({"depth": depth, "conclusion": node, "rule": data["rule"],
                            "title": data["title"], "cite": data["cite"], "pack": data["pack"],
                            "because": data["because"], "more": bool(deeper) and (
                                depth >= CHAIN_DEPTH or firing in seen)})
                if firing in seen or depth >= CHAIN_DEPTH:
                    continue
                seen.add(firing)
                for fact in deeper:
                    walk(fact, depth + 1)

        walk(fact_id, 1)
        return out

    def evidence(self, fact_id: str) -> list[dict[str, Any]]:
        """The evidence a conclusion rests on (pack catalogue facts left out), each with
        the tests it passed in the rules that read it and its alternatives."""
        graph = self.graph
        above = nx.ancestors(graph, fact_id)
        out = []
        for root in sorted(roots(graph, fact_id)):
            data = graph.nodes[root]
            if data["node"] == DEFAULT and root in self.pack_fact_ids:
                continue
            fact = self.derivation.facts[root]
            entry: dict[str, Any] = {
                "id": root, "label": data.get("label", root), "kind": fact.kind,
                "values": fact.values, "entry": fact.info.get("entry"),
                "listed": data["node"] == EVIDENCE, "read_by": [], "alternatives": []}
            tried: set[str] = set()
            for firing_id in sorted(s for s in graph.successors(root) if s in above):
                firing = self.derivation.firings[firing_id]
                held = [_outcome_data(o.test, o.actual, o.required, True)
                        for _, fid, o in firing_outcomes(firing, self.pack.kinds) if fid == root]
                entry["read_by"].append({"rule": firing.rule.id, "held": held})
                for rule, extra in alternatives(self.pack, firing, fact):
                    if rule.id in tried or fired_with(rule, self.derivation, root):
                        continue
                    tried.add(rule.id)
                    diagnosis = match_rule(rule, self.derivation, self.pack.kinds, extra)
                    entry["alternatives"].append(self.rule_data(diagnosis))
            out.append(entry)
        return out

    def want_data(self, tree: WantDiagnosis) -> dict[str, Any]:
        return {"wanted": tree.want.text(), "kind": tree.want.kind, "depth": tree.depth,
                "present": list(tree.present), "repeated": tree.repeated,
                "rules": [self.rule_data(r) for r in tree.rules],
                "never": [{"rule": r.id, "title": r.title, "cite": r.cite, "reason": why}
                          for r, why in tree.never]}

    def rule_data(self, diagnosis: RuleDiagnosis) -> dict[str, Any]:
        """One rule's diagnosis: its best partial matches, each failure in words."""
        rule = diagnosis.rule
        self.inconsistencies.extend(diagnosis.inconsistencies)
        for binding in diagnosis.full:
            self.inconsistencies.append(Inconsistency(
                rule.id, binding, "matches every condition and the wanted conclusion, "
                "yet the conclusion is absent"))
        return {
            "rule": rule.id, "title": rule.title, "cite": rule.cite, "pack": rule.pack,
            "file": rule.file, "line": rule.line,
            "concludes": self.concludes(diagnosis),
            "conditions": len(rule.conditions),
            "target_tests": [{"condition": a.condition, "key": a.key,
                              "name": rule.conditions[a.condition].name,
                              "of": rule.conditions[a.condition].kind,
                              "test": test_text(a.test)} for a in diagnosis.extra],
            "partial_matches": [self.partial_data(rule, p) for p in diagnosis.best],
            "omitted": diagnosis.omitted, "truncated": diagnosis.truncated,
            "below": [self.want_data(w) for w in diagnosis.below]}

    def concludes(self, diagnosis: RuleDiagnosis) -> list[str]:
        """A rule's conclusions in words, a value taken from a matched fact shown as that
        fact's value when the diagnosis binds it (`capability=CBRN-3`), else named by
        where it comes from (`capability=the evaluation's capability`): never a raw
        binding such as `e.capability`."""
        rule, facts = diagnosis.rule, self.derivation.facts
        bound: dict[str, Fact] = {}
        for added in diagnosis.extra:  # an alternative reading: `id ==` the fact read
            test = added.test
            if test.field == "id" and test.op == "eq" and test.operand.constant in facts:
                bound[rule.conditions[added.condition].name] = facts[test.operand.constant]
        for name, fact_id in diagnosis.best[0].binding if diagnosis.best else ():
            bound.setdefault(name, facts[fact_id])
        kinds = {c.name: c.kind for c in rule.conditions}

        def shown(operand: Operand) -> str:
            if operand.ref is None:
                return operand_text(operand)
            name, field = operand.ref
            fact = bound.get(name)
            if fact is not None and fact.values.get(field) is not None:
                return render_value(fact.values[field])
            return f"the {kinds.get(name, name)}'s {field}"

        return [f"{c.kind} " + ", ".join(f"{n}={shown(op)}" for n, op in c.values)
                for c in rule.conclusions]

    def partial_data(self, rule: Rule, partial: PartialMatch) -> dict[str, Any]:
        bound = {name: self.derivation.facts[fid] for name, fid in partial.binding}
        cond = rule.conditions[partial.satisfied]
        return {"binding": [{"name": n, "fact": fid, "label": self.label(fid)}
                            for n, fid in partial.binding],
                "satisfied": partial.satisfied, "condition": partial.satisfied,
                "condition_text": condition_text(cond, bound=bound),
                "failures": [self.failure_data(cond, f, bound) for f in partial.failures]}

    def failure_data(self, cond: Condition, failure: ConditionFailure,
                     bound: dict[str, Fact]) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": failure.reason, "fact": failure.fact,
                               "label": self.label(failure.fact) if failure.fact else None}
        if failure.reason == FAILED_TEST and failure.test is not None:
            out.update(_outcome_data(failure.test, failure.actual, failure.required, False))
            out["gap"] = failure.gap
            out["from_target"] = failure.from_target
            out["text"] += gap_text(out)
        elif failure.reason == NO_FACT:
            out["text"] = f"no {cond.kind} fact" + (" left to match" if bound else " at all")
        else:
            out["text"] = f"{self.label(failure.fact or '')} exists"
        return out


def _operand_text(test: Test, required: Any) -> str:
    """The right side of a test with its value: `warning_score 0.5`, `s.capability CBRN-3`."""
    value = render_value(required) if required is not None else "(unset)"
    if test.operand.field is not None or test.operand.ref is not None:
        return f"{operand_text(test.operand)} {value}"
    if test.op == "in":
        return "[" + ", ".join(render_value(v) for v in test.operand.constant) + "]"
    return value


def _outcome_data(test: Test, actual: Any, required: Any, held: bool) -> dict[str, Any]:
    """A test tried on a fact, as data and in words: for a failed test what it needed
    (`score is 0.64, needs < warning_score 0.5`), for one that held what it would take
    to fail it (`status is partial (!= implemented); it would need == implemented`)."""
    shown = "unset" if actual is None else render_value(actual)
    data = {"field": test.field, "op": test.op, "test": test_text(test), "actual": actual,
            "required": required}
    if test.op == "exists":
        if held:
            text = f"{test.field} is {shown}"
        else:
            text = f"{test.field} is {shown}, needs " + (
                "a value" if test.operand.constant else "to be unset")
        return {**data, "text": text}
    right = _operand_text(test, required)
    if held:
        if test.op in ("eq", "in"):
            other = operand_text(test.operand) if test.op == "eq" else right
            same = ("" if test.op == "eq" and test.operand.constant is not None
                    else f" ({OPERATOR_TEXT[test.op]} {other})")
            return {**data, "text": f"{test.field} is {shown}{same}"}
        undo = NEGATED_OP.get(test.op)
        text = f"{test.field} is {shown} ({OPERATOR_TEXT[test.op]} {right})"
        if undo is not None:
            text += f"; it would need {OPERATOR_TEXT[undo]} {right}"
        return {**data, "text": text}
    need = {"eq": right, "ne": f"anything but {right}", "in": f"one of {right}"}.get(
        test.op, f"{OPERATOR_TEXT[test.op]} {right}")
    return {**data, "text": f"{test.field} is {shown}, needs {need}"}


def gap_text(failure: dict[str, Any]) -> str:
    """` (0.14 too high)` for a failed ordered comparison between numbers, else ``."""
    gap = failure.get("gap")
    if gap is None or failure.get("op") in ("ne", "eq", "in", "exists"):
        return "" if gap is None or failure.get("op") != "eq" else f" (off by {abs(gap):g})"
    if failure["op"] in ("lt", "lte"):
        return f" ({gap:g} too high)" if gap >= 0 else ""
    return f" ({-gap:g} too low)" if gap <= 0 else ""


def alternatives(pack: Pack, firing: Firing, fact: Fact) -> list[tuple[Rule, Extra]]:
    """The other readings of a fact a firing used: rules concluding the same kinds with
    some different constant, from a condition on the fact's kind, each restricted (by an
    extra `id ==` test) to that fact. Diagnosed, they say what the fact would need to be
    for another conclusion (`score 0.64, needs < warning_score 0.5`)."""
    mine = {(c.kind, name, repr(op.constant)) for c in firing.rule.conclusions
            for name, op in c.values if op.ref is None}
    produced = {c.kind for c in firing.rule.conclusions}
    found: list[tuple[Rule, Extra]] = []
    for rule in pack.rules:
        if rule.id == firing.rule.id or not produced & rule.produces:
            continue
        theirs = {(c.kind, name, repr(op.constant)) for c in rule.conclusions
                  for name, op in c.values if op.ref is None and c.kind in produced}
        if not theirs - mine:
            continue
        for index, cond in enumerate(rule.conditions):
            if not cond.negated and cond.kind == fact.kind:
                found.append((rule, (Added(index, Test("id", "eq", Operand(constant=fact.id))),)))
                break
    return found


def fired_with(rule: Rule, derivation: Derivation, fact_id: str) -> bool:
    """Whether `rule` fired with `fact_id` among its matched facts."""
    return any(f.rule.id == rule.id and fact_id in dict(f.matched).values()
               for f in derivation.firings.values())
