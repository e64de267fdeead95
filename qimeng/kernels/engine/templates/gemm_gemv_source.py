"""Source text of the GEMM template's small-M kernel (matrix-vector, decode-like shapes): ``{prefix}_gemv``.

For ``M`` up to a few rows the product is memory-bound: the time is one read of B. This kernel reads
each ``[BLOCK_K, BLOCK_N]`` tile of B once (coalesced along whichever axis of B is contiguous; Triton
specialises the stride equal to 1) and multiplies it by the ``BLOCK_M`` rows of A with fp32 FMAs, no
tensor cores and no padding of M to a tensor-core tile. Split-K runs over grid axis 2: each split writes
its fp32 partial to the workspace and the template's finalize kernel sums the splits in a fixed order
(no atomics, so the result is the same bits on every run) and applies the epilogue.

Arithmetic: operands are widened to fp32 and multiplied and added in fp32 (FMA, round to nearest), in
every precision of the template: at least as accurate as each of them, and the tensor cores would not
make a memory-bound product faster. The program keeps ``BLOCK_K`` partial sums per output (an fp32
``[BLOCK_K, BLOCK_N]`` accumulator, ``[BLOCK_M, BLOCK_K, BLOCK_N]`` for several rows): the loop is loads
and FMAs only, and the partial sums are added up once at the end. For several rows both tiles are
loaded as 3-D blocks (A ``[BLOCK_M, BLOCK_K, 1]``, B ``[1, BLOCK_K, BLOCK_N]``) so that they come in the
accumulator's layout: compiled for sm_90, the loop then has no layout conversion (a 2-D B tile was
converted through shared memory at every K step).
"""

from __future__ import annotations


def gemv_kernel_source(prefix: str, extra: str, offsets: str, tail: str) -> str:
    """The ``{prefix}_gemv`` kernel; ``extra`` is the epilogue's pointer parameters, ``offsets`` the tile
    offsets every product kernel starts with (``gemm_source.PROGRAM_OFFSETS``), ``tail`` the main kernel's
    closing lines (the tile indices, then the epilogue and store, or the split-K partial), which
    read ``acc``, ``pid_m``, ``pid_n`` and ``pid_b`` as the main kernel defines them."""
    return f'''

@triton.jit
def {prefix}_gemv(a_ptr, b_ptr, c_ptr, ws_ptr, red_ptr, {extra}M, N, K, K_SPLIT, BATCH, B1,
                  sab0, sab1, sam, sak, sbb0, sbb1, sbk, sbn, scb, scm, scn,
                  SPLIT_K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  EVEN_K: tl.constexpr):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    pid_k = tl.program_id(2)
    num_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid % num_m
    pid_n = pid // num_m
{offsets}
    a_base = a_ptr + b0 * sab0 + b1 * sab1
    b_base = b_ptr + b0 * sbb0 + b1 * sbb1
    if BLOCK_M == 1:
        a_offs = offs_am * sam + offs_k * sak
        b_offs = offs_k[:, None] * sbk + offs_bn[None, :] * sbn
        part = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
        for k in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                a_tile = tl.load(a_base + a_offs)
                b_tile = tl.load(b_base + b_offs)
            else:
                a_tile = tl.load(a_base + a_offs, mask=offs_k < k_hi - (k - k_lo), other=0.0)
                b_tile = tl.load(b_base + b_offs, mask=offs_k[:, None] < k_hi - (k - k_lo), other=0.0)
            part += a_tile.to(tl.float32)[:, None] * b_tile.to(tl.float32)
            a_offs += BLOCK_K * sak
            b_offs += BLOCK_K * sbk
        acc = tl.sum(part, 0)[None, :]
    else:
        a_offs = offs_am[:, None, None] * sam + offs_k[None, :, None] * sak
        b_offs = offs_k[None, :, None] * sbk + offs_bn[None, None, :] * sbn
        part = tl.zeros((BLOCK_M, BLOCK_K, BLOCK_N), dtype=tl.float32)
        for k in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                a_tile = tl.load(a_base + a_offs)
                b_tile = tl.load(b_base + b_offs)
            else:
                a_tile = tl.load(a_base + a_offs, mask=offs_k[None, :, None] < k_hi - (k - k_lo), other=0.0)
                b_tile = tl.load(b_base + b_offs, mask=offs_k[None, :, None] < k_hi - (k - k_lo), other=0.0)
            part += a_tile.to(tl.float32) * b_tile.to(tl.float32)
            a_offs += BLOCK_K * sak
            b_offs += BLOCK_K * sbk
        acc = tl.sum(part, 1)
{tail}
'''
