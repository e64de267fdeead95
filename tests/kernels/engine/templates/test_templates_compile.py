"""The templates' kernels, as model_new.py would hold them for a GPU, pass Triton's compiler for sm_90 on
the CPU (the interpreter never type-checks them): every GEMM, convolution (implicit GEMM and direct
depthwise) and pooling unit of the
interpreter check's cases, in every variant the unit compiles in."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
import triton

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.codegen.triton import HELPERS
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

sys.path.insert(0, str(Path(__file__).parent))
from template_interp_check import CASES, HEADER, main_line  # noqa: E402

GPUTarget = pytest.importorskip("triton.backends.compiler").GPUTarget
ASTSource = triton.compiler.ASTSource
# constexprs as the launches give them (GEMM: a large-tile config; the others: read from the lines)
GEMM_CONSTANTS = {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8, "EVEN_K": False}
GEMV_CONSTANTS = {"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 4, "EVEN_K": False}  # the small-M kernel's shape
STREAM_CONSTANTS = {"BLOCK_M": 4, "BLOCK_N": 8, "BLOCK_K": 512, "EVEN_K": False, "K_CONTIG": True}
COMPILED = ["linear_relu_folded", "linear_bf16", "conv_bias_relu_folded", "conv_channels_last_input_bf16",
            "max_pool_dilation_indices_strided_input", "avg_pool_exclude_pad", "dw_odd_stride2_bias_relu",
            "dw_channels_last_multiplier2_bias_relu", "dw_conv1d_stride_dilation_gelu"]


def _units(name: str) -> list[TemplateUnit]:
    body, shapes, precision = CASES[name]
    namespace: dict = {}
    exec(compile(HEADER + body, name, "exec"), namespace)
    graph = capture(namespace["Model"](), [torch.randn(*s) for s in shapes])
    schedule = main_line(graph, precision)
    plan = with_templates(graph, build_plan(graph, schedule), schedule, "cuda")
    return [u for u in plan.units if isinstance(u, TemplateUnit)]


def _signature(fn, lines: str) -> tuple[dict, dict]:
    if fn.__name__.endswith(("_gemv", "_stream")):  # every GEMM unit holds the small-M kernels, at their own shape
        given, defaults = {}, GEMV_CONSTANTS if fn.__name__.endswith("_gemv") else STREAM_CONSTANTS
    else:
        given, defaults = {k: int(v) for k, v in re.findall(r"\b(BLOCK\w*)=(\d+)", lines)}, GEMM_CONSTANTS
    constants = {a: given.get(a, defaults.get(a)) for a in fn.arg_names if a.isupper() and
                 (a in given or a in defaults or a == "BLOCK")}
    signature = {a: "constexpr" if a in constants else "*i64" if a == "idx_ptr" else "*fp32" if a.endswith("_ptr")
                 else "i32" for a in fn.arg_names}
    return signature, constants


@pytest.mark.parametrize("name", COMPILED)
def test_template_kernels_compile_for_sm90(tmp_path, name):
    units = _units(name)
    assert units, "no template unit"
    for k, unit in enumerate(units):
        module = tmp_path / f"unit{k}.py"
        module.write_text(f"import torch\nimport triton\nimport triton.language as tl\n{HELPERS}\n{unit.runtime}\n"
                          f"{unit.source}")
        spec = importlib.util.spec_from_file_location(f"{name}_{k}", module)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        kernels = [getattr(mod, n) for n in re.findall(r"^def (\w+)\(", unit.source, re.M)]  # not the helpers
        assert kernels
        for fn in kernels:
            signature, constants = _signature(fn, "\n".join(unit.lines))
            try:
                triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32))
            except Exception as exc:  # noqa: BLE001  (the compiler's message is the finding)
                pytest.fail(f"{fn.__name__} of {name} does not compile: {exc}"[:3000])
