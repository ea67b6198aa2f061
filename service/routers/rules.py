"""The rules in force (`/v1/rules`, viewer): `asl rules list` and `asl rules show
--format json` on the active stack. A rule's `file` is named within its pack
(`PACK/rules/x.yaml`), never by a path on the server."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from engine.model import Rule
from engine.ruletext import rule_links, rule_row, rule_source
from service.auth import VIEWER, Principal, require
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.routers.models import JSON_CONTENT, json_bytes
from service.state import LoadedStack

router = APIRouter(prefix="/v1/rules", tags=["rules"],
                   responses=problem_responses(*AUTHENTICATED, 404))
Viewer = Annotated[Principal, Depends(require(VIEWER))]


def _file(stack: LoadedStack, rule: Rule) -> str:
    directory = stack.layer_dir(rule.pack)
    try:
        inside = Path(rule.file).relative_to(directory) if directory else Path(rule.file).name
    except ValueError:
        inside = Path(rule.file).name
    return f"{rule.pack}/{inside}"


def _row(stack: LoadedStack, rule: Rule) -> dict[str, Any]:
    return {**rule_row(stack.pack, rule), "file": _file(stack, rule)}


@router.get("", responses={200: {"content": JSON_CONTENT}})
def list_rules(request: Request, _: Viewer,
               pack: Annotated[str | None, Query(max_length=200,
                                                 description="only this pack's rules")]
               = None) -> Response:
    """Every rule in force: id, title, citation, stratum, pack, file and line."""
    stack = request.app.state.asl.loaded_stack()
    if pack is not None and pack not in stack.pack.layers:
        raise Problem(404, f"no pack {pack!r} in the active stack "
                      f"({', '.join(stack.pack.layers)})")
    return json_bytes([_row(stack, r) for r in stack.pack.rules
                       if pack is None or r.pack == pack])


@router.get("/{rule_id}", responses={200: {"content": JSON_CONTENT}})
def show_rule(request: Request, rule_id: str, _: Viewer) -> Response:
    """One rule: its row, the kinds it consumes, negates and produces, the rules that
    feed it and that it feeds, and its YAML source."""
    stack = request.app.state.asl.loaded_stack()
    pack = stack.pack
    ids = [r.id for r in pack.rules]
    if rule_id not in ids:
        close = difflib.get_close_matches(rule_id, ids, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise Problem(404, f"no rule {rule_id!r} in {pack.name}{hint}")
    rule = pack.rule(rule_id)
    return json_bytes({**_row(stack, rule), "consumes": sorted(rule.consumes),
                       "negates": sorted(rule.negates), "produces": sorted(rule.produces),
                       **rule_links(pack, rule), "source": rule_source(rule)})
