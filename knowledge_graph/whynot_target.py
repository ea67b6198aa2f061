"""The targets of `asl why-not`: `SUBJECT=VALUE` parsed against the pack.

A target names a conclusion the analyst expected (`asl=ASL-2`, `decision=proceed`,
`action:safeguards_report=absent`; `target_forms` is the grammar). `parse_target` reads
it as a `Target`: the wanted fact (`engine.diagnose.Want`, whose key fields say which
conclusion it is) and whether it is wanted absent. Its subjects are those of `asl why
--conclusion` for the pack's framework (`knowledge_graph.provenance.subjects_for`);
values are checked against the pack's kinds and value domains, and a bad one is refused
with the valid forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.constraints import field_domains, suggest
from engine.diagnose import Want
from engine.facts_id import render_value
from engine.model import Operand, Pack, Test
from knowledge_graph.provenance import parse_selector, subjects_for

PRESENCE = ("present", "absent")
def target_forms(pack: Pack) -> str:
    """The targets the pack's framework answers, one form a line (`SUBJECT=VALUE`, with
    `SUBJECT:NAME` where the subject names one of several conclusions, and
    present|absent for a list's entries), with the values the pack's domain allows
    where it fixes a few."""
    domains = field_domains(pack)
    lines = ["valid targets (SUBJECT=VALUE):"]
    for name, subject in subjects_for(pack.spec).items():
        kind, key_field, value_field = subject[0], subject[1], subject[2]
        form = name if key_field is None else f"{name}:{key_field.upper()}"
        if value_field is None:
            lines.append(f"  {form}=present|absent")
            continue
        values = sorted(str(v).lower() if isinstance(v, bool) else str(v)
                        for v in domains.get((kind, value_field)) or ())
        # The value's name: its kind's for a kind's `value` (STATUS, DECISION), else
        # its field's (LEVEL).
        shown = (kind if value_field == "value" else value_field).upper()
        lines.append(f"  {form}={shown}" + (
            f"   (one of {', '.join(values)})" if 0 < len(values) <= 6 else ""))
    return "\n".join(lines)


class TargetError(ValueError):
    """A target that is not one of `target_forms`, or names what the pack does not know."""


@dataclass(frozen=True)
class Target:
    """A parsed target: the conclusion it is about (`want`, whose key fields say which
    conclusion it is: a fact matching the key but not the want was concluded instead),
    and whether the analyst wants it absent rather than present."""

    text: str
    want: Want
    absent: bool


def parse_target(text: str, pack: Pack) -> Target:
    """Parse `SUBJECT[:ARG|.ARG]=VALUE` (the subject a conclusion selector, as `asl why
    --conclusion` takes it) against the pack's kinds and value domains."""
    subject, sep, value = (s.strip() for s in text.partition("="))
    name, arg = parse_selector(subject)
    subjects = subjects_for(pack.spec)
    if not sep or not value or name not in subjects:
        reason = (f"unknown subject {name!r}{suggest(name, subjects)}" if sep and value
                  else "expected SUBJECT=VALUE")
        raise TargetError(f"bad target {text!r}: {reason}\n{target_forms(pack)}")
    kind, key_field, value_field, category = subjects[name]
    if kind not in pack.kinds:
        raise TargetError(f"bad target {text!r}: pack {pack.name} has no kind {kind!r}")
    if (key_field is None) != (not arg):
        wanted = f"{name}=VALUE" if key_field is None else f"{name}:{key_field.upper()}=VALUE"
        raise TargetError(f"bad target {text!r}: expected {wanted}\n"
                          f"{target_forms(pack)}")
    domains = field_domains(pack)
    tests: list[Test] = []
    if key_field is not None:
        known = domains.get((kind, key_field))
        if category is not None:
            known = frozenset(c.name for c in pack.capabilities if c.category == category)
        if known is not None and arg not in known:
            raise TargetError(f"bad target {text!r}: pack {pack.name} knows no {name} "
                              f"{arg!r}{suggest(arg, known)}; known: {_values(known)}")
        tests.append(Test(key_field, "eq", Operand(constant=arg)))
    if value_field is None:
        if value not in PRESENCE:
            raise TargetError(f"bad target {text!r}: {name}:{arg} takes present or absent")
        return Target(text, Want(kind, tuple(tests), frozenset(t.field for t in tests)),
                      value == "absent")
    typed = _typed(value, pack.kinds[kind].fields.get(value_field, "str"))
    known = domains.get((kind, value_field))
    if typed is None or (known is not None and typed not in known):
        valid = f"; valid: {_values(known)}" if known else ""
        raise TargetError(f"bad target {text!r}: {value!r} is not a value of "
                          f"{kind}.{value_field}{suggest(value, known or ())}{valid}")
    key = frozenset(t.field for t in tests)
    tests.append(Test(value_field, "eq", Operand(constant=typed)))
    return Target(text, Want(kind, tuple(tests), key), False)


def _values(domain: frozenset[Any]) -> str:
    """A domain as the analyst would type its values: `false, true`, `'CBRN-3', ...`."""
    shown = sorted(render_value(v) for v in domain)
    text = ", ".join(shown[:8])
    return text + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")


def _typed(value: str, ftype: str) -> Any:
    if ftype == "bool":
        return {"true": True, "false": False}.get(value.lower())
    if ftype == "number":
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    return value
