"""A batch's spool is the portfolio's table of links, held as columns: loading through it
must reject the same documents with the same lines, and give back, for every document
that passed, the same links, place, compute and bytes as the loader's own forms
(`Links.of`, `Entry.of`); the batch's outcomes, numbered as the spool numbers its
documents, come back as recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch.runner import Outcome, Outcomes
from batch.spool import Spool, _where_code, _where_text
from batch.work import Entry
from engine.assess import evaluator_for, vocabulary
from engine.evidence import load_evidence
from engine.lineage import Links


def doc(model: str, **header: Any) -> dict[str, Any]:
    return {"model": {"id": model, **header}}


def portfolio(tmp_path: Path) -> list[Path]:
    """A JSON Lines file (with a blank line), a YAML portfolio and a one-document file:
    a duplicate id across files, a cycle, references in and out, a bad document."""
    lines = tmp_path / "a.jsonl"
    lines.write_text("\n".join([
        json.dumps(doc("m1", effective_compute_flop=3e25)),
        "",
        json.dumps(doc("m2", predecessor="m1",
                       last_comprehensive_assessment={"model": "m1", "months_since": 2})),
        json.dumps(doc("c1", predecessor="c2")),
        json.dumps(doc("c2", predecessor="c1")),
        json.dumps(doc("bad", bogus=1)),
    ]) + "\n", encoding="utf-8")
    yaml = tmp_path / "b.yaml"
    yaml.write_text(json.dumps({"models": [
        doc("m3", predecessor="outside-0", effective_compute_flop=1e26),
        doc("m1"),  # a duplicate of a.jsonl's line 1
        doc("m4", last_comprehensive_assessment={"model": "outside-1", "months_since": 1}),
    ]}), encoding="utf-8")
    single = tmp_path / "c.json"
    single.write_text(json.dumps(doc("m5", predecessor="m4")), encoding="utf-8")
    return [lines, yaml, single]


def test_the_spool_holds_what_the_loader_would(tmp_path: Path) -> None:
    paths = portfolio(tmp_path)
    vocab = vocabulary(evaluator_for(()).pack)
    plain = load_evidence(paths, vocab)
    with Spool(str(tmp_path)) as spool:
        spooled = load_evidence(paths, vocab, keep=spool.keep, table=spool)
        spool.done_reading()
        assert [str(e) for e in spooled.errors] == [str(e) for e in plain.errors]
        assert any("duplicate model id 'm1' (also" in str(e) for e in plain.errors)
        assert any("reference cycle" in str(e) for e in plain.errors)
        assert spooled.documents == []
        assert list(spool) == [d.document.model.id for d in plain.documents]
        for loaded in plain.documents:
            model = loaded.document.model
            got = spool[model.id]
            want = Entry.of(loaded)
            assert Links(got.model, got.predecessor, got.carried, got.file, got.where) == \
                Links.of(model, loaded.file, loaded.where)
            assert (got.compute, got.reference) == (want.compute, want.reference)
            assert got.resolve() == want
        assert "c1" not in spool and "bad" not in spool and len(spool) == 5
        index, size = spool.positions()
        outcomes = Outcomes(index, size)
        first = Outcome("m4", 7, "ASL-3", "deploy", ("x",), True, ("ASL-2", "hold"), 5)
        outcomes["m4"] = first
        outcomes["m1"] = Outcome("m1", 2**40, "ASL-2", "hold", (), False, None, None, True)
        outcomes["m1"] = again = Outcome("m1", 9, "ASL-4", "stop", ("z",), False, None, None,
                                         True)
        assert (outcomes["m4"], outcomes["m1"], len(outcomes)) == (first, again, 2)
        assert (sorted(outcomes), outcomes.skipped(), outcomes.changed()) == (
            ["m1", "m4"], 1, ["m1"])
        assert "m2" not in outcomes and "c1" not in outcomes


def test_places_are_numbers_only_where_the_number_gives_the_text_back() -> None:
    for where in ("", "line 1", "line 5123", "models[0]", "models[41]"):
        code = _where_code(where)
        assert code is not None and _where_text(code) == where
    for where in ("line 0", "line 01", "line ²", "models[-1]", "models[01]", "models[3].x",
                  "line 3 ", "document 2"):
        assert _where_code(where) is None
