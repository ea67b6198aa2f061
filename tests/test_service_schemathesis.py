"""Schemathesis against a real `asl serve` (loopback), from its own `/openapi.json`:
every operation, called with generated requests and a valid admin token (who may do
everything), must never answer with a server error (5xx). Skipped when schemathesis is
not installed (it is in the `test` extra)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_server import run_asl, start_server

REPO = Path(__file__).resolve().parents[1]
SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name(
    "schemathesis"))


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(),
                    reason="schemathesis is not installed (pip install '.[test]')")
def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/asl.db"
    assert run_asl("batch", str(REPO / "examples"), "--db", db).returncode == 0
    server = start_server(db, tmp_path / "serve.log", "--rate-limit", "0")
    try:
        done = subprocess.run(
            [SCHEMATHESIS, "run", f"{server.url}/openapi.json",
             "-H", f"Authorization: Bearer {server.token('admin')}",
             "--checks", "not_a_server_error", "--max-examples", "8", "--seed", "11",
             "--phases", "coverage,fuzzing", "--request-timeout", "60",
             "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Tested: " in done.stdout and " 0 passed" not in done.stdout
    assert "Traceback" not in server.log_text()
