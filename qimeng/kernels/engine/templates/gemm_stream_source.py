"""Source text of the GEMM template's streaming small-M kernel (decode shapes): ``{prefix}_stream``.

A second small-M kernel beside ``gemm_gemv_source``'s, for tuning to measure against it. Both read each
tile of B once with fp32 FMAs; this one reduces over K *inside each thread* at every K step, so that
its registers hold one partial sum per output (or per group of four k) instead of one per element of
the B tile, and a K step can load a large tile (many 16-byte loads in flight per thread: the product is
a stream of B at the memory's bandwidth). The layout of the reduction follows B's contiguous axis
(``K_CONTIG``, set at launch from B's strides):

- K contiguous (``x @ W.T`` with ``W [N, K]`` row-major: nn.Linear's weight): the tile is
  ``[BLOCK_M, BLOCK_N, BLOCK_K / 4, 4]``, four consecutive k (one 16-byte load) in one thread; they are
  multiplied and summed there (an FMA chain), into a ``[BLOCK_M, BLOCK_N, BLOCK_K / 4]`` partial sum that
  is reduced across threads once, after the K loop.
- N contiguous (``x @ B``, ``B [K, N]`` row-major): the tile is ``[BLOCK_M, BLOCK_N, BLOCK_K]``; with
  ``BLOCK_N`` = 4 columns x 32 lanes x warps, Triton lays the warps along N, so each thread holds all
  ``BLOCK_K`` rows of its four columns and the sum over K is in registers; the partial is
  ``[BLOCK_M, BLOCK_N]``. K is the last axis, not the middle one: Triton's combine pass rewrites a sum
  over the middle axis of a ``[M, K, 1] * [1, K, N]`` product into ``tt.dot`` (since 3.9 for any
  broadcast, not only ``expand_dims``, once M and N reach 16), an FMA dot whose operands go through
  shared memory and a layout conversion at every K step.

Arithmetic: operands widened to fp32, products and sums in fp32 (FMA), in every precision, as the
other small-M kernel. Split-K (grid axis 2) writes fp32 partials that the finalize kernel sums in split
order (deterministic, no atomics); with one split the epilogue is applied here. B is streamed with
``evict_first`` (read once), A with ``evict_last`` (every program reads it).
"""

from __future__ import annotations

VECTOR = 4  # consecutive k of B summed in one thread when K is B's contiguous axis (one 16-byte fp32 load)


def stream_kernel_source(prefix: str, extra: str, offsets: str, tail: str) -> str:
    """The ``{prefix}_stream`` kernel; the arguments are those of ``gemv_kernel_source``."""
    return f'''

@triton.jit
def {prefix}_stream(a_ptr, b_ptr, c_ptr, ws_ptr, red_ptr, {extra}M, N, K, K_SPLIT, BATCH, B1,
                    sab0, sab1, sam, sak, sbb0, sbb1, sbk, sbn, scb, scm, scn,
                    SPLIT_K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                    EVEN_K: tl.constexpr, K_CONTIG: tl.constexpr):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    pid_k = tl.program_id(2)
    num_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid % num_m
    pid_n = pid // num_m
{offsets}
    a_base = a_ptr + b0 * sab0 + b1 * sab1
    b_base = b_ptr + b0 * sbb0 + b1 * sbb1
    if K_CONTIG:
        k4 = tl.arange(0, BLOCK_K // {VECTOR})[:, None] * {VECTOR} + tl.arange(0, {VECTOR})[None, :]
        kk = (k_lo + k4)[None, None, :, :]
        a_offs = offs_am[:, None, None, None] * sam + kk * sak
        b_offs = offs_bn[None, :, None, None] * sbn + kk * sbk
        part = tl.zeros((BLOCK_M, BLOCK_N, BLOCK_K // {VECTOR}), dtype=tl.float32)
        for k in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                a_tile = tl.load(a_base + a_offs, eviction_policy="evict_last")
                b_tile = tl.load(b_base + b_offs, eviction_policy="evict_first")
            else:
                a_tile = tl.load(a_base + a_offs, mask=kk < k_hi - (k - k_lo), other=0.0, eviction_policy="evict_last")
                b_tile = tl.load(b_base + b_offs, mask=kk < k_hi - (k - k_lo), other=0.0, eviction_policy="evict_first")
            part += tl.sum(a_tile.to(tl.float32) * b_tile.to(tl.float32), 3)
            a_offs += BLOCK_K * sak
            b_offs += BLOCK_K * sbk
        acc = tl.sum(part, 2)
    else:
        a_offs = offs_am[:, None, None] * sam + offs_k[None, None, :] * sak
        b_offs = offs_bn[None, :, None] * sbn + offs_k[None, None, :] * sbk
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                a_tile = tl.load(a_base + a_offs, eviction_policy="evict_last")
                b_tile = tl.load(b_base + b_offs, eviction_policy="evict_first")
            else:
                a_tile = tl.load(a_base + a_offs, mask=offs_k[None, None, :] < k_hi - (k - k_lo), other=0.0,
                                 eviction_policy="evict_last")
                b_tile = tl.load(b_base + b_offs, mask=offs_k[None, None, :] < k_hi - (k - k_lo), other=0.0,
                                 eviction_policy="evict_first")
            acc += tl.sum(a_tile.to(tl.float32) * b_tile.to(tl.float32), 2)
            a_offs += BLOCK_K * sak
            b_offs += BLOCK_K * sbk
{tail}
'''
