"""store.browse.latest_page, which the model list and `GET /v1/models` page through,
against the record read another way (Store.all_latest, which groups the assessments
itself): every filter and sort, in pages, after a second assessment of some models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from service_server import run_asl

from store.browse import SORTABLE, Filters, latest_page
from store.db import connect
from store.record import Store, Summary

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("browse")
    url = f"sqlite:///{tmp}/asl.db"
    assert run_asl("batch", str(EXAMPLES), "--db", url).returncode == 0
    # Later assessments of two models: their newest moves (to another ASL and decision).
    later = (EXAMPLES / "security-gap-pause.yaml").read_text(encoding="utf-8")
    (tmp / "later.yaml").write_text(later.replace("status: partial", "status: implemented"),
                                    encoding="utf-8")
    done = run_asl("batch", str(tmp / "later.yaml"), "--db", url, "--pack",
                   str(EXAMPLES / "packs" / "acme-lab"))
    assert done.returncode == 0, done.stderr
    return url


def _expected(everything: list[Summary], filters: Filters, order: tuple[str, bool] | None
              ) -> list[int]:
    kept = [s for s in everything
            if filters.level in (None, s.level) and filters.decision in (None, s.decision)
            and filters.framework in (None, s.framework)
            and (not filters.q or filters.q.lower() in s.model_id.lower())]
    if order is None:
        return [s.id for s in sorted(kept, key=lambda s: s.model_id)]
    name, descending = order
    column = {"model_id": "model_id", "level": "level", "decision": "decision",
              "assessed_at": "assessed_at"}[name]
    ranked = sorted(kept, key=lambda s: (getattr(s, column), s.model_id), reverse=descending)
    return [s.id for s in ranked]


def test_every_filter_and_sort_pages_through_the_newest_assessments(db_url: str) -> None:
    engine = connect(db_url)
    try:
        everything = list(Store(engine).all_latest())
        assert len(everything) >= 10
        levels = sorted({s.level for s in everything})
        decisions = sorted({s.decision for s in everything})
        filters = [Filters(), Filters(framework="rsp-2.1"), Filters(q="KITE"),
                   *(Filters(level) for level in levels),
                   *(Filters(None, decision) for decision in decisions),
                   *(Filters(level, decision) for level, decision
                     in itertools.product(levels, decisions))]
        orders = [None, *((name, down) for name in SORTABLE for down in (False, True))]
        for chosen, order in itertools.product(filters, orders):
            want = _expected(everything, chosen, order)
            got: list[int] = []
            for offset in range(0, len(want) + 3, 3):
                page, total = latest_page(engine, chosen, 3, offset,
                                          [order] if order else [])
                assert total == len(want), (chosen, order)
                got.extend(s.id for s in page)
            assert got == want, (chosen, order)
    finally:
        engine.dispose()


def test_an_unknown_sort_column_is_refused(db_url: str) -> None:
    engine = connect(db_url)
    try:
        with pytest.raises(ValueError, match="cannot sort"):
            latest_page(engine, Filters(), 10, 0, [("result", False)])
    finally:
        engine.dispose()
