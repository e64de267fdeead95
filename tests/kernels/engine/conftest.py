"""The engine's tests run their checks under the Triton interpreter in subprocesses: one fixture starts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).parents[3]
InterpreterRun = Callable[..., list[dict]]


def run_in_interpreter(script: Path, root: Path, cases: list, *extra: str, processes: int = 1,
                       timeout: float = 300) -> list[dict]:
    """Run ``script`` with TRITON_INTERPRET=1 on the JSON list ``cases`` (dealt round-robin over
    ``processes`` subprocesses side by side), in ``root`` with its work dir under it, ``extra`` arguments
    after the cases; return its JSON lines (one per case, in each process's order), failing with the
    processes' stderr when any is missing. Every process is killed when the call ends."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO), "QIMENG_WORK_DIR": str(root / "work")}
    shares = [cases[i::processes] for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, str(script), json.dumps(share), *extra], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=root) for share in shares if share]
    lines, errors = [], []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            errors.append(err[-3000:])
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert len(lines) == len(cases), "\n".join(errors)
    return lines


@pytest.fixture(scope="session")
def interpreter() -> InterpreterRun:
    """:func:`run_in_interpreter`, for the module-scoped fixtures that run a directory's check script."""
    return run_in_interpreter
