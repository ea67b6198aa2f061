"""`asl assess`: assess model documents and print the output contract or a summary."""

from __future__ import annotations

import sys

import click

from cli.options import EXIT_REJECTED, assess_inputs, dumps, pack_option
from knowledge_graph.report import assessment_document, summary_text


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True, help="text: a summary per model; json: the output "
              "contract (an object, or an array for several models); jsonl: one per line.")
@pack_option
def assess(files: tuple[str, ...], fmt: str, db: str | None, packs: tuple[str, ...]) -> None:
    """Assess the models in FILES (model documents, portfolios, JSON Lines files or
    directories; - reads standard input).

    The rules are the active pack stack stored in the database (--db, as for every
    command: the built-in pack and the overlays activated with asl serve), unless
    --pack or --framework chooses the packs.

    \b
    Examples:
      asl assess examples/
      asl assess examples/portfolio/lineage.yaml --format json
      cat model.yaml | asl assess - --format jsonl
      asl assess --pack examples/packs/acme-lab examples/packs/acme-lab/example-model.yaml
      asl assess --db /srv/asl/asl.db model.yaml   # with the stack activated there
    """
    run = assess_inputs(files, packs)
    if fmt == "text":
        click.echo("\n".join(summary_text(a.output, a.pack.spec) for a in run.assessments),
                   nl=False)
    else:
        documents = [assessment_document(a) for a in run.assessments]
        if fmt == "jsonl":
            for document in documents:
                click.echo(dumps(document, indent=None))
        elif documents or not run.rejected:
            click.echo(dumps(documents[0] if run.single else documents))
    if run.rejected:
        sys.exit(EXIT_REJECTED)
