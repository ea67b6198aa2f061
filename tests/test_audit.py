"""The decision log on both backends: entries hash-chained as the spec says, and `asl
audit verify` catching an edited, deleted and reordered entry, a truncated tail (with
--expect-head) and, with ASL_AUDIT_KEY, a rewritten chain; `asl audit export`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from cli.main import main
from store import audit, tokens
from store.db import connect


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def asl(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fill(engine: Engine, count: int, prefix: str = "token") -> None:
    """`count` entries, through the same calls the CLI makes."""
    for index in range(count):
        tokens.create(engine, f"{prefix}-{index}", "viewer", f"person-{index}")


def drop_triggers(engine: Engine) -> None:
    """What someone with write access to the database can do first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER decision_log_no_change ON decision_log")
        else:
            conn.exec_driver_sql("DROP TRIGGER decision_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER decision_log_no_delete")


def execute(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def head(engine: Engine) -> str:
    return audit.verify(engine).head


def test_entries_chain_as_the_spec_says(engine: Engine) -> None:
    fill(engine, 3)
    previous = "0" * 64
    for seq, entry in enumerate(audit.entries(engine), start=1):
        fields = {name: getattr(entry, name) for name in audit.HASHED_FIELDS}
        # For ASCII strings, integers and nulls, RFC 8785 is sorted keys and no spaces.
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        assert entry.seq == seq
        assert entry.prev_hash == previous
        assert entry.hash == hashlib.sha256((previous + canonical).encode()).hexdigest()
        assert entry.time.endswith("Z") and "T" in entry.time
        assert entry.actor.startswith("cli:") and entry.action == "token.create"
        assert entry.hmac is None
        previous = entry.hash
    result = audit.verify(engine)
    assert result == audit.Verification(3, f"3:{previous}", None)


def test_the_log_refuses_update_and_delete(engine: Engine) -> None:
    fill(engine, 1)
    for statement in ("UPDATE decision_log SET actor = 'mallory'", "DELETE FROM decision_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            execute(engine, statement)
    assert audit.verify(engine).failure is None


def test_verify_cli_prints_count_and_head(db_url: str, engine: Engine) -> None:
    fill(engine, 2)
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.output == (f"2 entries checked: hash chain intact; head {head(engine)}\n")
    same = asl("audit", "verify", "--db", db_url, "--expect-head", head(engine))
    assert same.exit_code == 0


def test_an_edited_entry_is_found(db_url: str, engine: Engine) -> None:
    fill(engine, 4)
    drop_triggers(engine)
    execute(engine, "UPDATE decision_log SET actor = 'mallory' WHERE seq = 2")
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 1
    assert "entry 2: its hash does not match its fields" in result.output


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db_url: str,
                                                            engine: Engine) -> None:
    fill(engine, 4)
    drop_triggers(engine)
    second = list(audit.entries(engine))[1]
    forged = {name: getattr(second, name) for name in audit.HASHED_FIELDS}
    forged["actor"] = "mallory"
    execute(engine, "UPDATE decision_log SET actor = 'mallory', hash = :h WHERE seq = 2",
            h=audit.entry_hash(second.prev_hash, forged))
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 1
    assert "entry 3: prev_hash is not the hash of entry 2" in result.output


def test_a_deleted_entry_is_found(db_url: str, engine: Engine) -> None:
    fill(engine, 4)
    drop_triggers(engine)
    execute(engine, "DELETE FROM decision_log WHERE seq = 2")
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 1
    assert "entry 3: expected entry 2 after entry 1" in result.output


def test_reordered_entries_are_found(db_url: str, engine: Engine) -> None:
    fill(engine, 4)
    drop_triggers(engine)
    execute(engine, "UPDATE decision_log SET seq = 100 WHERE seq = 2")
    execute(engine, "UPDATE decision_log SET seq = 2 WHERE seq = 3")
    execute(engine, "UPDATE decision_log SET seq = 3 WHERE seq = 100")
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 1
    assert "entry 2: " in result.output


def test_a_truncated_tail_is_found_against_the_expected_head(db_url: str,
                                                             engine: Engine) -> None:
    fill(engine, 4)
    recorded = head(engine)
    drop_triggers(engine)
    execute(engine, "DELETE FROM decision_log WHERE seq = 4")
    assert asl("audit", "verify", "--db", db_url).exit_code == 0  # a shorter chain is whole
    result = asl("audit", "verify", "--db", db_url, "--expect-head", recorded)
    assert result.exit_code == 1
    assert "ends at entry 3, before the expected head 4" in result.output
    # A log that grew past a recorded head still reaches it.
    fill(engine, 1, prefix="later")
    recorded = head(engine)
    fill(engine, 2, prefix="later-still")
    grown = asl("audit", "verify", "--db", db_url, "--expect-head", recorded)
    assert grown.exit_code == 0, grown.output


def test_a_rewritten_head_is_found(db_url: str, engine: Engine) -> None:
    fill(engine, 3)
    seq, _ = audit.parse_head(head(engine))
    other = f"{seq}:{'0' * 64}"
    result = asl("audit", "verify", "--db", db_url, "--expect-head", other)
    assert result.exit_code == 1 and f"entry {seq}: its hash is not the expected" \
        in result.output
    bad = asl("audit", "verify", "--db", db_url, "--expect-head", "three:abc")
    assert bad.exit_code == 2 and "SEQ:HASH" in bad.output


def test_with_the_key_a_rewritten_chain_is_found(db_url: str, engine: Engine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(audit.KEY_ENV, "k" * 32)
    fill(engine, 3)
    for entry in audit.entries(engine):
        assert entry.hmac == hmac.new(b"k" * 32, entry.hash.encode(),
                                      hashlib.sha256).hexdigest()
    assert asl("audit", "verify", "--db", db_url).exit_code == 0
    # Someone without the key rewrites the whole chain consistently.
    drop_triggers(engine)
    previous = audit.GENESIS
    for entry in list(audit.entries(engine)):
        fields = {name: getattr(entry, name) for name in audit.HASHED_FIELDS}
        fields["actor"] = "mallory"
        digest = audit.entry_hash(previous, fields)
        execute(engine, "UPDATE decision_log SET actor = 'mallory', prev_hash = :p, "
                "hash = :h, hmac = NULL WHERE seq = :s", p=previous, h=digest, s=entry.seq)
        previous = digest
    result = asl("audit", "verify", "--db", db_url)
    assert result.exit_code == 1 and "entry 1: has no HMAC" in result.output
    monkeypatch.delenv(audit.KEY_ENV)
    assert asl("audit", "verify", "--db", db_url).exit_code == 0  # the chain alone holds


def test_concurrent_appends_leave_no_gap(db_url: str, engine: Engine) -> None:
    def work(offset: int) -> None:
        for index in range(6):
            tokens.create(engine, f"t{offset}-{index}", "viewer")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.seq for e in audit.entries(engine)] == list(range(1, 19))
    assert audit.verify(engine).failure is None


def test_export_writes_every_entry_as_a_json_line(db_url: str, engine: Engine) -> None:
    fill(engine, 3)
    result = asl("audit", "export", "--db", db_url, "--format", "jsonl")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [e.to_json() for e in audit.entries(engine)]
    assert set(lines[0]) == {*audit.HASHED_FIELDS, "prev_hash", "hash", "hmac"}


def test_append_joins_the_callers_transaction(engine: Engine) -> None:
    """An entry rolled back with what it records leaves no trace."""
    with pytest.raises(RuntimeError), engine.begin() as conn:
        audit.append(conn, actor="someone", action="test.action")
        raise RuntimeError("the recorded change failed")
    assert list(audit.entries(engine)) == []
    with engine.begin() as conn:
        entry = audit.append(conn, actor="someone", action="test.action",
                             input_sha256=audit.sha256_of({"a": 1}))
    assert entry.seq == 1 and entry.input_sha256 == hashlib.sha256(b'{"a":1}').hexdigest()
