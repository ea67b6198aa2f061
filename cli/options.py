"""Options and steps shared by every `asl` command that loads rule packs.

`pack_option` is the one `--pack` option (repeatable) with `--framework NAME`: each DIR
is an overlay pack loaded over the framework's built-in pack (default rsp-2.1), in the
order given; a pack whose pack.yaml says `standalone: true` is loaded without the
built-in (it must come first). Without `--pack` or `--framework`, a command uses the
active stack stored in the database (the overlays `asl serve` activated), as the service
does; `--pack` overrides it for that command only. So `pack_option` brings `db_option`
too, the one `--db` option: every command that may read the stored stack chooses the
database alike (`--db`, else ASL_DATABASE_URL, else ./asl.db) and refuses one it cannot
use in the same line; with `--pack` or `--framework`, `--db` is taken but not read for
the stack. `load_evaluator` loads and compiles that stack once, or reports every pack
problem and exits with 1; `assess_inputs` runs the engine's front door
(`engine.api.assess`) on the command's evidence and prints every rejection.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from engine.errors import InputError, PackError
from engine.jsontext import dumps as dumps  # JSON as every command prints it
from engine.packstack import BUILTIN_PACK, builtin_frameworks, pack_stack
from store.dbinfo import ENV_VAR

if TYPE_CHECKING:  # the engine is imported by the steps that assess, not by every
    # command that takes these options (`asl why MODEL` answers from the record)
    from engine.api import AssessmentRun
    from engine.assess import Assessment
    from engine.evaluator import Evaluator

EXIT_FAILED = 1
EXIT_REJECTED = 2



# The one `--db` option of every command that opens the database (for its record, its
# tokens or decision log, or only the active pack stack): `pack_option` adds it, and
# commands without `--pack` (cli.store_options re-exports it) declare it themselves.
db_option = click.option(
    "--db", "db", metavar="URL", envvar=ENV_VAR, show_envvar=True,
    help="The database (assessments, the active pack stack, tokens, the decision log): a "
    "SQLite path or URL, or postgresql://user@host/db (default: the SQLite file asl.db in "
    "the current directory).")

FRAMEWORK_KEY = "asl.framework"  # where --framework leaves its value for --pack
DEFER_KEY = "asl_defer_stack"  # marks a command whose stored stack is read on use


def _framework(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Remember the chosen framework for `--pack`, which is read after it."""
    ctx.meta[FRAMEWORK_KEY] = value
    return value


def _packs(ctx: click.Context, _param: click.Parameter, packs: tuple[str, ...]
           ) -> tuple[str, ...] | None:
    """`--pack` as given, with the chosen framework's pack first when `--framework`
    named one (then the command loads that stack, and so does every batch worker).
    Without either, the overlays of the active pack stack stored in the database
    (`--db`, else ASL_DATABASE_URL or ./asl.db), which `asl serve` activates: the
    service and the command line assess with the same rules. (`--db` is read first
    whenever it matters: given on the command line, click processes it before an option
    that is not; otherwise it is declared before `--pack`, or comes from the same
    environment variable.)"""
    framework = ctx.meta.get(FRAMEWORK_KEY)
    if framework is None:
        if packs:
            return packs
        if getattr(ctx.command.callback, DEFER_KEY, False):
            return None  # the command reads the stored stack itself, if it assesses
        from cli.store_options import stored_overlays  # it imports this module

        return stored_overlays(ctx.params.get("db"))
    try:
        return tuple(str(path) for path in pack_stack(packs, framework))
    except PackError as exc:
        raise click.BadParameter("; ".join(p.message for p in exc.problems),
                                 param_hint="--framework") from exc


def _pack_options(command: Callable[..., Any], deferred: bool = False) -> Callable[..., Any]:
    """`--framework NAME` and `--pack DIR` (repeatable), the stack a command loads, and
    `--db URL`, where the stack is stored otherwise (the command takes `db` as well as
    `packs`); `deferred`: without --pack or --framework, the command's `packs` is None
    and it reads the stored stack itself, when it comes to assess (`asl why MODEL`
    never does)."""
    if deferred:
        setattr(command, DEFER_KEY, True)  # click keeps the function as the callback
    command = click.option(
        "--pack", "packs", multiple=True, metavar="DIR", callback=_packs,
        type=click.Path(exists=True, file_okay=False),
        help="Overlay rule pack directory, loaded over the framework's pack (repeatable: "
        "later packs go over earlier ones). A pack.yaml saying `standalone: true` is "
        "loaded in place of the framework's. Without --pack or --framework: the active "
        "stack stored in the --db database (the built-in pack and the overlays activated "
        "with asl serve).")(command)
    command = click.option(
        "--framework", metavar="NAME", is_eager=True, expose_value=False,
        callback=_framework, type=click.Choice(sorted(builtin_frameworks())),
        help=f"The framework to assess under: a built-in pack (default {BUILTIN_PACK}).",
    )(command)
    return db_option(command)  # declared first of the three


pack_option = _pack_options


def deferred_pack_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`pack_option` for a command that may not assess at all, or reads the stored stack
    itself (see `_pack_options`)."""
    return _pack_options(command, deferred=True)



def fail(message: str, status: int = EXIT_FAILED) -> NoReturn:
    """Print `asl: MESSAGE` on standard error and exit with `status`."""
    click.echo(f"asl: {message}", err=True)
    sys.exit(status)


def load_evaluator(packs: Sequence[str]) -> Evaluator:
    """The evaluator for the built-in pack with `packs` overlaid; on a pack error, every
    problem on standard error (`file:line: code: message`) and exit status 1."""
    from engine.assess import evaluator_for

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
    from engine.api import assess

    run = assess(sources, evaluator=load_evaluator(packs), stdin=sys.stdin,
                 keep_inputs=False)
    report(run.rejected)
    return run


def report(errors: Sequence[InputError]) -> None:
    """Print input errors to standard error, one line each, in the order given."""
    for error in errors:
        click.echo(str(error), err=True)
