"""Shared pytest configuration: the `slow` marker, a factory for small rule packs, and
(from pg_server) a throwaway PostgreSQL server with the `postgres_url` and `db_url` fixtures.

Slow tests run by default; deselect them with `-m "not slow"` for a quick loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# pack.yaml of a minimal standalone pack: a few evidence, pack and derived kinds, plus the
# contract kinds the `conclusions` stage requires (engine.loader.CONTRACT_KINDS).
MINI_PACK = """\
name: mini
title: A minimal pack for engine tests
kinds:
  x: {origin: evidence, fields: {name: str, score: number, limit: number}}
  y: {origin: evidence, fields: {name: str}}
  start: {origin: evidence, fields: {name: str}}
  seed: {origin: evidence, fields: {name: str}}
  item: {origin: pack, fields: {name: str}}
  a: {fields: {name: str}}
  b: {fields: {name: str}}
  concern: {fields: {name: str}}
  cleared: {fields: {name: str}}
  asl: {fields: {level: str}}
  required: {fields: {standard: str, level: str}}
  comprehensive: {fields: {required: bool}}
  status: {fields: {capability: str, value: str}}
  missing_safeguard: {fields: {safeguard: str}}
  decision: {fields: {value: str}}
  action: {fields: {name: str}}
{extra_kinds}facts:
  - {kind: item, name: widget, title: a pack fact}
"""

# One rule concluding every contract kind, from a kind (`seed`) that tests never assert,
# so it satisfies the loader and stays out of every evaluation.
CONTRACT_RULES = """\
- id: contract.all
  title: Every contract kind, from a seed
  cite: RSP v2.1 §1
  because: "seed {seed.name}"
  when:
    - match: seed
  then:
    asl: {level: ASL-2}
    required: {standard: deployment, level: ASL-2}
    comprehensive: {required: false}
    status: {capability: {ref: seed.name}, value: ruled_out}
    missing_safeguard: {safeguard: none}
    decision: {value: proceed}
    action: {name: none}
"""

PackWriter = Callable[..., Path]

# postgres_server, postgres_url and db_url (tests/pg_server.py; tests/ is on pythonpath).
pytest_plugins = ["pg_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: long-running regression test (runs by default; "
        "deselect with -m 'not slow')")


def write_mini_pack(root: Path, rules: str | dict[str, str], extra_kinds: str = "",
                    pack_yaml: str | None = None) -> Path:
    """Write a standalone pack under `root`: pack.yaml (MINI_PACK with `extra_kinds`,
    indented two spaces under `kinds:`, unless `pack_yaml` replaces it), the contract rule
    in rules/00-contract.yaml, and `rules` as rules/50-test.yaml (or as the named files)."""
    (root / "rules").mkdir(parents=True, exist_ok=True)
    text = pack_yaml if pack_yaml is not None else MINI_PACK.replace("{extra_kinds}",
                                                                     extra_kinds)
    (root / "pack.yaml").write_text(text, encoding="utf-8")
    (root / "rules" / "00-contract.yaml").write_text(CONTRACT_RULES, encoding="utf-8")
    files = {"50-test.yaml": rules} if isinstance(rules, str) else rules
    for name, content in files.items():
        (root / "rules" / name).write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_pack(tmp_path: Path) -> PackWriter:
    """`make_pack(rules, extra_kinds="", pack_yaml=None, directory="mini")`: a small pack
    in a fresh directory under tmp_path (see `write_mini_pack`)."""

    def make(rules: str | dict[str, str], extra_kinds: str = "",
             pack_yaml: str | None = None, directory: str = "mini") -> Path:
        return write_mini_pack(tmp_path / directory, rules, extra_kinds, pack_yaml)

    return make
