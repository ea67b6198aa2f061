"""`asl why-not`: what stands in the way of a conclusion the analyst expected.

Parses the target (`knowledge_graph.whynot.target_forms`), assesses the file as `asl
assess` would (a portfolio in reference order, `--model` choosing one model), and
prints `knowledge_graph.whynot.why_not` as JSON, or as text for an analyst
(`render_text`: the same content, indented, opening with the answer: the few smallest
changes of evidence that make the target hold, each checked as a what-if by
`knowledge_graph.whynot_changes`). Exit status: 0 when the answer
was given (whether or not the target holds); 1 when the pack or the engine failed,
including when the diagnosis disagrees with what durable-rules fired (the report is
still printed, the disagreement named); 2 for a bad target or rejected evidence.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from cli.options import (
    EXIT_FAILED,
    EXIT_REJECTED,
    choose_model,
    dumps,
    fail,
    load_evaluator,
    pack_option,
    report,
)
from engine.api import assess
from engine.diagnose import FAILED_TEST
from engine.evidence_reading import STDIN_NAME
from engine.facts_id import render_value
from engine.ruletext import cite_text
from knowledge_graph.explain import describe_values
from knowledge_graph.report import provenance
from knowledge_graph.whynot import TargetError, parse_target, why_not
from knowledge_graph.whynot_changes import MAX_SIZE, Change, smallest_changes


@click.command("why-not")
@click.argument("file")
@click.argument("target")
@click.option("--model", "model_id", help="The model to explain (needed for a portfolio).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@pack_option
def why_not_command(file: str, target: str, model_id: str | None, fmt: str,
                    db: str | None, packs: tuple[str, ...]) -> None:
    """Show what stands in the way of TARGET for the model in FILE: the conclusions
    that prevent it (with their evidence), and for each rule that would conclude it,
    the condition that failed and by how much.

    The text opens with the answer: the few smallest changes of the evidence that make
    TARGET hold, each checked by assessing again with it (as asl what-if does).

    \b
    TARGET is SUBJECT=VALUE:
      asl=ASL-2   decision=proceed   comprehensive=false   required.security=ASL-2
      threshold:CBRN-3=ruled_out   'checkpoint:Autonomy checkpoint=ruled_out'
      ongoing:'Cyber operations'=not_assessed   status:CAPABILITY=STATUS
      action:safeguards_report=absent   missing:asl3-security.audits=absent
    (action: and missing: take present or absent.)

    \b
    Examples:
      asl why-not examples/security-gap-pause.yaml decision=proceed
      asl why-not examples/portfolio/lineage.yaml --model corvid-atlas-5-chat asl=ASL-2
      asl why-not examples/cbrn4-asl4-pause.yaml threshold:CBRN-4=ruled_out --format json
    """
    evaluator = load_evaluator(packs)
    try:
        parsed = parse_target(target, evaluator.pack)
    except TargetError as exc:
        fail(str(exc), EXIT_REJECTED)
    run = assess([file], evaluator=evaluator, stdin=sys.stdin)  # its inputs: what-ifs
    report(run.rejected)
    chosen = choose_model(run.assessments, model_id, file)
    answer = why_not(chosen, parsed, provenance(chosen))
    if fmt == "json":
        click.echo(dumps(answer, default=str))
    else:
        label = STDIN_NAME if file == "-" else file
        changes = smallest_changes(run, chosen.model, label, parsed, answer)
        click.echo(render_text(answer, changes), nl=False)
    if answer["inconsistencies"]:
        sys.exit(EXIT_FAILED)
    if run.rejected:
        sys.exit(EXIT_REJECTED)


def describe(fact: dict[str, Any]) -> str:
    """`evaluation ex-rnd-suite [evaluations[1]]: capability=AI R&D-4, ...`."""
    where = f" [{fact['entry']}]" if fact.get("entry") else ""
    listed = "" if fact.get("listed", True) else " (not listed: a pack default)"
    return f"{fact['kind']} {fact['label']}{where}{listed}: {describe_values(fact['values'])}"


def render_text(report: dict[str, Any], changes: list[list[Change]] | None = None) -> str:
    """The report for an analyst: the `changes` that make the target hold (when given:
    the answer comes first), what stands in the way (each conclusion with its rules,
    evidence and alternatives), then the rules that could conclude the target and,
    condition by condition, why they did not."""
    lines = [f"{report['model']}: why not {report['target']}?"]
    if report["holds"]:
        if report["present"]:
            lines.append(f"It holds: {', '.join(report['present'])} was concluded "
                         "(asl why shows the evidence).")
        else:
            lines.append(f"It holds: {report['wanted'][3:]} was not concluded.")
        return "\n".join(lines) + "\n"
    lines.append(f"It does not hold: wanted {report['wanted']}.")
    if changes is not None:
        lines += _change_lines(changes)
    shown: set[str] = set()
    if report["standing"]:
        lines += ["", "What stands in the way:"]
    for entry in report["standing"]:
        role = {"instead": "concluded instead", "concluded": "concluded"}.get(
            entry["role"], "blocks " + ", ".join(entry["blocks"]))
        lines.append(f"  {entry['id']}  [{role}]")
        for step in entry["chain"]:
            cite = cite_text(step["cite"], step.get("pack"))
            lines.append(f"  {'  ' * step['depth']}<- {step['rule']} [{cite}]: {step['because']}")
        if any(step["more"] for step in entry["chain"]):
            lines.append(f"    ... (asl why --conclusion '{entry['id']}' shows the rest)")
        for fact in entry["evidence"]:
            if fact["id"] in shown:
                lines.append(f"    rests on {fact['kind']} {fact['label']} (see above)")
                continue
            shown.add(fact["id"])
            lines.append(f"    rests on {describe(fact)}")
            for reader in fact["read_by"]:
                lines.append(f"      read by {reader['rule']}" + (":" if reader["held"] else ""))
                lines += [f"        {held['text']}" for held in reader["held"]]
            for alt in fact["alternatives"]:
                lines.append(f"      not read by {alt['rule']} (would conclude "
                             f"{'; '.join(alt['concludes'])}):")
                lines += _partials(alt, "        ")
    if report["rules"] or not report["standing"]:
        lines += ["", f"Rules that could conclude {report['wanted']}:"]
        if not report["rules"] and not report["present"]:
            lines.append("  none: no rule of the pack can conclude it")
    for rule in report["rules"]:
        _rule_lines(rule, "  ", lines)
    _never_lines(report["never"], "  ", lines)
    for problem in report["inconsistencies"]:
        binding = ", ".join(f"{n}={f}" for n, f in problem["binding"])
        lines.append(f"ENGINE INCONSISTENCY: {problem['rule']} [{binding}]: "
                     f"{problem['message']}")
    return "\n".join(lines) + "\n"


def _change_lines(changes: list[list[Change]]) -> list[str]:
    """The to-do list: each set of changes as the `--set` options of `asl what-if`."""
    if not changes:
        return ["", f"No change of at most {MAX_SIZE} of the evidence values named below "
                "makes it hold (each was tried as a what-if)."]
    lines = ["", "Smallest changes that make it hold (each checked with asl what-if):"]
    for number, group in enumerate(changes, 1):
        for index, change in enumerate(group):
            lead = f"{number}." if index == 0 else ""
            now = "unset" if change.now is None else render_value(change.now)
            option = shlex.quote(f"{change.path}={change.text()}")
            lines.append(f"  {lead:<3}--set {option}  (now {now})")
    return lines


def _rule_lines(rule: dict[str, Any], pad: str, lines: list[str]) -> None:
    cite = cite_text(rule["cite"], rule.get("pack"))
    lines.append(f"{pad}{rule['rule']}: {rule['title']} [{cite}]")
    lines.append(f"{pad}  concludes {'; '.join(rule['concludes'])}")
    if rule["target_tests"]:
        wanted = ", ".join(f"{t['of']} {t['name']} with {t['test']}"
                           for t in rule["target_tests"])
        lines.append(f"{pad}  for the wanted conclusion it needs {wanted}")
    lines += _partials(rule, pad + "  ")
    for below in rule["below"]:
        inner = pad + "    "
        if below["repeated"]:
            lines.append(f"{pad}  which needs {below['wanted']}: explained above")
            continue
        if below["present"]:
            continue
        lines.append(f"{pad}  which needs {below['wanted']}; "
                     + ("rules that could conclude it:" if below["rules"]
                        else "no rule of the pack concludes that"))
        for sub in below["rules"]:
            _rule_lines(sub, inner, lines)
        _never_lines(below["never"], inner, lines)


def _never_lines(never: list[dict[str, Any]], pad: str, lines: list[str]) -> None:
    """The rules concluding the wanted kind that can never conclude the wanted fact."""
    for rule in never:
        lines.append(f"{pad}{rule['rule']} [{rule['cite']}] never concludes it: {rule['reason']}")


def _partials(rule: dict[str, Any], pad: str) -> list[str]:
    """Each best partial match: what matched, then the condition that failed and why."""
    lines = []
    last = None
    for partial in rule["partial_matches"]:
        done = ", ".join(f"{b['name']} = {b['label']}" for b in partial["binding"])
        if (done, partial["condition"]) != last:
            last = (done, partial["condition"])
            lines.append(f"{pad}matched {partial['satisfied']} of {rule['conditions']} "
                         f"conditions{': ' + done if done else ''}")
            lines.append(f"{pad}fails condition {partial['condition'] + 1}, "
                         f"{partial['condition_text']}:")
        for failure in partial["failures"]:
            if failure["reason"] == FAILED_TEST:
                extra = " (for the wanted conclusion)" if failure.get("from_target") else ""
                lines.append(f"{pad}  {failure['label']}: {failure['text']}{extra}")
            else:
                lines.append(f"{pad}  {failure['text']}")
    if rule["omitted"]:
        lines.append(f"{pad}(and {rule['omitted']} more partial matches as close)")
    if rule["truncated"]:
        lines.append(f"{pad}(search cut short: too many combinations)")
    return lines
