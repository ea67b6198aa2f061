"""Deterministic synthetic portfolios of model documents, for benchmarks and differential tests.

Why it exists: benchmarks need thousands of realistic, valid evidence documents
(evidence-format.md), and differential tests need inputs varied enough that every status,
decision and action of rsp-2.1-semantics.md is reached. Each model gets a latent capability
per domain (CBRN, AI R&D/autonomy, cyber); its evaluation scores and findings scatter around
it, so a portfolio holds clear rule-outs, safety-margin cases, crossings and thin evidence.
Safeguards, deployment channels and the last comprehensive assessment vary independently.

    generate_models(n, seed=0, lineage=False) -> list[dict]   same arguments, same documents
    write_portfolio(path, models)                               JSON Lines, one model a line

Running the module generates 1,000 models, assesses them with `plain_eval`, and prints how
often each status, decision and action was reached, and the evaluation speed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

try:
    from benchmarks import plain_eval
except ImportError:  # run as a script, or with benchmarks/ itself on sys.path
    import plain_eval  # type: ignore[no-redef]

# The names and catalogue are the spec's; take them from the plain evaluator.
CBRN3, CBRN4, RND4, RND5 = plain_eval.THRESHOLDS
CHECKPOINT, CYBER = plain_eval.CHECKPOINT, plain_eval.CYBER
CAPABILITIES = plain_eval.CAPABILITIES
# capability -> (domain of its latent capability, how hard it is relative to that domain)
DIFFICULTY = {
    CBRN3: ("cbrn", 1.0), CBRN4: ("cbrn", 0.62), RND4: ("rnd", 0.85), RND5: ("rnd", 0.62),
    CHECKPOINT: ("rnd", 1.0), CYBER: ("cyber", 1.0),
}
CAPABILITY_WEIGHTS = (3.0, 1.5, 1.5, 1.0, 2.0, 1.5)

# The defined standards (ASL-4 has no elements in RSP v2.1).
STANDARDS: dict[str, tuple[str, ...]] = {
    name: elements for name, elements in plain_eval.CATALOGUE.items() if elements}
NOT_DONE = ("partial", "planned", "absent")

# (channels or None for "no deployment key", weight)
CHANNEL_CHOICES: tuple[tuple[list[str] | None, float], ...] = (
    (None, 12), ([], 2), (["internal"], 14), (["api"], 14), (["api", "consumer"], 14),
    (["consumer"], 5), (["cloud_platform"], 5), (["api", "cloud_platform"], 8),
    (["internal", "api", "consumer"], 6), (["open_weights"], 5), (["api", "open_weights"], 5),
    (["internal", "open_weights"], 3),
)
DEVELOPERS = ("Acme AI", "Fennwick AI", "Larkspur Labs", "Oriel Systems", "Tidewater Research")


def _r3(x: float) -> float:
    """Round to 3 decimals: short, readable, exactly reproducible numbers."""
    return round(x, 3)


def _flop(x: float) -> float:
    """Effective compute rounded to 3 significant digits (e.g. 4.27e+26)."""
    return float(f"{x:.3g}")


def _ratio(rng: random.Random, latent: dict[str, float], capability: str) -> float:
    """Noisy score / threshold_score for one measurement of `capability`."""
    domain, scale = DIFFICULTY[capability]
    return max(0.0, latent[domain] * scale + rng.gauss(0.0, 0.08))


def _evaluation(
    rng: random.Random, eid: str, capability: str, latent: dict[str, float]
) -> dict[str, Any]:
    """One evaluation: rule_out (benchmark-style, 0..1 scale) or rule_in (uplift-trial style)."""
    rule_in = rng.random() < 0.18
    bar = _r3(rng.uniform(1.5, 3.0) if rule_in else rng.uniform(0.4, 0.9))
    ev: dict[str, Any] = {"id": eid, "threshold": capability}
    if rule_in:
        ev["purpose"] = "rule_in"
    elif rng.random() < 0.3:
        ev["purpose"] = "rule_out"  # the default, sometimes written out
    ev["score"] = _r3(bar * _ratio(rng, latent, capability))
    ev["threshold_score"] = bar
    if rng.random() < 0.75:
        ev["warning_score"] = min(bar, _r3(bar * rng.uniform(0.7, 0.95)))
    elicitation = rng.choices(("full", "partial", "none", None), (45, 20, 8, 27))[0]
    if elicitation is not None:
        ev["elicitation"] = elicitation
    if rng.random() < 0.4:
        ev["source"] = f"evals/runs/{eid}/summary.json"
    if rng.random() < 0.3:
        ev["date"] = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return ev


def _finding(
    rng: random.Random, fid: str, capability: str, latent: dict[str, float]
) -> dict[str, Any]:
    """One expert or red-team judgement, consistent on average with the latent capability."""
    ratio = _ratio(rng, latent, capability)
    if ratio >= 1.0:
        verdict = "crossed" if rng.random() < 0.5 else "cannot_rule_out"
    elif ratio >= 0.8:
        verdict = "cannot_rule_out"
    else:
        verdict = "ruled_out"
    finding: dict[str, Any] = {"id": fid, "threshold": capability, "verdict": verdict}
    if rng.random() < 0.5:
        finding["source"] = f"red-team report RT-{rng.randint(100, 999)}"
    return finding


def _safeguards(rng: random.Random) -> list[dict[str, Any]]:
    """Safeguard entries at standard and element granularity, with gaps and overrides."""
    status: dict[str, str] = {}
    maturity = rng.choices(("asl2", "asl3", "asl3-gaps", "elements", "sparse"),
                           (15, 45, 22, 10, 8))[0]
    if maturity == "sparse":  # some standards simply unlisted: not implemented
        for standard in STANDARDS:
            if rng.random() < 0.6:
                status[standard] = rng.choice(("implemented", *NOT_DONE))
    elif maturity == "elements":  # every element of some standards written out one by one
        for standard, elements in STANDARDS.items():
            for element in elements:
                done = rng.random() < 0.97
                status[f"{standard}.{element}"] = "implemented" if done else rng.choice(NOT_DONE)
    else:
        status["asl2-deployment"] = "implemented"
        status["asl2-security"] = "implemented"
        if maturity == "asl2":
            if rng.random() < 0.4:
                status["asl3-security"] = rng.choice(NOT_DONE)
        else:
            status["asl3-deployment"] = "implemented"
            status["asl3-security"] = "implemented"
    if maturity == "asl3-gaps":
        standard = rng.choice(tuple(STANDARDS))
        if rng.random() < 0.3:  # a partial standard whose elements are mostly done
            status[standard] = rng.choice(NOT_DONE)
            for element in STANDARDS[standard]:
                if rng.random() < 0.85:
                    status[f"{standard}.{element}"] = "implemented"
        else:  # an implemented standard with one or two elements overridden as not done
            for element in rng.sample(STANDARDS[standard], rng.randint(1, 2)):
                status[f"{standard}.{element}"] = rng.choice(NOT_DONE)
    if rng.random() < 0.05:  # ASL-4 entries are listed but can never count as implemented
        status[rng.choice(("asl4-deployment", "asl4-security"))] = "implemented"
    entries = [{"id": sid, "status": st} for sid, st in status.items()]
    for entry in entries:
        if rng.random() < 0.15:
            entry["evidence"] = f"safeguards report SR-{rng.randint(1, 99)}"
    return entries


def _model_header(
    rng: random.Random, mid: str, i: int, models: list[dict[str, Any]], lineage: bool
) -> dict[str, Any]:
    """The `model:` mapping: compute, predecessor and last comprehensive assessment."""
    header: dict[str, Any] = {"id": mid}
    if rng.random() < 0.5:
        header["name"] = f"Synth {i}"
    if rng.random() < 0.5:
        header["developer"] = rng.choice(DEVELOPERS)
    compute = _flop(10 ** rng.uniform(24.0, 27.5))
    if rng.random() < 0.95:
        header["effective_compute_flop"] = compute
    if rng.random() < 0.15:
        return header  # no last comprehensive assessment: first of its line
    growth = rng.choices((rng.uniform(1.0, 1.5), rng.uniform(1.5, 3.9), rng.uniform(4.0, 10.0)),
                         (45, 30, 25))[0]
    last: dict[str, Any] = {"model": f"legacy-{i:06d}"}
    ref_compute: float | None = compute / growth
    if rng.random() < 0.08:
        ref_compute = None
    determination: str | None = rng.choices(("ASL-2", "ASL-3", "ASL-4"), (60, 36, 4))[0]
    if lineage and i > 0 and rng.random() < 0.45:
        parent = models[rng.randrange(max(0, i - 40), i)]["model"]  # always an earlier model
        last["model"] = parent["id"]
        if "effective_compute_flop" in parent:  # keep the growth ratio meaningful
            ref_compute = parent["effective_compute_flop"]
            if "effective_compute_flop" in header:
                header["effective_compute_flop"] = _flop(ref_compute * growth)
        if rng.random() < 0.7:
            header["predecessor"] = parent["id"]
        if rng.random() < 0.6:
            ref_compute = None  # taken from the portfolio
        if rng.random() < 0.6:
            determination = None  # taken from the parent's own assessment
    elif rng.random() < 0.2:
        header["predecessor"] = f"legacy-{i:06d}"
    if ref_compute is not None:
        last["effective_compute_flop"] = _flop(ref_compute)
    last["months_since"] = rng.choices(range(13), (6, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2, 2, 2))[0]
    if determination is not None:
        last["determination"] = determination
    header["last_comprehensive_assessment"] = last
    return header


def generate_models(n: int, seed: int = 0, lineage: bool = False) -> list[dict[str, Any]]:
    """Return `n` valid model documents, ids `synth-000000` upwards, the same for each seed.

    With `lineage=True`, some models' `last_comprehensive_assessment.model` (and often
    `predecessor`) name an earlier model of the list, never a later one (so no cycle), and
    may omit its compute and determination so that a portfolio assessment fills them in.
    """
    rng = random.Random(seed)
    models: list[dict[str, Any]] = []
    for i in range(n):
        mid = f"synth-{i:06d}"
        doc: dict[str, Any] = {"model": _model_header(rng, mid, i, models, lineage)}
        # Latent capability per domain, skewed low: most models are clearly below the
        # lower tier, a few reach into the upper tiers.
        latent = {domain: 0.3 + 1.3 * rng.random() ** 1.6 for domain in ("cbrn", "rnd", "cyber")}
        if rng.random() < 0.06:  # the rare frontier model, well into an upper tier
            latent[rng.choice(("cbrn", "rnd"))] = rng.uniform(1.6, 2.1)
        # Thin-evidence models study only a few capabilities; the rest stay not_assessed.
        breadth = rng.choices((1, 2, 3, 4, 5, 6), (8, 10, 14, 18, 20, 30))[0]
        covered = rng.sample(CAPABILITIES, breadth)
        weights = [CAPABILITY_WEIGHTS[CAPABILITIES.index(c)] for c in covered]
        evaluations: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        for k in range(rng.randint(3, 10)):
            capability = rng.choices(covered, weights)[0]
            if rng.random() < 0.25:
                findings.append(_finding(rng, f"{mid}-finding-{k}", capability, latent))
            else:
                evaluations.append(_evaluation(rng, f"{mid}-eval-{k}", capability, latent))
        if evaluations:
            doc["evaluations"] = evaluations
        if findings:
            doc["findings"] = findings
        channels = rng.choices(*zip(*CHANNEL_CHOICES, strict=True))[0]
        if channels is not None:
            doc["deployment"] = {"channels": list(channels)}
            if rng.random() < 0.3:
                doc["deployment"]["fine_tuning_access"] = rng.random() < 0.5
        safeguards = _safeguards(rng)
        if safeguards:
            doc["safeguards"] = safeguards
        models.append(doc)
    return models


def write_portfolio(path: str | Path, models: list[dict[str, Any]]) -> None:
    """Write `models` as JSON Lines (one model document a line), a portfolio `asl` reads."""
    with Path(path).open("w", encoding="utf-8") as out:
        for doc in models:
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")


def _main() -> int:
    """Generate, assess with plain_eval, print what was reached and how fast; 1 if a gap."""
    import argparse
    import time
    from collections import Counter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="number of models (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-lineage", action="store_true", help="no in-portfolio references")
    parser.add_argument("--out", help="also write the portfolio here as JSON Lines")
    args = parser.parse_args()

    models = generate_models(args.n, seed=args.seed, lineage=not args.no_lineage)
    if args.out:
        write_portfolio(args.out, models)
    results = plain_eval.evaluate_portfolio(models)

    statuses = ("crossed", "cannot_rule_out", "ruled_out", "not_assessed")
    by_capability: dict[str, Counter[str]] = {c: Counter() for c in CAPABILITIES}
    decisions: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    asls: Counter[str] = Counter()
    for r in results:
        for group in ("thresholds", "checkpoints", "ongoing_assessment"):
            for capability, status in r[group].items():
                by_capability[capability][status] += 1
        decisions[r["decision"]] += 1
        actions.update(r["actions"])
        asls[r["asl"]] += 1
    referenced = sum(
        1 for m in models
        if m["model"].get("last_comprehensive_assessment", {}).get("model", "").startswith("synth-")
    )
    print(f"{len(models)} models (seed {args.seed}, {referenced} referencing an earlier one)\n")
    print(f"{'status':<22}" + "".join(f"{s:>17}" for s in statuses))
    for capability, counts in by_capability.items():
        print(f"{capability:<22}" + "".join(f"{counts[s]:>17}" for s in statuses))
    print("\nasl:       " + ", ".join(f"{k} {v}" for k, v in sorted(asls.items())))
    wanted_decisions = ("proceed", "assessment_required", "restrict_deployment", "pause")
    print("decisions: " + ", ".join(f"{d} {decisions[d]}" for d in wanted_decisions))
    wanted_actions = (
        "affirmative_misalignment_case", "autonomy_checkpoint_response",
        "block_open_weights_release", "capability_report", "complete_capability_assessment",
        "cyber_expert_review", "define_asl4_standard", "follow_up_assessment",
        "interim_measures", "notify_board_and_ltbt", "notify_us_government",
        "publish_report_summaries", "safeguards_report",
    )
    print("actions:")
    for action in wanted_actions:
        print(f"  {action:<32}{actions[action]:>6}")
    gaps = [s for s in statuses if not any(counts[s] for counts in by_capability.values())]
    gaps += [d for d in wanted_decisions if not decisions[d]]
    gaps += [a for a in wanted_actions if not actions[a]]
    print("\nall statuses, decisions and actions reached" if not gaps else f"\nNOT reached: {gaps}")
    rare = [f"{c}: {s}" for c, counts in by_capability.items() for s in statuses if not counts[s]]
    if rare:
        print(f"(not reached for one capability, a rare case at this size: {', '.join(rare)})")

    rounds, best = 5, float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        plain_eval.evaluate_portfolio(models)
        best = min(best, time.perf_counter() - start)
    print(f"plain_eval.evaluate_portfolio: {len(models) / best:,.0f} models/s "
          f"(best of {rounds}, {best * 1000:.1f} ms for {len(models)})")
    return 1 if gaps else 0


if __name__ == "__main__":
    raise SystemExit(_main())
