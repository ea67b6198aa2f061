"""The rules in force in the browser (viewer): `/ui/rules` lists the active stack's rules
with title, citation and conditions in words; `/ui/rules/{id}` shows one rule, the rules
that feed it and that it feeds, its test cases and its source. Every word comes from the
one rule printer (engine.ruletext), as `asl rules list` and `show` print them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from engine.model import Pack, Rule
from engine.ruletext import cite_text, conclusion_text, condition_text, rule_links, rule_source
from service.auth import VIEWER
from service.ui.render import html_page
from service.ui.session import PageError, Session, page

router = APIRouter(prefix="/ui/rules", include_in_schema=False)
Viewer = Annotated[Session, Depends(page(VIEWER))]


def rule_words(pack: Pack, rule: Rule) -> dict[str, Any]:
    """What the pages show of a rule: its row, citation, conditions and conclusions."""
    return {"id": rule.id, "title": rule.title, "cite": cite_text(rule.cite, rule.pack),
            "pack": rule.pack, "stratum": pack.stratum_of(rule.id),
            "when": [condition_text(c) for c in rule.conditions],
            "then": [conclusion_text(c) for c in rule.conclusions],
            "because": rule.because}


def _linked(entries: list[str]) -> list[tuple[str, str]]:
    """`RULE (KIND)` entries of rule_links as (rule id, the entry)."""
    return [(entry.split(" ", 1)[0], entry) for entry in entries]


@router.get("")
def rules_page(request: Request, session: Viewer,
               q: Annotated[str, Query(max_length=200)] = "",
               pack: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Every rule in force, by stratum, with its conditions in words."""
    stack = request.app.state.asl.loaded_stack()
    needle = q.lower()
    shown = [rule_words(stack.pack, r) for r in stack.pack.rules
             if (not pack or r.pack == pack)
             and (not needle or needle in f"{r.id} {r.title} {r.cite}".lower())]
    return html_page(request, "rules.html", session, rules=shown, packs=stack.packs,
                     layers=stack.pack.layers, q=q, pack=pack,
                     total=len(stack.pack.rules))


@router.get("/{rule_id}")
def rule_page(request: Request, rule_id: str, session: Viewer) -> Response:
    """One rule in words, its neighbours in the rule graph, its test cases and source."""
    stack = request.app.state.asl.loaded_stack()
    pack = stack.pack
    if rule_id not in {r.id for r in pack.rules}:
        raise PageError(404, f"No rule {rule_id!r} in the active stack ({pack.name}).")
    rule = pack.rule(rule_id)
    links = rule_links(pack, rule)
    cases = [(case_file.path.rsplit("/", 1)[-1], case_file.pack, case)
             for case_file in pack.case_files for case in case_file.cases
             if rule_id in (case.get("rules") or [])]
    return html_page(request, "rule.html", session, rule=rule_words(pack, rule),
                     fed_by=_linked(links["fed_by"]), feeds=_linked(links["feeds"]),
                     given=links["given"], cases=cases, source=rule_source(rule))
