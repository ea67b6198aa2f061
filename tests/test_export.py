"""`asl why` as a graph (DOT, SVG, PNG, PROV-JSON, GraphML) and as a coloured tree on a
terminal, run through the command line the way a user runs it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES, GOLDEN, REPO, assess_paths
from prov.model import (
    ProvActivity,
    ProvDerivation,
    ProvDocument,
    ProvElement,
    ProvEntity,
    ProvGeneration,
    ProvRelation,
    ProvUsage,
)

from cli.main import main
from knowledge_graph import export
from knowledge_graph.provenance import CONCLUSION, NODE_KINDS, find_conclusion
from knowledge_graph.report import provenance

UPDATE_GOLDEN = os.environ.get("ASL_UPDATE_GOLDEN") == "1"
GAP = str(EXAMPLES / "security-gap-pause.yaml")
RICH = str(EXAMPLES / "cbrn4-asl4-pause.yaml")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program "
                               "is not installed (apt-get install graphviz)")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["why", *args], catch_exceptions=False)


def test_dot_matches_golden() -> None:
    """The DOT of one explanation is stable: sorted nodes and edges, no paths or times.
    Regenerate with ASL_UPDATE_GOLDEN=1 after an intended change, and read the diff."""
    result = run(GAP, "--conclusion", "decision", "--format", "dot")
    assert result.exit_code == 0, result.stderr
    golden = GOLDEN / "why-security-gap-pause-decision.dot"
    if UPDATE_GOLDEN:
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()


def test_dot_styles_every_kind_and_puts_conclusions_on_top() -> None:
    source = run(RICH, "--conclusion", "all", "--format", "dot").stdout
    assert source.startswith("digraph provenance {")
    assert "rankdir=BT" in source and "concentrate=true" in source
    for style in ('shape=note style=filled', 'fillcolor="#e5e7eb"',
                  'style="rounded,filled"', 'style="filled,bold"'):
        assert style in source
    assert "RSP v2.1 §" in source  # rule firings carry their citation


@needs_dot
def test_svg_renders_to_stdout() -> None:
    result = run(GAP, "--conclusion", "decision", "--format", "svg")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<?xml") and "<svg" in result.stdout
    assert "decision.most&#45;severe" in result.stdout  # a rule firing's label


@needs_dot
def test_png_is_written_to_the_output_file(tmp_path: Path) -> None:
    target = tmp_path / "why.png"
    result = run(GAP, "--conclusion", "all", "--format", "png", "--output", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_png_without_output_is_a_usage_error() -> None:
    result = run(GAP, "--format", "png")
    assert result.exit_code == 2
    assert "give --output FILE" in result.stderr
    assert result.stdout == ""


def test_all_needs_a_graph_format() -> None:
    result = run(GAP, "--conclusion", "all")
    assert result.exit_code == 2
    assert "--conclusion all needs a graph format" in result.stderr


def test_missing_dot_is_one_line_saying_how_to_install(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit status 2: a program missing from the user's setup, like rejected input, not a
    failure of asl (test_why_output.py runs the same through a real process)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run(GAP, "--format", "svg")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("asl: Graphviz's dot program is not installed (not on "
                                    "PATH); it draws svg and png. Install it with ")
    assert "apt-get install graphviz" in result.stderr and "brew install graphviz" in result.stderr


def test_dot_needs_no_graphviz_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(GAP, "--format", "dot")
    assert result.exit_code == 0 and result.stdout.startswith("digraph")


def _prov(args: list[str]) -> tuple[str, ProvDocument]:
    result = run(*args, "--format", "prov-json")
    assert result.exit_code == 0, result.stderr
    return result.stdout, ProvDocument.deserialize(content=result.stdout, format="json")


@pytest.mark.parametrize("selector", ["decision", "all"])
def test_prov_json_round_trips(selector: str) -> None:
    """What the command prints reads back as the document the exporter built."""
    text, back = _prov([GAP, "--conclusion", selector])
    graph = provenance(assess_paths(GAP)[0])
    part = graph if selector == "all" else export.explained(
        graph, find_conclusion(graph, selector))
    built = export.to_prov(part)
    for kind in (ProvEntity, ProvActivity, ProvRelation):
        assert len(list(back.get_records(kind))) == len(list(built.get_records(kind))) > 0
    assert back == built
    firings = sum(1 for _, k in part.nodes(data="node") if k == "firing")
    assert len(list(back.get_records(ProvActivity))) == firings
    assert len(list(back.get_records(ProvEntity))) == len(part) - firings
    assert json.loads(text)["prefix"]["asl"] == export.ASL_NS


def test_prov_conclusions_are_generated_and_firings_use_facts() -> None:
    _, doc = _prov([RICH, "--conclusion", "all"])
    generated = {r.args[0] for r in doc.get_records(ProvGeneration)}
    derived = {r.args[0] for r in doc.get_records(ProvDerivation)}
    using = {r.args[0] for r in doc.get_records(ProvUsage)}
    conclusions = [e for e in doc.get_records(ProvEntity)
                   if any(t.localpart == "Conclusion" for t in e.get_asserted_types())]
    assert conclusions
    for entity in conclusions:
        assert entity.identifier in generated
        assert entity.identifier in derived
    activities = doc.get_records(ProvActivity)
    for activity in activities:
        assert activity.identifier in using
        attributes = {str(k): v for k, v in activity.attributes}
        assert attributes["asl:citation"].startswith("RSP v2.1")
        assert attributes["asl:rule"] and attributes["asl:because"]
        assert attributes["asl:title"]


def _graphml(args: list[str]) -> nx.DiGraph:
    result = run(*args, "--format", "graphml")
    assert result.exit_code == 0, result.stderr
    return nx.read_graphml(io.StringIO(result.stdout))


def test_graphml_reads_back_with_the_same_nodes() -> None:
    graph = provenance(assess_paths(GAP)[0])
    node = find_conclusion(graph, "decision")
    part = export.explained(graph, node)
    back = _graphml([GAP, "--conclusion", "decision"])
    assert back.number_of_nodes() == part.number_of_nodes()
    assert back.number_of_edges() == part.number_of_edges()
    assert set(back) == set(part)
    assert json.loads(back.nodes[node]["values"]) == {"value": "pause"}


def test_all_exports_the_whole_provenance_with_every_kind() -> None:
    back = _graphml([RICH, "--conclusion", "all"])
    assert 50 <= back.number_of_nodes() <= 300
    assert {kind for _, kind in back.nodes(data="node")} == set(NODE_KINDS)
    assert sum(1 for _, k in back.nodes(data="node") if k == CONCLUSION) > 10


@needs_dot
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_renders_whole(path: Path) -> None:
    """Graphviz lays out every example's whole provenance (concentrate=true included)."""
    graph = provenance(assess_paths(path)[0])
    svg = export.export(graph, "svg", title=path.stem)
    assert b"<svg" in svg


@needs_dot
def test_labels_are_escaped() -> None:
    """Values with DOT and HTML specials, and ids with colons, still draw."""
    graph = provenance(assess_paths(GAP)[0])
    node = find_conclusion(graph, "decision")
    part = export.explained(graph, node)
    evidence = next(n for n, k in sorted(part.nodes(data="node")) if k == "evidence")
    part.nodes[evidence]["values"] = {**part.nodes[evidence]["values"],
                                      "name": 'a<b> & "c" \\l {d}; e:f'}
    part.nodes[evidence]["label"] = "<x>"
    part.add_node("<tooltip:id>", **part.nodes[evidence])
    source = export.to_dot(part, '<title with "quotes" \\ and angles>', node).source
    assert "&lt;b&gt; &amp;" in source
    assert 'label="<title with \\"quotes\\" \\\\ and angles>"' in source
    assert 'tooltip="<tooltip:id>"' in source
    assert b"<svg" in export.render(source, "svg")


def test_text_is_plain_when_piped_and_coloured_on_request() -> None:
    plain = run(GAP, "--conclusion", "decision")
    assert "\x1b" not in plain.stdout
    assert plain.stdout == (GOLDEN / "why-security-gap-pause-decision.txt").read_text()
    assert run(GAP, "--conclusion", "decision", "--no-color").stdout == plain.stdout
    coloured = run(GAP, "--conclusion", "decision", "--color")
    assert coloured.exit_code == 0
    assert "\x1b[" in coloured.stdout
    for glyph in ("└── ", "├── ", "← rule "):
        assert glyph in coloured.stdout
    assert "decision.most-severe" in coloured.stdout and "[RSP v2.1 §6]" in coloured.stdout


def test_output_file_gets_plain_text(tmp_path: Path) -> None:
    target = tmp_path / "why.txt"
    result = run(GAP, "--conclusion", "decision", "--color", "-o", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text() == (GOLDEN / "why-security-gap-pause-decision.txt").read_text()


def test_unwritable_output_fails_with_one_line(tmp_path: Path) -> None:
    result = run(GAP, "--format", "dot", "-o", str(tmp_path / "missing" / "why.dot"))
    assert result.exit_code == 1
    assert result.stderr.startswith("asl: cannot write ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("fmt", ["dot", "text"])
def test_a_real_process_prints_clean_stdout(fmt: str) -> None:
    """Through a real pipe: nothing but the export on stdout, nothing on stderr, and no
    colour, since the pipe is not a terminal."""
    completed = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "why", GAP,
         "--conclusion", "decision", "--format", fmt],
        capture_output=True, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == b""
    assert b"\x1b" not in completed.stdout
    golden = GOLDEN / f"why-security-gap-pause-decision.{'dot' if fmt == 'dot' else 'txt'}"
    assert completed.stdout.decode() == golden.read_text()


def test_exporters_are_deterministic() -> None:
    graph = provenance(assess_paths(RICH)[0])
    shuffled = nx.DiGraph()
    shuffled.add_nodes_from(reversed(list(graph.nodes(data=True))))
    shuffled.add_edges_from(reversed(list(graph.edges(data=True))))
    for fmt in ("dot", "prov-json", "graphml"):
        assert export.export(graph, fmt) == export.export(shuffled, fmt)


def test_prov_elements_have_no_dangling_references() -> None:
    _, doc = _prov([RICH, "--conclusion", "all"])
    elements = {r.identifier for r in doc.get_records(ProvElement)}
    for relation in doc.get_records(ProvRelation):
        for value in relation.args[:2]:
            assert value in elements
