"""FlashAttention-style scaled dot-product attention (forward): one pass over K/V with an online softmax.

``attention(q, k, v, mask=None, causal=False, scale=None, precision="strict")`` computes
``softmax(q @ k^T * scale + mask) @ v`` as ``F.scaled_dot_product_attention`` does (dropout 0):

- ``q [B, H, M, D]``, ``k``/``v`` ``[B, H_kv, N, D]`` (or 3-D ``[B, M, D]``), any strides; ``H_kv`` divides
  ``H`` (grouped-query heads: query head ``h`` reads key/value head ``h // (H / H_kv)``, PyTorch's
  ``enable_gqa``); head dims up to 256 (padded to a power of two in registers, masked in memory);
- ``causal``: key ``j`` is seen by query ``i`` when ``j <= i`` (top-left, as ``is_causal``);
- ``mask``: boolean (True takes part) or additive, broadcastable to ``[B, H, M, N]`` (strides of 0);
- a row that sees no key gives 0, as PyTorch's math path does (its ``_safe_softmax``);
- precisions: ``strict`` (both products 3xTF32; every product of one K/V block starts from zero and
  joins the running sums by fp32 adds), ``ieee``, ``tf32``, ``bf16`` (operands and probabilities rounded
  to bfloat16, fp32 accumulation). The output has ``q``'s dtype.

Under the Triton interpreter a bfloat16 ``tl.dot`` multiplies raw bits, so there the bf16 products run
on bf16-rounded operands widened to fp32 (the same arithmetic); TF32 rounding is not emulated there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
PRECISIONS = {"strict": "tf32x3", "ieee": "ieee", "tf32": "tf32", "bf16": "bf16"}


@dataclass(frozen=True)
class AttentionConfig:
    block_m: int = 128
    block_n: int = 64
    num_warps: int = 8
    num_stages: int = 2


def default_config(head_dim: int, precision: str) -> AttentionConfig:
    """Smaller tiles where fp32 operands or wide heads would not fit registers and shared memory."""
    if head_dim > 128:
        return AttentionConfig(64, 32, 8, 2)
    if precision == "bf16":
        return AttentionConfig(128, 64, 8, 3)
    # fp32 at head dim 128 on the H200 (4 x 16 heads x 4096): 32x64 11.8 ms, 128x64 one stage 12.7, 64x64 18.1
    return AttentionConfig(32, 64, 4, 2) if head_dim > 64 else AttentionConfig(128, 64, 8, 2)


@triton.jit
def _qm_mm(a, b, PRECISION: tl.constexpr, WIDEN: tl.constexpr):
    if PRECISION == "bf16":
        if WIDEN:
            out = tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
        else:
            out = tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    else:
        out = tl.dot(a, b, input_precision=PRECISION)
    return out


@triton.jit
def _qm_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d, row_ok, d_ok, N,
              skn, skd, svn, svd, smm, smn, qk_scale, BOUNDED: tl.constexpr, CAUSAL: tl.constexpr,
              MASK: tl.constexpr, EVEN_D: tl.constexpr, PRECISION: tl.constexpr, WIDEN: tl.constexpr):
    """One K/V block of the online softmax. ``BOUNDED``: the block may cross N or the causal diagonal,
    so every column is checked; the blocks before those run with no per-element check at all."""
    cols = start + offs_n
    k_mask = d_ok[:, None]
    v_mask = d_ok[None, :]
    if BOUNDED:
        col_ok = cols < N
        k_mask = k_mask & col_ok[None, :]
        v_mask = v_mask & col_ok[:, None]
    if EVEN_D and not BOUNDED:
        kt = tl.load(k_base + cols[None, :] * skn + offs_d[:, None] * skd)
    else:
        kt = tl.load(k_base + cols[None, :] * skn + offs_d[:, None] * skd, mask=k_mask, other=0.0)
    s = _qm_mm(q, kt.to(q.dtype), PRECISION, WIDEN) * qk_scale  # log2 units
    if BOUNDED or MASK != 0:
        seen = row_ok[:, None] & (cols[None, :] >= 0)
        if BOUNDED:
            seen = seen & col_ok[None, :]
            if CAUSAL:
                seen = seen & (cols[None, :] <= offs_m[:, None])
        if MASK == 1:
            keep = tl.load(mask_base + offs_m[:, None] * smm + cols[None, :] * smn, mask=seen, other=0)
            seen = seen & (keep != 0)
        if MASK == 2:
            add = tl.load(mask_base + offs_m[:, None] * smm + cols[None, :] * smn, mask=seen, other=0.0)
            s = s + add.to(tl.float32) * 1.4426950408889634
        s = tl.where(seen, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row that has seen nothing yet
    p = tl.exp2(s - m_safe[:, None])
    alpha = tl.exp2(m_i - m_safe)
    l_i = l_i * alpha + tl.sum(p, 1)
    if EVEN_D and not BOUNDED:
        vt = tl.load(v_base + cols[:, None] * svn + offs_d[None, :] * svd)
    else:
        vt = tl.load(v_base + cols[:, None] * svn + offs_d[None, :] * svd, mask=v_mask, other=0.0)
    acc = acc * alpha[:, None] + _qm_mm(p.to(q.dtype), vt.to(q.dtype), PRECISION, WIDEN)
    return acc, l_i, m_new


@triton.jit
def _qm_attention(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr,
                  sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sob, soh, som, sod,
                  smb, smh, smm, smn, H, GROUP, M, N, D, qk_scale,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr,
                  MASK: tl.constexpr, EVEN_D: tl.constexpr, PRECISION: tl.constexpr, WIDEN: tl.constexpr):
    pid_m = tl.program_id(0)
    if CAUSAL:  # the query blocks with the most keys first, so the longest programs do not start last
        pid_m = tl.num_programs(0) - 1 - pid_m
    pid_bh = tl.program_id(1).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    kv = h // GROUP
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < M
    d_ok = offs_d < D
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sqm + offs_d[None, :] * sqd,
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if PRECISION == "bf16" and not WIDEN:
        q = q.to(tl.bfloat16)  # once: every product of the row block reads it
    else:
        q = q.to(tl.float32)
    k_base = k_ptr + b * skb + kv * skh
    v_base = v_ptr + b * svb + kv * svh
    mask_base = mask_ptr + b * smb + h * smh
    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    stop = N
    full = (N // BLOCK_N) * BLOCK_N  # blocks inside N ...
    if CAUSAL:
        stop = tl.minimum(N, (pid_m + 1) * BLOCK_M)
        full = tl.minimum(full, (pid_m * BLOCK_M // BLOCK_N) * BLOCK_N)  # ... and left of every row's diagonal
    for start in range(0, full, BLOCK_N):
        acc, l_i, m_i = _qm_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d,
                                  row_ok, d_ok, N, skn, skd, svn, svd, smm, smn, qk_scale, False, CAUSAL, MASK,
                                  EVEN_D, PRECISION, WIDEN)
    for start in range(full, stop, BLOCK_N):
        acc, l_i, m_i = _qm_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d,
                                  row_ok, d_ok, N, skn, skd, svn, svd, smm, smn, qk_scale, True, CAUSAL, MASK,
                                  EVEN_D, PRECISION, WIDEN)
    out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]  # no key seen: 0, as PyTorch
    tl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :] * sod,
             out.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              causal: bool = False, scale: float | None = None, precision: str = "strict",
              config: AttentionConfig | None = None) -> torch.Tensor:
    """``softmax(q k^T * scale + mask) v`` per (batch, head); see the module docstring."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    three = q.dim() == 3
    if three:
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
        mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
    if q.dim() != 4 or k.dim() != 4 or v.shape[:3] != k.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    bsz, heads, m, d = q.shape
    kv_heads, n, dv = k.shape[1], k.shape[2], v.shape[3]
    if dv != d or heads % kv_heads or k.shape[0] != bsz or d > 256:
        raise ValueError(f"unsupported: head dims {d}/{dv} (equal, at most 256), heads {heads}/{kv_heads}")
    out = torch.empty(bsz, heads, m, d, device=q.device, dtype=q.dtype)
    kind, mask_arg, strides = 0, q, (0, 0, 0, 0)
    if mask is not None:
        full = mask.expand(bsz, heads, m, n)
        kind = 1 if mask.dtype == torch.bool else 2
        mask_arg = full.view(torch.uint8) if kind == 1 else full
        strides = full.stride()
    config = config or default_config(d, precision)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    grid = (triton.cdiv(m, config.block_m), bsz * heads)
    _qm_attention[grid](
        q, k, v, out, mask_arg, *q.stride(), *k.stride(), *v.stride(), *out.stride(), *strides,
        heads, heads // kv_heads, m, n, d, scale * LOG2E,
        BLOCK_M=config.block_m, BLOCK_N=config.block_n, BLOCK_D=max(16, triton.next_power_of_2(d)),
        CAUSAL=causal, MASK=kind, EVEN_D=max(16, triton.next_power_of_2(d)) == d, PRECISION=PRECISIONS[precision], WIDEN=os.environ.get("TRITON_INTERPRET") == "1",
        num_warps=config.num_warps, num_stages=config.num_stages)
    return out.squeeze(1) if three else out
