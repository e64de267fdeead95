"""scripts/engine_stage_times.py on a hand-made chain: ``--set`` deepens it (node counts by hand), every
candidate gets a digest line, and a malformed ``--set`` is bad input (exit 2, one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHAIN = '''
import torch
import torch.nn as nn

layers = 2


class Model(nn.Module):
    def forward(self, x):
        for _ in range(layers):
            x = torch.relu(x) * 2.0
        return x


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return []
'''


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "engine_stage_times.py"), *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_set_deepens_the_problem_and_each_candidate_has_a_digest(tmp_path):
    problem = tmp_path / "chain.py"
    problem.write_text(CHAIN)
    digests = tmp_path / "digests.jsonl"
    proc = _run(str(problem), "--set", "layers=5", "--digests", str(digests))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    assert "10 nodes" in lines["capture"]  # five layers of relu and mul
    assert "lower: propose" in lines and "total" in lines
    rows = [json.loads(line) for line in digests.read_text().splitlines()]
    assert rows and rows[0]["stage"] == "lower"
    assert all(len(r["source"]) == 64 for r in rows)
    assert {n for g in rows[0]["schedule"]["groups"] for n in g} == {"relu", "mul", "relu_1", "mul_1", "relu_2", "mul_2",
                                                                     "relu_3", "mul_3", "relu_4", "mul_4"}


def test_a_malformed_set_is_bad_input(tmp_path):
    problem = tmp_path / "chain.py"
    problem.write_text(CHAIN)
    proc = _run(str(problem), "--set", "layers")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "is not NAME=VALUE" in proc.stderr
