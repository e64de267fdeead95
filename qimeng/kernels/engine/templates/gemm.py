"""The GEMM template at run time: ``gemm(a, b, ...)`` = ``epilogue(a @ b)`` through our Triton kernels.

Shapes: ``a`` is ``[..., M, K]``, ``b`` is ``[..., K, N]`` with any strides (transposes are strides),
leading batch dimensions broadcast as in ``torch.matmul`` (at most two after merging). The output is
a new contiguous ``[*batch, M, N]`` tensor. Block shapes come from :func:`default_config` (a small
curated choice per shape class) unless a :class:`GemmConfig` is given; ``gemm_tuning`` measures the
curated list on the target. For M up to ``GEMV_MAX_M`` (matrix-vector, decode) the list also holds the
two small-M kernels (``GemmConfig.gemv`` 1 and 2, ``gemm_gemv_source`` and ``gemm_stream_source``: fp32
FMA, B read once, deterministic split-K), which tuning may pick.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from qimeng.kernels.engine.templates.epilogue import MAX_ROW_N, Epilogue, RowReduce, named_row_reduce
from qimeng.kernels.engine.templates.gemm_runtime import FUNCTIONS
from qimeng.kernels.engine.templates.gemm_source import render, source_hash
from qimeng.settings import Settings


@dataclass(frozen=True)
class GemmConfig:
    block_m: int = 128
    block_n: int = 128
    block_k: int = 32
    group_m: int = 8
    split_k: int = 1
    num_warps: int = 8
    num_stages: int = 3
    gemv: int = 0  # 0: the tensor-core kernel; 1 (True): the small-M kernel (fp32 FMA); 2: the streaming one

    def launch(self) -> tuple[int, ...]:
        """The tuple ``_qm_mm_run`` takes."""
        return (self.block_m, self.block_n, self.block_k, self.group_m, self.split_k, self.num_warps,
                self.num_stages, self.gemv)

    def key(self) -> str:
        return (f"{self.block_m}x{self.block_n}x{self.block_k} g{self.group_m} s{self.split_k} "
                f"w{self.num_warps} st{self.num_stages}" + {0: "", 1: " gemv", 2: " stream"}[int(self.gemv)])


@dataclass(frozen=True)
class Problem:
    """The sizes of one product: ``batch`` matrices of ``[M, K] @ [K, N]``."""

    m: int
    n: int
    k: int
    batch: int = 1


# Curated per shape class, the measured best first (H200, square 4096 and 8192: docs/PERFORMANCE.md);
# interpreter tests pass their own small configs. Presplit 3xTF32 stages four fp32 tiles (A and B,
# high and low): half the stages fit in shared memory.
LARGE_FP32 = (GemmConfig(128, 128, 64, 8, 1, 8, 3), GemmConfig(128, 128, 32, 8, 1, 8, 4),
              GemmConfig(128, 128, 32, 8, 1, 8, 3), GemmConfig(256, 128, 64, 8, 1, 8, 2),
              GemmConfig(128, 256, 32, 8, 1, 8, 3), GemmConfig(256, 128, 32, 8, 1, 8, 3),
              GemmConfig(128, 128, 32, 8, 1, 4, 4), GemmConfig(256, 128, 32, 8, 1, 8, 4))
LARGE_TF32 = (GemmConfig(128, 256, 32, 8, 1, 8, 3), GemmConfig(128, 128, 32, 8, 1, 4, 4)) + tuple(
    c for c in LARGE_FP32 if c not in (GemmConfig(128, 256, 32, 8, 1, 8, 3), GemmConfig(128, 128, 32, 8, 1, 4, 4)))
LARGE_FP32_PRESPLIT = (GemmConfig(128, 128, 32, 8, 1, 8, 3), GemmConfig(128, 256, 32, 8, 1, 8, 2),
                       GemmConfig(128, 128, 32, 8, 1, 4, 3), GemmConfig(128, 128, 16, 8, 1, 8, 4),
                       GemmConfig(256, 128, 16, 8, 1, 8, 4), GemmConfig(256, 128, 32, 8, 1, 8, 2),
                       GemmConfig(128, 128, 64, 8, 1, 8, 1))
# bf16 at 4096 was 0.85x cuBLAS with the first eight: the 128x256 and 256x128 tiles (8 warps, two warpgroups)
# with 4 stages and group sizes 4 and 16, and a 5-stage BLOCK_K = 32 tile, were added for the sweep (not yet
# measured; 48 KiB a stage at BLOCK_K = 64, so 4 stages fit the H200's 227 KiB of shared memory)
LARGE_16BIT = (GemmConfig(128, 256, 64, 16, 1, 8, 3), GemmConfig(128, 256, 64, 8, 1, 8, 4),
               GemmConfig(128, 256, 64, 16, 1, 8, 4), GemmConfig(256, 128, 64, 8, 1, 8, 4),
               GemmConfig(256, 128, 64, 16, 1, 8, 3), GemmConfig(128, 256, 64, 4, 1, 8, 4),
               GemmConfig(128, 256, 64, 8, 1, 8, 3), GemmConfig(256, 128, 64, 8, 1, 8, 3),
               GemmConfig(128, 256, 32, 8, 1, 8, 5), GemmConfig(128, 128, 64, 8, 1, 4, 4),
               GemmConfig(128, 128, 64, 8, 1, 8, 4), GemmConfig(128, 128, 128, 8, 1, 8, 3))


def large_configs(precision: str, sixteen_bit: bool) -> tuple[GemmConfig, ...]:
    if sixteen_bit:
        return LARGE_16BIT
    return {"tf32x3_presplit": LARGE_FP32_PRESPLIT, "tf32": LARGE_TF32}.get(precision, LARGE_FP32)


def _sixteen_bit(precision: str, a: torch.Tensor) -> bool:
    return precision == "bf16" or a.dtype in (torch.float16, torch.bfloat16)


def split_for(problem: Problem, block_m: int, block_n: int, block_k: int, sms: int, per_sm: int = 2) -> int:
    """Split K until the grid covers the multiprocessors ``per_sm`` times, keeping >= 4 K blocks per split."""
    tiles = math.ceil(problem.m / block_m) * math.ceil(problem.n / block_n) * problem.batch
    k_blocks = math.ceil(problem.k / block_k)
    split = 1
    while tiles * split < per_sm * sms and k_blocks // (split * 2) >= 4 and split < 64:
        split *= 2
    return split


GEMV_MAX_M = 16  # M up to this may take the small-M kernel when tuning finds it faster
GEMV_ACC_PER_THREAD = 64  # fp32 products each thread holds per K tile: sets BLOCK_K from BLOCK_M x BLOCK_N
GEMV_PER_SM = 4  # programs per multiprocessor that split-K aims for (loads in flight to saturate HBM)
# (BLOCK_N, warps, stages, programs per SM), the expected best first; BLOCK_K follows from the rest
GEMV_SHAPES = ((128, 4, 3, GEMV_PER_SM), (256, 8, 3, GEMV_PER_SM), (64, 4, 3, GEMV_PER_SM),
               (128, 4, 1, GEMV_PER_SM), (256, 4, 4, GEMV_PER_SM), (128, 4, 3, 2 * GEMV_PER_SM))


def _pow2_at_least(x: int) -> int:
    return 1 << max(0, x - 1).bit_length()


def gemv_config(problem: Problem, block_n: int, warps: int, stages: int, sms: int,
                per_sm: int = GEMV_PER_SM) -> GemmConfig:
    """The small-M kernel's configuration: BLOCK_M = M rounded up to a power of two (at most
    ``GEMV_MAX_M``), BLOCK_K so that each thread holds ``GEMV_ACC_PER_THREAD`` products per K tile
    (4 to 128), split-K until the grid covers each multiprocessor ``per_sm`` times."""
    bm = min(GEMV_MAX_M, _pow2_at_least(problem.m))
    bn = min(block_n, max(16, _pow2_at_least(problem.n)))
    bk = max(4, min(128, GEMV_ACC_PER_THREAD * 32 * warps // (bm * bn)))
    return GemmConfig(bm, bn, bk, 1, split_for(problem, bm, bn, bk, sms, per_sm), warps, stages, True)


STREAM_ELEMS = 64  # elements of B each thread loads per K step in the streaming kernel (16 loads of 16 bytes)
# the streaming kernel's shapes, the expected best first: B K-major (BLOCK_N, warps, stages), B N-major
# (warps, stages; BLOCK_N = 4 columns x 32 lanes x warps, so that the sum over K stays in each thread)
STREAM_K_MAJOR = ((8, 4, 1), (16, 8, 1), (4, 4, 1), (8, 4, 3))
STREAM_N_MAJOR = ((4, 1), (8, 1), (4, 3))


def stream_config(problem: Problem, b_k_major: bool, block_n: int, warps: int, stages: int, sms: int) -> GemmConfig:
    """The streaming small-M kernel's configuration for B K-major (nn.Linear's ``weight.t()``) or N-major:
    BLOCK_M = M rounded up to a power of two; K-major, BLOCK_K so that each thread loads ``STREAM_ELEMS``
    elements of B a step, at least 4 x 32 x warps (every warp along K: A's tile then comes in B's layout),
    then BLOCK_K and BLOCK_N halved until each thread holds at most ``GEMV_ACC_PER_THREAD`` partial sums;
    N-major, BLOCK_K so that each thread loads as many elements of B and holds as many values of A;
    split-K until the grid covers each multiprocessor ``GEMV_PER_SM`` times."""
    bm, threads = min(GEMV_MAX_M, _pow2_at_least(problem.m)), 32 * warps
    if b_k_major:
        bn = min(block_n, _pow2_at_least(problem.n))
        bk = max(4 * threads, STREAM_ELEMS * threads // bn)
        while bn > 1 and bm * bn * bk // 4 > GEMV_ACC_PER_THREAD * threads:
            bk, bn = (bk // 2, bn) if bk > 4 * threads else (bk, bn // 2)
    else:
        bn = min(block_n, max(16, _pow2_at_least(problem.n)))
        bk = max(1, min(STREAM_ELEMS // 4, GEMV_ACC_PER_THREAD // bm))
    return GemmConfig(bm, bn, bk, 1, split_for(problem, bm, bn, bk, sms, GEMV_PER_SM), warps, stages, 2)


def stream_configs(problem: Problem, b_k_major: bool | None, sms: int) -> list[GemmConfig]:
    """The streaming kernel's curated shapes for B's layout (both layouts', alternating, when unknown)."""
    k_major = [stream_config(problem, True, bn, w, st, sms) for bn, w, st in STREAM_K_MAJOR]
    n_major = [stream_config(problem, False, 4 * 32 * w, w, st, sms) for w, st in STREAM_N_MAJOR]
    if b_k_major is None:
        mixed = [c for pair in zip(k_major, n_major) for c in pair] + k_major[len(n_major):]
        return list(dict.fromkeys(mixed))
    return list(dict.fromkeys(k_major if b_k_major else n_major))


def default_config(problem: Problem, precision: str, sixteen_bit: bool, sms: int) -> GemmConfig:
    """The expert choice per shape class: small M or N narrow tiles and split-K (on the H200 they beat
    the small-M kernel at 1 x 8192 x 8192, 0.115 ms against 0.31, and at 16 x 8192 x 8192, 0.115 against
    0.25: that kernel is offered to tuning only); large products the first curated tile of their dtype
    class."""
    if problem.m <= 64 or problem.n <= 64:
        return _narrow_configs(problem, precision, sixteen_bit, sms)[0]
    base = large_configs(precision, sixteen_bit)[0]
    split = split_for(problem, base.block_m, base.block_n, base.block_k, sms)
    return GemmConfig(base.block_m, base.block_n, base.block_k, base.group_m, split, base.num_warps,
                      base.num_stages)


def _narrow_configs(problem: Problem, precision: str, sixteen_bit: bool, sms: int) -> list[GemmConfig]:
    """Narrow tensor-core tiles with split-K for M or N up to 64."""
    bm = 16 if problem.m <= 16 else 64 if problem.m <= 64 else 128
    bn = 16 if problem.n <= 16 else 64 if problem.n <= 64 else 128
    stages = 2 if precision == "tf32x3_presplit" else 3  # four staged tiles
    out = [GemmConfig(bm, bn, 128 if sixteen_bit else 64, 8,
                      split_for(problem, bm, bn, 128 if sixteen_bit else 64, sms), 4, stages)]
    for bk, warps in ((64, 4), (128, 4), (256, 8)):
        cand = GemmConfig(bm, bn, bk, 8, split_for(problem, bm, bn, bk, sms), warps, 3)
        if cand not in out:
            out.append(cand)
    return out


ROW_TILE_ELEMENTS = 16384  # fp32 accumulators of such a tile: BLOCK_M shrinks as BLOCK_N grows


def whole_row_config(problem: Problem, base: GemmConfig | None = None) -> GemmConfig:
    """A tile that holds whole rows for an epilogue of row statistics: BLOCK_N = N rounded up to a power of two
    (at most ``MAX_ROW_N``), BLOCK_M = ``ROW_TILE_ELEMENTS`` / BLOCK_N (16 to 128, and ``base``'s when smaller),
    BLOCK_K 16 with two stages from BLOCK_N 512 on (shared memory), no split-K, the tensor-core kernel."""
    if problem.n > MAX_ROW_N:
        raise ValueError(f"rows of {problem.n} columns do not fit one tile (at most {MAX_ROW_N})")
    bn = max(16, _pow2_at_least(problem.n))
    bm = max(16, min(128, ROW_TILE_ELEMENTS // bn, base.block_m if base else 128))
    wide = bn >= 512
    return GemmConfig(bm, bn, 16 if wide else 32, base.group_m if base else 8, 1, base.num_warps if base else 8,
                      2 if wide else 3)


def symmetric_config(config: GemmConfig) -> GemmConfig:
    """``config`` with square tiles (the smaller of its BLOCK_M and BLOCK_N), no split-K, on the tensor-core
    kernel: what a symmetric product (``gemm_symmetric``) runs at."""
    side = min(config.block_m, config.block_n)
    return GemmConfig(side, side, config.block_k, config.group_m, 1, config.num_warps, config.num_stages)


def fitted_config(problem: Problem, config: GemmConfig | None, whole_rows: bool, symmetric: bool) -> GemmConfig:
    """``config`` as an epilogue of row statistics (``whole_row_config``, which needs no ``config``) and a
    symmetric product (``symmetric_config``) need it; unchanged otherwise."""
    if whole_rows:
        config = whole_row_config(problem, config)
    assert config is not None, "a config is needed but for whole rows"
    return symmetric_config(config) if symmetric else config


def curated_configs(problem: Problem, precision: str, sixteen_bit: bool, sms: int,
                    b_k_major: bool | None = None) -> list[GemmConfig]:
    """The default first, then the curated tiles of the shape class (split-K for few tiles); small M
    offers the narrow tile (the default), then the streaming kernel's shapes for B's layout
    (``b_k_major``; None: both) and the small-M kernel's (the measurement decides)."""
    if problem.m <= GEMV_MAX_M:
        out = [gemv_config(problem, bn, w, st, sms, per_sm) for bn, w, st, per_sm in GEMV_SHAPES]
        return (_narrow_configs(problem, precision, sixteen_bit, sms)[:1] + stream_configs(problem, b_k_major, sms)
                + list(dict.fromkeys(out)))
    if problem.m <= 64 or problem.n <= 64:
        return _narrow_configs(problem, precision, sixteen_bit, sms)
    out = [default_config(problem, precision, sixteen_bit, sms)]
    for c in large_configs(precision, sixteen_bit):
        cand = GemmConfig(c.block_m, c.block_n, c.block_k, c.group_m,
                          split_for(problem, c.block_m, c.block_n, c.block_k, sms), c.num_warps, c.num_stages)
        if cand not in out:
            out.append(cand)
    return out


TENSOR_CORE_FP32 = ("tf32", "tf32x3", "tf32x3_split", "tf32x3_presplit")
_MODULES: dict[str, object] = {}


def template_source(precision: str, epilogue: Epilogue, out_dtype: str, row_reduce: RowReduce | None = None,
                    symmetric: bool = False) -> str:
    """The module text this process runs (the interpreter gets its bf16 emulation)."""
    return _rendered(precision, epilogue, out_dtype, os.environ.get("TRITON_INTERPRET") == "1", row_reduce, symmetric)


@functools.lru_cache(maxsize=256)
def _rendered(precision: str, epilogue: Epilogue, out_dtype: str, interpreted: bool,
              row_reduce: RowReduce | None, symmetric: bool) -> str:
    """``render``'s text, kept per arguments: ``gemm()`` asks for it at every call, and rendering it costs
    more host time than a decode-sized product takes on the GPU."""
    return render(precision, epilogue, out_dtype, interpreted, row_reduce, symmetric)


def load(precision: str, epilogue: Epilogue, out_dtype: str, row_reduce: RowReduce | None = None,
         symmetric: bool = False):
    """The compiled-on-demand module for this (precision, epilogue, output dtype): Triton needs a source
    file, so the text goes to ``<work dir>/templates/gemm_<hash>.py`` and is imported from there."""
    source = template_source(precision, epilogue, out_dtype, row_reduce, symmetric)
    digest = source_hash(source)
    if digest not in _MODULES:
        folder = Settings.from_env().work_dir / "templates"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"gemm_{digest}.py"
        if not path.exists() or path.read_text() != source:
            tmp = path.with_suffix(f".{id(source)}.tmp")
            tmp.write_text(source)
            tmp.replace(path)
        _MODULES[digest] = _import(path, f"_qm_gemm_{digest}")
    return _MODULES[digest]


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_merge = FUNCTIONS["_qm_mm_merge"]  # batch dimensions merged into two (see gemm_runtime)
k_major = FUNCTIONS["_qm_mm_k_major"]  # a K-major copy unless the K axis is already contiguous


def presplit(t: torch.Tensor, k_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hi, lo)``, K-major: ``hi`` = ``t`` rounded to TF32 (exact in TF32; infinities and NaN kept),
    ``lo`` = ``t - hi`` (exact), both with one set of strides."""
    t = k_major(t, k_dim)
    rounded = ((t.view(torch.int32) + 0x1000) & -8192).view(torch.float32)
    hi = torch.where(rounded.isfinite(), rounded, t)  # infinities, NaN and the rare round-up to inf
    lo = torch.empty_like(hi)
    torch.sub(t, hi, out=lo)
    return hi, lo


def is_own_transpose(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``b`` is ``a`` with its last two axes swapped (one storage, mirrored strides): ``a @ b`` is
    then symmetric."""
    return (a.data_ptr() == b.data_ptr() and a.shape[:-2] == b.shape[:-2] and a.stride()[:-2] == b.stride()[:-2]
            and a.shape[-2:] == b.shape[-2:][::-1] and a.stride()[-2:] == b.stride()[-2:][::-1])


def sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 1


STRICT_TENSOR_CORE = "tf32x3"  # the 3xTF32 variant "strict" takes on compute-bound shapes


def strict_variant(problem: Problem) -> str:
    """What ``precision="strict"`` runs: plain fp32 FMA (``ieee``) where M or N is at most 16 (the
    product is memory-bound and a K-major copy of the operands would cost more than it saves; the
    small-M kernel tuning may pick there is fp32 FMA in every precision), else 3xTF32 on the tensor cores."""
    return "ieee" if min(problem.m, problem.n) <= 16 else STRICT_TENSOR_CORE


def gemm(a: torch.Tensor, b: torch.Tensor, *, precision: str = "strict", epilogue: Epilogue = Epilogue(),
         operands: dict[str, torch.Tensor] | None = None, config: GemmConfig | None = None,
         out_dtype: torch.dtype | None = None, row_reduce: str | RowReduce | None = None) -> torch.Tensor:
    """``epilogue(a @ b)`` for ``a [..., M, K]`` and ``b [..., K, N]``; ``operands`` are the epilogue's
    tensors by name (indexed in the epilogue by element strides of the ``[*batch, M, N]`` output).
    With ``row_reduce`` ("sum", "mean", "max", "min", or a :class:`RowReduce`) the result is that reduction
    over N, ``[*batch, M]``: the ``[M, N]`` values are reduced per tile and never written. An epilogue with row
    statistics runs at ``whole_row_config`` (``config``'s BLOCK_M and warps where given). A product of a matrix
    with its own transpose (``is_own_transpose``) under an epilogue of the product alone computes the tiles on
    and above the diagonal only (``gemm_symmetric``, square tiles, no split-K)."""
    if a.dim() < 2 or b.dim() < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}")
    operands = operands or {}
    missing = {o.name for o in epilogue.operands} - set(operands)
    if missing:
        raise ValueError(f"epilogue tensors not given: {sorted(missing)}")
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    for t in (a, b):
        if (t.shape[-2] - 1) * abs(t.stride(-2)) + (t.shape[-1] - 1) * abs(t.stride(-1)) >= 2**31:
            raise ValueError(f"a {tuple(t.shape[-2:])} matrix spans more than 2**31 elements (int32 tile offsets)")
    batch = tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    out_dtype = out_dtype or a.dtype
    c = torch.empty(*batch, m, *(() if row_reduce or epilogue.per_row else (n,)), device=a.device, dtype=out_dtype)
    total = math.prod(batch)
    if c.numel() == 0:
        return c
    if row_reduce and n == 0:  # as torch reduces an empty row (max and min have no value: -inf, inf)
        if not isinstance(row_reduce, str):
            raise ValueError("a row reduction over no columns")
        return c.fill_({"sum": 0.0, "mean": float("nan"), "max": float("-inf"), "min": float("inf")}[row_reduce])
    if isinstance(row_reduce, str):
        row_reduce = named_row_reduce(row_reduce, n)
    problem = Problem(m, n, k, total)
    if precision == "strict":
        precision = strict_variant(problem)
    symmetric = row_reduce is None and epilogue.of_product_alone and is_own_transpose(a, b)
    if config is None and not epilogue.whole_rows:
        config = default_config(problem, precision, _sixteen_bit(precision, a), sm_count(a.device))
    config = fitted_config(problem, config, epilogue.whole_rows, symmetric)
    module = load(precision, epilogue, str(out_dtype).removeprefix("torch."), row_reduce, symmetric)
    if precision == "tf32x3_presplit" and not config.gemv:
        (a, a_lo), (b, b_lo) = presplit(a, -1), presplit(b, -2)
    else:
        if precision in TENSOR_CORE_FP32 and a.dtype == torch.float32 and not config.gemv:
            a, b = k_major(a, -1), k_major(b, -2)
        a_lo, b_lo = a, b
    extra = [operands[o.name] for o in epilogue.operands]
    kernels = (module._qm_gemm, module._qm_gemm_finalize, module._qm_gemm_rows if row_reduce else None,
               module._qm_gemm_gemv, module._qm_gemm_stream)
    return FUNCTIONS["_qm_mm_run"](kernels, a, b, a_lo, b_lo, c, extra, config.launch())
