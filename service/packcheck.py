"""Validating an uploaded pack in a separate process, under memory, CPU and time limits.

Pack files are data from people, and loading them runs a YAML parser, the pack's own
regular expression (`cite_pattern`) and the validator's searches: so they are checked
where a runaway cannot hurt the server. `check_draft` (in the server) writes the draft
and the active stack into a fresh private directory and runs `python -m
service.packcheck` on it; the child first lowers its own limits (address space, CPU
seconds), then runs exactly what `asl rules validate DRAFT` runs over the active stack:
every load stage (engine.loader), then engine.validate. A child that runs out of memory
or time is reported as one problem; YAML alias expansion is bounded, as for evidence.

A draft's portfolio impact (`run_impact`, task `impact`) runs in the same kind of child,
with limits fit for minutes of work: it reads the record itself and assesses every
stored model the draft could change with both stacks (batch.impact), telling its
progress a line at a time as it goes.

Problems come back with file names as the uploader knows them (`rules/x.yaml`), or
`PACK/FILE` for a file of another pack of the stack.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

log = logging.getLogger("asl.service")
MEMORY_BYTES = 1024 * 1024 * 1024
CPU_SECONDS = 60
WALL_SECONDS = 120
# A draft's impact assesses every stored model that could change, twice: at a hundred
# thousand models that is minutes of CPU (docs/performance.md); the limits still stop a
# runaway pack.
IMPACT_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
IMPACT_CPU_SECONDS = 3 * 3600
IMPACT_WALL_SECONDS = 4 * 3600
PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Layer:
    """A pack of the stack to validate over: its name and directory."""

    name: str
    directory: Path


def _problem(file: str, line: int, code: str, message: str) -> dict[str, Any]:
    return {"file": file, "line": line, "code": code, "message": message}


@dataclass(frozen=True)
class DraftCheck:
    """What checking a draft found: its problems (none: it is valid). (Its version is
    the hash of its files, store.packs.files_version, which needs no checking.)"""

    problems: list[dict[str, Any]]


def _write_draft(name: str, files: dict[str, str], scratch: Path) -> Path:
    draft = scratch / name
    for file, text in files.items():
        (draft / file).parent.mkdir(parents=True, exist_ok=True)
        (draft / file).write_text(text, encoding="utf-8")
    return draft


def check_draft(name: str, files: dict[str, str], stack: Sequence[Layer], workdir: Path
                ) -> DraftCheck:
    """The problems `asl rules validate` finds in the draft `name` (`files`: name ->
    text, names already checked) over the packs of `stack`, plus any with its name:
    it must declare `name: NAME` and overlay the base."""
    scratch = Path(tempfile.mkdtemp(dir=workdir, prefix="check-"))
    try:
        draft = _write_draft(name, files, scratch)
        answer, stopped = _run_child("validate", name, draft, stack, scratch)
        if stopped is not None:
            return DraftCheck([_problem("", 0, "limits", stopped)])
        return DraftCheck(list(answer))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class DraftRunStopped(Exception):
    """A test or diff of a draft that stopped at its limits (the message says which)."""


def run_draft(task: str, name: str, files: dict[str, str], stack: Sequence[Layer],
              workdir: Path) -> Any:
    """`test` (as `asl rules test DRAFT` over `stack`: the draft's cases, its rules'
    coverage) or `diff` (as `asl rules diff` of `stack` and `stack` with the draft in
    its place, or on top) of a stored, validated draft, in the limited child (a draft's
    portfolio impact is `run_impact`'s). File names are shown as the uploader knows
    them. DraftRunStopped at the limits."""
    scratch = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{task}-"))
    try:
        draft = _write_draft(name, files, scratch)
        answer, stopped = _run_child(task, name, draft, stack, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if stopped is not None:
        raise DraftRunStopped(stopped)
    return answer


def run_impact(name: str, files: dict[str, str], stack: Sequence[Layer], workdir: Path,
               db_url: str, progress: Callable[[str, int, int], None]) -> Any:
    """The impact of a stored, validated draft over every stored model (task `impact`:
    batch.impact.draft_impact of `stack` and `stack` with the draft, reading the record
    at `db_url`) in the limited child, under IMPACT_MEMORY_BYTES, IMPACT_CPU_SECONDS and
    IMPACT_WALL_SECONDS: assessing a hundred thousand models twice takes minutes, not
    the seconds a diff does. `progress` hears (phase, done, total) as the child tells
    it. DraftRunStopped at the limits."""
    scratch = Path(tempfile.mkdtemp(dir=workdir, prefix="impact-"))
    try:
        draft = _write_draft(name, files, scratch)
        request = _request("impact", name, draft, stack) | {"db": db_url}
        errors = (scratch / "stderr").open("w+", encoding="utf-8")
        child = subprocess.Popen(
            [sys.executable, "-m", "service.packcheck", str(IMPACT_MEMORY_BYTES),
             str(IMPACT_CPU_SECONDS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=errors, text=True, cwd=scratch, env=_child_env())
        timer = threading.Timer(IMPACT_WALL_SECONDS, child.kill)
        timer.start()
        answer = None
        try:
            stdin, stdout = cast(TextIO, child.stdin), cast(TextIO, child.stdout)  # PIPEs
            stdin.write(json.dumps(request))
            stdin.close()
            for line in stdout:
                try:
                    told = json.loads(line)
                except ValueError:
                    continue
                if isinstance(told, dict) and "progress" in told:
                    progress(*told["progress"])
                else:
                    answer = told
            code = child.wait()
        finally:
            timer.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
            errors.seek(0)
            said = errors.read()[-2000:].strip()
            errors.close()
        if code != 0 and said:  # for the server log: the page says only that it stopped
            log.warning("draft impact of %s stopped (exit %s): %s", name, code, said)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if code != 0 or answer is None:
        raise DraftRunStopped(
            f"the impact stopped at its limits ({IMPACT_MEMORY_BYTES // 2**20} MiB, "
            f"{IMPACT_CPU_SECONDS} s of CPU, {IMPACT_WALL_SECONDS} s in all) or could not "
            "read the record" if code != 0 else "the impact ended without an answer")
    return answer


def _child_env() -> dict[str, str]:
    """The child's environment: what Python needs, nothing of the server's secrets."""
    return {k: v for k, v in os.environ.items() if k.startswith(("PATH", "PYTHON", "LANG",
                                                                 "LC_"))}


def _request(task: str, name: str, draft: Path, stack: Sequence[Layer]) -> dict[str, Any]:
    """What the child is told to do with the draft written at `draft` over `stack`."""
    return {"task": task, "name": name, "base": stack[0].name, "draft": str(draft),
            "stack": [[layer.name, str(layer.directory)] for layer in stack]}


def _run_child(task: str, name: str, draft: Path, stack: Sequence[Layer], scratch: Path
               ) -> tuple[Any, str | None]:
    """Run `task` in the limited child: its answer, or None and why it stopped."""
    request = _request(task, name, draft, stack)
    what = "validation" if task == "validate" else f"the {task}"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "service.packcheck", str(MEMORY_BYTES),
             str(CPU_SECONDS)], input=json.dumps(request), capture_output=True,
            text=True, timeout=WALL_SECONDS, cwd=scratch, check=False, env=_child_env())
    except subprocess.TimeoutExpired:
        return None, (f"{what} took longer than {WALL_SECONDS} s and was stopped; is a "
                      "regular expression or the pack too large?")
    if done.returncode != 0:
        return None, (f"{what} stopped at its limits ({MEMORY_BYTES // 2**20} MiB, "
                      f"{CPU_SECONDS} s of CPU): the pack may expand too far or take too "
                      "long")
    try:
        return json.loads(done.stdout), None
    except ValueError:
        return None, f"{what} ended without an answer"


# --- the child -------------------------------------------------------------------------


def _labeller(draft: Path, stack: Sequence[tuple[str, str]]) -> Callable[[str], str]:
    """A function naming a file as the uploader knows it."""
    prefixes = [(str(draft.resolve()) + os.sep, ""), (str(draft) + os.sep, "")]
    for layer, directory in stack:
        prefixes += [(str(Path(directory).resolve()) + os.sep, f"{layer}/"),
                     (directory + os.sep, f"{layer}/")]

    def label(text: str) -> str:
        for prefix, short in prefixes:
            text = text.replace(prefix, short)
        return text

    return label


def _expanded_size(root: Any, limit: int) -> int:
    """How many nodes a composed YAML document has once aliases are followed (each
    shared node measured once); RecursionError past `limit` levels of nesting."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > limit:
            raise RecursionError
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        sizes[id(node)] = total
        return total

    return 0 if root is None else size(root, 0)


def _expansion_problems(draft: Path) -> list[dict[str, Any]]:
    """Files whose YAML expands past the evidence limit once aliases are followed."""
    import yaml

    from engine.evidence_reading import MAX_DEPTH, MAX_VALUES

    problems = []
    for path in sorted(draft.rglob("*.yaml")):
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
            continue  # the loader reports it, with its line
        try:
            too_big = _expanded_size(root, 4 * MAX_DEPTH) > MAX_VALUES
        except RecursionError:
            too_big = True
        if too_big:
            problems.append(_problem(str(path.relative_to(draft)), 1, "yaml",
                                     f"more than {MAX_VALUES:,} values once aliases are "
                                     f"expanded, or nested deeper than {4 * MAX_DEPTH}"))
    return problems


def _name_problems(request: dict[str, Any], draft: Path) -> list[dict[str, Any]]:
    """The draft must name itself as uploaded and be an overlay (engine.packstack says
    which packs are base packs, for every command alike)."""
    from engine.packstack import base_reason, read_pack_yaml
    from engine.yamlsafe import line_of

    name, base = request["name"], request["base"]
    doc = read_pack_yaml(draft)
    if not isinstance(doc, dict):
        return []  # the loader reports why, with its line
    problems = []
    if doc.get("name") != name:
        problems.append(_problem("pack.yaml", line_of(doc, "name") or 1, "pack-name",
                                 f"the pack's name is {doc.get('name')!r}, but it was "
                                 f"uploaded as {name!r}; they must be the same"))
    reason = base_reason(doc)
    if reason is not None or doc.get("name") == base:
        problems.append(_problem("pack.yaml", line_of(doc, "standalone") or 1, "standalone",
                                 f"only overlay packs are taken, over {base}; this is a "
                                 f"base pack: {reason or f'it is named {base}'}"))
    return problems


def validate(request: dict[str, Any]) -> list[dict[str, Any]]:
    """What `asl rules validate` reports for the request's draft over its stack."""
    from engine.errors import PackError
    from engine.loader import load_pack
    from engine.validate import validate_pack

    draft = Path(request["draft"])
    stack = [(layer, directory) for layer, directory in request["stack"]]
    problems = _expansion_problems(draft) or _name_problems(request, draft)
    if problems:
        return problems
    try:
        found = validate_pack(load_pack([*(Path(d) for _, d in stack), draft]))
    except PackError as exc:
        found = exc.problems
    label = _labeller(draft, stack)
    return [_problem(label(p.file), p.line, p.code, label(p.message)) for p in found]


def _stacks(request: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """The stack as it is, and with the draft in place of its namesake (or on top)."""
    from batch.draft_stack import with_draft

    stack = [(layer, Path(directory)) for layer, directory in request["stack"]]
    return ([d for _, d in stack],
            with_draft(stack, request["name"], Path(request["draft"])))


def _labelled(data: Any, label: Callable[[str], str]) -> Any:
    if isinstance(data, str):
        return label(data)
    if isinstance(data, list):
        return [_labelled(item, label) for item in data]
    if isinstance(data, dict):
        return {k: _labelled(v, label) for k, v in data.items()}
    return data


def test_draft(request: dict[str, Any]) -> dict[str, Any]:
    """What `asl rules test --format json` prints for the draft over the stack."""
    from engine.casetest import run_tests
    from engine.evaluator import Evaluator
    from engine.loader import load_pack

    _, with_draft = _stacks(request)
    run = run_tests(Evaluator(load_pack(with_draft)), {request["name"]})
    return dict(_labelled(run.to_json(), _labeller(Path(request["draft"]),
                                                   request["stack"])))


def diff_draft(request: dict[str, Any]) -> dict[str, Any]:
    """What `asl rules diff --format json` prints for the stack and the stack with the
    draft."""
    from engine.loader import load_pack
    from engine.packdiff import diff_packs

    before, with_draft = _stacks(request)
    found = diff_packs(load_pack(before), load_pack(with_draft)).to_json()
    return dict(_labelled(found, _labeller(Path(request["draft"]), request["stack"])))


def impact_draft(request: dict[str, Any]) -> dict[str, Any]:
    """What `asl impact --draft` finds for the stack and the stack with the draft over
    every model stored in the database `request["db"]` (batch.impact.draft_impact, the
    one implementation), telling its progress as it goes: a line
    `{"progress": [phase, done, total]}` each, before the answer's line."""
    from batch.impact import draft_impact
    from engine.evaluator import Evaluator
    from engine.loader import load_pack
    from store.db import connect
    from store.record import Store

    def tell(phase: str, done: int, total: int) -> None:
        sys.stdout.write(json.dumps({"progress": [phase, done, total]}) + "\n")
        sys.stdout.flush()

    before, with_draft = _stacks(request)
    old, new = Evaluator(load_pack(before)), Evaluator(load_pack(with_draft))
    engine = connect(request["db"], migrate=False)
    try:
        found = draft_impact(Store(engine), old, new, old.pack.framework, tell).to_json()
    finally:
        engine.dispose()
    return dict(_labelled(found, _labeller(Path(request["draft"]), request["stack"])))


TASKS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "validate": validate, "test": test_draft, "diff": diff_draft, "impact": impact_draft}


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the thread that started it ends (the server
    stopped): a background impact must not outlive the service. Elsewhere, nothing."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def main(argv: Sequence[str]) -> int:
    """The child: lower the limits, read the request, print the answer as JSON (on one
    line, after any progress lines)."""
    memory, cpu = int(argv[0]), int(argv[1])
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    request = json.load(sys.stdin)
    json.dump(TASKS[request.get("task", "validate")](request), sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
