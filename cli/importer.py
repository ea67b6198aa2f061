"""`asl import`: turn other tools' records into evidence documents.

`asl import inspect` reads Inspect eval logs and a mapping file and writes an evidence
document (or adds the evaluations to an existing one). It is thin: it reads files and
calls `importers`. Exit status: 0 when the document was written; 2 when the import was
refused (each problem on standard error, one line naming the file and field, nothing
written); 1 when the rule pack failed to load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from cli.options import EXIT_REJECTED, fail, pack_option
from engine.assess import vocabulary
from engine.errors import PackError
from engine.evidence_schema import Vocabulary
from engine.loader import load_overlaid
from importers.inspect_import import FORMATS, dump_document, import_inspect, read_into
from importers.inspect_log import READERS, read_logs
from importers.mapping import load_mapping
from importers.problems import ImportRefused


@click.group("import")
def import_group() -> None:
    """Turn other tools' records into evidence documents."""


@import_group.command("inspect")
@click.argument("logs", nargs=-1, required=True, metavar="LOG...")
@click.option("--mapping", "mapping_file", required=True, metavar="MAP.yaml",
              help="Which task, scorer and metric feed which threshold, and which Inspect "
              "model is which model id (see docs/inspect-import.md).")
@click.option("--into", "into_file", metavar="DOC",
              help="Add the evaluations to this model document (an entry with the same id "
              "is replaced) and write the whole document.")
@click.option("--output", "-o", metavar="OUT",
              help="Write to OUT (.yaml, .yml or .json) instead of standard output.")
@click.option("--latest", is_flag=True,
              help="When logs disagree about the same evaluation, keep the newest log's "
              "figure instead of refusing.")
@click.option("--reader", type=click.Choice(READERS), default="auto", show_default=True,
              help="Read logs with the built-in reader or with inspect-ai (asl[inspect]); "
              "auto uses inspect-ai when it is installed. Both give the same result.")
@pack_option
def inspect_command(logs: tuple[str, ...], mapping_file: str, into_file: str | None,
                    output: str | None, latest: bool, reader: str, db: str | None,
                    packs: tuple[str, ...]) -> None:
    """Import Inspect eval logs (.eval or .json) as evidence: each log's metric, as the
    mapping says, becomes an `evaluations` entry with its threshold, scores, `source`
    (the log and its eval id) and `date` (the log's creation day).

    \b
    Examples:
      asl import inspect logs/*.eval --mapping mapping.yaml -o evidence.yaml
      asl import inspect logs/ctf.json --mapping mapping.yaml --into model.yaml -o model.yaml
      asl import inspect old.eval new.eval --mapping mapping.yaml --latest
    """
    fmt = _format(output, into_file)
    words = _vocabulary(packs)
    try:
        mapping = load_mapping(mapping_file, words)
        headers = read_logs(logs, reader)
        into = None if into_file is None else read_into(into_file, words)
        data = import_inspect(headers, mapping, words, latest=latest, into=into,
                              into_file=into_file or "", output_file=output or "<stdout>")
    except ImportRefused as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail("nothing was imported", EXIT_REJECTED)
    _write(dump_document(data, fmt), output)


def _format(output: str | None, into_file: str | None) -> str:
    """The output's format: from OUT's extension, else DOC's, else YAML."""
    for option, name in (("--output", output), ("--into", into_file)):
        if name is not None and Path(name).suffix.lower() not in FORMATS:
            raise click.UsageError(f"{option} {name}: expected a .yaml, .yml or .json file")
    chosen = output or into_file
    return FORMATS[Path(chosen).suffix.lower()] if chosen else "yaml"


def _vocabulary(packs: Sequence[str]) -> Vocabulary:
    """The threshold and safeguard names of the pack stack; exit 1 on a pack error."""
    try:
        return vocabulary(load_overlaid(packs))
    except PackError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail("the rule pack has errors; nothing was imported")


def _write(text: str, output: str | None) -> None:
    """Write the document to standard output, or to OUT whole or not at all (a
    temporary file renamed over it, so OUT may also be the --into document)."""
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    temporary = None
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else _default_mode()
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        fail(f"cannot write {output}: {exc.strerror or exc}")


def _default_mode() -> int:
    """The mode a new file gets here (0666 less the umask), as `open` would give it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
