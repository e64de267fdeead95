"""The kernel workers run in a private mount and PID namespace (core/isolation.py's bubblewrap): a
candidate cannot write outside its directory, read /etc/hostname, or leave a detached process behind."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from qimeng.core.isolation import probe
from qimeng.core.verdict import Status
from qimeng.kernels.harness.evaluate import evaluate
from qimeng.kernels.result import EvalOptions

PROBLEM = Path(__file__).parent / "cheats" / "problem_scale_relu.py"

ESCAPE = '''
import os
import torch
import torch.nn as nn


def _escape():
    for what, attempt in (("WRITE", lambda: open({outside!r}, "w").write("escaped")),
                          ("HOSTNAME", lambda: open("/etc/hostname").read())):
        try:
            attempt()
            print(what, "done", flush=True)
        except OSError as exc:
            print(what, "failed", exc.strerror, flush=True)
    if os.fork() == 0:  # a grandchild in its own session: outside the worker's process group
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", {marker!r}])
        os._exit(0)
    os.wait()


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        _escape()

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)
'''


def _processes_running(argument: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if argument in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.skipif(probe().mode != "bwrap", reason="bubblewrap cannot build namespaces here: workers run unisolated")
def test_a_candidate_is_contained_and_leaves_no_process_behind(tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    marker = f"{300 + secrets.randbelow(10_000) / 1000:.3f}"  # a sleep no one else runs
    candidate = tmp_path / "escape.py"
    candidate.write_text(ESCAPE.format(outside=str(outside), marker=marker))
    result = evaluate(PROBLEM, candidate, EvalOptions(small=True, timeout_s=20.0, correctness_trials=1, timing_trials=0))
    assert result.status is Status.OK, result.reason
    assert "WRITE failed" in result.log and "HOSTNAME failed" in result.log, result.log
    assert not outside.exists()
    deadline = time.monotonic() + 5.0
    while _processes_running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_running(marker) == []
