"""One bad document never takes a batch down (issue 15, point 2).

A lone surrogate (`"\\udcff"`) in one model's name used to pass validation, then crash
the batch worker's serialisation with a traceback, storing nothing. Validation now
refuses such text at its path (exit 2), and every per-document step of a batch worker
is isolated: the document that fails is reported and the rest are stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from batch.work import Entry, Failed, Job, assess_jobs
from cli.main import main
from store.db import connect, database_url
from store.record import A

GOOD = [{"model": {"id": "a-1", "name": "fine"}}, {"model": {"id": "a-3"}}]
BAD_LINE = '{"model": {"id": "a-2", "name": "x\\udcff"}}'
REFUSAL = ("line 2: model.name: text holds a lone surrogate \\udcff at character 2, "
           "which is not a Unicode character")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([json.dumps(GOOD[0]), BAD_LINE, json.dumps(GOOD[1])]) + "\n")
    return path


def stored_models(url: str) -> list[str]:
    engine = connect(database_url(url))
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(select(A.c.model_id)))
    finally:
        engine.dispose()


def test_batch_reports_the_bad_document_and_stores_the_rest(
    portfolio: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "r.db")
    result = run("batch", portfolio, "--db", url, "--no-progress")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{portfolio}: {REFUSAL}" in result.stderr.splitlines()
    assert stored_models(url) == ["a-1", "a-3"]


def test_assess_refuses_it_with_the_same_line(portfolio: Path) -> None:
    result = run("assess", portfolio, "--format", "jsonl")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{portfolio}: {REFUSAL}"]
    assert [json.loads(line)["model"] for line in result.stdout.splitlines()] == ["a-1", "a-3"]


@pytest.mark.parametrize(("text", "path"), [
    ('model: {id: a, name: "x\\udcff"}\n', "model.name"),
    ('model: {id: a}\nevaluations: [{id: "e\\ud800", threshold: CBRN-3, score: 0.1,'
     ' threshold_score: 0.5}]\n', "evaluations[0].id"),
    ('model: {id: a, "k\\udcff": 1}\n', 'model."k\\udcff"'),
])
def test_yaml_spellings_are_refused_at_their_path(tmp_path: Path, text: str, path: str) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(text)
    result = run("assess", file)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{file}: {path}: "), lines
    assert "lone surrogate" in lines[0]


def test_a_worker_isolates_each_document() -> None:
    """A job whose stored body cannot be read (here, JSON with a surrogate escape) fails
    alone; the jobs either side are assessed."""
    def entry(model: str, body: bytes) -> Entry:
        return Entry(model, None, None, "p.jsonl", f"{model}", None, body, "sha256:x")

    good = [entry(m["model"]["id"], orjson.dumps(m, option=orjson.OPT_SORT_KEYS))
            for m in GOOD]
    broken = entry("a-2", BAD_LINE.encode())
    done = assess_jobs([], [Job(good[0], None, "h1"), Job(broken, None, "h2"),
                            Job(good[1], None, "h3")])
    assert [type(d).__name__ for d in done] == ["NewAssessment", "Failed", "NewAssessment"]
    failed = done[1]
    assert isinstance(failed, Failed) and failed.reason.startswith("JSONDecodeError: ")
