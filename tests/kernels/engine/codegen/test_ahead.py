"""Compilation ahead of the first call: each generated file registers exactly the launches its forward
makes (kernel, pointer dtypes, constexprs, warps, stages), for every reduction strategy, so that the
kernels compiled ahead are the ones the launches look up. The oracle is the interpreter's record of the
launches themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_welford_split import PROBLEM as BATCH_NORM  # noqa: E402  (this directory's modules)

ROW_SUMS = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        return (x * 2.0).sum(dim=1) + x.amax(dim=1)

def get_inputs():
    return [torch.randn(6, 3000)]

def get_init_inputs():
    return []
'''
RUNS = [("batch_norm", s) for s in ("default", "looped", "online", "split")] + [("row_sums", "split")]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("ahead")
    (root / "batch_norm.py").write_text(BATCH_NORM.format(n=4, c=5, h=7, w=9))
    (root / "row_sums.py").write_text(ROW_SUMS)
    runs = [(str(root / f"{name}.py"), strategy) for name, strategy in RUNS]
    lines = interpreter(Path(__file__).with_name("ahead_check.py"), root, runs, processes=2, timeout=400)
    return {(Path(r["path"]).stem, r["strategy"]): r for r in lines}


@pytest.mark.parametrize("name,strategy", RUNS)
def test_the_registered_launches_are_the_launches(outcomes, name, strategy):
    result = outcomes[(name, strategy)]
    assert "error" not in result, result
    assert result["ok"], result
    assert result["launched"] and result["registered"] == result["launched"]
    assert result["left"] == 0  # the first call took them (under the interpreter: nothing to compile)


def test_the_two_kernel_strategies_register_both_kernels(outcomes):
    for key in (("batch_norm", "split"), ("row_sums", "split")):
        result = outcomes[key]
        assert "split" in result["strategies"], result
        assert any('_partial"' in s for s in result["registered"]), result["registered"]
