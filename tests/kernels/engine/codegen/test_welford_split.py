"""Training-mode batch norm under the split Welford strategy, under the interpreter at small odd sizes:
the output and running_mean/running_var/num_batches_tracked match a float64 copy of the model, with
segments that end mid-row, segments left empty, and inputs far from zero mean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.codegen.triton import resolve_config, welford_split_applicable
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import capture_problem
from interp_check import main_line  # noqa: E402  (this directory's modules)

PROBLEM = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(5)
    def forward(self, x):
        return torch.relu(self.bn(x))

def get_inputs():
    return [torch.randn({n}, 5, 7, 9) * 3.0 + 40.0]

def get_init_inputs():
    return []
'''
# (batch, segments, block_r): reduce length 7*9*batch; 189 over 3 segments of 64; 189 over 5 segments of
# 64 (the last two empty); 315 over 4 segments of 80 -> 96 (the last one ends mid-chunk)
CASES = [(3, 3, 16), (3, 5, 64), (5, 4, 32)]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("welford_split")
    runs = []
    for i, (n, segments, block_r) in enumerate(CASES):
        path = root / f"bn_{i}.py"
        path.write_text(PROBLEM.format(n=n))
        runs.append((str(path), segments, block_r))
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).parents[4])}
    script = Path(__file__).with_name("welford_split_check.py")
    proc = subprocess.run([sys.executable, str(script), json.dumps(runs)], capture_output=True, text=True, env=env,
                          timeout=300)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(runs), proc.stderr[-3000:]
    return lines


@pytest.mark.parametrize("case", range(len(CASES)))
def test_split_batch_norm_matches_float64_with_running_statistics(results, case):
    r = results[case]
    assert "error" not in r, r
    assert r["strategies"] == ["pointwise", "split"] and r["partials"] == 1
    assert r["out_err"] < 1e-4, r
    assert set(r["buffer_err"]) == {"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    assert max(r["buffer_err"].values()) < 1e-4, r


def test_benchmark_scale_batch_norm_defaults_to_many_programs_per_channel(tmp_path):
    path = tmp_path / "bn_big.py"
    path.write_text(PROBLEM.format(n=128).replace("7, 9", "128, 128").replace("(5)", "(64)").replace(", 5,", ", 64,"))
    _, graph = capture_problem(path, small=False)
    (unit,) = [u for u in build_plan(graph, main_line(graph, None)).kernels if u.kernel.kind == "reduction"]
    assert welford_split_applicable(unit.kernel)
    config = resolve_config(unit.kernel, unit.rendered.config)
    assert config.strategy == "split" and 64 * config.block_p >= 1024  # >= 1024 programs, not 64
