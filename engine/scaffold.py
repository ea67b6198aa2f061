"""Scaffold a new rule and a test case for it, ready to validate and test as written.

`asl rules new` calls `scaffold` with the pack stack the rule will join. The rule matches
an expert or red-team finding that judges a capability crossed and concludes one fact of
the chosen kind (an `action` by default); the case gives a model such a finding and
expects that conclusion. Both are meant to be edited: they show the format, and they
pass `asl rules validate` and `asl rules test` until the author changes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engine.constraints import suggest
from engine.loader import PACK_NAME, RULE_ID
from engine.model import ORIGIN_DERIVED, Pack

TRIGGER_KIND = "finding"


class ScaffoldError(Exception):
    """The rule cannot be scaffolded as asked (one line saying how to fix it)."""


@dataclass(frozen=True)
class Scaffold:
    """The text of the new rule file and case file (and of a pack.yaml if needed)."""

    rule_yaml: str
    case_yaml: str


def _text(value: Any) -> str:
    """A scalar as YAML (JSON strings are valid YAML double-quoted scalars)."""
    return json.dumps(value, ensure_ascii=False)


def slug(text: str, separator: str = "_") -> str:
    """`acme.finding-review` -> `acme_finding_review`: a safe lower-case name."""
    return re.sub(r"[^a-z0-9]+", separator, text.lower()).strip(separator) or "rule"


def pack_yaml(directory_name: str) -> str:
    """A pack.yaml for a new overlay pack named after its directory."""
    name = slug(directory_name, "-")
    if not PACK_NAME.match(name):
        name = f"pack-{name}"
    return (f"# An overlay pack, loaded over the built-in pack with --pack.\n"
            f"name: {name}\ntitle: {_text(directory_name + ' rules')}\n")


def scaffold(pack: Pack, rule_id: str, title: str, cite: str, kind_out: str = "action"
             ) -> Scaffold:
    """The rule and case text for `rule_id` joining `pack`; `ScaffoldError` when the id,
    citation or kind cannot work in this pack."""
    if not RULE_ID.match(rule_id):
        raise ScaffoldError(f"--id {rule_id!r} must match {RULE_ID.pattern} "
                            "(for example acme.finding.review)")
    if any(r.id == rule_id for r in pack.rules):
        raise ScaffoldError(f"rule {rule_id!r} already exists; choose another --id (or, to "
                            "replace it, add `replaces:` and a `rationale` to a new rule)")
    if not re.match(pack.cite_pattern, cite):
        raise ScaffoldError(f"--cite {cite!r} does not match the pack's citation form "
                            f"{pack.cite_pattern!r} (for example 'RSP v2.1 §3.3')")
    trigger = pack.kinds.get(TRIGGER_KIND)
    if trigger is None or not {"capability", "verdict"} <= set(trigger.fields):
        raise ScaffoldError(f"the pack has no {TRIGGER_KIND!r} kind with capability and "
                            "verdict to start the rule from")
    kind = pack.kinds.get(kind_out)
    if kind is None or kind.origin != ORIGIN_DERIVED:
        derived = [k for k, v in pack.kinds.items() if v.origin == ORIGIN_DERIVED]
        raise ScaffoldError(f"--kind-out {kind_out!r} is not a kind rules conclude"
                            f"{suggest(kind_out, derived)}")
    if kind_out in pack.spec.single_valued():
        raise ScaffoldError(f"--kind-out {kind_out!r} is single-valued (the output reads "
                            "exactly one); conclude what it is derived from instead, e.g. "
                            "requirement or decision_candidate")
    # The output's first group first (rsp-2.1: the capability thresholds).
    first = pack.spec.categories[0] if pack.spec.categories else None
    capabilities = sorted(pack.capabilities, key=lambda c: c.category != first)
    if not capabilities:
        raise ScaffoldError("the pack declares no capability for the case's finding")
    capability = capabilities[0].name
    name = slug(rule_id.rsplit(".", 1)[-1] if "." in rule_id else rule_id)
    then: dict[str, str] = {}
    expect: dict[str, Any] = {}
    for fname, ftype in kind.fields.items():
        if fname == "capability" and ftype == "str":
            then[fname], expect[fname] = "{ref: f.capability}", capability
            continue
        value = {"str": name, "number": 1, "bool": True}.get(ftype, name)
        then[fname], expect[fname] = _text(value), value
    return Scaffold(_rule_text(rule_id, title, cite, kind_out, then),
                    _case_text(rule_id, kind_out, capability, expect))


def _flow(values: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def _rule_text(rule_id: str, title: str, cite: str, kind_out: str,
               then: dict[str, str]) -> str:
    return f"""\
# {rule_id}: scaffolded by `asl rules new`. Edit the conditions (`when`) and the
# conclusion (`then`), keep tests/{rule_id}.yaml in step, then run
#   asl rules validate DIR && asl rules test DIR
- id: {rule_id}
  title: {_text(title)}
  cite: {_text(cite)}
  because: "finding {{f.id}} judged {{f.capability}} crossed"
  when:
    - match: {TRIGGER_KIND}
      as: f
      where: {{verdict: crossed}}
  then:
    {kind_out}: {_flow(then)}
"""


def _case_text(rule_id: str, kind_out: str, capability: str, expect: dict[str, Any]) -> str:
    model_id = f"case-{slug(rule_id, '-')}"[:120]
    expected = _flow({k: _text(v) for k, v in expect.items()})
    return f"""\
# A test case for {rule_id} (`asl rules test DIR` runs it): a model whose red team
# judged {capability} crossed, and the conclusion the rule must then derive.
cases:
  - name: {_text(f"a finding that {capability} is crossed fires {rule_id}")}
    rules: [{rule_id}]
    model:
      model: {{id: {model_id}}}
      findings:
        - {{id: red-team-finding, threshold: {_text(capability)}, verdict: crossed}}
    expect:
      - {kind_out}: {expected}
"""
