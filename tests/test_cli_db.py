"""`--db` on every command that reads the database, the active pack stack included.

The spec: "`--db` / `ASL_DATABASE_URL` as for every other command", and "CLI commands
without `--pack` use [the active stack stored in the database]". `asl assess`, `asl
why-not`, `asl rules list|show|test|validate|reference` and `asl import inspect` read
that stack but took only ASL_DATABASE_URL. Now `pack_option` brings the one `--db`
option with it: given, it wins over the environment; a database it cannot use is the
same one line (exit 2) as through the environment; with `--pack` it is taken and not
read.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES, activate_overlay

from cli.main import main
from store.dbinfo import ENV_VAR

ACME = EXAMPLES / "packs" / "acme-lab"
ACME_MODEL = ACME / "example-model.yaml"
ACME_RULE = "acme.cyber.requires-asl3-security"
# Every command that loads packs, with what it needs to get as far as loading them.
PACK_COMMANDS = {
    "assess": ("assess", str(ACME_MODEL), "--format", "json"),
    "why-not": ("why-not", str(ACME_MODEL), "required.security=ASL-2", "--format", "json"),
    "rules list": ("rules", "list", "--format", "json"),
    "rules show": ("rules", "show", ACME_RULE, "--format", "json"),
    "rules reference": ("rules", "reference"),
    "rules validate": ("rules", "validate"),
    "rules test": ("rules", "test"),
    "import inspect": ("import", "inspect", "missing.eval", "--mapping", "missing.yaml"),
    "batch": ("batch", str(ACME_MODEL)),
    "what-if": ("what-if", str(ACME_MODEL), "--set", "model.effective_compute_flop=1e26"),
    "impact": ("impact", str(ACME_MODEL), "--rule", ACME_RULE),
    "why": ("why", str(ACME_MODEL)),
}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def activated(url: str) -> str:
    """`url` with the acme-lab overlay uploaded by one person and activated by another,
    as the service stores it."""
    return activate_overlay(url, ACME)


@pytest.fixture
def stacked(db_url: str) -> str:
    return activated(db_url)


def every_command() -> dict[str, click.Command]:
    """Every `asl` command and subcommand, by its full name."""
    found: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found[f"{prefix}{name}"] = command
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")

    assert isinstance(main, click.Group)
    walk(main, "")
    return found


def test_every_command_that_loads_packs_takes_the_one_db_option() -> None:
    """Whatever takes --pack reads the stored stack without it, so it takes --db, and
    every --db is the same option: the same environment variable, metavar and help."""
    commands = every_command()
    with_pack = {name for name, c in commands.items()
                 if any("--pack" in p.opts for p in c.params)}
    assert with_pack == set(PACK_COMMANDS)
    options = {name: next(p for p in c.params if "--db" in p.opts)
               for name, c in commands.items() if any("--db" in p.opts for p in c.params)}
    assert with_pack <= set(options)
    assert {"serve", "list", "history", "diff", "tokens create", "audit verify",
            "db upgrade", "db check"} <= set(options)
    shapes = {(o.envvar, o.metavar, o.help, o.show_envvar) for o in options.values()}
    assert shapes == {(ENV_VAR, "URL", options["batch"].help, True)}


def test_assess_and_rules_list_read_the_stack_of_the_db_given(stacked: str,
                                                              tmp_path: Path) -> None:
    """With --db, the overlay activated there is in force, whatever ASL_DATABASE_URL
    names (here an empty database: without --db, the built-in pack alone)."""
    other = {ENV_VAR: f"sqlite:///{tmp_path}/other.db"}
    assessed = run("assess", "--db", stacked, str(ACME_MODEL), "--format", "json", env=other)
    assert assessed.exit_code == 0, assessed.output
    assert json.loads(assessed.stdout)["pack"]["name"] == "rsp-2.1+acme-lab"
    alone = run("assess", str(ACME_MODEL), "--format", "json", env=other)
    assert json.loads(alone.stdout)["pack"]["name"] == "rsp-2.1"
    from_env = run("assess", str(ACME_MODEL), "--format", "json", env={ENV_VAR: stacked})
    assert from_env.stdout == assessed.stdout

    listed = run("rules", "list", "--db", stacked, "--format", "json", env=other)
    assert listed.exit_code == 0, listed.output
    assert {r["id"] for r in json.loads(listed.stdout) if r["pack"] == "acme-lab"} == {
        ACME_RULE, "assessment.trigger.months"}
    assert "acme-lab" not in {r["pack"] for r in json.loads(
        run("rules", "list", "--format", "json", env=other).stdout)}


def test_the_other_pack_commands_read_it_too(stacked: str, tmp_path: Path) -> None:
    other = {ENV_VAR: f"sqlite:///{tmp_path}/other.db"}

    def on(name: str, db: str | None = stacked) -> Result:
        args = PACK_COMMANDS[name]
        return run(*args[:2], *(("--db", db) if db else ()), *args[2:], env=other)

    shown = on("rules show")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["pack"] == "acme-lab"
    assert on("rules show", None).exit_code != 0  # no such rule in the built-in pack
    assert "acme-lab" in on("rules reference").stdout
    assert "acme-lab" not in on("rules reference", None).stdout
    assert "of rsp-2.1+acme-lab: no problems" in on("rules validate").stderr
    # Its cases run too (and the built-in's, some of which the overlay changes).
    assert "acme-lab" in on("rules test").stdout
    assert "acme-lab" not in on("rules test", None).stdout
    # The overlay requires ASL-3 security of this model: the target no longer holds.
    assert json.loads(on("why-not").stdout)["holds"] is False
    assert json.loads(on("why-not", None).stdout)["holds"] is True


@pytest.mark.parametrize("name", sorted(PACK_COMMANDS))
def test_a_db_it_cannot_use_is_one_line_as_through_the_environment(
        name: str, tmp_path: Path) -> None:
    """--db is where the stack is read from, and refused alike; with --pack it is taken
    and not read (the packs are chosen), so it does no harm."""
    bad = tmp_path / "bad.db"
    bad.write_text("not a database\n")
    args = PACK_COMMANDS[name]
    split = 2 if name.startswith(("rules ", "import ")) else 1
    given = run(*args[:split], "--db", str(bad), *args[split:])
    through_env = run(*args, env={ENV_VAR: str(bad)})
    line = (f"asl: cannot use database sqlite:///{bad}: file is not a database (it holds "
            "the active pack stack; --pack chooses the packs instead)\n")
    assert (given.exit_code, given.stderr) == (2, line), given.output
    assert (through_env.exit_code, through_env.stderr) == (2, line), through_env.output
    if name in ("assess", "rules list"):
        chosen = run(*args[:split], "--db", str(bad), "--pack", str(ACME), *args[split:])
        assert chosen.exit_code == 0, chosen.output
