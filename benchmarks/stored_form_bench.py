"""Benchmark: the CPU an assessment costs outside the engine when it is stored, part by
part, against the engine's assessment itself (issue 13 point 4, issue 11 point 9).

Per synthetic model (benchmarks/synth.py, with lineage) and per public example, in the
order a batch worker does it (`batch.work._assess_one`, `stored_form`), each part timed
in CPU time (time.process_time) right after the one before, on the same objects:

- the parent's side: reading the synthetic portfolio as `asl batch` does (JSON Lines,
  validated, each document parked in `batch.spool`; per model of the portfolio) and each
  body read back, pickling a 64-model chunk's jobs for the pool, `batch.wire.unpack` of
  the chunk's results, the job's `input_hash` (batch.runner.Batch._job) and, for
  comparison only (store/record.py's), `Store.save_chunk` into a scratch SQLite file;
- the worker's: unpickling the jobs, the document read back (`batch.work.read_back`, or
  before it `orjson.loads` of its body and `parse_document`), the engine's assessment
  (`assess_document`: the reference every ratio is against), `batch.wire.pack` of the
  chunk's results;
- `stored_form`'s parts: the firings' `because` texts (the engine fills them when first
  read, which storing does), `provenance.elements`, `stored.adjacency`, the node and
  edge table (`stored._table`; of which orjson, timed again on the same rows), zstd
  (`stored.pack` of the table), the fired rules and kinds, `assessment_document`,
  `contract_digest`, `NewAssessment.build` (of which the result's and the evidence's
  `compress` and `pack_names`, timed again).

And `stored_form` whole, again on each assessment, and the stored sizes. It imports
the code under test from this checkout, or from `--code DIR` (another checkout, say
main's `git archive`), so two invocations in one session compare two versions:

    python benchmarks/stored_form_bench.py                       # 2,000 models
    python benchmarks/stored_form_bench.py -n 500 --code /tmp/main-src
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHUNK = 64  # results per wire message (batch.executors.CHUNK)
# Parts timed over the synthetic portfolio alone (not the examples), per model of it.
PORTFOLIO = ("parent: read + validate + spool", "parent: Spooled.resolve")


class Parts:
    """CPU seconds per named part, in the order first timed."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def time(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.process_time()
        out = fn()
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - start
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000, help="synthetic models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", type=Path, default=HERE.parent,
                        help="the checkout whose code is measured (default: this one)")
    args = parser.parse_args()
    sys.path[:0] = [str(args.code.resolve()), str(HERE)]
    run(args.n, args.seed, args.code.resolve())


def run(n: int, seed: int, code: Path) -> None:
    import orjson
    import synth

    from batch import wire, work
    from batch.runner import pack_fingerprint
    from batch.spool import Spool
    from batch.stack import stack_of
    from batch.work import Entry, Job, contract_digest, input_hash, stored_form
    from engine.api import assess_documents
    from engine.assess import (
        ReferenceInfo,
        assess_document,
        evaluator_for,
        tune_for_throughput,
        vocabulary,
    )
    from engine.evidence import LoadedDocument, load_evidence, parse_document
    from knowledge_graph import provenance, stored
    from knowledge_graph.report import assessment_document
    from store.db import connect
    from store.record import NewAssessment, Store, compress, pack_names

    assert Path(stored.__file__).resolve().is_relative_to(code), stored.__file__
    # how a worker reads a document back (`batch.work._assess_one`), as this code does it
    read_back = getattr(work, "read_back", None)
    tune_for_throughput()
    evaluator = evaluator_for()
    words = vocabulary(evaluator.pack)
    loaded = []
    for i, model in enumerate(synth.generate_models(n, seed=seed, lineage=True)):
        document, errors = parse_document(model, "p.jsonl", f"line {i + 1}", words)
        assert document is not None, errors
        loaded.append(LoadedDocument(document, "p.jsonl", f"line {i + 1}"))
    examples = load_evidence(sorted(str(p) for p in (HERE.parent / "examples").glob("*.yaml")),
                             words)
    assert not examples.errors, examples.errors
    loaded += examples.documents
    # A first pass (not timed) gives each model's reference what it carries over: the
    # level of the model it names, as the batch's lineage order would have it.
    first, errors = assess_documents(evaluator, loaded)
    assert not errors, errors
    levels = {a.output["model"]: a.output["level"] for a in first}
    del first
    entries = [Entry.of(d) for d in loaded]
    computes = {e.model: e.compute for e in entries}
    jobs = []
    for entry in entries:
        ref = None if entry.carried is None or entry.carried not in levels else ReferenceInfo(
            computes[entry.carried], levels[entry.carried])
        jobs.append(Job(entry, ref, input_hash(orjson.loads(entry.body), ref)))

    scratch = tempfile.TemporaryDirectory()
    store = Store(connect(f"sqlite:///{scratch.name}/bench.db", bulk=True))
    pack = evaluator.pack
    store.ensure_pack(pack.version, pack.name, *pack_fingerprint(pack))
    stack = stack_of(pack)
    parts, whole = Parts(), Parts()
    t = parts.time
    # The parent's reading of the portfolio (as `asl batch` does: each valid document
    # parked in the spool) and each entry's body read back when its generation comes.
    portfolio = Path(scratch.name) / "portfolio.jsonl"
    synth.write_portfolio(portfolio, synth.generate_models(n, seed=seed, lineage=True))
    with Spool() as spool:
        parked = t(PORTFOLIO[0], lambda: load_evidence(
            [str(portfolio)], words, keep=spool.keep))
        assert not parked.errors and len(parked.documents) == n, parked.errors
        spool.done_reading()
        for item in parked.documents:
            t(PORTFOLIO[1], item.resolve)
    sizes = [0, 0, 0]
    for start in range(0, len(jobs), CHUNK):
        sent = t("parent: pickle the chunk's jobs", lambda s=start: pickle.dumps(
            ((), jobs[s:s + CHUNK]), protocol=pickle.HIGHEST_PROTOCOL))
        _, chunk = t("worker: unpickle them", lambda m=sent: pickle.loads(m))
        done = []
        for job in chunk:
            entry = job.entry

            body, document, _ = t("worker: read the document back", lambda e=entry: (
                read_back(e, words) if read_back is not None else (
                    (b := orjson.loads(e.body)),
                    parse_document(b, e.file, e.where, words)[0], None)))
            a = t("engine: assess_document", lambda d=document, j=job: assess_document(
                evaluator, d, j.ref, where=j.entry.where, file=j.entry.file))
            d = a.derivation
            t("because texts (engine, lazy)", lambda d=d: [f.because for f in d.trace])
            nodes, edges = t("elements", lambda d=d: provenance.elements(d))
            plain = t("adjacency", lambda n=nodes, e=edges: stored.adjacency(n, e))
            table = t("node/edge table (incl. orjson)", lambda p=plain: stored._table(p))
            rows = orjson.loads(table)
            t("  of which orjson.dumps", lambda r=rows: orjson.dumps(r))
            blob = t("zstd of the table (stored.pack)", lambda b=table: stored.pack(b))
            fired, kinds = t("fired rules + kinds", lambda p=plain: (
                provenance.rules_among(p.nodes.values()),
                provenance.kinds_among(p.nodes.values())))
            result = t("assessment_document", lambda a=a: assessment_document(a))
            digest = t("contract_digest", lambda r=result: contract_digest(r))
            new = t("NewAssessment.build", lambda e=entry, b=body, j=job, r=result, p=blob,
                    f=fired, k=kinds, h=digest: NewAssessment.build(
                        model_id=e.model, evidence_hash=e.evidence_hash, evidence_body=b,
                        file=f"{e.file}: {e.where}" if e.where else e.file,
                        input_hash=j.input_hash, result=r,
                        provenance=p, edges=f, kinds=k, contract_hash=h))
            t("  of which compress(result)", lambda r=result: compress(r))
            t("  of which compress(evidence)", lambda b=body: compress(b))
            t("  of which pack_names", lambda f=fired: pack_names(f))
            done.append(new)
            again = stored_form(entry, job.input_hash, a, body)  # the texts are filled now
            assert again == new, entry.model  # the parts above are what stored_form does
            whole.time("stored_form", lambda e=entry, j=job, a=a, b=body: stored_form(
                e, j.input_hash, a, b))
            sizes = [sizes[0] + len(again.provenance), sizes[1] + len(again.result),
                     sizes[2] + len(again.evidence)]
        message = t("worker: wire.pack", lambda r=done: wire.pack(r))
        back = t("parent: wire.unpack", lambda m=message, c=chunk: wire.unpack(m, c))
        assert back == done
        t("parent: save_chunk, SQLite (store)", lambda b=back: store.save_chunk(
            b, pack.name, pack.version, stack))
    for job in jobs:
        t("parent: input_hash (Batch._job)",
          lambda j=job: input_hash(orjson.loads(j.entry.body), j.ref))
    store.engine.dispose()
    scratch.cleanup()
    count = len(jobs)
    load = os.getloadavg()
    print(f"code: {code}")
    print(f"{n:,} synthetic models with lineage (seed {seed}) + "
          f"{len(examples.documents)} examples, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    engine = parts.cpu["engine: assess_document"]
    print(f"{'part':<40} {'CPU ms/model':>12} {'/ engine':>9}")
    sums = {"stored_form, its parts": 0.0, "worker, besides": 0.0, "parent, besides": 0.0}
    for name, cpu in parts.cpu.items():  # per model of the jobs (the portfolio: of its n)
        per = n if name in PORTFOLIO else count
        cpu *= count / per  # as if spent on every job, so that the ratios add up
        print(f"  {name:<38} {cpu / count * 1e3:12.3f} {cpu / engine:8.2f}x")
        if name.startswith("  ") or name.startswith("engine") or "save_chunk" in name:
            continue
        side = name.split(":")[0]
        sums[{"worker": "worker, besides", "parent": "parent, besides"}.get(
            side, "stored_form, its parts")] += cpu
    for name, cpu in sums.items():
        print(f"  {'sum: ' + name:<38} {cpu / count * 1e3:12.3f} {cpu / engine:8.2f}x")
    cpu = whole.cpu["stored_form"]
    print(f"  {'stored_form whole (texts filled)':<38} {cpu / count * 1e3:12.3f} "
          f"{cpu / engine:8.2f}x")
    print(f"stored bytes per model: provenance {sizes[0] / count:.0f}, "
          f"result {sizes[1] / count:.0f}, evidence {sizes[2] / count:.0f}")

if __name__ == "__main__":
    main()
