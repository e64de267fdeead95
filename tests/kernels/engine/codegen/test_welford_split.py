"""Training-mode batch norm under the split Welford strategy, under the interpreter at small odd sizes:
the output and running_mean/running_var/num_batches_tracked match a float64 copy of the model, with
segments that end mid-row, segments left empty, inputs far from zero mean, a strided reduced axis
(BatchNorm1d, cumulative average: the statistics asked for twice) and two batch norms in one kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from qimeng.kernels.engine.codegen.triton import resolve_config, welford_split_applicable
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.steps import KernelConfig
from interp_check import main_line  # noqa: E402  (this directory's modules)

PROBLEM = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d({c})
    def forward(self, x):
        return torch.relu(self.bn(x))

def get_inputs():
    return [torch.randn({n}, {c}, {h}, {w}) * 3.0 + 40.0]

def get_init_inputs():
    return []
'''
# BatchNorm1d over [tokens, features]: the reduced axis is strided, rows side by side per program;
# momentum=None asks for the statistics twice (read once); two batch norms of two inputs in one kernel
OTHERS = {
    "outer_cumulative": '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(11, momentum=None)
    def forward(self, x):
        return self.bn(x) * 0.5

def get_inputs():
    return [torch.randn(301, 11) * 2.0 - 7.0]

def get_init_inputs():
    return []
''',
    "siblings": '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.BatchNorm2d(3)
        self.b = nn.BatchNorm2d(3)
    def forward(self, x, y):
        return torch.relu(self.a(x) + self.b(y))

def get_inputs():
    return [torch.randn(2, 3, 5, 7) + 3.0, torch.randn(2, 3, 5, 7) * 0.5]

def get_init_inputs():
    return []
''',
}
# (problem, batch, segments, block_r): reduce length 7*9*batch; 189 over 5 segments of 64 (the last two
# empty); 315 over 4 segments of 80 -> 96 (the last one ends mid-chunk)
CASES = [("bn2d", 3, 5, 64), ("bn2d", 5, 4, 32), ("outer_cumulative", 0, 4, 16),
         ("siblings", 0, 3, 16)]
BUFFERS = {"bn2d": {"bn"}, "outer_cumulative": {"bn"}, "siblings": {"a", "b"}}


@pytest.fixture(scope="module")
def results(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("welford_split")
    runs = []
    for i, (name, n, segments, block_r) in enumerate(CASES):
        path = root / f"{name}_{i}.py"
        path.write_text(PROBLEM.format(n=n, c=5, h=7, w=9) if name == "bn2d" else OTHERS[name])
        runs.append((str(path), segments, block_r))
    return interpreter(Path(__file__).with_name("welford_split_check.py"), root, runs)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_split_batch_norm_matches_float64_with_running_statistics(results, case):
    r = results[case]
    assert "error" not in r, r
    assert "split" in r["strategies"] and r["partials"] == 1
    assert r["out_err"] < 1e-4, r
    names = BUFFERS[CASES[case][0]]
    assert set(r["buffer_err"]) == {f"{m}.{b}" for m in names for b in ("running_mean", "running_var",
                                                                         "num_batches_tracked")}
    assert max(r["buffer_err"].values()) < 1e-4, r


def test_benchmark_scale_batch_norm_defaults_to_many_programs_per_channel(tmp_path):
    path = tmp_path / "bn_big.py"
    path.write_text(PROBLEM.format(n=128, c=64, h=128, w=128))
    _, graph = capture_problem(path, small=False)
    (unit,) = [u for u in build_plan(graph, main_line(graph, None)).kernels if u.kernel.kind == "reduction"]
    assert welford_split_applicable(unit.kernel)
    config = resolve_config(unit.kernel, unit.rendered.config)
    assert config.strategy == "split" and 64 * config.block_p >= 1024  # >= 1024 programs, not 64


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_strided_and_sibling_splits_compile_for_sm90(tmp_path, name):
    from test_gpu_frontend import _compiled  # noqa: E402  (this directory's modules; skips without the backend)

    path = tmp_path / f"{name}.py"
    path.write_text(OTHERS[name])
    _compiled(path, {"split": KernelConfig("split")}, "split")
