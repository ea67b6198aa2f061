"""Produce the real Inspect eval logs that the import tests and the worked example read.

Run it with inspect-ai installed (`pip install -e '.[inspect]'`):

    .venv/bin/python tests/make_inspect_logs.py

Every log comes from a real `inspect_ai.eval()` run against the offline `mockllm`
provider: each answer is a scripted `ModelOutput` with its token usage set, so nothing is
downloaded (mockllm counts tokens with a tokenizer only when usage is missing). The logs
are written to `tests/inspect_logs/` (and the worked example's to `examples/inspect/`),
replacing what is there, with `manifest.json`: what inspect-ai itself read back from each
log (status, eval id, task, model, creation time, every scorer's metrics). The tests check
our reader against that manifest, so they never trust the reader under test for the
expected values. Eval ids and creation times are new on every run: commit the logs and
the manifest together, and rerun `asl import` for the example (see examples/inspect/).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import (
    EvalLog,
    ProvenanceData,
    invalidate_samples,
    read_eval_log,
    write_eval_log,
)
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import Score, Target, includes, match, mean, scorer
from inspect_ai.solver import TaskState, generate

HERE = Path(__file__).resolve().parent
LOGS = HERE / "inspect_logs"
EXAMPLE = HERE.parent / "examples" / "inspect" / "logs"
LETTERS = "ABCDE"


def _model(name: str, answers: Sequence[str]) -> Model:
    """A mockllm model that gives these answers in order, each with its usage set."""
    outputs = []
    for answer in answers:
        output = ModelOutput.from_content(model=name, content=answer)
        output.usage = ModelUsage(input_tokens=12, output_tokens=1, total_tokens=13)
        outputs.append(output)
    return get_model(f"mockllm/{name}", custom_outputs=outputs)


def _letters_task(name: str, samples: int = 5, scorers: Sequence[Any] | None = None) -> Task:
    """A multiple-choice style task: sample i expects the letter LETTERS[i]."""
    dataset = [Sample(input=f"Question {i + 1}: answer with one letter.",
                      target=LETTERS[i], id=i + 1) for i in range(samples)]
    return Task(name=name, dataset=dataset, solver=generate(),
                scorer=list(scorers) if scorers else match())


@scorer(metrics=[mean()])
def expert_hours() -> Any:
    """Hours of expert work the answer stands for: a number, not a fraction."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=float(len(state.output.completion)) * 1.6)

    return score


def _answers(right: int, total: int = 5) -> list[str]:
    """`right` correct letters, then wrong ones ('Z')."""
    return [LETTERS[i] if i < right else "Z" for i in range(total)]


def _run(task: Task, model: Model, fmt: str, **options: Any) -> EvalLog:
    """Run one task and return its log (the log file is where `location` says)."""
    with tempfile.TemporaryDirectory() as scratch:
        [log] = eval(task, model=model, log_dir=scratch, log_format=fmt, display="none",
                     max_samples=1, **options)
        kept = Path(tempfile.mkdtemp()) / Path(log.location).name
        shutil.move(log.location, kept)
    log.location = str(kept)
    return log


def _save(log: EvalLog, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(log.location, target)


def _summary(path: Path) -> dict[str, Any]:
    """What inspect-ai reads from a log's header: the manifest entry for it."""
    log = read_eval_log(str(path), header_only=True)
    scores = []
    for score in log.results.scores if log.results else []:
        scores.append({"name": score.name, "scorer": score.scorer, "reducer": score.reducer,
                       "metrics": {k: m.value for k, m in score.metrics.items()}})
    return {"status": log.status, "invalidated": log.invalidated,
            "eval_id": log.eval.eval_id, "task": log.eval.task, "model": log.eval.model,
            "created": log.eval.created, "scores": scores}


def main() -> None:
    """Run every fixture eval and write the logs and the manifest."""
    runs: dict[str, tuple[Task, Model, str, dict[str, Any]]] = {
        # the plain case: one scorer, accuracy 3/5
        "bio-probe.eval": (_letters_task("bio_uplift_probe"),
                           _model("model", _answers(3)), "eval", {}),
        # the same evaluation run again later, with another score (4/5)
        "bio-probe-rerun.eval": (_letters_task("bio_uplift_probe"),
                                 _model("model", _answers(4)), "eval", {}),
        # a JSON log with two scorers: the mapping must say which one
        # (match reads the answer's last word, includes any word: 1/4 and 3/4)
        "cyber-range.json": (_letters_task("cyber_range", 4, [match(), includes()]),
                             _model("model", ["A", "B or C", "C or D", "Z"]), "json", {}),
        # a metric where higher means less capable (refusals): direction lower
        "refusal-probe.eval": (_letters_task("refusal_probe", 4),
                               _model("model", _answers(3, 4)), "eval", {}),
        # the model runs out of answers on sample 3: the run ends with status error
        "bio-probe-error.eval": (_letters_task("bio_uplift_probe"),
                                 _model("model", _answers(2, 2)), "eval",
                                 {"fail_on_error": True}),
        # a model the mapping does not name
        "bio-probe-other-model.eval": (_letters_task("bio_uplift_probe"),
                                       _model("unnamed", _answers(3)), "eval", {}),
        # a metric that is not a fraction: outside [0, 1]
        "expert-hours.eval": (_letters_task("expert_hours", 3, [expert_hours()]),
                              _model("model", ["AB", "ABC", "A"]), "eval", {}),
        # a task no mapping entry names
        "unmapped-task.eval": (_letters_task("translation_probe", 2),
                               _model("model", _answers(1, 2)), "eval", {}),
    }
    if LOGS.exists():
        shutil.rmtree(LOGS)
    manifest: dict[str, Any] = {}
    for name, (task, model, fmt, options) in runs.items():
        log = _run(task, model, fmt, **options)
        _save(log, LOGS / name)
        manifest[name] = _summary(LOGS / name)
    # a successful run whose samples were then invalidated by a reviewer
    log = _run(_letters_task("bio_uplift_probe"), _model("model", _answers(3)), "eval")
    full = read_eval_log(log.location)
    reviewed = invalidate_samples(full, "all", ProvenanceData(
        author="fixture script", reason="grader found to leak the answer key"))
    write_eval_log(reviewed, str(LOGS / "bio-probe-invalidated.eval"))
    Path(log.location).unlink()
    manifest["bio-probe-invalidated.eval"] = _summary(LOGS / "bio-probe-invalidated.eval")
    # the worked example: a CBRN-3 rule-out probe scoring 2/5 for lyra-5-opus
    if EXAMPLE.exists():
        shutil.rmtree(EXAMPLE)
    log = _run(_letters_task("bio_uplift_probe"), _model("model", _answers(2)), "eval")
    _save(log, EXAMPLE / "bio-uplift-probe.eval")
    (LOGS / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for path in sorted([*LOGS.iterdir(), *EXAMPLE.iterdir()]):
        print(f"{path.relative_to(HERE.parent)}: {path.stat().st_size:,} bytes",
              file=sys.stderr)


if __name__ == "__main__":
    main()
