"""The templates' kernels, as model_new.py would hold them for a GPU, pass Triton's compiler for sm_90 on
the CPU (the interpreter never type-checks them): every GEMM, convolution (implicit GEMM over
1-3 spatial dims, transposed or not, and direct depthwise) and pooling unit of the interpreter
checks' cases (template_interp_check, gemm_fusion_interp_check, pool_interp_check), in every variant the unit compiles in; and
the 3-D and transposed convolution problems' units at their full (benchmark) size."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
import triton

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.codegen.ahead import RUNTIME as AHEAD_RUNTIME
from qimeng.kernels.engine.codegen.triton import HELPERS
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

sys.path.insert(0, str(Path(__file__).parent))
import gemm_fusion_interp_check  # noqa: E402
import pool_interp_check  # noqa: E402
from template_interp_check import CASES, HEADER, main_line  # noqa: E402

GPUTarget = pytest.importorskip("triton.backends.compiler").GPUTarget
ASTSource = triton.compiler.ASTSource
# constexprs as the launches give them (GEMM: a large-tile config; the others: read from the lines)
GEMM_CONSTANTS = {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8, "EVEN_K": False}
GEMV_CONSTANTS = {"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 4, "EVEN_K": False}  # the small-M kernel's shape
STREAM_CONSTANTS = {"BLOCK_M": 4, "BLOCK_N": 8, "BLOCK_K": 512, "EVEN_K": False, "K_CONTIG": True}
ROWS_CONSTANTS = {"BLOCK": 128}  # a row reduction's kernel over the N tiles' partials, as gemm_runtime launches it
COMPILED = ["linear_relu_folded", "linear_bf16", "conv_bias_relu_folded", "conv_channels_last_input_bf16",
            "max_pool_dilation_indices_strided_input", "avg_pool_exclude_pad", "dw_odd_stride2_bias_relu",
            "dw_channels_last_multiplier2_bias_relu", "dw_conv1d_stride_dilation_gelu", "conv3d_bias_relu_folded",
            "conv3d_channels_last_input_tf32", "conv_transpose2d_stride2_bias_tanh",
            "conv_transpose2d_groups_dilation_output_padding", "conv_transpose1d_stride3_dilation_gelu",
            "conv_transpose3d_output_padding_bf16"]
PROBLEMS = Path(__file__).parents[4] / "problems" / "conv_epilogue"
FULL_SIZE = ["06_conv_transpose_add_min_gelu_mul", "08_conv3d_bias_relu", "09_conv_transpose3d_bias_tanh",
             "10_conv_transpose2d_grouped_dilated_silu"]
# gemm_fusion_interp_check's: a row reduction with its finish, a triangle, row statistics with a row store, a
# symmetric product
FUSED = ["linear_relu_mean_keepdim", "tril_square_two_tiles", "bmm_logsumexp", "gram_relu_two_tile_rows"]
POOLS = ["max3d_dilation_ceil_indices", "avg2d_big_window_loop", "adaptive_avg2d_to_7x7", "adaptive_max3d_nan",
         "fused_conv3d_bn_relu_avgpool", "fused_conv_transpose_bias_relu_maxpool", "max3d_channels_last_input"]


def _units(name: str) -> list[TemplateUnit]:
    if name in pool_interp_check.CASES:
        (body, shapes), precision, make = pool_interp_check.CASES[name], "strict", pool_interp_check.make
    elif name in gemm_fusion_interp_check.CASES:
        (body, shapes), precision, make = gemm_fusion_interp_check.CASES[name], "strict", lambda s: torch.randn(*s)
    else:
        (body, shapes, precision), make = CASES[name], lambda s: torch.randn(*s)
    namespace: dict = {}
    exec(compile(HEADER + body, name, "exec"), namespace)
    graph = capture(namespace["Model"](), [make(s) for s in shapes])
    schedule = main_line(graph, precision)
    plan = with_templates(graph, build_plan(graph, schedule), schedule, "cuda")
    return [u for u in plan.units if isinstance(u, TemplateUnit)]


def _signature(fn, lines: str) -> tuple[dict, dict]:
    if fn.__name__.endswith("_rows"):
        given, defaults = {}, ROWS_CONSTANTS
    elif fn.__name__.endswith(("_gemv", "_stream")):  # every GEMM unit holds the small-M kernels, at their own shape
        given, defaults = {}, GEMV_CONSTANTS if fn.__name__.endswith("_gemv") else STREAM_CONSTANTS
    else:
        given, defaults = {k: int(v) for k, v in re.findall(r"\b(BLOCK\w*)=(\d+)", lines)}, GEMM_CONSTANTS
    constants = {a: given.get(a, defaults.get(a)) for a in fn.arg_names if a.isupper() and
                 (a in given or a in defaults or a == "BLOCK")}
    signature = {a: "constexpr" if a in constants else "*i64" if a == "idx_ptr" else "*fp32" if a.endswith("_ptr")
                 else "i32" for a in fn.arg_names}
    return signature, constants


def _compile(units: list[TemplateUnit], folder: Path, name: str) -> None:
    assert units, "no template unit"
    for k, unit in enumerate(units):
        module = folder / f"unit{k}.py"
        module.write_text(f"import torch\nimport triton\nimport triton.language as tl\n{HELPERS}\n{AHEAD_RUNTIME}\n"
                          f"{unit.runtime}\n{unit.source}")  # the source registers its launches for compiling ahead
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


@pytest.mark.parametrize("name", COMPILED + FUSED + POOLS)
def test_template_kernels_compile_for_sm90(tmp_path, name):
    _compile(_units(name), tmp_path, name)


@pytest.mark.parametrize("stem", FULL_SIZE)
def test_full_size_convolution_problems_compile_for_sm90(tmp_path, stem):
    """The problems' own units at benchmark size (captured on the meta device), as the GPU run builds them."""
    _, graph = capture_problem(PROBLEMS / f"{stem}.py", small=False)
    schedule = main_line(graph, "strict")
    plan = with_templates(graph, build_plan(graph, schedule), schedule, "cuda")
    _compile([u for u in plan.units if isinstance(u, TemplateUnit)], tmp_path, stem)
