"""`asl audit`: check and export the decision log.

`verify` walks the hash chain (and, with ASL_AUDIT_KEY set, each entry's HMAC): exit 0
with the number of entries checked and the head `SEQ:HASH`, or exit 1 naming the first
entry that fails. Keep the head it prints somewhere else and pass it back with
`--expect-head`: then removing the newest entries is detected too.
"""

from __future__ import annotations

import click
import orjson

from cli.options import EXIT_FAILED, fail
from cli.store_options import db_option, open_store
from store import audit


@click.group("audit", context_settings={"help_option_names": ["-h", "--help"]})
def audit_group() -> None:
    """Verify and export the decision log.

    \b
    Examples:
      asl audit verify
      asl audit verify --expect-head 1042:3f5e...c9
      asl audit export --format jsonl > decisions.jsonl
    """


@audit_group.command("verify")
@click.option("--expect-head", metavar="SEQ:HASH",
              help="A head printed earlier: fail when the log no longer reaches it.")
@db_option
def verify(expect_head: str | None, db: str | None) -> None:
    """Check the decision log's hash chain (and HMACs, with ASL_AUDIT_KEY)."""
    expected = None
    if expect_head is not None:
        try:
            expected = audit.parse_head(expect_head)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expect-head") from None
    result = audit.verify(open_store(db).engine, audit.audit_key(), expected)
    if result.failure is not None:
        fail(f"decision log broken after {result.checked} good entries: {result.failure}",
             EXIT_FAILED)
    keyed = " and HMACs" if audit.audit_key() else ""
    click.echo(f"{result.checked} entries checked: hash chain{keyed} intact; "
               f"head {result.head}")


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl",
              show_default=True, help="One JSON object per entry, in seq order.")
@db_option
def export(fmt: str, db: str | None) -> None:
    """Write every entry of the decision log, oldest first."""
    for entry in audit.entries(open_store(db).engine):
        click.echo(orjson.dumps(entry.to_json()))
