"""The attention kernel as model_new.py holds it passes Triton's compiler for sm_90 on the CPU (the
interpreter never type-checks it), in the precisions, masks and tiles the attention units launch."""

from __future__ import annotations

import importlib.util

import pytest
import triton

from qimeng.kernels.engine.templates.attention import SOURCE_HEADER, AttentionConfig, default_config
from qimeng.kernels.engine.templates.attention_source import KERNELS, RUNTIME

GPUTarget = pytest.importorskip("triton.backends.compiler").GPUTarget
ASTSource = triton.compiler.ASTSource
FLOATS = ("qk_scale", "add_scale", "fill")


@pytest.mark.parametrize("precision, mask, causal, head_dim, dtype, tile", [
    ("tf32x3", 2, False, 64, "fp32", None), ("bf16", 1, True, 128, "bf16", None),
    ("bf16", 0, True, 128, "bf16", AttentionConfig(128, 128, 8, 3)),  # the unmasked FMA form, P @ V into acc
    ("bf16", 0, False, 64, "bf16", AttentionConfig(128, 128, 8, 4))])
def test_attention_kernel_compiles_for_sm90(tmp_path, precision, mask, causal, head_dim, dtype, tile):
    module = tmp_path / "attention_unit.py"
    module.write_text(SOURCE_HEADER + KERNELS + "\n\n" + RUNTIME)
    spec = importlib.util.spec_from_file_location("attention_unit", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = mod._qm_attn_kernel
    config = tile or default_config(head_dim, "bf16" if precision == "bf16" else "strict")
    constants = {"BLOCK_M": config.block_m, "BLOCK_N": config.block_n, "BLOCK_D": head_dim, "CAUSAL": causal,
                 "MASK": mask, "EMPTY_NAN": causal, "PRECISION": precision, "WIDEN": False,
                 "POSITIVE_SCALE": True}
    pointer = {"mask_ptr": "*u8" if mask == 1 else "*fp32"}
    signature = {a: "constexpr" if a in constants else pointer.get(a, f"*{dtype}") if a.endswith("_ptr")
                 else "fp32" if a in FLOATS else "i32" for a in fn.arg_names}
    try:
        triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32),
                       options={"num_warps": config.num_warps, "num_stages": config.num_stages})
    except Exception as exc:  # noqa: BLE001  (the compiler's message is the finding)
        pytest.fail(f"the attention kernel does not compile ({precision}, mask {mask}): {exc}"[:3000])
