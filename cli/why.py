"""`asl why`: explain a conclusion of an assessment made now (from a file) or of one
in the record (a model id), as a tree of text or JSON, or as a graph."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.options import (
    EXIT_REJECTED,
    assess_inputs,
    choose_model,
    deferred_pack_option,
    dumps,
    fail,
)
from cli.output import write_output
from cli.store_options import (
    check_assessment,
    check_stored_stack,
    open_engine,
    open_store,
    stored_history,
    stored_overlays,
)
from engine.errors import InputError
from engine.framework import FrameworkSpec, builtin_spec, default_spec
from knowledge_graph import stored
from knowledge_graph.explain import render_text, why_tree
from knowledge_graph.reading import Graph, UnknownConclusion, find_conclusion, subjects_for
from store.newest import newest as read_newest
from store.sqlite_reader import newest_current

# knowledge_graph.export (Graphviz, PROV, networkx) is imported only for a graph format,
# the assessment's report only for a file, and rich only to draw for a terminal: `asl
# why MODEL` from a current SQLite record imports neither them nor SQLAlchemy (the row
# is read with sqlite3) nor networkx (the record is explained from its adjacency).
BINARY_FORMATS = ("png",)
GRAPH_FORMATS = ("dot", "svg", "png", "prov-json", "graphml")
TREE_FORMATS = ("text", "json")  # explained from a stored record's adjacency


@click.command()
@click.argument("file", metavar="FILE|MODEL")
@click.option("--model", "model_id", help="The model to explain (needed for a portfolio).")
@click.option("--conclusion", "selector",
              help="What to explain (default: the headline level, rsp-2.1's asl): level, "
              "decision, required.NAME, threshold:NAME, any output key's selector "
              "(rsp-2.1: comprehensive, checkpoint:NAME, ongoing:NAME), missing:SAFEGUARD_ID, "
              "action:ACTION, or a conclusion id from the json output; with a graph format "
              "also all (the model's whole provenance).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", *GRAPH_FORMATS]),
              default="text", show_default=True,
              help="text or json: the explanation tree; dot, svg, png, prov-json (W3C PROV) "
              "or graphml: the conclusion and everything it rests on, as a graph. Only svg "
              "and png need Graphviz's dot program installed.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE instead of standard output (required for png); FILE "
              "appears only when complete.")
@click.option("--color/--no-color", "color", default=None,
              help="Colour the text explanation and draw it as a tree (default: when "
              "standard output is a terminal).")
@click.option("--assessment", "assessment_id", type=int,
              help="With a stored MODEL: explain this assessment (an id from asl history) "
              "instead of the newest.")
@deferred_pack_option  # and --db; the stored stack is read only for a FILE, which is assessed
def why(file: str, model_id: str | None, selector: str | None, fmt: str, output: str | None,
        color: bool | None, assessment_id: int | None, db: str | None,
        packs: tuple[str, ...] | None) -> None:
    """Explain a conclusion: the chain from it through each rule (title, citation,
    reason) down to the evidence it rests on, as text, JSON or a graph.

    FILE is assessed now; a MODEL id that is not a file is answered from the record of
    assessments (--db), without its evidence file.

    \b
    Examples:
      asl why examples/security-gap-pause.yaml
      asl why examples/security-gap-pause.yaml --conclusion decision
      asl why examples/portfolio/lineage.yaml --model corvid-atlas-5-chat \\
          --conclusion required.security --format json
      asl why examples/security-gap-pause.yaml --conclusion decision --format svg -o why.svg
      asl why examples/cbrn4-asl4-pause.yaml --conclusion all --format png -o all.png
      asl why examples/security-gap-pause.yaml --format prov-json -o why.prov.json
      asl why corvid-atlas-5 --conclusion decision          # from the record (asl batch)
    """
    is_file = file == "-" or Path(file).exists()
    light = None  # the newest stored assessment, when sqlite3 alone could read it
    if not is_file and assessment_id is None and fmt in TREE_FORMATS:
        light = newest_current(db, file, read_stack=packs is None)
    if packs is None and light is None:  # no --pack nor --framework: the stored stack,
        # read where the option reads it for other commands (so refused alike), written
        # out only to assess
        if is_file:
            packs = stored_overlays(db)
        else:
            check_stored_stack(db)
    if fmt in BINARY_FORMATS and output is None:
        raise click.UsageError(f"--format {fmt} writes an image; give --output FILE")
    if selector == "all" and fmt not in GRAPH_FORMATS:
        raise click.UsageError("--conclusion all needs a graph format: --format "
                               + "|".join(GRAPH_FORMATS))
    errors: list[InputError] = []
    if is_file:
        if assessment_id is not None:
            raise click.UsageError("--assessment reads the record; give a MODEL id, not a file")
        run = assess_inputs([file], packs)
        from knowledge_graph.report import provenance

        chosen = choose_model(run.assessments, model_id, file)
        model, graph, errors = chosen.model, provenance(chosen), run.rejected
        spec = chosen.pack.spec
    else:
        newest = light or _stored(file, assessment_id, db)
        model, graph, spec = file, _graph(newest[2], fmt), _spec(newest[1])
    _explain(model, graph, selector or spec.level.key or "level", fmt, output, color,
             subjects_for(spec))
    if errors:
        sys.exit(EXIT_REJECTED)


def _stored(model: str, assessment_id: int | None, db: str | None
            ) -> tuple[int, str, bytes]:
    """The id, framework and stored provenance of an assessment of `model` (the newest
    by default), read the full way (SQLAlchemy: any database, migrated or refused as for
    every command)."""
    missing = (f"{model}: no such file, and no stored assessment of a model {model!r} "
               "(asl list shows the stored models)")
    if assessment_id is None:  # the newest: found by index alone, then by primary key
        newest = read_newest(open_engine(db), model)
        if newest is None:
            fail(missing, EXIT_REJECTED)
        return newest
    store = open_store(db)
    found = stored_history(store, model, missing)
    check_assessment(model, assessment_id, found)
    framework = next(s.framework for s in found if s.id == assessment_id)
    return assessment_id, framework, store.provenance(assessment_id)


def _graph(blob: bytes, fmt: str) -> Graph:
    """A stored provenance graph as `fmt` needs it: its adjacency for an explanation
    tree, a networkx graph to draw or export."""
    return stored.decode_adjacency(blob) if fmt in TREE_FORMATS else stored.decode(blob)


def _spec(framework: str) -> FrameworkSpec:
    """The spec of the framework a stored assessment was made under."""
    return builtin_spec(framework) or default_spec()


def _explain(model: str, graph: Graph, selector: str, fmt: str, output: str | None,
             color: bool | None, subjects: dict[str, Any] | None = None) -> None:
    """Print (or write) the explanation of `selector` in a model's provenance graph."""
    node: str | None = None
    if selector != "all":
        try:
            node = find_conclusion(graph, selector, subjects)
        except UnknownConclusion:
            fail(f"{model} has no conclusion {selector!r}; try level, decision, "
                  "required.NAME, threshold:NAME or an id from --format json",
                  EXIT_REJECTED)
    heading = f"{model}: why {selector}?"
    if fmt in GRAPH_FORMATS:
        from knowledge_graph.export import GraphvizError, GraphvizMissing, explained, export

        part = graph if node is None else explained(graph, node)
        title = f"{model}: provenance" if node is None else heading
        try:
            drawn = export(part, fmt, title, node)
        except GraphvizMissing as exc:  # the user's setup, not our failure: exit 2
            fail(str(exc), EXIT_REJECTED)
        except GraphvizError as exc:
            fail(str(exc))
        _write(drawn, output)
        return
    assert node is not None
    tree = why_tree(graph, node)
    if fmt == "json":
        text = dumps({"model": model, "conclusion": node, "explanation": tree})
        _write(f"{text}\n".encode(), output)
    elif output is None and (sys.stdout.isatty() if color is None else color):
        from rich.console import Console
        from rich.text import Text

        from knowledge_graph.explain import render_rich

        console = Console(file=sys.stdout, force_terminal=True, highlight=False,
                          no_color=None if color is None else False)
        console.print(Text(heading, style="bold"))
        console.print(render_rich(tree))
    else:
        _write(f"{heading}\n{render_text(tree)}".encode(), output)


def _write(data: bytes, output: str | None) -> None:
    """Write `data` to the file `output` (whole or not at all), or to standard output
    when it is None."""
    try:
        write_output(data, output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
