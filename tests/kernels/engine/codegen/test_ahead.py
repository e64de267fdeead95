"""Compilation ahead of the first call: each generated file registers exactly the launches its forward
makes (kernel, pointer dtypes, constexprs, warps, stages), for every reduction strategy and for the
convolution, depthwise and pooling templates, so that the
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
# a convolution stack through the templates stage: an implicit-GEMM convolution, batch norm, ReLU, an
# average pooling template (the normalisation at each tap) and a depthwise convolution template
CONV_STACK = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x):
        return self.depthwise(torch.nn.functional.avg_pool2d(torch.relu(self.bn(self.conv(x))), 2))

def get_inputs():
    return [torch.randn(2, 3, 16, 16)]

def get_init_inputs():
    return []
'''
RUNS = ([("batch_norm", s) for s in ("default", "looped", "online", "split")] + [("row_sums", "split")]
        + [("conv_stack", "templates")])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("ahead")
    (root / "batch_norm.py").write_text(BATCH_NORM.format(n=4, c=5, h=7, w=9))
    (root / "row_sums.py").write_text(ROW_SUMS)
    (root / "conv_stack.py").write_text(CONV_STACK)
    runs = [(str(root / f"{name}.py"), strategy) for name, strategy in RUNS]
    lines = interpreter(Path(__file__).with_name("ahead_check.py"), root, runs, processes=2, timeout=400)
    return {(Path(r["path"]).stem, r["strategy"]): r for r in lines}


@pytest.mark.parametrize("name,strategy", [run for run in RUNS if run[1] != "templates"])
def test_the_registered_launches_are_the_launches(outcomes, name, strategy):
    result = outcomes[(name, strategy)]
    assert "error" not in result, result
    assert result["ok"], result
    assert result["launched"] and result["registered"] == result["launched"]
    assert result["left"] == 0  # the first call took them (under the interpreter: nothing to compile)


def test_the_templates_register_their_kernels_too(outcomes):
    result = outcomes[("conv_stack", "templates")]
    assert "error" not in result and result["ok"] and result["left"] == 0, result
    registered, launched = set(result["registered"]), set(result["launched"])
    for kernel in ("_qm_conv_", "_qm_pool_", "_qm_dwconv_"):
        assert any(f'"{kernel}' in s for s in launched), (kernel, launched)
    # the convolution holds two precision variants, one picked at run time by PyTorch's TF32 flag: both
    # are registered, the other is the only one not launched
    assert launched <= registered and len(registered - launched) == 1, (registered, launched)
    assert next(iter(registered - launched)).startswith('["_qm_conv_')


def test_the_two_kernel_strategies_register_both_kernels(outcomes):
    for key in (("batch_norm", "split"), ("row_sums", "split")):
        result = outcomes[key]
        assert "split" in result["strategies"], result
        assert any('_partial"' in s for s in result["registered"]), result["registered"]
