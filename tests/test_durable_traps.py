"""One regression test per durable-rules trap in shared/notes/durable-rules.md, driven
through our engine (the evaluator on the built-in pack, or on small packs in tmp_path).

Tests that could crash the interpreter (a segfault or `free(): invalid pointer` in the C
matcher) run in a subprocess, so a crash fails the test instead of killing pytest.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from helpers import REPO

from conftest import PackWriter
from engine.assess import assess_document, evaluator_for, vocabulary
from engine.compiler import CompiledRule, compile_pack, compile_rule
from engine.durable_adapter import DurableRuleset
from engine.errors import AssessmentError, PackError
from engine.evaluator import ConclusionDerived, Derivation, Evaluator, Fact, RuleFired
from engine.evidence import parse_document
from engine.loader import load_pack
from engine.model import ORIGIN_EVIDENCE, Rule


def run_python(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter with the repository and benchmarks importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "benchmarks")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)


def fact(fid: str, kind: str, **values: Any) -> Fact:
    """An evidence fact with these values."""
    return Fact(fid, kind, values, ORIGIN_EVIDENCE)


def ids(derivation: Derivation, kind: str) -> list[str]:
    """The ids of the derivation's facts of `kind`, sorted."""
    return [f.id for f in derivation.of_kind(kind)]


def rule(rule_id: str, when: str, then: str, because: str = "x") -> str:
    """One rule of a small pack, `when` and `then` given as YAML flow text."""
    return (f"- id: {rule_id}\n  title: {rule_id}\n  cite: RSP v2.1 §2\n"
            f"  because: \"{because}\"\n  when: {when}\n  then: {then}\n")


# --- (a) trap 2 and 9: many assessments in one process ----------------------------------

MANY_ASSESSMENTS = """\
    import sys
    import synth
    from engine.assess import assess_document, evaluator_for, vocabulary
    from engine.evidence import parse_document

    requested = int(sys.argv[1])
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    outcomes = set()
    count = 0
    for i, data in enumerate(synth.generate_models(requested, seed=20250331, lineage=False)):
        doc, errors = parse_document(data, "synth.jsonl", f"line {i + 1}", vocab)
        assert doc is not None, errors
        output = assess_document(evaluator, doc).output
        outcomes.add((output["asl"], output["decision"]))
        count += 1
    print(count, len(outcomes))
"""


@pytest.mark.slow
def test_thousands_of_assessments_in_one_process() -> None:
    """Traps 2 and 9: with sessions left alive the process segfaulted after ~1,000-2,000
    assessments, and with the dispatch thread disabled it died at ~5,000. 5,000 varied
    models (synth.generate_models) must all be assessed and the process exit cleanly."""
    requested = 5000
    result = run_python(MANY_ASSESSMENTS, str(requested))
    assert result.returncode == 0, result.stderr[-2000:]
    count, outcomes = map(int, result.stdout.split())
    assert count == requested
    assert outcomes >= 4, "the models were not varied enough to exercise the pack"


# --- (b) a conclusion that cannot be built ----------------------------------------------


def test_unbuildable_conclusion_names_the_rule(make_pack: PackWriter) -> None:
    """Trap 1: a failure inside a rule action was swallowed by durable-rules and the
    conclusion silently never existed. A conclusion referring to a field the matched fact
    lacks must fail the assessment with AssessmentError naming the rule."""
    root = make_pack(rule("t.needs-name", "[{match: x, where: {score: {gte: 1}}}]",
                          "{concern: {name: {ref: x.name}}}"))
    evaluator = Evaluator(load_pack([root]))
    with pytest.raises(AssessmentError) as caught:
        evaluator.evaluate([fact("x1", "x", score=2)])
    assert caught.value.rule == "t.needs-name"
    assert str(caught.value) == ("rule t.needs-name: conclusion concern.name refers to x.name, "
                                 "which x1 lacks")
    # The failed session was not left half-full: the next assessment is clean.
    after = evaluator.evaluate([fact("x1", "x", name="p", score=2)])
    assert ids(after, "concern") == ["concern(name=p)"]


def test_list_constant_in_a_conclusion_is_refused_or_names_the_rule(
        make_pack: PackWriter) -> None:
    """A conclusion value the engine cannot build into a fact is either refused at load
    (PackError) or fails the assessment naming the rule, never a bare Python error."""
    root = make_pack(rule("t.list", "[{match: x}]", "{concern: {name: [p, q]}}"))
    try:
        evaluator = Evaluator(load_pack([root]))
    except PackError:
        return
    with pytest.raises(AssessmentError) as caught:
        evaluator.evaluate([fact("x1", "x", name="p")])
    assert caught.value.rule == "t.list"


# --- (c) trap 3: negation of a kind derived late ---------------------------------------

LATE_CONCERN = "".join([
    rule("chain.a", "[{match: start}]", "{a: {name: {ref: start.name}}}"),
    rule("chain.b", "[{match: a}]", "{b: {name: {ref: a.name}}}"),
    rule("chain.concern", "[{match: b}]", "{concern: {name: {ref: b.name}}}"),
    rule("t.cleared", "[{match: x}, {none: concern, where: {name: {ref: x.name}}}]",
         "{cleared: {name: {ref: x.name}}}", because="no concern about {x.name}"),
])


def test_negated_kind_derived_late_blocks_the_negation_in_every_order(
        make_pack: PackWriter) -> None:
    """Trap 3: durable fires `none(concern)` as soon as `x` matches, even when `concern`
    is derived three firings later. `concern(p)` comes from `start(p)` via a -> b ->
    concern, so `t.cleared` must fire for `q` only, whatever order the facts arrive in
    (ids are chosen so each permutation is also the order they are asserted in)."""
    pack = load_pack([make_pack(LATE_CONCERN)])
    assert pack.stratum_of("t.cleared") > pack.stratum_of("chain.concern")
    evaluator = Evaluator(pack)
    inputs = [("x", {"name": "p"}), ("x", {"name": "q"}), ("start", {"name": "p"}),
              ("y", {"name": "p"})]
    for order in itertools.permutations(inputs):
        given = [fact(f"f{i}:{kind}", kind, **values) for i, (kind, values) in enumerate(order)]
        derivation = evaluator.evaluate(given)
        assert ids(derivation, "concern") == ["concern(name=p)"], order
        assert ids(derivation, "cleared") == ["cleared(name=q)"], order
        fired = [e.firing for e in derivation.events if isinstance(e, RuleFired)
                 and e.firing.rule.id == "t.cleared"]
        assert [f.bound["x"].values["name"] for f in fired] == ["q"], order


def test_negation_sees_each_assessment_afresh(make_pack: PackWriter) -> None:
    """Sessions are reused between assessments (engine.durable_adapter): a concern left
    over from the previous assessment must not block the negation in the next, nor a
    missing one let it fire."""
    evaluator = Evaluator(load_pack([make_pack(LATE_CONCERN)]))
    with_start = [fact("x1", "x", name="p"), fact("s1", "start", name="p")]
    without = [fact("x1", "x", name="p")]
    for _ in range(3):
        assert ids(evaluator.evaluate(with_start), "cleared") == []
        assert ids(evaluator.evaluate(without), "cleared") == ["cleared(name=p)"]


def test_ungated_durable_does_fire_the_negation_early(make_pack: PackWriter) -> None:
    """Canary for the trap itself: the same rules compiled without gates, facts asserted
    one at a time straight into durable, let `t.cleared` fire for `p` before the chain
    derives `concern(p)`: the trap is real, so the gated test above proves something. If
    durable ever stops doing this, this test fails and trap 3 should be re-examined."""
    pack = load_pack([make_pack(LATE_CONCERN)])
    definition: dict[str, CompiledRule] = {}
    names: dict[str, Rule] = {}
    for r in pack.rules:
        name = r.id.replace(".", "_")
        definition[name], _ = compile_rule(r)
        names[name] = r
    ruleset = DurableRuleset(definition)
    fired: list[str] = []
    with ruleset.session() as session:
        pending = [{"id": "x1", "kind": "x", "name": "p", "__n": 0},
                   {"id": "s1", "kind": "start", "name": "p", "__n": 0}]
        while pending:
            activations = session.assert_facts([pending.pop(0)])
            for name, bindings in activations:
                fired.append(names[name].id)
                conclusion = names[name].conclusions[0]
                value = next(iter(bindings.values()))["name"]
                pending.append({"id": f"{conclusion.kind}:{value}", "kind": conclusion.kind,
                                "name": value, "__n": 0})
    assert fired.index("t.cleared") < fired.index("chain.concern")
    ruleset.close()


# --- (d) trap 4: one conclusion, two supports -------------------------------------------


def test_conclusion_derived_twice_is_one_fact_with_two_firings(make_pack: PackWriter) -> None:
    """Trap 4: asserting an equal fact twice raises in durable. Two evidence items that
    support the same conclusion give one fact, two firings and two derivation events (the
    second not new), and the fact is asserted once (no error)."""
    root = make_pack(rule("t.flag", "[{match: x, where: {score: {gte: 1}}}]",
                          "{concern: {name: flagged}}"))
    evaluator = Evaluator(load_pack([root]))
    derivation = evaluator.evaluate([fact("x1", "x", name="p", score=2),
                                     fact("x2", "x", name="q", score=3),
                                     fact("x3", "x", name="r", score=0)])
    assert ids(derivation, "concern") == ["concern(name=flagged)"]
    supports = sorted(f.id for f in derivation.firings.values()
                      if "concern(name=flagged)" in f.conclusions)
    assert supports == ["firing:t.flag[x1]", "firing:t.flag[x2]"]
    derived = [e for e in derivation.events if isinstance(e, ConclusionDerived)]
    assert [e.fact.id for e in derived] == ["concern(name=flagged)"] * 2
    assert sorted(e.new for e in derived) == [False, True]


def test_builtin_signal_from_two_findings_has_two_supports() -> None:
    """The same on the shipped pack: two findings that CBRN-3 is crossed give one
    `signal` conclusion supported by both firings."""
    evaluator = evaluator_for()
    doc, errors = parse_document(
        {"model": {"id": "m", "effective_compute_flop": 1.0e26},
         "findings": [{"id": "f1", "threshold": "CBRN-3", "verdict": "crossed"},
                      {"id": "f2", "threshold": "CBRN-3", "verdict": "crossed"}]},
        "doc.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None, errors
    assessment = assess_document(evaluator, doc)
    signal = "signal(capability=CBRN-3,severity=3,value=crossed)"
    assert signal in assessment.derivation.facts
    supports = sorted(f.id for f in assessment.derivation.firings.values()
                      if signal in f.conclusions)
    assert supports == ["firing:signals.finding.crossed[evidence:f1]",
                        "firing:signals.finding.crossed[evidence:f2]"]
    assert assessment.output["thresholds"]["CBRN-3"] == "crossed"


# --- (e) trap 2: sessions are deleted ---------------------------------------------------

SESSIONS = """\
    import resource, sys
    import synth
    from engine.assess import assess_document, evaluator_for, vocabulary
    from engine.durable_adapter import MAX_IDLE_SESSIONS
    from engine.errors import AssessmentError
    from engine.evaluator import Evaluator, Fact
    from engine.evidence import parse_document
    from engine.loader import load_pack

    requested, failing_pack = int(sys.argv[1]), sys.argv[2]

    def peak_kb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    docs = [parse_document(m, "s.jsonl", str(i), vocab)[0]
            for i, m in enumerate(synth.generate_models(300, seed=7))]
    failing = Evaluator(load_pack([failing_pack]))
    bad = [Fact("x1", "x", {"score": 2}, "evidence")]

    def run(n):
        done = errors = 0
        for i in range(n):
            assess_document(evaluator, docs[i % len(docs)])
            done += 1
            try:  # a failed assessment leaves its session non-empty: it must be deleted
                failing.evaluate(bad)
            except AssessmentError:
                errors += 1
        return done, errors

    run(300)  # warm up: pools, caches and allocator arenas reach their working size
    before = peak_kb()
    done, errors = run(requested)
    idle = max(len(e._ruleset._ruleset._idle) for e in (evaluator, failing))
    print(done, errors, peak_kb() - before, idle, MAX_IDLE_SESSIONS)
"""


@pytest.mark.slow
def test_sessions_do_not_accumulate(make_pack: PackWriter) -> None:
    """Trap 2: each durable session lives in C memory until deleted (about 1.2 MB each
    for the built-in pack; ~1,000-2,000 live ones crashed the process). 3,000 successful
    assessments (sessions pooled and reused) interleaved with 3,000 failing ones (their
    sessions must be deleted) complete, keep the pool bounded, and grow the peak RSS by
    far less than even a few dozen leaked sessions would."""
    failing = make_pack(rule("t.needs-name", "[{match: x}]",
                             "{concern: {name: {ref: x.name}}}"))
    requested = 3000
    result = run_python(SESSIONS, str(requested), str(failing))
    assert result.returncode == 0, result.stderr[-2000:]
    done, errors, growth_kb, idle, max_idle = map(int, result.stdout.split())
    assert (done, errors) == (requested, requested)
    assert idle <= max_idle
    assert growth_kb < 32 * 1024, f"peak RSS grew by {growth_kb} KB over {requested} runs"


# --- (f) traps 1 and 8: facts no rule matches -------------------------------------------


def test_unmatched_facts_neither_raise_nor_stall_the_batch(make_pack: PackWriter) -> None:
    """Traps 1 and 8: durable refuses a fact no rule matches, and a refused fact in a batch
    stalls the rest. A fact of a kind no rule reads, and a fact of a read kind that no
    rule's tests accept (only the sink takes it), sit in the same batch as a fact that
    fires a rule: no error, and the rule fires within the same evaluation."""
    root = make_pack(rule("t.wanted", "[{match: x, where: {name: wanted}}]",
                          "{concern: {name: {ref: x.name}}}"))
    evaluator = Evaluator(load_pack([root]))
    for given in itertools.permutations([fact("a1", "x", name="other"),
                                         fact("a2", "x", name="wanted"),
                                         fact("a3", "y", name="wanted")]):
        derivation = evaluator.evaluate(list(given))
        assert ids(derivation, "concern") == ["concern(name=wanted)"]


def test_sink_takes_a_kind_no_rule_reads_in_the_same_durable_batch(
        make_pack: PackWriter) -> None:
    """At the adapter: a batch holding a fact of a kind no rule reads (only the sink
    accepts it) still returns the other fact's activation from the same call, with no
    help from durable's background thread."""
    root = make_pack(rule("t.wanted", "[{match: x, where: {name: wanted}}]",
                          "{concern: {name: {ref: x.name}}}"))
    compiled = compile_pack(load_pack([root]))
    ruleset = DurableRuleset(compiled.compiled)
    with ruleset.session() as session:
        activations = session.assert_facts([
            {"id": "u1", "kind": "nobody_reads_this", "__n": 0},
            {"id": "x1", "kind": "x", "name": "other", "__n": 0},
            {"id": "x2", "kind": "x", "name": "wanted", "__n": 0}])
    assert [(compiled.rules[name].id, b["b0"]["id"]) for name, b in activations] == [
        ("t.wanted", "x2")]
    ruleset.close()


def test_without_the_sink_a_refused_fact_is_loud() -> None:
    """The other half of trap 1: where durable does refuse a fact, the adapter raises
    AssessmentError naming the facts; nothing is silently dropped."""
    ruleset = DurableRuleset.spelled({"only_x": {"all": [{"m": {"kind": "x"}}]}})
    with pytest.raises(AssessmentError, match="refused a fact no rule matches"), \
            ruleset.session() as session:
        session.assert_facts([{"id": "y1", "kind": "y"}, {"id": "x1", "kind": "x"}])
    ruleset.close()


# --- (g) a definition durable cannot compile ----------------------------------------------

BAD_DEFINITIONS = """\
    import json, sys
    from engine.durable_adapter import DurableRuleset
    from engine.errors import AssessmentError, PackError
    from engine.evaluator import Evaluator
    from engine.loader import load_pack

    def attempt(make):
        try:
            make()
        except (AssessmentError, PackError) as exc:
            return type(exc).__name__ + ": " + str(exc).splitlines()[0]
        return "accepted"

    results = [attempt(lambda p=p: Evaluator(load_pack([p]))) for p in sys.argv[1:]]
    bogus = {"r": {"all": [{"m": {"$bogus": {"a": 1}}}]}}
    results.append(attempt(lambda: DurableRuleset.spelled(bogus)))
    results.append(attempt(lambda: DurableRuleset.spelled({"r": {"all": "not a list"}})))
    # The host is still usable afterwards: the built-in pack compiles and assesses.
    from engine.assess import evaluator_for
    evaluator_for().evaluate([])
    print(json.dumps(results))
"""


@pytest.mark.parametrize(("extra_kinds", "when"), [
    # a field name durable reads as an operator: the loader does not check field names
    ("  odd: {origin: evidence, fields: {$gte: number}}\n", "[{match: odd, where: {$gte: 1}}]"),
    # a list constant where durable expects a scalar: the loader accepts lists in `eq`
    ("", "[{match: x, where: {name: {eq: [p, q]}}}]"),
])
def test_bad_durable_definition_is_an_error_not_a_crash(make_pack: PackWriter,
                                                        extra_kinds: str, when: str) -> None:
    """A pack that passes the loader but that durable-rules cannot compile, and raw
    definitions durable rejects, are reported as AssessmentError/PackError (in a
    subprocess, so a crash would show as a failure), and the process carries on."""
    root = make_pack(rule("t.odd", when, "{concern: {name: odd}}"), extra_kinds=extra_kinds)
    result = run_python(BAD_DEFINITIONS, str(root), timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = json.loads(result.stdout)
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert outcome.startswith(("AssessmentError: ", "PackError: ")), outcome


@pytest.mark.parametrize("score", [1e-7, 5e-07, 1e-8, 2.5e-9])
def test_exponent_numbers_reach_durable_intact(score: float) -> None:
    """durable-rules misreads `1e-7` (exponent without a decimal point, as orjson writes
    it): the fact was lost or the process crashed. Such scores must assess normally."""
    from engine.assess import assess_document, evaluator_for, vocabulary
    from engine.evidence import parse_document

    evaluator = evaluator_for()
    doc, errors = parse_document(
        {"model": {"id": "tiny", "effective_compute_flop": 1e20,
                   "last_comprehensive_assessment": {"model": "big", "months_since": 1,
                                                     "effective_compute_flop": 1e27,
                                                     "determination": "ASL-2"}},
         "evaluations": [{"id": "e", "threshold": "CBRN-3", "score": score,
                          "threshold_score": 0.8}]},
        "tiny.yaml", "", vocabulary(evaluator.pack))
    assert doc is not None, errors
    output = assess_document(evaluator, doc).output
    assert output["thresholds"]["CBRN-3"] == "ruled_out"
    assert output["comprehensive_assessment_required"] is False
