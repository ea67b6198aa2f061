"""Start-up (issue 10, item 14): `asl --help` and `asl --version` load no more than click.

Each command's module is imported only when it runs; the top-level help lists the
commands from `cli.main.COMMANDS`. The time itself is measured by
`benchmarks/startup_bench.py`; these tests check what the time rests on, in a fresh
interpreter each (the test process has long since imported everything).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import click
import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, main

HEAVY = ("sqlalchemy", "alembic", "networkx", "durable_rules_engine", "fastapi", "uvicorn",
         "dask", "psycopg", "rich", "pydantic", "engine")


def _loaded_after(code: str) -> set[str]:
    """The top-level packages imported by a fresh interpreter running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    return set(done.stdout.split())


def test_importing_cli_main_imports_nothing_heavy() -> None:
    assert _loaded_after("import cli.main") & set(HEAVY) == set()


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(option: str) -> None:
    code = ("import contextlib, io\nfrom cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main([{option!r}], prog_name='asl', standalone_mode=False)")
    assert _loaded_after(code) & set(HEAVY) == set()


def test_every_command_is_listed_with_its_own_summary() -> None:
    """COMMANDS names each command's module and attribute, and its summary is the one
    click takes from the command's docstring, so `asl --help` reads as it would if every
    command were imported."""
    context = click.Context(main)
    for name, (module, attribute, summary) in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None and command.name == name, (module, attribute)
        assert summary == command.get_short_help_str(limit=10_000), name


@pytest.mark.parametrize("width", [60, 80, 120])
def test_top_level_help_lists_commands_as_click_would_with_them_all_imported(width: int) -> None:
    context = click.Context(main)
    eager = click.Group("asl", commands={name: main.get_command(context, name)
                                         for name in COMMANDS})
    shown, expected = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    main.format_commands(context, shown)
    eager.format_commands(context, expected)
    assert shown.getvalue() == expected.getvalue()
    assert [line.split()[0] for line in shown.getvalue().splitlines()[1:]] == sorted(COMMANDS)


def test_a_command_runs_and_gives_its_own_help() -> None:
    result = CliRunner().invoke(main, ["rules", "--help"], prog_name="asl")
    assert result.exit_code == 0 and "Usage: asl rules [OPTIONS] COMMAND" in result.output


def test_version_is_the_installed_package_version() -> None:
    """`--version` reads `cli.__version__`, which the build also reads (pyproject.toml),
    so it is the installed package's version without reading package metadata."""
    result = CliRunner().invoke(main, ["--version"], prog_name="asl")
    assert result.exit_code == 0
    assert result.output == f"asl, version {metadata.version('asl')}\n"
