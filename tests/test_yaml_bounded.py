"""Reading YAML is bounded by the text, not by what it builds (issue 15, point 1).

A flat 8 MB list used to take 110 s and 2.9 GB in PyYAML's pure-Python reader before
the evidence size check refused it. Nodes are now counted before anything is built
(libyaml) or as the composer builds them (pure Python), and the document is refused at
`MAX_NODES`; pack files go through the same reader.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from engine import yamlsafe
from engine.yamlsafe import DuplicateKeyError, TooManyNodes, load_data, load_yaml

needs_libyaml = pytest.mark.skipif(yamlsafe.CParser is None, reason="PyYAML without libyaml")


@pytest.mark.parametrize("load", [load_data, load_yaml])
@pytest.mark.parametrize("text", [
    "x: [" + ", ".join(["1"] * 101) + "]\n",   # more events than twice the cap: C count
    "x: [" + ", ".join(["[1]"] * 60) + "]\n",  # between the cap and twice it: counted one by one
    "{" + ", ".join(f"k{i}: v" for i in range(60)) + "}\n",  # keys are nodes too
])
def test_a_document_over_the_node_cap_is_refused(load, text: str) -> None:
    with pytest.raises(TooManyNodes, match="more than 100 YAML nodes"):
        load(text, max_nodes=100)


@pytest.mark.parametrize("text", [
    "x: [" + ", ".join(["1"] * 101) + "]\n",
    "{" + ", ".join(f"k{i}: v" for i in range(60)) + "}\n",
])
def test_the_pure_python_reader_stops_at_the_cap_as_it_composes(text: str) -> None:
    loader = yamlsafe.StrictLoader(text, max_nodes=100)
    with pytest.raises(TooManyNodes):
        loader.get_single_data()
    assert loader.nodes == 101  # stopped at the first node past the cap


@pytest.mark.parametrize("load", [load_data, load_yaml])
def test_a_document_at_the_cap_is_read(load) -> None:
    text = "x: [" + ", ".join(["1"] * 98) + "]\n"  # mapping, key, list and 98 items
    assert load(text, max_nodes=101)["x"] == [1] * 98


@needs_libyaml
@pytest.mark.parametrize("text", [
    "a: [1\nb: 2\n", "a: b: c\n", "a: *nowhere\n", "---\na: 1\n---\nb: 2\n",
    "a: \x07\n", "x: 2026-02-30\n", "a: {b: 1, b: 2}\nc: 1\nc: 2\n",
])
def test_errors_read_with_libyaml_are_worded_as_the_pure_python_reader_words_them(
    text: str,
) -> None:
    with pytest.raises(yaml.YAMLError) as slow:
        yamlsafe.StrictLoader(text).get_single_data()
    with pytest.raises(yaml.YAMLError) as fast:
        load_data(text)
    assert type(fast.value) is type(slow.value)
    assert str(fast.value).splitlines()[:2] == str(slow.value).splitlines()[:2] or (
        getattr(fast.value, "problem", None) == getattr(slow.value, "problem", None))
    fast_mark = getattr(fast.value, "problem_mark", None)
    slow_mark = getattr(slow.value, "problem_mark", None)
    if slow_mark is not None:
        assert (fast_mark.line, fast_mark.column) == (slow_mark.line, slow_mark.column)


@needs_libyaml
def test_the_first_duplicate_key_is_the_one_the_composer_would_report() -> None:
    text = "a: &x {k: 1, k: 2}\nb: *x\nc: {m: 1, m: 2}\na: 3\n"
    with pytest.raises(DuplicateKeyError) as raised:
        load_data(text)
    assert (raised.value.key, raised.value.first_line) == ("k", 1)


@needs_libyaml
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_an_eight_megabyte_flat_list_is_refused_in_little_memory(tmp_path: Path) -> None:
    """The probe's input: 8 MB of `x: [1,1,...]` through the evidence reader, one line,
    peak memory of the whole process well under what building it took (2.9 GB)."""
    big = tmp_path / "flat.yaml"
    big.write_text("x: [" + ",".join(["1"] * 4_000_000) + "]\n")
    script = textwrap.dedent(f"""
        from engine.evidence_reading import documents_in
        errors = []
        assert documents_in({str(big)!r}, None, errors) == []
        print(*[str(e) for e in errors], sep="\\n")
        status = open("/proc/self/status").read().split("VmHWM:")[1]  # not ru_maxrss: exec keeps it
        print(int(status.split()[0]) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[:-1] == [f"{big}: invalid YAML: more than {yamlsafe.MAX_NODES:,} YAML nodes "
                        "(values, keys and aliases); give a portfolio this large as JSON Lines"]
    assert int(out[-1]) < 300  # MiB


def test_the_evidence_format_states_the_node_cap() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "evidence-format.md").read_text()
    assert f"more than {yamlsafe.MAX_NODES:,} nodes" in text
