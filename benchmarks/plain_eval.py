"""A plain-Python evaluation of the built-in `rsp-2.1` pack, written straight from the spec.

Why it exists: it is the speed lower bound the rule engine is benchmarked against, and an
independent oracle for differential tests (same input, the engine and this module must
give the same contract keys). It therefore shares no code with `engine/` or the rule pack:
every step below is one paragraph of `../shared/spec/rsp-2.1-semantics.md`, re-read and
re-encoded by hand, using only the standard library. It does not validate its input; feed
it documents that follow evidence-format.md.

    evaluate(doc, reference=None) -> dict      one model document -> the contract keys
    evaluate_portfolio(docs) -> list[dict]     reference order in, sorted by model id out

Running the module checks it against the test suite's own cases, `tests/data/expected.json`
(or those of a directory given as its argument, laid out the same way).
"""

from __future__ import annotations

from typing import Any

CROSSED, CANNOT_RULE_OUT, RULED_OUT, NOT_ASSESSED = (
    "crossed", "cannot_rule_out", "ruled_out", "not_assessed",
)
# Signals by severity; 0 is "no signal" (status not_assessed).
SEVERITY = {RULED_OUT: 1, CANNOT_RULE_OUT: 2, CROSSED: 3}
STATUS = {0: NOT_ASSESSED, 1: RULED_OUT, 2: CANNOT_RULE_OUT, 3: CROSSED}

CBRN3, CBRN4, RND4, RND5 = "CBRN-3", "CBRN-4", "AI R&D-4", "AI R&D-5"
CHECKPOINT, CYBER = "Autonomy checkpoint", "Cyber operations"
THRESHOLDS = (CBRN3, CBRN4, RND4, RND5)
CAPABILITIES = (*THRESHOLDS, CHECKPOINT, CYBER)
TIER_PAIRS = ((CBRN3, CBRN4), (RND4, RND5))  # (lower, upper)
LOWER_TIERS = (CBRN3, RND4)
# Required (deployment, security) level, as an int, when a threshold cannot be ruled out.
REQUIRES = {CBRN3: (3, 3), CBRN4: (4, 4), RND4: (2, 3), RND5: (2, 4)}

# Semantics §4: elements of each standard; ASL-4 standards are undefined (no elements).
CATALOGUE: dict[str, tuple[str, ...]] = {
    "asl2-deployment": ("acceptable-use-and-model-cards", "harmlessness-training-and-detection",
                        "fine-tuning-protections", "vulnerability-reporting"),
    "asl2-security": ("supply-chain", "offices", "workforce", "compartmentalization",
                      "infrastructure", "operations"),
    "asl3-deployment": ("threat-modeling", "defense-in-depth", "red-teaming",
                        "rapid-remediation", "monitoring", "trusted-users",
                        "third-party-environments"),
    "asl3-security": ("threat-modeling", "perimeters-and-access-controls", "lifecycle-security",
                      "monitoring", "resourcing", "existing-guidance", "audits",
                      "third-party-environments"),
    "asl4-deployment": (),
    "asl4-security": (),
}
RED_TEAMING = "asl3-deployment.red-teaming"
OPEN_WEIGHTS = "open_weights"


def _asl(level: int) -> str:
    return f"ASL-{level}"


def _level(asl: str | None) -> int:
    """`ASL-3` -> 3; a missing determination -> 2 (the baseline, i.e. no floor)."""
    return int(asl.rsplit("-", 1)[1]) if asl else 2


def _evaluation_signal(ev: dict[str, Any]) -> int:
    """Semantics §1: the signal one evaluation gives (0 = none)."""
    score, bar = ev["score"], ev["threshold_score"]
    warning = ev.get("warning_score")
    if warning is None:
        warning = bar
    rule_in = ev.get("purpose", "rule_out") == "rule_in"
    if score >= bar:
        return SEVERITY[CROSSED] if rule_in else SEVERITY[CANNOT_RULE_OUT]
    if rule_in:  # a failed rule-in test rules nothing out, not even inside the margin
        return 0
    if score >= warning:
        return SEVERITY[CANNOT_RULE_OUT]
    return SEVERITY[RULED_OUT] if ev.get("elicitation", "full") == "full" else 0


def _statuses(doc: dict[str, Any]) -> dict[str, int]:
    """Semantics §1: the most severe signal per capability, with implied rule-outs."""
    sev = dict.fromkeys(CAPABILITIES, 0)
    for ev in doc.get("evaluations") or ():
        s = _evaluation_signal(ev)
        if s > sev[ev["threshold"]]:
            sev[ev["threshold"]] = s
    for finding in doc.get("findings") or ():
        s = SEVERITY[finding["verdict"]]
        if s > sev[finding["threshold"]]:
            sev[finding["threshold"]] = s
    ruled = SEVERITY[RULED_OUT]
    # The checkpoint's own status first, then lower tiers, then upper tiers, so that an
    # implied rule-out can chain (checkpoint -> AI R&D-4 -> AI R&D-5). `max` keeps any
    # more severe status from the capability's own evidence.
    if sev[CHECKPOINT] == ruled:
        sev[RND4] = max(sev[RND4], ruled)
        sev[RND5] = max(sev[RND5], ruled)
    for lower, upper in TIER_PAIRS:
        if sev[lower] == ruled:
            sev[upper] = max(sev[upper], ruled)
    return sev


def _comprehensive_required(
    doc: dict[str, Any], reference: dict[str, Any] | None
) -> tuple[bool, str | None]:
    """Semantics §2: (is a comprehensive assessment required, the determination to carry)."""
    model = doc["model"]
    last = model.get("last_comprehensive_assessment")
    if last is None:
        return True, None
    ref_compute = last.get("effective_compute_flop")
    determination = last.get("determination")
    if reference is not None:
        if ref_compute is None:
            ref_compute = reference.get("effective_compute_flop")
        if determination is None:
            determination = reference.get("asl")
    if last["months_since"] >= 6:
        return True, determination
    compute = model.get("effective_compute_flop")
    if compute is None or ref_compute is None:
        return True, determination
    return compute / ref_compute >= 4, determination


def _missing_safeguards(
    doc: dict[str, Any], deployment: int, security: int, open_weights: bool
) -> tuple[list[str], list[str]]:
    """Semantics §4: (missing deployment ids, missing security ids) of the required standards."""
    status = {entry["id"]: entry["status"] for entry in doc.get("safeguards") or ()}
    missing: tuple[list[str], list[str]] = ([], [])
    for kind, level, out in (("deployment", deployment, missing[0]),
                             ("security", security, missing[1])):
        for lvl in range(2, level + 1):
            standard = f"asl{lvl}-{kind}"
            elements = CATALOGUE[standard]
            if not elements:  # undefined (ASL-4): missing by its own id, whatever it says
                out.append(standard)
                continue
            whole = status.get(standard)
            for element in elements:
                eid = f"{standard}.{element}"
                if status.get(eid, whole) != "implemented" or (
                    open_weights and eid == RED_TEAMING
                ):
                    out.append(eid)
    return missing


def evaluate(doc: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assess one model document; `reference` fills a missing reference compute/determination.

    `reference` is `{"effective_compute_flop": float | None, "asl": "ASL-n"}` for the model
    that `last_comprehensive_assessment.model` names in a portfolio. Returns the contract
    keys of assessment-output.md (without `pack` and `conclusions`).
    """
    sev = _statuses(doc)
    comprehensive, determination = _comprehensive_required(doc, reference)
    channels = set((doc.get("deployment") or {}).get("channels") or ())
    open_weights = OPEN_WEIGHTS in channels

    # Semantics §3: a threshold "counts" (raises standards) when crossed / cannot_rule_out,
    # or when precautionary: lower tier, not_assessed, comprehensive assessment required.
    precautionary = {t for t in LOWER_TIERS if comprehensive and sev[t] == 0}
    counts = {t for t in THRESHOLDS if sev[t] >= SEVERITY[CANNOT_RULE_OUT]} | precautionary
    deployment = security = 2
    for t in counts:
        d, s = REQUIRES[t]
        deployment, security = max(deployment, d), max(security, s)
    if not comprehensive:
        floor = _level(determination)
        deployment, security = max(deployment, floor), max(security, floor)
    asl = max(deployment, security)

    missing_d, missing_s = _missing_safeguards(doc, deployment, security, open_weights)
    not_assessed_lower = any(sev[t] == 0 for t in LOWER_TIERS)
    follow_up = any(sev[upper] == 0 and lower in counts for lower, upper in TIER_PAIRS)

    # Semantics §5: the most severe decision that applies.
    if missing_s or deployment >= 4 or security >= 4:
        decision = "pause"
    elif missing_d or (open_weights and security >= 3):
        decision = "restrict_deployment"
    elif (comprehensive and not_assessed_lower) or follow_up:
        decision = "assessment_required"
    else:
        decision = "proceed"

    # Semantics §6.
    safeguards_report = deployment > 2 or security > 2
    reports = comprehensive or safeguards_report
    triggered = {
        "capability_report": comprehensive,
        "complete_capability_assessment": comprehensive and not_assessed_lower,
        "follow_up_assessment": follow_up,
        "safeguards_report": safeguards_report,
        "affirmative_misalignment_case": RND4 in counts or RND5 in counts,
        "define_asl4_standard": deployment >= 4 or security >= 4,
        "notify_board_and_ltbt": reports and bool(channels),
        "publish_report_summaries": reports and bool(channels - {"internal"}),
        "notify_us_government": asl > 2,
        "interim_measures": decision in ("pause", "restrict_deployment"),
        "block_open_weights_release": open_weights and security >= 3,
        "autonomy_checkpoint_response": sev[CHECKPOINT] >= SEVERITY[CANNOT_RULE_OUT],
        "cyber_expert_review": sev[CYBER] >= SEVERITY[CANNOT_RULE_OUT],
    }
    return {
        "model": doc["model"]["id"],
        "asl": _asl(asl),
        "required": {"deployment": _asl(deployment), "security": _asl(security)},
        "comprehensive_assessment_required": comprehensive,
        "thresholds": {t: STATUS[sev[t]] for t in THRESHOLDS},
        "checkpoints": {CHECKPOINT: STATUS[sev[CHECKPOINT]]},
        "ongoing_assessment": {CYBER: STATUS[sev[CYBER]]},
        "missing_safeguards": sorted(missing_d + missing_s),
        "decision": decision,
        "actions": sorted(name for name, on in triggered.items() if on),
    }


def _reference_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order documents so that a model named by `last_comprehensive_assessment.model` comes
    first. Raises ValueError on a duplicate id or a reference cycle (an input error)."""
    by_id: dict[str, dict[str, Any]] = {}
    for doc in docs:
        mid = doc["model"]["id"]
        if mid in by_id:
            raise ValueError(f"duplicate model id {mid!r}")
        by_id[mid] = doc
    done: set[str] = set()
    order: list[dict[str, Any]] = []
    for start in by_id:  # iterative depth-first walk along the single reference chain
        chain: list[str] = []
        seen: set[str] = set()
        mid: str | None = start
        while mid is not None and mid in by_id and mid not in done:
            if mid in seen:
                cycle = " -> ".join([*chain[chain.index(mid):], mid])
                raise ValueError(f"last_comprehensive_assessment cycle: {cycle}")
            chain.append(mid)
            seen.add(mid)
            last = by_id[mid]["model"].get("last_comprehensive_assessment")
            mid = last.get("model") if last else None
        for mid in reversed(chain):
            done.add(mid)
            order.append(by_id[mid])
    return order


def evaluate_portfolio(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assess a portfolio in reference order; return the results sorted by model id.

    A model whose `last_comprehensive_assessment.model` names another model of the list
    gets that model's `effective_compute_flop` and assessed `asl` as its `reference`.
    """
    ordered = _reference_order(docs)
    compute = {doc["model"]["id"]: doc["model"].get("effective_compute_flop") for doc in ordered}
    results: dict[str, dict[str, Any]] = {}
    for doc in ordered:
        last = doc["model"].get("last_comprehensive_assessment")
        ref_id = last.get("model") if last else None
        reference = None
        if ref_id in results:
            reference = {"effective_compute_flop": compute[ref_id], "asl": results[ref_id]["asl"]}
        results[doc["model"]["id"]] = evaluate(doc, reference)
    return [results[mid] for mid in sorted(results)]


def _self_check(examples: str | None = None) -> int:
    """Compare against the cases in `examples` (default: the test suite's own, tests/data);
    print OK or a diff per case; return the number of failures."""
    import json
    import re
    from pathlib import Path

    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads YAML-1.2 floats such as `4.0e26` and `1e26`."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    cases = Path(examples) if examples else Path(__file__).resolve().parents[1] / "tests" / "data"
    expected = json.loads((cases / "expected.json").read_text())
    failures = 0
    for name, want in sorted(expected.items()):
        data = yaml.load((cases / f"{name}.yaml").read_text(), Loader=Loader)
        got: Any = evaluate_portfolio(data["models"]) if "models" in data else evaluate(data)
        if got == want:
            print(f"OK    {name}")
            continue
        failures += 1
        print(f"DIFF  {name}")
        for g, w in zip(got if isinstance(got, list) else [got],
                        want if isinstance(want, list) else [want], strict=False):
            for key in sorted(set(g) | set(w)):
                if g.get(key) != w.get(key):
                    print(f"  {w.get('model')}.{key}: got {g.get(key)!r}, want {w.get(key)!r}")
    return failures


if __name__ == "__main__":
    import sys

    raise SystemExit(1 if _self_check(*sys.argv[1:2]) else 0)
