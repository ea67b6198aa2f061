"""The lean engine (issue 13 points 1, 2, 7; issue 15 point 4): the provenance built on
demand from a derivation is the graph its trace events give, node for node; results
agree with the plain-Python reading of the spec on a synthetic portfolio; a fact id
durable-rules would confuse with another fails the assessment clearly; and a rule whose
joins explode is stopped by the assessment's budget, named, and warned about by
`asl rules validate`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import plain_eval
import pytest
import synth
from helpers import DATA, EXAMPLES, REPO

from conftest import MINI_PACK, PackWriter
from engine.api import assess
from engine.assess import assess_document, evaluator_for, parse_budget, vocabulary
from engine.durable_adapter import fnv1a_32
from engine.errors import AssessmentError
from engine.evaluator import Budget, Evaluator, Event, Fact
from engine.evidence import parse_document
from engine.join_check import product_joins
from engine.loader import load_pack
from engine.model import ORIGIN_EVIDENCE
from engine.packstack import pack_stack
from knowledge_graph.provenance import build, conclusions, conclusions_of, graph_of

ASL = "import sys; from cli.main import main; sys.argv[0] = 'asl'; main()"
TRIPLE = """\
- id: t.triple
  title: Every ordered triple of x facts
  cite: RSP v2.1 §2
  because: "{p.name}, {q.name}, {r.name}"
  when:
    - {match: x, as: p}
    - {match: x, as: q, where: {name: {ne: {ref: p.name}}}}
    - {match: x, as: r, where: {name: {ne: {ref: q.name}}}}
  then:
    concern: {name: {ref: r.name}}
"""


def _graph_items(graph: nx.DiGraph) -> tuple[list[object], list[object]]:
    return list(graph.nodes(data=True)), list(graph.edges(data=True))


def _runs() -> list[tuple[str, list[object]]]:
    """Every example and test case, with the built-in pack, their overlays and the
    other built-in framework."""
    runs = [("built-in", assess([str(EXAMPLES), str(EXAMPLES / "portfolio" / "lineage.yaml"),
                                 *map(str, sorted(DATA.glob("*.yaml")))]).assessments)]
    for pack in (EXAMPLES / "packs" / "acme-lab", EXAMPLES / "frameworks" / "northwind"):
        runs.append((pack.name, assess([str(pack / "example-model.yaml")],
                                       [str(pack)]).assessments))
    runs.append(("openai-pf-2", assess(list(map(str, sorted((DATA / "openai-pf-2").glob(
        "*.yaml")))), pack_stack((), "openai-pf-2")).assessments))
    return runs


def test_graph_on_demand_is_the_graph_of_the_trace_events() -> None:
    """`graph_of(derivation)` and `conclusions_of(derivation)` give exactly what `build`
    of the derivation's trace events gives: the same nodes, edges and attributes in the
    same order, and the same `conclusions`; a listener hears exactly those events."""
    checked = 0
    for name, assessments in _runs():
        assert assessments, name
        for assessment in assessments:
            derivation = assessment.derivation
            from_events = build(derivation.events)
            assert _graph_items(graph_of(derivation)) == _graph_items(from_events), \
                assessment.model
            assert conclusions_of(derivation) == conclusions(from_events), assessment.model
            checked += 1
    assert checked >= 25
    evaluator = evaluator_for()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        (loaded,) = assess([str(path)]).documents
        heard: list[Event] = []
        assessment = assess_document(evaluator, loaded.document, listeners=[heard.append])
        assert heard == assessment.derivation.events and heard, path.name


def test_engine_agrees_with_plain_evaluation_on_a_synthetic_portfolio() -> None:
    """A few hundred synthetic models (the benchmark checks 10,000 the same way): the
    engine's contract keys are the plain-Python evaluation's, with and without lineage."""
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    raw = synth.generate_models(300, seed=13)
    for model in raw:
        doc, errors = parse_document(model, "synthetic", "", vocab)
        assert doc is not None, errors
        output = assess_document(evaluator, doc).output
        expected = plain_eval.evaluate(model)
        assert {k: output[k] for k in expected} == expected, doc.model.id
    portfolio = synth.generate_models(200, seed=14, lineage=True)
    run = assess([_write(portfolio)])
    assert run.rejected == []
    expected = {m["model"]: m for m in plain_eval.evaluate_portfolio(portfolio)}
    for assessment in run.assessments:
        want = expected[assessment.model]
        assert {k: assessment.output[k] for k in want} == want, assessment.model


def _write(models: list[dict[str, object]]) -> str:
    import tempfile
    path = Path(tempfile.mkdtemp()) / "portfolio.jsonl"
    synth.write_portfolio(path, models)
    return str(path)


def test_fact_ids_with_one_durable_hash_fail_the_assessment_clearly(make_pack: PackWriter
                                                                    ) -> None:
    """durable-rules knows a fact by the 32-bit FNV-1a hash of its id: two different ids
    with one hash would be one fact. Such a pair fails the assessment, naming both."""
    first, second = "evidence:x139599", "evidence:x322382"
    assert first != second and fnv1a_32(first) == fnv1a_32(second)
    evaluator = Evaluator(load_pack([make_pack(TRIPLE)]))
    facts = [Fact(i, "x", {"name": i}, ORIGIN_EVIDENCE) for i in (first, second)]
    with pytest.raises(AssessmentError, match="share the 32-bit hash") as caught:
        evaluator.evaluate(facts)
    assert first in str(caught.value) and second in str(caught.value)
    # the engine carries on: the next assessment in the same process is whole
    done = evaluator.evaluate([Fact("a", "x", {"name": "a"}, ORIGIN_EVIDENCE),
                               Fact("b", "x", {"name": "b"}, ORIGIN_EVIDENCE),
                               Fact("c", "x", {"name": "c"}, ORIGIN_EVIDENCE)])
    assert len(done.trace) == 6  # every ordered triple of distinct facts


def test_a_three_way_join_over_100_evaluations_is_stopped_by_the_budget(
        make_pack: PackWriter) -> None:
    """100 facts joined three ways would fire 970,200 times: the default
    budget stops the assessment past 20,000 firings, naming the rule, and the engine
    is whole afterwards."""
    evaluator = Evaluator(load_pack([make_pack(TRIPLE)]))
    facts = [Fact(f"x{i}", "x", {"name": f"n{i}"}, ORIGIN_EVIDENCE) for i in range(100)]
    with pytest.raises(AssessmentError, match="more than 20,000 rule firings") as caught:
        evaluator.evaluate(facts)
    assert caught.value.rule == "t.triple" and "\n" not in str(caught.value)
    with pytest.raises(AssessmentError, match="more than 5 facts"):
        evaluator.evaluate(facts[:10], budget=Budget(facts=5))
    assert len(evaluator.evaluate(facts[:4]).trace) == 4 * 3 * 2


def test_budget_from_the_environment_and_in_the_cli(tmp_path: Path) -> None:
    """`ASL_BUDGET` sets the budget: past it `asl assess` exits 2 with one line naming
    the rule; a malformed value is one line naming the variable."""
    assert parse_budget("facts=7") == Budget(facts=7)
    with pytest.raises(AssessmentError, match="ASL_BUDGET: 'firings=-1'"):
        parse_budget("firings=-1", "ASL_BUDGET")
    example = str(EXAMPLES / "cbrn3-crossed-rule-in.yaml")
    for budget, wanted in (("firings=3", "rule firings"), ("seconds=x", "ASL_BUDGET")):
        result = subprocess.run(
            [sys.executable, "-c", ASL, "assess", example], cwd=REPO,
            env={**os.environ, "ASL_BUDGET": budget}, capture_output=True, text=True,
            timeout=120, check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert any(wanted in line for line in lines), lines
        assert "Traceback" not in result.stderr


def test_validate_warns_about_product_joins(make_pack: PackWriter) -> None:
    """A rule joining unconstrained patterns of one listed evidence kind is warned
    about; tying them with an equality, or the built-in pack, gives no warning."""
    pack = load_pack([make_pack(TRIPLE)])
    (warning,) = product_joins(pack)
    assert warning.code == "product-join" and "t.triple joins 3 x patterns" in warning.message
    tied = TRIPLE.replace("{name: {ne: {ref: q.name}}}", "{name: {ref: q.name}}")
    assert "joins 2 x patterns" in product_joins(load_pack([make_pack(tied, directory="b")]))[
        0].message
    assert product_joins(evaluator_for().pack) == []
    standalone = MINI_PACK.replace("name: mini", "name: mini\nstandalone: true").replace(
        "{extra_kinds}", "")
    result = subprocess.run([sys.executable, "-c", ASL, "rules", "validate",
                             str(make_pack(TRIPLE, pack_yaml=standalone, directory="c"))],
                            cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert any(line.startswith("warning: ") and "product-join" in line
               for line in result.stderr.splitlines()), result.stderr
    assert "product-join" not in result.stdout
