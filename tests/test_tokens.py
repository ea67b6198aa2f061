"""`asl tokens create|list|revoke` and token checking, on both backends: the token's
format, only its hash stored, people and roles, expiry and revocation, and each change
in the decision log as the OS user."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.main import main
from store import audit, tokens
from store.db import connect

TOKEN = re.compile(r"asl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def asl(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def stored_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM api_token")).mappings()]


def test_create_prints_the_token_and_stores_only_its_hash(db_url: str,
                                                          engine: Engine) -> None:
    result = CliRunner().invoke(main, ["tokens", "create", "--name", "alice-admin", "--role",
                                       "admin", "--user", "alice", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert TOKEN.fullmatch(result.stdout.strip()), result.stdout
    assert result.stdout.count("\n") == 1  # the token, and nothing else
    token = result.stdout.strip()
    token_id, secret = token[4:20], token[21:]
    [row] = stored_rows(engine)
    assert row["id"] == token_id and row["person"] == "alice" and row["role"] == "admin"
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(row) and token not in json.dumps(row)
    assert tokens.authenticate(engine, token) is not None


def test_user_defaults_to_the_name(db_url: str, engine: Engine) -> None:
    asl("tokens", "create", "--name", "bob", "--role", "viewer", "--db", db_url)
    assert stored_rows(engine)[0]["person"] == "bob"


def test_list_shows_people_roles_expiry_and_last_use_never_secrets(db_url: str,
                                                                   engine: Engine) -> None:
    made = asl("tokens", "create", "--name", "carol", "--role", "analyst", "--user",
               "carol@example.org", "--expires", "30", "--db", db_url).stdout.strip()
    tokens.authenticate(engine, made)
    table = asl("tokens", "list", "--db", db_url)
    assert table.exit_code == 0
    assert "carol@example.org" in table.output and "analyst" in table.output
    assert "active" in table.output
    data = json.loads(asl("tokens", "list", "--db", db_url, "--format", "json").output)
    [entry] = data
    assert entry["person"] == "carol@example.org" and entry["state"] == "active"
    assert entry["expires_at"] is not None and entry["last_used_at"] is not None
    secret_hash = stored_rows(engine)[0]["secret_sha256"]
    for output in (table.output, json.dumps(data)):
        assert made[21:] not in output and str(secret_hash) not in output


def test_a_live_name_is_unique_until_revoked(db_url: str, engine: Engine) -> None:
    first = asl("tokens", "create", "--name", "ci", "--role", "viewer", "--db", db_url)
    again = CliRunner().invoke(main, ["tokens", "create", "--name", "ci", "--role",
                                      "viewer", "--db", db_url])
    assert again.exit_code == 2 and "a live token named 'ci' exists" in again.stderr
    revoked = asl("tokens", "revoke", "ci", "--db", db_url)
    assert revoked.exit_code == 0 and "revoked ci" in revoked.output
    assert tokens.authenticate(engine, first.stdout.strip()) is None
    assert asl("tokens", "create", "--name", "ci", "--role", "viewer",
               "--db", db_url).exit_code == 0
    states = sorted(t.state() for t in tokens.list_tokens(engine))
    assert states == ["active", "revoked"]


def test_bad_requests_get_one_clear_line(db_url: str) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["tokens", "revoke", "nobody", "--db", db_url])
    assert unknown.exit_code == 2 and unknown.stderr == \
        "asl: no live token named 'nobody'; asl tokens list shows them\n"
    role = runner.invoke(main, ["tokens", "create", "--name", "x", "--role", "root",
                                "--db", db_url])
    assert role.exit_code == 2 and "'root' is not one of" in role.output
    expiry = runner.invoke(main, ["tokens", "create", "--name", "x", "--role", "viewer",
                                  "--expires", "0", "--db", db_url])
    assert expiry.exit_code == 2
    name = runner.invoke(main, ["tokens", "create", "--name", "../x", "--role", "viewer",
                                "--db", db_url])
    assert name.exit_code == 2 and "token name '../x'" in name.stderr


def test_authenticate_refuses_wrong_unknown_malformed_and_expired(engine: Engine) -> None:
    made, token = tokens.create(engine, "dora", "viewer")
    assert tokens.authenticate(engine, made) == token.__class__(**{
        **token.__dict__, "last_used_at": None})  # the record as it was made
    wrong = made[:-1] + ("A" if made[-1] != "A" else "B")
    unknown = f"asl_{'0' * 16}_{made[21:]}"
    for presented in (wrong, unknown, made + "x", "", "Bearer " + made, made.upper()):
        assert tokens.authenticate(engine, presented) is None, presented
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_token SET expires_at = '2000-01-01T00:00:00.000000Z'"))
    assert tokens.authenticate(engine, made) is None
    assert tokens.list_tokens(engine)[0].state() == "expired"


def test_changes_are_logged_as_the_os_user(db_url: str, engine: Engine) -> None:
    asl("tokens", "create", "--name", "erin", "--role", "rule-author", "--db", db_url)
    asl("tokens", "revoke", "erin", "--db", db_url)
    entries = list(audit.entries(engine))
    assert [e.action for e in entries] == ["token.create", "token.revoke"]
    assert all(e.actor == audit.cli_actor() and e.actor.startswith("cli:") for e in entries)
    assert entries[0].input_sha256 == audit.sha256_of(
        {"name": "erin", "role": "rule-author", "person": "erin", "expires_days": None})
    assert audit.verify(engine).failure is None
