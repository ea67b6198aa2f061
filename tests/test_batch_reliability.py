"""`asl batch` under stress, run as a real subprocess: killed (SIGKILL) and interrupted
(SIGINT) mid-batch and resumed, two batches writing one SQLite file at once, a corrupt
document in a large portfolio, and a database that cannot be used.

What the record must guarantee (batch/runner.py, store/record.py): every result is
committed whole (its conclusions and provenance edges in the same transaction) as it
finishes; a stopped batch resumes by running the same command again, skipping exactly
what was committed; and the resumed run's `--output` is byte for byte the output of a
clean, uninterrupted run.

The portfolio is benchmarks/synth.py's (2,000 models with lineage). `generate_models(n)`
is a prefix of `generate_models(m)` for n < m (each model is drawn after, and refers only
to, earlier ones), and a result does not depend on the file it came from; so one clean
reference run of the 2,000 models gives the expected output of every smaller portfolio
here too. That reference run is started in the background by the first test that needs
it (the SIGKILL test with --jobs 1, which uses one core, so the two overlap on two).
The SIGINT and orphan tests use a small portfolio of their own (Chain).

Every batch runs in a process group of its own; whatever of it is left when a test
ends is SIGKILLed by group (only groups these tests started). Most tests here take
well over 20 s, or wait for the reference run, so they are marked slow.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest
import synth
from helpers import REPO

from batch.executors import CHUNK
from knowledge_graph.provenance import fired_rules
from knowledge_graph.provenance import load as load_graph
from store.record import decompress, unpack_names

SEED = 20250611
PORTFOLIO_SIZE = 2000
KILL_AFTER = 300  # committed assessments before the kill: "some hundreds, but not all"
CHAIN_HEAD, CHAIN_LENGTH = 150, 100  # the SIGINT and orphan tests' portfolio (see Chain)
SHARED = 200  # each portfolio of the two-batches-at-once tests
CORRUPT_SIZE, CORRUPT_LINE = 1000, 500
RUN_TIMEOUT_S = 300
GROUP_EXIT_S = 5  # how long processes of a stopped batch may take to go away

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="needs Linux /proc to find a batch's processes")

SUMMARY = re.compile(r"assessed (\d+), unchanged (\d+) \(skipped\), rejected (\d+)")


# --- running asl --------------------------------------------------------------------------


def _asl_command() -> tuple[list[str], dict[str, str]]:
    """The installed `asl` script beside this interpreter, else the CLI run by module
    from the repository (PYTHONPATH set to it)."""
    script = Path(sys.executable).with_name("asl")
    if script.exists():
        return [str(script)], dict(os.environ)
    code = "import sys; sys.argv[0] = 'asl'; from cli.main import main; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return [sys.executable, "-c", code], env


ASL, ENV = _asl_command()
ENV.pop("ASL_DATABASE_URL", None)


def run_asl(*args: str | Path, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run asl to the end; its exit status, standard output and standard error."""
    return subprocess.run([*ASL, *map(str, args)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False, **kwargs)


def start_asl(*args: str | Path, cwd: Path, log: str) -> subprocess.Popen[bytes]:
    """Start asl in a process group of its own (it and its pool workers), its standard
    output and error going to files `log`.out and `log`.err in `cwd`: a pipe would keep
    a reader waiting for as long as any worker outlives the batch. Ctrl-C is given its
    default disposition in the child, as a terminal has it: when the tests themselves run
    as a background job of a non-interactive shell they inherit SIGINT ignored, and so
    would asl, which would then never see the interrupt the Ctrl-C tests send."""
    with (cwd / f"{log}.out").open("wb") as out, (cwd / f"{log}.err").open("wb") as err:
        return subprocess.Popen([*ASL, *map(str, args)], cwd=cwd, env=ENV, stdout=out,
                                stderr=err, start_new_session=True,
                                preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def logs(cwd: Path, log: str) -> tuple[str, str]:
    return ((cwd / f"{log}.out").read_text(encoding="utf-8"),
            (cwd / f"{log}.err").read_text(encoding="utf-8"))


def group_members(pgid: int) -> list[str]:
    """The live (not zombie) processes of process group `pgid`: 'pid command' each."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            members.append(f"{entry.name} {command[:120]}")
    return members


def wait_group_gone(pgid: int, seconds: float) -> list[str]:
    """Wait up to `seconds` for process group `pgid` to be empty; who is still there."""
    deadline = time.monotonic() + seconds
    while (members := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


def kill_group(pgid: int) -> None:
    """SIGKILL whatever is left of process group `pgid` (a batch we started), and wait
    for it to go."""
    if not group_members(pgid):
        return
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    assert not wait_group_gone(pgid, 10), f"process group {pgid} survived SIGKILL"


def finish(proc: subprocess.Popen[bytes]) -> None:
    """Cleanup for a started batch: nothing of it is left running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    kill_group(proc.pid)


def summary_counts(stdout: str) -> tuple[int, int, int]:
    """(assessed, unchanged, rejected) from a batch's closing summary."""
    found = SUMMARY.search(stdout)
    assert found, f"no summary in:\n{stdout[:2000]}"
    assessed, unchanged, rejected = map(int, found.groups())
    return assessed, unchanged, rejected


# --- the database, read with the sqlite3 module only -------------------------------------


def connect_ro(db: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30))


def committed(db: Path) -> int:
    """How many assessments are committed (0 before the schema exists)."""
    if not db.exists():
        return 0
    try:
        with connect_ro(db) as conn:
            return int(conn.execute("SELECT count(*) FROM assessment").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet: no file contents, no table
        return 0


def wait_for_commits(proc: subprocess.Popen[bytes], db: Path, at_least: int) -> None:
    """Poll until `at_least` assessments are committed; fail if the batch ends first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while committed(db) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the batch exited ({proc.returncode}) before {at_least} "
                        "assessments were committed")
        if time.monotonic() > deadline:
            pytest.fail(f"{at_least} assessments not committed in {RUN_TIMEOUT_S} s")
        time.sleep(0.05)


def result_line(blob: bytes) -> str:
    """A stored result as `asl batch --output` writes it (cli/batch.py _json_line)."""
    return json.dumps(decompress(blob), sort_keys=True, ensure_ascii=False)


def stored_results(db: Path) -> dict[str, list[str]]:
    """Every stored assessment's result line, per model, oldest first."""
    found: dict[str, list[str]] = {}
    with connect_ro(db) as conn:
        for model, blob in conn.execute("SELECT model_id, result FROM assessment ORDER BY id"):
            found.setdefault(model, []).append(result_line(blob))
    return found


def check_intact(db: Path) -> None:
    """The file passes SQLite's integrity and foreign key checks, and every committed
    assessment is whole: its result, provenance graph and fired rules are there and
    agree, and its model and evidence rows too."""
    with connect_ro(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT id, result, provenance, fired FROM assessment").fetchall()
        for aid, result, provenance, fired in rows:
            assert decompress(result)["conclusions"], f"assessment {aid}: conclusions"
            graph = load_graph(bytes(provenance))
            assert graph.number_of_edges() > 0, f"assessment {aid}: provenance"
            assert unpack_names(fired) == set(fired_rules(graph)), f"assessment {aid}: fired"
        for table, column, query in (
                ("model", "id", "SELECT model_id FROM assessment"),
                ("evidence_document", "hash", "SELECT evidence_hash FROM assessment")):
            unused = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} NOT IN "
                                  f"({query})").fetchone()[0]
            assert unused == 0, f"{table} rows without an assessment"


def batch_runs(db: Path) -> list[tuple[Any, ...]]:
    with connect_ro(db) as conn:
        return conn.execute("SELECT finished IS NOT NULL, assessed, skipped, rejected "
                            "FROM batch_run ORDER BY id").fetchall()


# --- portfolios and the reference run -----------------------------------------------------


class Portfolio:
    """The synthetic models, and prefixes of them written as JSON Lines."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs = synth.generate_models(PORTFOLIO_SIZE, seed=SEED, lineage=True)
        self.path = self.write(PORTFOLIO_SIZE)

    def write(self, n: int, name: str | None = None,
              edit: Callable[[list[str]], list[str]] | None = None) -> Path:
        """The first `n` models as JSON Lines (optionally edited, line by line)."""
        assert synth.generate_models(n, seed=SEED, lineage=True) == self.docs[:n]
        path = self.root / (name or f"portfolio-{n}.jsonl")
        lines = [json.dumps(doc, separators=(",", ":")) for doc in self.docs[:n]]
        if edit is not None:
            lines = edit(lines)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def ids(self, n: int = PORTFOLIO_SIZE) -> list[str]:
        return [doc["model"]["id"] for doc in self.docs[:n]]


class Reference:
    """A clean, uninterrupted `asl batch --jobs 1` of the whole portfolio into a fresh
    database, running in the background until its output is first asked for."""

    def __init__(self, portfolio: Portfolio, root: Path) -> None:
        self.root = root
        self.output = root / "reference.jsonl"
        self.proc = start_asl("batch", portfolio.path, "--db", root / "asl.db", "--jobs", "1",
                              "--no-progress", "--output", self.output, cwd=root, log="ref")
        self._lines: list[str] | None = None

    def lines(self) -> list[str]:
        """The reference output's lines (with their newlines), one per model by id."""
        if self._lines is None:
            self.proc.wait(timeout=RUN_TIMEOUT_S)
            out, err = logs(self.root, "ref")
            assert self.proc.returncode == 0, err[-2000:]
            assert summary_counts(out) == (PORTFOLIO_SIZE, 0, 0)
            self._lines = self.output.read_text(encoding="utf-8").splitlines(keepends=True)
            assert len(self._lines) == PORTFOLIO_SIZE
        return self._lines

    def text(self, n: int = PORTFOLIO_SIZE) -> str:
        """The output of a clean batch of the first `n` models."""
        return "".join(self.lines()[:n])

    def by_model(self) -> dict[str, str]:
        return {json.loads(line)["model"]: line.rstrip("\n") for line in self.lines()}


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Portfolio:
    return Portfolio(tmp_path_factory.mktemp("portfolio"))


@pytest.fixture(scope="module")
def reference(portfolio: Portfolio, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Reference]:
    ref = Reference(portfolio, tmp_path_factory.mktemp("reference"))
    yield ref
    finish(ref.proc)


def generation_sizes(docs: list[dict[str, Any]]) -> list[int]:
    """How many models each lineage generation has (references point to earlier models)."""
    depth: dict[str, int] = {}
    for doc in docs:
        ref = (doc["model"].get("last_comprehensive_assessment") or {}).get("model")
        depth[doc["model"]["id"]] = depth[ref] + 1 if ref in depth else 0
    sizes = Counter(depth.values())
    return [sizes[d] for d in range(len(sizes))]


class Chain:
    """A portfolio whose first lineage generation is big enough for --jobs 2 to use its
    process pool, and whose other generations are all small enough to be assessed in
    the main process (batch.executors.CHUNK) while the pool's workers wait: 150
    synthetic models, then 100 more each carrying over from the one before. Its clean
    run is made when first needed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs = synth.generate_models(CHAIN_HEAD + CHAIN_LENGTH, seed=SEED, lineage=True)
        for before, doc in zip(self.docs[CHAIN_HEAD:], self.docs[CHAIN_HEAD + 1:],
                               strict=False):
            lca = doc["model"].setdefault("last_comprehensive_assessment",
                                          {"months_since": 3})
            lca["model"] = before["model"]["id"]
        self.path = root / "chain.jsonl"
        synth.write_portfolio(self.path, self.docs)
        sizes = generation_sizes(self.docs)
        assert sizes[0] > CHUNK >= max(sizes[1:]), sizes
        self.pooled = sizes[0]  # models assessed by the pool, before any other
        self.ids = [doc["model"]["id"] for doc in self.docs]
        self._output: str | None = None

    def output(self) -> str:
        """The --output of a clean, uninterrupted batch of the chain."""
        if self._output is None:
            out = self.root / "clean.jsonl"
            run = run_asl("batch", self.path, "--db", self.root / "clean.db", "--jobs", "2",
                          "--no-progress", "--output", out, cwd=self.root)
            assert run.returncode == 0, run.stderr[-2000:]
            assert summary_counts(run.stdout) == (len(self.ids), 0, 0)
            self._output = out.read_text(encoding="utf-8")
        return self._output


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return Chain(tmp_path_factory.mktemp("chain"))


def check_resumed(db: Path, run: subprocess.CompletedProcess[str], output: Path,
                  stored_before: int, ids: list[str], clean_output: str) -> None:
    """The re-run of a stopped batch of the models `ids`: exit 0; the committed results
    skipped as unchanged and the rest assessed; one assessment per model; and the
    output exactly a clean run's."""
    n = len(ids)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == ""
    assert summary_counts(run.stdout) == (n - stored_before, stored_before, 0)
    check_intact(db)
    stored = stored_results(db)
    assert set(stored) == set(ids), "models lost or unknown models stored"
    doubled = {m: len(r) for m, r in stored.items() if len(r) != 1}
    assert not doubled, f"models assessed more than once: {sorted(doubled)[:10]}"
    assert output.read_text(encoding="utf-8") == clean_output
    # the stopped run's record counts what it committed (issue 15, point 8)
    assert batch_runs(db) == [(False, stored_before, 0, 0),
                              (True, n - stored_before, stored_before, 0)]


# --- 1. SIGKILL mid-batch, then resume ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("jobs", "size"), [(1, PORTFOLIO_SIZE), (2, PORTFOLIO_SIZE // 2)])
def test_sigkill_mid_batch_then_resume(jobs: int, size: int, portfolio: Portfolio,
                                       reference: Reference, tmp_path: Path) -> None:
    """SIGKILL the batch (its main process, as the OOM killer or `kill -9 PID` would)
    once some hundreds of results are committed: the file is intact and holds only
    whole results, each the right one; the same command then resumes, skipping what was
    committed, and its --output is byte for byte a clean run's.

    --jobs 1 runs the 2,000 models (beside the reference run, on the other core);
    --jobs 2 the first 1,000, to keep the file's run time down. Its pool workers
    outlive their killed parent (see test_pool_workers_die_with_a_killed_batch), so the
    process group is killed right after the main process to clean them up; workers
    never write to the database."""
    path = portfolio.path if size == PORTFOLIO_SIZE else portfolio.write(size)
    db, output = tmp_path / "asl.db", tmp_path / "out.jsonl"
    command = ("batch", path, "--db", f"sqlite:///{db}", "--jobs", str(jobs),
               "--no-progress", "--output", output)
    proc = start_asl(*command, cwd=tmp_path, log="killed")
    try:
        wait_for_commits(proc, db, KILL_AFTER)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    finally:
        finish(proc)  # with --jobs 2: the orphaned pool workers

    stored_before = committed(db)
    assert KILL_AFTER <= stored_before < size
    check_intact(db)
    expected = reference.by_model()
    for model, results in stored_results(db).items():
        assert results == [expected[model]], f"{model}: stored result differs from a clean run"
    assert not output.exists(), "a killed batch wrote a partial --output"

    resumed = run_asl(*command, cwd=tmp_path)
    check_resumed(db, resumed, output, stored_before, portfolio.ids(size),
                  reference.text(size))
    assert not list(tmp_path.glob(".out.jsonl.*")), "temporary output file left behind"


# --- 2. two batches writing one SQLite file at once ---------------------------------------


def renamed(tag: str) -> Callable[[list[str]], list[str]]:
    """An edit giving every synth model (and evaluation, finding, reference) id the
    infix `tag`: synth-000001 -> synth-TAG-000001. Sort order among the ids is kept,
    so the result of each is the reference's with the infix."""
    return lambda lines: [line.replace("synth-", f"synth-{tag}-") for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("same", [False, True], ids=["two-portfolios", "same-portfolio-twice"])
def test_two_batches_into_one_sqlite_file_at_once(same: bool, portfolio: Portfolio,
                                                  reference: Reference,
                                                  tmp_path: Path) -> None:
    """Two batches started together against one fresh SQLite file (so they also race to
    create the schema): both finish with exit 0 and no "database is locked", and the
    record holds every model's results, each exactly a clean run's. Two portfolios of
    different models: one assessment each. One portfolio twice: one per model too (when
    both batches got to it first, the second skips it, and says so), none lost."""
    tags = ["c", "c"] if same else ["a", "b"]
    paths = [portfolio.write(SHARED, f"{tag}.jsonl", renamed(tag)) for tag in dict.fromkeys(tags)]
    if same:
        paths.append(paths[0])
    db = tmp_path / "shared.db"
    procs = [start_asl("batch", path, "--db", db, "--jobs", "1", "--no-progress",
                       cwd=tmp_path, log=f"batch{i}") for i, path in enumerate(paths)]
    try:
        for proc in procs:
            proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        for proc in procs:
            finish(proc)
    counts = []
    for i, proc in enumerate(procs):
        out, err = logs(tmp_path, f"batch{i}")
        assert "locked" not in err.lower(), err[-2000:]
        assert proc.returncode == 0, err[-2000:]
        assert err == ""
        counts.append(summary_counts(out))
    check_intact(db)
    with connect_ro(db) as conn:  # the schema was made once, by one of the two
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1

    expected = reference.by_model()
    stored = stored_results(db)
    wanted = {model.replace("synth-", f"synth-{tag}-")
              for tag in set(tags) for model in portfolio.ids(SHARED)}
    assert set(stored) == wanted, "models lost or unknown models stored"
    for model, results in stored.items():
        tag = model.split("-")[1]
        original = expected[model.replace(f"synth-{tag}-", "synth-")]
        assert {r.replace(f"synth-{tag}-", "synth-") for r in results} == {original}, model
    per_model = Counter(len(results) for results in stored.values())
    if same:  # one assessment per model: the second writer skips it (issue 15 point 7)
        assert per_model == {1: SHARED}
        assessed = sum(c[0] for c in counts)
        assert assessed == sum(len(results) for results in stored.values())
        for assessed_, unchanged, rejected in counts:
            assert (assessed_ + unchanged, rejected) == (SHARED, 0)
    else:
        assert per_model == {1: 2 * SHARED}
        assert counts == [(SHARED, 0, 0), (SHARED, 0, 0)]


# --- 3. a corrupt document in the middle of a large portfolio -----------------------------


def _not_json(lines: list[str]) -> list[str]:
    return [*lines[:CORRUPT_LINE - 1], lines[CORRUPT_LINE - 1][:40],
            *lines[CORRUPT_LINE:]]


def _wrong_type(lines: list[str]) -> list[str]:
    doc = json.loads(lines[CORRUPT_LINE - 1])
    doc["model"]["effective_compute_flop"] = "a lot"
    return [*lines[:CORRUPT_LINE - 1], json.dumps(doc), *lines[CORRUPT_LINE:]]


@pytest.mark.slow
def test_corrupt_document_in_a_large_portfolio(portfolio: Portfolio, reference: Reference,
                                               tmp_path: Path) -> None:
    """Line 500 of a 1,000-line portfolio is not JSON; in another, it has a field of the
    wrong type. Each batch (the two run at once, into databases of their own): exit 2,
    one line on standard error naming the file, the line and the field, and the other
    models stored, each exactly a clean run's. Where the rejected document's model id can
    still be read (the wrong type), the models that reference it, transitively, are not
    assessed either, each with a line naming what it references (issue 16); a line that
    is not JSON names no model, so those that reference it are assessed without it."""
    cases = {"not-json": (_not_json, ("invalid JSON",)),
             "wrong-type": (_wrong_type, ("model.effective_compute_flop", "a lot"))}
    procs = {}
    for name, (edit, _) in cases.items():
        path = portfolio.write(CORRUPT_SIZE, f"{name}.jsonl", edit)
        procs[name] = (path, start_asl("batch", path, "--db", tmp_path / f"{name}.db",
                                       "--jobs", "1", "--no-progress", cwd=tmp_path,
                                       log=name))
    try:
        for _, proc in procs.values():
            proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        for _, proc in procs.values():
            finish(proc)

    bad = portfolio.ids(CORRUPT_SIZE)[CORRUPT_LINE - 1]
    tainted = {bad}
    for doc in portfolio.docs[:CORRUPT_SIZE]:  # references always point to earlier models
        info = doc["model"]
        lca = (info.get("last_comprehensive_assessment") or {}).get("model")
        if lca in tainted or info.get("predecessor") in tainted:
            tainted.add(info["id"])
    assert len(tainted) > 1, "the corrupt model should have successors in the portfolio"
    expected = reference.by_model()
    for name, (_, words) in cases.items():
        path, proc = procs[name]
        stopped = tainted - {bad} if name == "wrong-type" else set()
        out, err = logs(tmp_path, name)
        assert proc.returncode == 2, f"{name}: {err[-2000:]}"
        assert "Traceback" not in err
        errors = err.splitlines()
        assert len(errors) == 1 + len(stopped), f"{name}: {err[-2000:]}"
        root = [e for e in errors if e.startswith(f"{path}: line {CORRUPT_LINE}:")]
        assert len(root) == 1, errors
        for word in words:
            assert word in root[0]
        assert all("which could not be assessed" in e for e in errors if e not in root)
        assert summary_counts(out) == (CORRUPT_SIZE - 1 - len(stopped), 0, 1 + len(stopped))

        db = tmp_path / f"{name}.db"
        check_intact(db)
        stored = stored_results(db)
        assert set(stored) == set(portfolio.ids(CORRUPT_SIZE)) - {bad} - stopped, name
        assert all(len(results) == 1 for results in stored.values()), name
        for model, results in stored.items():
            if model not in tainted:
                assert results == [expected[model]], f"{name}: {model}"


# --- 4. a database that cannot be used ----------------------------------------------------

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24
PROBE = """\
import sys
try:
    open(sys.argv[1], "x").close()
except PermissionError:
    pass
else:
    sys.exit(3)
import cli.main
"""


def _drop_dac_capabilities() -> Callable[[], None]:
    """A preexec_fn taking CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of the child's
    bounding set, so the root-run program it execs honours permission bits."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def unprivileged(readonly: Path) -> tuple[str, dict[str, Any]]:
    """How to run a subprocess for which `readonly` is genuinely not writable: as we
    are (not root), else as the user nobody, else (root in a container where nobody
    cannot run our interpreter) as root without the capabilities that override
    permission bits. Each way is tried for real; skip when none works."""
    ways: list[tuple[str, dict[str, Any]]] = [("as this user", {})]
    with suppress(KeyError):
        nobody = pwd.getpwnam("nobody")
        ways.append(("as user nobody", {"user": nobody.pw_uid, "group": nobody.pw_gid,
                                        "extra_groups": []}))
    with suppress(OSError, AttributeError):
        ways.append(("as root without CAP_DAC_OVERRIDE",
                     {"preexec_fn": _drop_dac_capabilities()}))
    tried = []
    probe = readonly / "probe"
    for name, kwargs in ways:
        try:
            result = subprocess.run([sys.executable, "-c", PROBE, str(probe)], env=ENV,
                                    cwd=readonly.parent, capture_output=True, text=True,
                                    timeout=60, check=False, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{name}: {exc}")
            continue
        if result.returncode == 0:
            return name, kwargs
        if result.returncode == 3:
            probe.unlink()
        why = ("the directory was writable" if result.returncode == 3
               else (result.stderr.strip().splitlines() or ["failed"])[-1])
        tried.append(f"{name}: {why}")
    pytest.skip("cannot run asl with a genuinely read-only directory: " + "; ".join(tried))


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", ["read-only", "missing"])
def test_database_directory_unusable(case: str) -> None:
    """`--db DIR/asl.db` with DIR read-only or missing: exit 2, one line on standard
    error naming the path (no traceback), and nothing created anywhere. We usually run
    as root, which writes anywhere; so the read-only case runs asl unprivileged, in a
    world-readable scratch directory (tmp_path is private to root)."""
    scratch = Path(tempfile.mkdtemp(prefix="asl-readonly-"))
    try:
        scratch.chmod(0o755)
        path = scratch / "portfolio.jsonl"
        path.write_text("".join(json.dumps(doc) + "\n"
                                for doc in synth.generate_models(5, seed=SEED)))
        path.chmod(0o644)
        how: dict[str, Any] = {}
        if case == "read-only":
            directory = scratch / "readonly"
            directory.mkdir(mode=0o555)
            directory.chmod(0o555)
            _, how = unprivileged(directory)
        else:
            directory = scratch / "missing"
        db = directory / "asl.db"
        before = snapshot(scratch)
        run = run_asl("batch", path, "--db", db, "--jobs", "1", "--no-progress", cwd=scratch,
                      **how)
        assert run.returncode == 2, run.stderr[-2000:]
        assert "Traceback" not in run.stderr
        assert len(run.stderr.splitlines()) == 1, run.stderr
        assert str(db) in run.stderr
        assert ("read-only" if case == "read-only" else "does not exist") in run.stderr
        assert run.stdout == ""
        assert snapshot(scratch) == before
    finally:
        if (scratch / "readonly").exists():
            (scratch / "readonly").chmod(0o755)
        shutil.rmtree(scratch)


def test_unreachable_postgresql(tmp_path: Path) -> None:
    """A PostgreSQL URL nothing listens at: exit 2 and one clear line, no traceback."""
    path = tmp_path / "portfolio.jsonl"
    synth.write_portfolio(path, synth.generate_models(5, seed=SEED))
    url = "postgresql://asl@127.0.0.1:1/asl"
    run = run_asl("batch", path, "--db", url, "--no-progress", cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"asl: cannot use database {url}")
    assert "connection" in run.stderr.lower()
    assert run.stdout == ""
    assert list(tmp_path.iterdir()) == [path]


# --- 5. Ctrl-C, and what a stopped batch leaves running ---------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_mid_batch_then_resume(jobs: int, chain: Chain, tmp_path: Path) -> None:
    """SIGINT to the batch's process group, as Ctrl-C in a terminal sends it (to the
    pool's workers too): exit 130 with one line saying how to resume, no traceback, no
    process left behind; the same command then resumes as after SIGKILL.

    With --jobs 2 the interrupt comes once the pool's generation is committed, while the
    main process assesses the small generations itself and the workers wait for work
    (a moment any Ctrl-C may hit). The message is checked last, so that a stray
    traceback does not hide whether the resume works."""
    db, output = tmp_path / "asl.db", tmp_path / "out.jsonl"
    command = ("batch", chain.path, "--db", db, "--jobs", str(jobs), "--no-progress",
               "--output", output)
    proc = start_asl(*command, cwd=tmp_path, log="interrupted")
    try:
        wait_for_commits(proc, db, 50 if jobs == 1 else chain.pooled + 1)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        survivors = wait_group_gone(proc.pid, GROUP_EXIT_S)
    finally:
        finish(proc)
    out, err = logs(tmp_path, "interrupted")
    assert proc.returncode == 130, err[-2000:]
    assert "asl: interrupted" in err
    assert not survivors, "processes left after Ctrl-C:\n" + "\n".join(survivors)
    stored_before = committed(db)
    assert 50 <= stored_before < len(chain.ids)
    check_intact(db)
    assert not output.exists()

    resumed = run_asl(*command, cwd=tmp_path)
    check_resumed(db, resumed, output, stored_before, chain.ids, chain.output())

    assert out == ""
    assert "Traceback" not in err, err[-3000:]
    assert err.splitlines() == [
        "asl: interrupted; every result finished so far is stored, and running the same "
        "command again resumes"], err[-3000:]


POOL_UNDER_CTRL_C = """
import os, signal
from batch.executors import LocalPool
signal.signal(signal.SIGINT, lambda *_: None)  # this process carries on
pool = LocalPool([], 2)
futures = [pool.submit(os.getpid) for _ in range(2)]  # each may spawn a worker
os.killpg(0, signal.SIGINT)  # Ctrl-C to the group: the workers are still importing
print(len({future.result(timeout=300) for future in futures}) >= 1)
pool.close()
"""


def test_ctrl_c_while_pool_workers_start_leaves_them_working() -> None:
    """A pool worker is spawned when a chunk wants one; a Ctrl-C to the process group
    while it still imports (before its initializer ignores SIGINT) killed it with a
    traceback and broke the pool. Workers start with SIGINT blocked."""
    done = subprocess.run([sys.executable, "-c", POOL_UNDER_CTRL_C], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          start_new_session=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "True"
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, \
        done.stderr[-3000:]


def test_pool_workers_die_with_a_killed_batch(chain: Chain, tmp_path: Path) -> None:
    """When the batch's main process is SIGKILLed (the OOM killer, `kill -9 PID`), its
    --jobs pool workers must not live on: orphans keep their memory, and hold the
    batch's standard output and error open, so whoever reads those (a CI runner, a
    pipe) waits for ever. The test kills them when they do."""
    db = tmp_path / "asl.db"
    proc = start_asl("batch", chain.path, "--db", db, "--jobs", "2", "--no-progress",
                     cwd=tmp_path, log="killed")
    try:
        wait_for_commits(proc, db, 1)
        workers = [m for m in group_members(proc.pid) if "multiprocessing" in m]
        assert len(workers) >= 2, f"no pool started: {group_members(proc.pid)}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        survivors = wait_group_gone(proc.pid, GROUP_EXIT_S)
    finally:
        finish(proc)
    assert not survivors, (f"{len(survivors)} processes of the SIGKILLed batch were still "
                           f"running {GROUP_EXIT_S} s later (the test then killed them):\n"
                           + "\n".join(survivors))
