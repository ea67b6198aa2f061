"""Options and steps shared by every `asl` command that loads rule packs.

`pack_option` is the one `--pack` option (repeatable): each DIR is an overlay pack loaded
over the built-in rsp-2.1 pack, in the order given; a pack whose pack.yaml says
`standalone: true` is loaded without the built-in (it must come first). Without
`--pack`, a command uses the active stack stored in the database (the overlays `asl
serve` activated), as the service does; `--pack` overrides it for that command only.
`load_evaluator` loads and compiles that stack once, or reports every pack problem and exits with 1;
`assess_inputs` runs the engine's front door (`engine.api.assess`) on the command's
evidence and prints every rejection.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from engine.api import AssessmentRun, assess
from engine.assess import Assessment, evaluator_for
from engine.errors import InputError, PackError
from engine.evaluator import Evaluator
from engine.jsontext import dumps as dumps  # JSON as every command prints it

EXIT_FAILED = 1
EXIT_REJECTED = 2



def _stored_when_absent(ctx: click.Context, _param: click.Parameter,
                        packs: tuple[str, ...]) -> tuple[str, ...]:
    """`--pack` as given; without it, the overlays of the active pack stack stored in the
    database (`--db` where the command has it, else ASL_DATABASE_URL or ./asl.db), which
    `asl serve` activates: the service and the command line assess with the same rules."""
    if packs:
        return packs
    from cli.store_options import stored_overlays  # cli.store_options imports this module

    return stored_overlays(ctx.params.get("db"))


pack_option = click.option(
    "--pack", "packs", multiple=True, metavar="DIR",
    type=click.Path(exists=True, file_okay=False), callback=_stored_when_absent,
    help="Overlay rule pack directory, loaded over the built-in rsp-2.1 pack (repeatable: "
    "later packs go over earlier ones). A pack.yaml saying `standalone: true` is loaded "
    "without the built-in. Without --pack: the active stack stored in the database (the "
    "built-in pack and the overlays activated with asl serve).")


def fail(message: str, status: int = EXIT_FAILED) -> NoReturn:
    """Print `asl: MESSAGE` on standard error and exit with `status`."""
    click.echo(f"asl: {message}", err=True)
    sys.exit(status)


def load_evaluator(packs: Sequence[str]) -> Evaluator:
    """The evaluator for the built-in pack with `packs` overlaid; on a pack error, every
    problem on standard error (`file:line: code: message`) and exit status 1."""
    try:
        return evaluator_for(packs)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail("the rule pack has errors; nothing was assessed")


def choose_model(assessments: Sequence[Assessment], model_id: str | None,
                 file: str) -> Assessment:
    """The assessment of `model_id`, or the only one in the file; otherwise one clear
    error naming the models to choose from (exit 2)."""
    models = {a.model: a for a in assessments}
    if model_id is not None:
        if model_id not in models:
            fail(f"{file}: no assessed model {model_id!r}; models: "
                 f"{', '.join(sorted(models)) or 'none'}", EXIT_REJECTED)
        return models[model_id]
    if len(models) != 1:
        if not models:
            fail(f"{file}: no model could be assessed", EXIT_REJECTED)
        fail(f"{file} holds {len(models)} models; choose one with --model "
             f"({', '.join(sorted(models))})", EXIT_REJECTED)
    return next(iter(models.values()))


def assess_inputs(sources: Sequence[str], packs: Sequence[str]) -> AssessmentRun:
    """Assess the evidence `sources` name (`-`: standard input) with the pack stack, and
    print every rejection (of the input, or of a model the portfolio could not assess)
    to standard error, one line each; a pack error exits 1."""
    run = assess(sources, evaluator=load_evaluator(packs), stdin=sys.stdin,
                 keep_inputs=False)
    report(run.rejected)
    return run


def report(errors: Sequence[InputError]) -> None:
    """Print input errors to standard error, one line each, in the order given."""
    for error in errors:
        click.echo(str(error), err=True)
