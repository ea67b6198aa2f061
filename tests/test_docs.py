"""The README's promises: its two opening commands, and CI running the test command."""

from __future__ import annotations

import re

from helpers import REPO


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_opens_with_the_install_and_test_commands() -> None:
    first, second = _commands()[:2]
    assert "pip install ." in first and "asl batch examples/" in first
    assert "pip install '.[test]'" in second and "pytest" in second


def test_ci_runs_the_readme_test_command() -> None:
    assert _commands()[1] in (REPO / ".ci" / "run").read_text()
