"""Run a benchmark script at its smoke size, as CI does, so a bench can never silently rot."""

from __future__ import annotations

import os
import subprocess
import sys

from recsys.config import PROJECT_ROOT


def run_bench(script: str, *args: str, timeout: int) -> str:
    """`bench/<script> --smoke <args>` in the test environment; its stdout, after asserting it exited 0."""
    run = subprocess.run([sys.executable, f"bench/{script}", "--smoke", *args], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=timeout, env={**os.environ, "RECSYS_ENV": "test"})
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    return run.stdout
