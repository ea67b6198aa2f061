"""`asl crosswalk FILE --to FRAMEWORK`: one model's posture under two frameworks, side by
side, with every item the crosswalk carried over (and how well it matches) and every
item it left out.

The document is assessed under its own framework (`--from`, or the built-in framework
whose names it uses), translated by the crosswalk (`engine.crosswalk`; the built-in one,
or `--crosswalk FILE`) and assessed under the target. Safeguards are never translated, so
the target's `missing_safeguards` and `decision` read "safeguards not stated for this
framework".
"""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from cli.options import EXIT_REJECTED, dumps, fail, report
from engine.api import AssessmentRun, assess
from engine.crosswalk import Crosswalk, disagreements, find_crosswalk, translate
from engine.errors import AssessmentError, PackError
from engine.evidence_reading import Body
from engine.packstack import BUILTIN_PACK, builtin_frameworks, pack_stack
from knowledge_graph.explain import render_text, why_tree
from knowledge_graph.provenance import UnknownConclusion, find_conclusion, subjects_for
from knowledge_graph.report import assessment_document, provenance

NOT_STATED = "safeguards not stated for this framework"
MARKED = ("missing_safeguards", "decision")  # what depends on the untranslated safeguards


@click.command("crosswalk")
@click.argument("file")
@click.option("--to", "target", required=True,
              type=click.Choice(sorted(builtin_frameworks())),
              help="The framework to show the model under.")
@click.option("--from", "source", type=click.Choice(sorted(builtin_frameworks())),
              help="The framework FILE is written for (default: the built-in framework "
              f"whose names it uses, else {BUILTIN_PACK}).")
@click.option("--crosswalk", "crosswalk_file", type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="A crosswalk of your own, in place of the built-in one.")
@click.option("--model", "model_id", help="Only this model of a portfolio.")
@click.option("--why", "selector", metavar="CONCLUSION",
              help="Instead, explain this conclusion of the translated assessment (as asl "
              "why --conclusion does): its rules down to the translated evidence, which "
              "names the original item and the crosswalk row.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: {model, from, to, translated, left_out, "
              "disagreements} (an array for several models).")
def crosswalk_command(file: str, target: str, source: str | None,
                      crosswalk_file: str | None, model_id: str | None,
                      selector: str | None, fmt: str) -> None:
    """Show the models in FILE assessed under their own framework and under another,
    side by side: what was translated and how, what was left out, and where the two
    frameworks disagree.

    \b
    Examples:
      asl crosswalk examples/security-gap-pause.yaml --to openai-pf-2
      asl crosswalk model.yaml --to rsp-2.1 --format json
      asl crosswalk model.yaml --to openai-pf-2 --crosswalk my-crosswalk.yaml
    """
    try:
        before, source = _own_run(file, source)
        if source == target:
            raise click.UsageError(f"FILE is written for {target} already; --to names "
                                   "another framework")
        walk = find_crosswalk(source, target, crosswalk_file)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail("the crosswalk cannot be used; nothing was translated")
    report(before.rejected)
    chosen = [a for a in before.in_input_order() if model_id in (None, a.model)]
    if model_id is not None and not chosen:
        fail(f"{file}: no assessed model {model_id!r}", EXIT_REJECTED)
    translations = {a.model: translate(before.raw(a.model), walk, source, target)
                    for a in chosen}
    body = orjson.dumps({"models": [t.document for t in translations.values()]})
    try:
        after = assess([Body(body, "json", f"{file} (translated to {target})")],
                       pack_stack((), target))
    except AssessmentError as exc:
        fail(str(exc))
    report(after.rejected)
    if selector is not None:
        _explain_translated(after, [a.model for a in chosen], selector, fmt)
        return
    results = [_side_by_side(walk, source, target, a, after, translations[a.model])
               for a in chosen if after.assessment(a.model) is not None]
    if fmt == "json":
        click.echo(dumps(results[0] if before.single and len(results) == 1 else results))
    else:
        click.echo("\n".join(_text(r, source, target) for r in results), nl=False)
    if before.rejected or after.rejected:
        sys.exit(EXIT_REJECTED)


def _explain_translated(after: AssessmentRun, models: list[str], selector: str,
                        fmt: str) -> None:
    """Print the explanation of `selector` in each translated model's assessment."""
    texts = []
    for model in models:
        assessment = after.assessment(model)
        if assessment is None:
            continue
        graph = provenance(assessment)
        try:
            node = find_conclusion(graph, selector, subjects_for(assessment.pack.spec))
        except UnknownConclusion:
            fail(f"{model} has no conclusion {selector!r} under {assessment.pack.framework}",
                 EXIT_REJECTED)
        tree = why_tree(graph, node)
        if fmt == "json":
            texts.append(dumps({"model": model, "conclusion": node, "explanation": tree}))
        else:
            texts.append(f"{model} (translated): why {selector}?\n{render_text(tree)}")
    click.echo("\n".join(texts), nl=fmt != "text")


def _own_run(file: str, source: str | None) -> tuple[AssessmentRun, str]:
    """FILE assessed under `source`, or under the first built-in framework (the
    default first) that accepts its names."""
    if source is not None:
        return assess([file], pack_stack((), source), stdin=sys.stdin), source
    candidates = [BUILTIN_PACK, *(f for f in builtin_frameworks() if f != BUILTIN_PACK)]
    runs = []
    for framework in candidates:
        run = assess([file], pack_stack((), framework), stdin=sys.stdin)
        if not run.load_errors:
            return run, framework
        runs.append((run, framework))
        if file == "-":
            break  # standard input is read once
    return runs[0]


def _side_by_side(walk: Crosswalk, source: str, target: str, before: Any,
                  after_run: AssessmentRun, translation: Any) -> dict[str, Any]:
    after = after_run.assessment(before.model)
    to_doc = assessment_document(after)
    for key in MARKED:
        to_doc[key] = NOT_STATED
    from_doc = assessment_document(before)
    return {"model": before.model, "crosswalk": walk.name, "from": from_doc, "to": to_doc,
            "translated": translation.translated, "left_out": translation.left_out,
            "disagreements": disagreements(walk, source, target, from_doc, to_doc)}


def _text(result: dict[str, Any], source: str, target: str) -> str:
    before, after = result["from"], result["to"]
    lines = [f"{result['model']}: {source} {before['level']}  |  {target} "
             f"{after['level']}  (crosswalk {result['crosswalk']}; every row approximate)"]
    width = max((len(k) for k in [*before, *after]), default=10)
    keys = [k for k in before if k not in ("model", "pack", "conclusions")]
    keys += [k for k in after if k not in keys and k not in ("model", "pack", "conclusions")]
    lines.append(f"  {'':<{width}}  {source}  |  {target}")
    for key in keys:
        lines.append(f"  {key:<{width}}  {_shown(before.get(key, '-'))}  |  "
                     f"{_shown(after.get(key, '-'))}")
    lines.append("  translated:" + ("" if result["translated"] else " nothing"))
    for t in result["translated"]:
        lines.append(f"    {t['kind']} {t['evidence']}: {t['from']} -> {t['to']} "
                     f"({t['match']}: {t['why']})")
    lines.append("  left out:" + ("" if result["left_out"] else " nothing"))
    for item in result["left_out"]:
        lines.append(f"    {item['kind']} {item['evidence']}: {item['reason']}")
    lines.append("  disagreements:" + ("" if result["disagreements"] else " none"))
    for d in result["disagreements"]:
        lines.append(f"    {d['from']} is {d['from_status']} under {source}, but "
                     f"{d['to']} is {d['to_status']} under {target} ({d['match']}: "
                     f"{d['why']})")
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)
