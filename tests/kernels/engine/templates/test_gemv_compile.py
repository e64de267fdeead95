"""The GEMM template's small-M kernels compiled for sm_90 on the CPU: their K loop is loads and fp32 FMAs only
(no layout conversion through shared memory), at least one FMA for every two products (the streaming
kernel sums four k in a thread as a tree: half of its products are plain multiplies), and the loads of B
are 16-byte vectors, for B row-major and K-major (nn.Linear's ``weight.t()``)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import triton

from qimeng.kernels.engine.templates.epilogue import Epilogue
from qimeng.kernels.engine.templates.gemm_source import render

GPUTarget = pytest.importorskip("triton.backends.compiler").GPUTarget
DIVISIBLE = {"M", "N", "K", "K_SPLIT", "sam", "sbk", "sbn", "sab0", "sab1", "sbb0", "sbb1", "scb", "scm"}


def _compile(tmp_path, block_m: int, block_n: int, block_k: int, warps: int, b_k_major: bool, kernel: str = "gemv"):
    path = tmp_path / "gemm_module.py"
    path.write_text(render("ieee", Epilogue(), "float32"))
    spec = importlib.util.spec_from_file_location("gemm_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, f"_qm_gemm_{kernel}")
    constants = {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k, "EVEN_K": True, "sak": 1,
                 ("sbk" if b_k_major else "sbn"): 1, **({"K_CONTIG": b_k_major} if kernel == "stream" else {})}  # what Triton specialises at a launch: strides equal to 1
    signature = {a: "constexpr" if a in constants else "*fp32" if a.endswith("_ptr") else "i32" for a in fn.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(fn.arg_names)
             if a not in constants and (a.endswith("_ptr") or a in DIVISIBLE)}
    return triton.compile(triton.compiler.ASTSource(fn, signature, constants, attrs),
                          target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "num_stages": 3})


@pytest.mark.parametrize("block_m, block_n, block_k, b_k_major", [(1, 128, 64, False), (4, 128, 16, True),
                                                                   (16, 128, 4, False)])
def test_gemv_loop_is_loads_and_fmas(tmp_path, block_m, block_n, block_k, b_k_major):
    kernel = _compile(tmp_path, block_m, block_n, block_k, 4, b_k_major)
    loop = re.search(r"scf\.for.*?scf\.yield", kernel.asm["ttgir"], re.S)
    assert loop is not None
    assert "convert_layout" not in loop.group(0) and "local_alloc" not in loop.group(0)
    ptx = kernel.asm["ptx"]
    products_per_thread = block_m * block_k * block_n // (32 * 4)
    assert ptx.count("fma.rn.f32") >= products_per_thread
    assert "ld.global.v4" in ptx  # B comes in 16-byte vectors along its contiguous axis


@pytest.mark.parametrize("block_m, block_n, block_k, warps, b_k_major", [
    (1, 8, 1024, 4, True), (16, 4, 512, 4, True), (8, 8, 1024, 8, True), (1, 512, 16, 4, False),
    (16, 512, 4, 4, False), (8, 1024, 8, 8, False)])
def test_stream_loop_is_loads_and_fmas(tmp_path, block_m, block_n, block_k, warps, b_k_major):
    kernel = _compile(tmp_path, block_m, block_n, block_k, warps, b_k_major, "stream")
    loop = re.search(r"scf\.for.*?scf\.yield", kernel.asm["ttgir"], re.S)
    assert loop is not None
    assert "convert_layout" not in loop.group(0) and "local_alloc" not in loop.group(0)
    ptx = kernel.asm["ptx"]
    products_per_thread = block_m * block_k * block_n // (32 * warps)
    assert ptx.count("fma.rn.f32") >= products_per_thread // 2
    assert ptx.count("evict_first.L2::cache_hint.v4") * 4 == block_k * block_n // (32 * warps)  # B: 16-byte loads
