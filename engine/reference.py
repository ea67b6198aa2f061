"""The rule reference: every rule of a pack (id, title, citation, `because`), as Markdown.

Generated from the loaded pack so that the documentation cannot drift from the rules;
`docs/rule-reference.md` is this output for the built-in pack, and a test fails when
it is stale (`asl rules reference > docs/rule-reference.md` regenerates it).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from engine.model import Pack, Rule
from engine.ruletext import rule_row


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(pack: Pack, rule: Rule) -> str:
    """A rule's table row: what every listing shows of it (`rule_row`), and `because`."""
    row = rule_row(pack, rule)
    return (f"| `{row['id']}` | {_cell(row['title'])} | {_cell(row['cite'])} | "
            f"{_cell(rule.because)} | {row['stratum']} |")


def reference_markdown(pack: Pack) -> str:
    """One section per rule file, one table row per rule, in file order."""
    by_file: dict[str, list[Rule]] = defaultdict(list)
    for rule in pack.rules:
        by_file[rule.file].append(rule)
    lines = [f"# Rule reference: {pack.name}", "",
             f"{pack.title}. Generated from the pack ({len(pack.rules)} rules); do not edit "
             "by hand: run `asl rules reference > docs/rule-reference.md`.", ""]
    for file in sorted(by_file, key=lambda f: (Path(f).parent.parent.name, Path(f).name)):
        rules = sorted(by_file[file], key=lambda r: r.line)
        pack_dir = Path(file).parent.parent.name
        lines += [f"## {pack_dir}/rules/{Path(file).name}", "",
                  "| id | title | citation | because | stratum |",
                  "|---|---|---|---|---|"]
        lines += [_row(pack, rule) for rule in rules]
        lines.append("")
    return "\n".join(lines)
