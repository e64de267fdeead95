"""Run in a subprocess with TRITON_INTERPRET=1: the GEMM template on small, odd shapes against a float64
torch oracle. Prints one JSON line per case: name, ok, the worst |err| / (atol + rtol |ref|)."""

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from qimeng.kernels.engine.ir.expr import Const, IndexValue, ReduceRef, op, where
from qimeng.kernels.engine.ir.index import Index
from qimeng.kernels.engine.templates import epilogue as ep
from qimeng.kernels.engine.templates.gemm import GemmConfig, curated_configs, default_config, gemm
from qimeng.kernels.engine.templates.gemm_tuning import TuningCache, autotune, policy_error
from qimeng.kernels.engine.templates.gemm import Problem
from qimeng.kernels.engine.templates.gemm_source import PRECISIONS

SMALL = GemmConfig(16, 16, 16, 2, 1, 4, 1)
SPLIT = GemmConfig(16, 32, 16, 2, 4, 4, 1)
STRICT, BF16 = 1e-4, 2e-2


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def ratio(out: torch.Tensor, ref: torch.Tensor, tol: float) -> float:
    if out.shape != ref.shape:
        return math.inf
    err = (out.double() - ref).abs() / (tol + tol * ref.abs())
    return 0.0 if err.numel() == 0 else float(err.max())


def plain(precision, a_t=False, b_t=False):
    a = randn(50, 37).t() if a_t else randn(37, 50)
    b = randn(23, 50).t() if b_t else randn(50, 23)
    out, ref = gemm(a, b, precision=precision, config=SMALL), a.double() @ b.double()
    if precision == "bf16":  # operands rounded to 8 bits: judged by ||out - ref|| / ||ref|| <= 1e-2
        return float((out.double() - ref).norm() / ref.norm()) / 1e-2
    return ratio(out, ref, STRICT)


def bf16_inputs():
    a, b = randn(37, 50, dtype=torch.bfloat16), randn(50, 23, dtype=torch.bfloat16)
    out = gemm(a, b, precision="bf16", config=SMALL, out_dtype=torch.float32)
    return ratio(out, a.double() @ b.double(), STRICT)  # bf16 products are exact in fp32


def batched(a_shape, b_shape, config=SMALL, precision="tf32x3"):
    a, b = randn(*a_shape), randn(*b_shape)
    return ratio(gemm(a, b, config=config, precision=precision), torch.matmul(a.double(), b.double()), STRICT)


def split_k_bias_relu():
    a, b, bias = randn(2, 21, 300), randn(2, 300, 40), randn(40)
    e = ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1), activation="relu",
                 operands=(ep.Operand("bias", "float32"),))
    out = gemm(a, b, epilogue=e, operands={"bias": bias}, config=SPLIT)
    return ratio(out, torch.relu(a.double() @ b.double() + bias.double()), STRICT)


def matvec(config):
    a, b = randn(1, 200), randn(200, 33)
    return ratio(gemm(a, b, config=config), a.double() @ b.double(), STRICT)


def gemv(m, k, config, b_k_major=False, batch=(), precision="ieee"):
    """The small-M kernel at M = m (K not a multiple of BLOCK_K), B row-major or K-major (nn.Linear's
    ``weight.t()``), with a bias + GELU epilogue (through the finalize kernel under split-K)."""
    a = randn(*batch, m, k)
    b = randn(29, k).t() if b_k_major else randn(k, 29)
    bias = randn(29)
    e = ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1), activation="gelu",
                 operands=(ep.Operand("bias", "float32"),))
    out = gemm(a, b, precision=precision, epilogue=e, operands={"bias": bias}, config=config)
    return ratio(out, F.gelu(torch.matmul(a.double(), b.double()) + bias.double()), STRICT)


def gemv_tuned(m):
    """The small-M kernel as tuning offers it for M <= GEMV_MAX_M (the first of its curated shapes)."""
    a, b = randn(m, 203), randn(203, 70)
    config = next(c for c in curated_configs(Problem(m, 70, 203), "ieee", False, 1) if c.gemv)
    return ratio(gemm(a, b, config=config), a.double() @ b.double(), STRICT)


def stream_tuned(m, b_k_major):
    """The streaming kernel as tuning offers it for B's layout (its first curated shape), K = 203."""
    a = randn(m, 203)
    b = randn(70, 203).t() if b_k_major else randn(203, 70)
    config = next(c for c in curated_configs(Problem(m, 70, 203), "ieee", False, 1, b_k_major) if c.gemv == 2)
    return ratio(gemm(a, b, config=config), a.double() @ b.double(), STRICT)


def gemv_bf16_inputs():
    """bfloat16 operands widened to fp32 in the small-M kernel: products exact, fp32 sums."""
    a, b = randn(3, 77, dtype=torch.bfloat16), randn(77, 40, dtype=torch.bfloat16)
    out = gemm(a, b, precision="bf16", config=GemmConfig(4, 16, 16, 1, 2, 4, 1, True), out_dtype=torch.float32)
    return ratio(out, a.double() @ b.double(), STRICT)


def gemv_row_max():
    a, b = randn(5, 90), randn(90, 45)
    out = gemm(a, b, config=GemmConfig(8, 16, 16, 1, 1, 4, 1, True), row_reduce="max")
    return ratio(out, (a.double() @ b.double()).amax(-1), STRICT)


def activation(name):
    a, b = randn(19, 24), randn(24, 21)
    ref = a.double() @ b.double()
    torch_act = {"relu": torch.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
                 "silu": F.silu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "leaky_relu": F.leaky_relu}
    return ratio(gemm(a, b, epilogue=ep.chain(activation=name), config=SMALL), torch_act[name](ref), STRICT)


def full_chain():
    """scale, a per-row bias, silu, a batched residual with its own strides, clamp; 3-D output."""
    a, b = randn(3, 18, 33), randn(3, 33, 20)
    row_bias = randn(18)
    residual = randn(3, 20, 18).transpose(1, 2)  # strides (360, 1, 18)
    ops = (ep.Operand("rbias", "float32"), ep.Operand("res", "float32"))
    e = ep.chain(scale=0.5, bias=ep.operand_load("rbias", "float32", 0, 1, 0), activation="silu",
                 residual=ep.operand_load("res", "float32", *residual.stride()), clamp=(-1.5, 2.0), operands=ops)
    out = gemm(a, b, epilogue=e, operands={"rbias": row_bias, "res": residual}, config=SMALL)
    ref = (F.silu(0.5 * (a.double() @ b.double()) + row_bias.double()[:, None]) + residual.double()).clamp(-1.5, 2.0)
    return ratio(out, ref, STRICT)


def bf16_residual_out():
    """bf16 residual read and cast to fp32 in the epilogue; bf16 output."""
    a, b = randn(20, 40, dtype=torch.bfloat16), randn(40, 17, dtype=torch.bfloat16)
    res = randn(20, 17, dtype=torch.bfloat16)
    e = ep.chain(residual=ep.operand_load("res", "bfloat16", 0, 17, 1), operands=(ep.Operand("res", "bfloat16"),))
    out = gemm(a, b, precision="bf16", epilogue=e, operands={"res": res}, config=SMALL)
    return ratio(out, a.double() @ b.double() + res.double(), BF16) if out.dtype == torch.bfloat16 else math.inf


def inf_survives(precision):
    """An infinite input gives infinite outputs (its residual inf - inf is dropped, not a NaN)."""
    a, b = randn(20, 40), randn(40, 18).abs() + 0.1
    a[3, 5] = float("inf")
    ref = a.double() @ b.double()
    out = gemm(a, b, precision=precision, config=SMALL)
    return 0.0 if torch.equal(out[3].isinf(), ref[3].isinf()) and not out.isnan().any() and \
        ratio(out[ref.isfinite().all(1)], ref[ref.isfinite().all(1)], STRICT) <= 1 else math.inf


def engine_epilogue(problem):
    """The engine's lowered epilogue kernel of a captured problem, fused into the template."""
    from qimeng.kernels.engine.lowering_plan import build_plan
    from qimeng.kernels.engine.optimize import capture_problem
    from qimeng.kernels.engine.policies.expert import ExpertPolicy
    from qimeng.kernels.engine.steps import Schedule
    from qimeng.kernels.engine.templates.epilogue_from_kernel import FusedEpilogue, epilogue_from_kernel

    prob, graph = capture_problem(problem, small=True)
    schedule = ExpertPolicy().propose(graph, Schedule(), "lower")[0].schedule
    kernel = next(u.kernel for u in build_plan(graph, schedule).kernels
                  if any(b.name == "mm" for b in u.kernel.inputs))
    a, b, residual = prob.inputs(1, "cpu")
    fused = epilogue_from_kernel(kernel, "mm", 1, a.shape[0], b.shape[1])
    if not isinstance(fused, FusedEpilogue):
        raise AssertionError(fused)
    out = gemm(a, b, epilogue=fused.epilogue, operands={"residual": residual}, config=SMALL)
    model = prob.build(prob.model_cls, 0, "cpu").double()  # the problem's own PyTorch code, in float64
    return ratio(out, model(a.double(), b.double(), residual.double()), STRICT)


def row_reduction(kind, config, batch=()):
    """sum / mean / max / min over N of the epilogue's value; the [M, N] values are never written."""
    a, b, bias = randn(*batch, 21, 70), randn(70, 45), randn(45)
    e = ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1), activation="gelu_tanh",
                 operands=(ep.Operand("bias", "float32"),))
    out = gemm(a, b, epilogue=e, operands={"bias": bias}, config=config, row_reduce=kind)
    full = F.gelu(a.double() @ b.double() + bias.double(), approximate="tanh")
    ref = {"sum": full.sum(-1), "mean": full.mean(-1), "max": full.amax(-1), "min": full.amin(-1)}[kind]
    return ratio(out, ref, STRICT)


def triangle(m, k, n, diagonal, config, lower=True, swapped=False):
    """tril/triu of the product by a where over the output's indices (``swapped``: masked_fill of the other
    side), plus a column bias outside the where; the tiles past the diagonal run no K loop."""
    a, b, bias = randn(m, k), randn(k, n), randn(n)
    offset = op("sub", IndexValue(Index.of(ep.N_VAR), "int64"), IndexValue(Index.of(ep.M_VAR), "int64"))
    keep = op("le" if lower else "ge", offset, Const(diagonal, "int64"))
    if swapped:
        cond = op("gt" if lower else "lt", offset, Const(diagonal, "int64"))
        value = where(cond, Const(0.0, "float32"), ep.ACC)
    else:
        value = where(keep, ep.ACC, Const(0.0, "float32"))
    e = ep.Epilogue(op("add", value, ep.operand_load("bias", "float32", 0, 0, 1)), (ep.Operand("bias", "float32"),))
    out = gemm(a, b, epilogue=e, operands={"bias": bias}, config=config)
    full = a.double() @ b.double()
    ref = (full.tril(diagonal) if lower else full.triu(diagonal)) + bias.double()
    return ratio(out, ref, STRICT)


def row_statistics(per_row, batch=()):
    """softmax over N of the product plus a bias (``per_row``: its logsumexp) from row statistics, the tile
    holding whole rows (N = 45 in one 64-wide tile; SPLIT's BLOCK_N and split-K are overridden)."""
    a, b, bias = randn(*batch, 21, 70), randn(70, 45), randn(45)
    x = op("add", ep.ACC, ep.operand_load("bias", "float32", 0, 0, 1))
    peak = ReduceRef("peak", "float32")
    shifted = op("exp", op("sub", x, peak))
    stats = (ep.RowStatistic("peak", "max", x), ep.RowStatistic("total", "sum", shifted))
    total = ReduceRef("total", "float32")
    value = op("add", op("log", total), peak) if per_row else op("truediv", shifted, total)
    e = ep.Epilogue(value, (ep.Operand("bias", "float32"),), stats, per_row)
    out = gemm(a, b, epilogue=e, operands={"bias": bias}, config=SPLIT)
    full = a.double() @ b.double() + bias.double()
    return ratio(out, full.logsumexp(-1) if per_row else full.softmax(-1), STRICT)


def symmetric_gram(batch=()):
    """x @ x^T (one storage, mirrored strides): the tiles on and above the diagonal computed, each stored twice;
    SPLIT's 16 x 32 tiles and split-K become square 16 x 16 ones without a split."""
    x = randn(*batch, 45, 37)
    out = gemm(x, x.transpose(-1, -2), epilogue=ep.chain(scale=0.5, activation="silu"), config=SPLIT)
    return ratio(out, F.silu(0.5 * (x.double() @ x.double().transpose(-1, -2))), STRICT)


def empty_k():
    a, b = randn(4, 0), randn(0, 5)
    out = gemm(a, b, epilogue=ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1),
                                       operands=(ep.Operand("bias", "float32"),)),
               operands={"bias": torch.arange(5.0)}, config=SMALL)
    return ratio(out, torch.arange(5.0).double().expand(4, 5), STRICT)


def error_check():
    err = policy_error("ieee", Problem(40, 24, 300), "cpu", config=SMALL)
    return 0.0 if err.strict_ok and err.max_abs > 0 and err.k == 300 else math.inf


def tuning_cache(path):
    a, b = randn(33, 40), randn(40, 18)
    cache = TuningCache(path)
    configs = [SMALL, GemmConfig(32, 32, 16, 1, 1, 4, 1)]

    def timer(fn):
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    first = autotune(a, b, configs, timer, cache=cache)
    again = autotune(a, b, configs, timer, cache=TuningCache(path))  # read back from the file
    ok = first.best in configs and len(first.times) == 2 and not first.failures and again.best == first.best \
        and again.times == {}
    return 0.0 if ok else math.inf


CASES = {
    **{f"plain_{p}": (lambda p=p: plain(p)) for p in PRECISIONS},
    "transposed_a": lambda: plain("tf32x3", a_t=True),
    "transposed_b": lambda: plain("tf32x3_split", b_t=True),
    "transposed_ab": lambda: plain("ieee", a_t=True, b_t=True),
    "transposed_ab_presplit": lambda: plain("tf32x3_presplit", a_t=True, b_t=True),
    "broadcast_4d_presplit": lambda: batched((2, 1, 17, 20), (3, 20, 19), precision="tf32x3_presplit"),
    "bf16_inputs": bf16_inputs,
    "bmm": lambda: batched((3, 37, 50), (3, 50, 23)),
    "broadcast_b": lambda: batched((4, 17, 30), (30, 19)),
    "broadcast_4d": lambda: batched((2, 1, 17, 20), (3, 20, 19)),
    "bmm_split_k": lambda: batched((2, 9, 130), (2, 130, 35), SPLIT),
    "even_k": lambda: batched((40, 64), (64, 24)),  # BLOCK_K divides K: unmasked loads
    "even_k_split_k": lambda: batched((2, 9, 128), (128, 35), SPLIT),
    "split_k_bias_relu": split_k_bias_relu,
    "matvec": lambda: matvec(GemmConfig(16, 16, 32, 1, 1, 4, 1)),
    "matvec_split_k": lambda: matvec(GemmConfig(16, 16, 32, 1, 3, 4, 1)),
    "gemv_m1": lambda: gemv(1, 301, GemmConfig(1, 16, 32, 1, 1, 4, 1, True)),
    "gemv_m1_split_k_b_k_major": lambda: gemv(1, 301, GemmConfig(1, 32, 16, 1, 4, 4, 1, True), b_k_major=True),
    "gemv_m3_split_k": lambda: gemv(3, 250, GemmConfig(4, 16, 16, 1, 3, 4, 1, True)),
    "gemv_m7_b_k_major": lambda: gemv(7, 133, GemmConfig(8, 32, 8, 1, 1, 4, 1, True), b_k_major=True),
    "gemv_m16_split_k_tf32x3": lambda: gemv(16, 130, GemmConfig(16, 16, 16, 1, 2, 4, 1, True), precision="tf32x3"),
    "gemv_m20_two_row_blocks": lambda: gemv(20, 64, GemmConfig(16, 16, 16, 1, 1, 4, 1, True)),
    "gemv_broadcast_batch": lambda: gemv(2, 70, GemmConfig(2, 16, 16, 1, 2, 4, 1, True), batch=(3,)),
    "gemv_tuned_m1": lambda: gemv_tuned(1),
    "gemv_tuned_m16": lambda: gemv_tuned(16),
    "gemv_bf16_inputs": gemv_bf16_inputs,
    "stream_m1_b_k_major": lambda: gemv(1, 301, GemmConfig(1, 8, 32, 1, 1, 4, 1, 2), b_k_major=True),
    "stream_m1_split_k": lambda: gemv(1, 301, GemmConfig(1, 32, 8, 1, 3, 4, 1, 2)),
    "stream_m3_split_k_b_k_major": lambda: gemv(3, 250, GemmConfig(4, 4, 16, 1, 3, 4, 1, 2), b_k_major=True),
    "stream_m3_even_k": lambda: gemv(3, 256, GemmConfig(4, 16, 4, 1, 1, 4, 1, 2)),
    "stream_m16_two_row_blocks_b_k_major": lambda: gemv(20, 70, GemmConfig(16, 4, 8, 1, 2, 4, 1, 2), b_k_major=True),
    "stream_broadcast_batch_tf32x3": lambda: gemv(2, 70, GemmConfig(2, 16, 4, 1, 2, 4, 1, 2), batch=(3,),
                                                  precision="tf32x3"),
    "stream_tuned_m1_b_k_major": lambda: stream_tuned(1, True),
    "stream_tuned_m3": lambda: stream_tuned(3, False),
    "stream_row_sum": lambda: row_reduction("sum", GemmConfig(32, 16, 8, 1, 2, 4, 1, 2)),
    "gemv_row_max": gemv_row_max,
    **{f"act_{name}": (lambda name=name: activation(name)) for name in ep.ACTIVATIONS},
    "full_chain": full_chain,
    "bf16_residual_out": bf16_residual_out,
    "empty_k": empty_k,
    "row_sum": lambda: row_reduction("sum", SMALL),
    "row_mean_batched": lambda: row_reduction("mean", SMALL, batch=(2,)),
    "row_max_split_k": lambda: row_reduction("max", SPLIT),
    "row_min_one_n_tile": lambda: row_reduction("min", GemmConfig(16, 64, 16, 2, 1, 4, 1)),
    "row_mean_one_n_tile_split_k": lambda: row_reduction("mean", GemmConfig(16, 64, 16, 2, 3, 4, 1), batch=(3,)),
    "tril_split_k": lambda: triangle(45, 300, 50, 3, SPLIT),
    "triu_swapped_negative_diagonal": lambda: triangle(45, 37, 50, -20, SMALL, lower=False, swapped=True),
    "tril_gemv": lambda: triangle(5, 90, 45, 0, GemmConfig(8, 16, 16, 1, 1, 4, 1, True)),
    "triu_stream_split_k": lambda: triangle(7, 70, 45, 10, GemmConfig(8, 16, 8, 1, 2, 4, 1, 2), lower=False),
    "row_statistics_softmax": lambda: row_statistics(False),
    "row_statistics_logsumexp_batched": lambda: row_statistics(True, batch=(2,)),
    "symmetric_gram": symmetric_gram,
    "symmetric_gram_batched": lambda: symmetric_gram(batch=(2,)),
    "engine_epilogue_scale_residual": lambda: engine_epilogue(
        str(Path(__file__).parents[4] / "problems/gemm_epilogue/02_matmul_scale_residual.py")),
    "inf_tf32x3_split": lambda: inf_survives("tf32x3_split"),
    "inf_tf32x3_presplit": lambda: inf_survives("tf32x3_presplit"),
    "error_check": error_check,
}

if __name__ == "__main__":
    torch.manual_seed(0)
    for name in json.loads(sys.argv[1]):
        try:
            value = tuning_cache(Path(sys.argv[2])) if name == "tuning_cache" else CASES[name]()
            print(json.dumps({"name": name, "ok": value <= 1.0, "ratio": value}), flush=True)
        except Exception as exc:  # reported per case: the test names the failing one
            print(json.dumps({"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}),
                  flush=True)
