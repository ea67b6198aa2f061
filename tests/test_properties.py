"""Properties: assessment is a pure function of (evidence, pack), whatever the order of
facts, and agrees with an independent plain-Python reading of the semantics."""

from __future__ import annotations

import copy
import json
from typing import Any

import plain_eval
import synth
from helpers import DATA, EXAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api import assess_documents
from engine.assess import assess_document, evaluator_for, vocabulary
from engine.evidence import LoadedDocument, parse_document
from engine.yamlsafe import load_yaml
from knowledge_graph.report import assessment_document

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _documents() -> list[dict[str, Any]]:
    paths = sorted(EXAMPLES.glob("*.yaml")) + sorted(DATA.glob("*.yaml"))
    docs = []
    for path in paths:
        data = json.loads(json.dumps(load_yaml(path.read_text()), default=str))
        docs.extend(data.get("models", [data]))
    return docs


DOCUMENTS = _documents()


def _output_json(data: dict[str, Any]) -> str:
    evaluator = evaluator_for()
    doc, errors = parse_document(data, "doc.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None, errors
    return json.dumps(assessment_document(assess_document(evaluator, doc)), sort_keys=True)


@SETTINGS
@given(index=st.integers(min_value=0, max_value=len(DOCUMENTS) - 1), seed=st.randoms())
def test_shuffling_evidence_never_changes_the_output(index: int, seed: Any) -> None:
    """Evaluations, findings, safeguards and channels in any order: byte-identical JSON,
    conclusions and provenance included."""
    original = DOCUMENTS[index]
    shuffled = copy.deepcopy(original)
    for key in ("evaluations", "findings", "safeguards"):
        if key in shuffled:
            seed.shuffle(shuffled[key])
    if shuffled.get("deployment", {}).get("channels"):
        seed.shuffle(shuffled["deployment"]["channels"])
    assert _output_json(shuffled) == _output_json(original)


@SETTINGS
@given(seed=st.randoms(), count=st.integers(min_value=2, max_value=12))
def test_shuffling_a_portfolio_never_changes_the_output(seed: Any, count: int) -> None:
    """A portfolio with lineage references gives the same results in any document order."""
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    raw = synth.generate_models(count, seed=seed.randint(0, 10_000), lineage=True)

    def run(order: list[dict[str, Any]]) -> str:
        loaded = [LoadedDocument(parse_document(m, "p.jsonl", f"line {i}", vocab)[0],
                                 "p.jsonl", f"line {i}") for i, m in enumerate(order)]
        results, errors = assess_documents(evaluator, loaded)
        assert errors == []
        return json.dumps([a.output for a in results], sort_keys=True)

    shuffled = list(raw)
    seed.shuffle(shuffled)
    assert run(shuffled) == run(raw)


@SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**31), lineage=st.booleans())
def test_engine_agrees_with_the_plain_reading_of_the_semantics(seed: int,
                                                               lineage: bool) -> None:
    """Differential test: the rule engine and benchmarks/plain_eval.py (written
    independently from rsp-2.1-semantics.md) agree on every contract key."""
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    raw = synth.generate_models(15, seed=seed, lineage=lineage)
    loaded = [LoadedDocument(parse_document(m, "p.jsonl", f"line {i}", vocab)[0],
                             "p.jsonl", f"line {i}") for i, m in enumerate(raw)]
    results, errors = assess_documents(evaluator, loaded)
    assert errors == []
    expected = plain_eval.evaluate_portfolio(raw)
    got = [{k: a.output[k] for k in e} for a, e in zip(results, expected, strict=True)]
    assert got == expected
