"""A light base install (issue 10, item 15): Dask and the PostgreSQL driver are extras.

A command that needs one it does not have stops before doing anything, with one line
naming the extra and exit status 2. The extra's package is made unimportable in a fresh
interpreter (`sys.modules[name] = None` is how Python itself marks a module as absent),
and `asl` runs there as the console script would.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from helpers import EXAMPLES, REPO


def _asl_without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (f"import sys; sys.modules[{module!r}] = None; sys.argv[0] = 'asl'\n"
            "from cli.main import main; main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_dask_executor_without_the_dask_extra(tmp_path: Path) -> None:
    done = _asl_without("distributed", "batch", str(EXAMPLES / "security-gap-pause.yaml"),
                        "--executor", "dask", "--db", str(tmp_path / "asl.db"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("asl: --executor dask needs the dask extra (distributed is "
                           "missing): pip install 'asl[dask]'\n")
    assert done.stdout == "" and list(tmp_path.iterdir()) == []  # no database made


def test_a_scheduler_means_dask_too(tmp_path: Path) -> None:
    done = _asl_without("dask", "batch", str(EXAMPLES / "security-gap-pause.yaml"),
                        "--scheduler", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["asl: --executor dask needs the dask extra (dask is "
                                        "missing): pip install 'asl[dask]'"]


def test_postgresql_without_the_postgres_extra(tmp_path: Path) -> None:
    url = "postgresql://asl:secret@127.0.0.1:1/asl"
    for args in (["list", "--db", url], ["history", "some-model", "--db", url]):
        done = _asl_without("psycopg", *args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr == ("asl: the database postgresql://asl:***@127.0.0.1:1/asl "
                               "needs the postgres extra (psycopg is missing): "
                               "pip install 'asl[postgres]'\n")


def test_sqlite_needs_neither_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['psycopg'] = sys.modules['dask'] = None\n"
            "sys.argv[0] = 'asl'; from cli.main import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "batch",
                           str(EXAMPLES / "security-gap-pause.yaml"),
                           "--db", str(tmp_path / "asl.db")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "assessed 1" in done.stdout


def test_the_extras_are_declared_and_the_tests_get_them() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    assert "dask" not in base and "psycopg" not in base
    extras = project["optional-dependencies"]
    assert any(d.startswith("dask[distributed]") for d in extras["dask"])
    assert any(d.startswith("psycopg") for d in extras["postgres"])
    assert any(d.startswith("asl[") and {"serve", "dask", "postgres"}
               <= set(d[4:d.index("]")].split(",")) for d in extras["test"])


def test_the_readme_names_each_extra() -> None:
    readme = (REPO / "README.md").read_text()
    for extra in ("dask", "postgres", "serve", "inspect"):
        assert f"asl[{extra}]" in readme, extra
