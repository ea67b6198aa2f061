"""engine.lineage: the one reference graph, its order, its cycles, and the gate that stops
a model whose reference could not be assessed (issue 16)."""

from __future__ import annotations

import doctest

import engine.contract
import engine.errors
import engine.lineage
import engine.ruletext
import knowledge_graph.provenance
from engine.errors import InputError
from engine.lineage import CARRIED, PREDECESSOR, Gate, Lineage, Links


def links(model: str, predecessor: str | None = None, carried: str | None = None,
          where: str = "") -> Links:
    return Links(model, predecessor, carried, "p.yaml", where)


def test_doctests_run() -> None:
    for module in (engine.lineage, engine.contract, engine.errors, engine.ruletext,
                   knowledge_graph.provenance):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_generations_put_every_model_after_those_it_references() -> None:
    lineage = Lineage([links("d", carried="b"), links("b", predecessor="a"),
                       links("c", predecessor="a", carried="a"), links("a"),
                       links("e", carried="elsewhere")])
    assert lineage.generations() == [["a", "e"], ["b", "c"], ["d"]]
    assert lineage.order() == ["a", "e", "b", "c", "d"]


def test_order_never_depends_on_the_input_order() -> None:
    items = [links("m3", carried="m1"), links("m1"), links("m2", predecessor="m1")]
    assert Lineage(items).order() == Lineage(reversed(items)).order() == ["m1", "m2", "m3"]


def test_models_on_a_cycle_share_a_generation_and_the_rest_still_follows() -> None:
    lineage = Lineage([links("a", predecessor="b"), links("b", carried="a"),
                       links("c", carried="a"), links("s", predecessor="s")])
    assert lineage.generations() == [["a", "b", "s"], ["c"]]


def test_one_cycle_message_names_the_field_and_the_shortest_cycle() -> None:
    lineage = Lineage([links("a", predecessor="b", where="models[0]"),
                       links("b", carried="a", where="models[1]"),
                       links("c", carried="a"), links("s", predecessor="s")])
    assert [(item.model, field, message) for item, field, message in lineage.cycles()] == [
        ("a", PREDECESSOR, "reference cycle: a -> b -> a"),
        ("b", CARRIED, "reference cycle: b -> a -> b"),
        ("s", PREDECESSOR, "reference cycle: s -> s"),
    ]
    first = lineage.cycles()[0]
    assert str(first[0].error(first[1], first[2])) == (
        "p.yaml: models[0].model.predecessor: reference cycle: a -> b -> a")


def test_downstream_follows_carried_over_references_only() -> None:
    lineage = Lineage([links("a"), links("b", carried="a"), links("c", predecessor="a"),
                       links("d", carried="b"), links("e", predecessor="b", carried="b")])
    assert lineage.downstream(["a"]) == {"a", "b", "d", "e"}
    assert lineage.downstream(["c"]) == {"c"}


def _walk(gate: Gate) -> tuple[list[str], list[str]]:
    """(models the gate lets through, the errors of those it stops), in lineage order."""
    passed, stopped = [], []
    for model in gate.order():
        problem = gate.stop(model)
        if problem is None:
            passed.append(model)
        else:
            stopped.append(str(problem))
    return passed, stopped


def test_a_model_referencing_a_rejected_one_is_stopped_transitively() -> None:
    rejected = [InputError("p.yaml", "models[0].evaluations[0].score",
                           "expected a number, got 'x'", "root"),
                InputError("p.yaml", "models[0].model.name", "expected a string, got 1",
                           "root")]
    gate = Gate([links("child", "root", "root", "models[1]"),
                 links("grandchild", predecessor="child", where="models[2]"),
                 links("cousin", carried="elsewhere", where="models[3]")], rejected)
    assert gate.outside() == {"elsewhere"}
    passed, stopped = _walk(gate)
    assert passed == ["cousin"]
    assert stopped == [
        "p.yaml: models[1].model.last_comprehensive_assessment.model: references 'root', "
        "which could not be assessed (models[0].evaluations[0].score: expected a number, "
        "got 'x')",
        "p.yaml: models[2].model.predecessor: references 'child', which could not be "
        "assessed (it references 'root', which could not be assessed)",
    ]


def test_a_rejected_model_in_another_file_is_named_with_its_file() -> None:
    gate = Gate([links("child", predecessor="root")],
                [InputError("root.json", "", "invalid JSON at line 1, column 2: x", "root")])
    assert _walk(gate)[1] == [
        "p.yaml: model.predecessor: references 'root', which could not be assessed "
        "(root.json: invalid JSON at line 1, column 2: x)"]


def test_a_repeated_id_rejects_only_the_repeat() -> None:
    """The first document of an id is kept; the repeat's rejection names the same id but
    must not stop the models that reference it."""
    gate = Gate([links("root"), links("child", carried="root")],
                [InputError("p.yaml", "models[2].model.id", "duplicate model id 'root'",
                            "root")])
    assert _walk(gate) == (["root", "child"], [])


def test_a_failed_assessment_stops_what_references_it() -> None:
    gate = Gate([links("root", where="models[0]"), links("child", carried="root")])
    assert gate.stop("root") is None
    gate.failed(InputError("p.yaml", "models[0]", "assessment failed: rule r: boom", "root"))
    problem = gate.stop("child")
    assert problem is not None and problem.model == "child"
    assert problem.message == ("references 'root', which could not be assessed "
                               "(models[0]: assessment failed: rule r: boom)")


def test_a_cycle_stops_its_models_and_what_follows_them() -> None:
    gate = Gate([links("a", predecessor="b"), links("b", predecessor="a"),
                 links("c", carried="a")])
    passed, stopped = _walk(gate)
    assert passed == []
    assert stopped == [
        "p.yaml: model.predecessor: reference cycle: a -> b -> a",
        "p.yaml: model.predecessor: reference cycle: b -> a -> b",
        "p.yaml: model.last_comprehensive_assessment.model: references 'a', which could not "
        "be assessed (model.predecessor: reference cycle: a -> b -> a)",
    ]


def test_the_carried_over_reference_is_named_before_the_predecessor() -> None:
    rejected = [InputError("p.yaml", "models[0]", "nested deeper than 32 levels", "a"),
                InputError("p.yaml", "models[1]", "nested deeper than 32 levels", "b")]
    gate = Gate([links("c", predecessor="a", carried="b")], rejected)
    problem = gate.stop("c")
    assert problem is not None and problem.path == CARRIED
    assert "references 'b'" in problem.message
