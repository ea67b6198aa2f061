"""Train the zstd dictionary of the stored derivation format (knowledge_graph/stored.py).

Run once, when a new format is made; never to replace the file of a format in use
(records stored with it could not be read):

    python -m knowledge_graph.train_dictionary knowledge_graph/derivation.zdict

It assesses the bundled examples and a synthetic portfolio (benchmarks/synth.py, a seed
the benchmarks do not use), and trains on their graphs' stored tables and their results'
JSON, the two things stored compressed per assessment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import zstandard

SIZE = 112 * 1024  # bytes; larger gave under 2% more on held-out portfolios
SEED = 9_001
MODELS = 400


def samples() -> list[bytes]:
    """A graph table and a result per assessment of the examples and a synthetic portfolio."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "benchmarks"))
    import synth  # type: ignore[import-not-found]

    from cli.options import assess_inputs
    from knowledge_graph.report import assessment_document, provenance
    from knowledge_graph.stored import table

    paths = sorted(str(p) for p in (root / "examples").glob("*.yaml"))
    portfolio = root / "build-dictionary.jsonl"
    synth.write_portfolio(portfolio, synth.generate_models(MODELS, seed=SEED, lineage=True))
    try:
        run = assess_inputs([*paths, str(root / "examples" / "portfolio" / "lineage.yaml"),
                             str(portfolio)], ())
    finally:
        portfolio.unlink()
    out = []
    for assessment in run.assessments:
        graph = provenance(assessment)
        out.append(table(graph))
        out.append(orjson.dumps(assessment_document(assessment, graph),
                                option=orjson.OPT_SORT_KEYS))
    return out


def main(target: str) -> None:
    trained = zstandard.train_dictionary(SIZE, samples(), k=1024, d=8, level=19)
    Path(target).write_bytes(trained.as_bytes())


if __name__ == "__main__":
    main(sys.argv[1])
