"""The attention template as source text: the Triton kernels (``KERNELS``) and the host launch routine
(``RUNTIME``), for ``attention()`` and for ``model_new.py`` alike.

Both texts need nothing but ``torch``, ``triton`` and ``triton.language as tl`` in scope: ``emit``
inlines them into the self-contained ``model_new.py`` (attention units), and ``attention.py`` imports
the same text from a file (Triton reads a kernel's source from its file).

``_qm_attn_run(q, k, v, out, mask, mask_kind, causal, scale, add_scale, fill, empty_nan, precision,
config, widen)`` fills ``out [B, H, M, D]`` with ``softmax(q k^T * scale + mask) v`` for ``q [B, H, M, D]``,
``k``/``v`` ``[B, H_kv, N, D]`` (any strides; ``H_kv`` divides ``H``):

- ``mask_kind`` 1: ``mask`` is boolean (True takes part; a score it drops becomes ``fill``, in the scaled
  units of the softmax's input, ``-inf`` by default); 2: ``mask`` is added after the scale, times
  ``add_scale``; 0: no mask. ``mask`` broadcasts to ``[B, H, M, N]`` (strides of 0).
- ``causal``: key ``j`` is seen by query ``i`` when ``j <= i`` (top-left, as ``is_causal``).
- a row that sees no key gives 0 (``F.scaled_dot_product_attention``'s math path, its ``_safe_softmax``),
  or NaN with ``empty_nan`` (a plain softmax over ``-inf`` scores, as a hand-written attention does).
- ``precision``: a ``tl.dot`` input precision (``tf32x3``, ``ieee``, ``tf32``) or ``bf16`` (operands and
  probabilities rounded to bfloat16, fp32 accumulation); ``widen``: under the Triton interpreter, where a
  bfloat16 ``tl.dot`` multiplies raw bits, the bf16 products run on bf16-rounded values widened to fp32.
- ``config`` = (BLOCK_M, BLOCK_N, warps, stages).
"""

from __future__ import annotations

KERNELS = '''
@triton.jit
def _qm_attn_mm(a, b, PRECISION: tl.constexpr, WIDEN: tl.constexpr):
    if PRECISION == "bf16":
        if WIDEN:
            out = tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
        else:
            out = tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    else:
        out = tl.dot(a, b, input_precision=PRECISION)
    return out


@triton.jit
def _qm_attn_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d, row_ok, d_ok, N,
                   skn, skd, svn, svd, smm, smn, qk_scale, add_scale, fill, BOUNDED: tl.constexpr,
                   CAUSAL: tl.constexpr, MASK: tl.constexpr, EVEN_D: tl.constexpr, PRECISION: tl.constexpr,
                   WIDEN: tl.constexpr, POSITIVE_SCALE: tl.constexpr):
    """One K/V block of the online softmax. ``BOUNDED``: the block may cross N or the causal diagonal, so
    every column is checked; the blocks before those run with no per-element check. Such a block with no
    mask and a positive scale takes the row maximum of the raw scores and scales it, so that each score
    costs one FMA (``qk * scale - max``) before its ``exp2``; with bf16 products the P @ V product
    accumulates into ``acc`` on the tensor cores (FlashAttention-2's form)."""
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
    qk = _qm_attn_mm(q, kt.to(q.dtype), PRECISION, WIDEN)
    if MASK == 0 and not BOUNDED and POSITIVE_SCALE:  # every score finite and seen: no guard needed
        m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        m_safe = m_new
        p = tl.exp2(qk * qk_scale - m_new[:, None])
    else:
        s = qk * qk_scale  # log2 units
        loadable = row_ok[:, None] & (cols[None, :] >= 0)
        if BOUNDED:
            loadable = loadable & col_ok[None, :]
        if MASK == 1:
            keep = tl.load(mask_base + offs_m[:, None] * smm + cols[None, :] * smn, mask=loadable, other=0)
            s = tl.where(keep != 0, s, fill)
        if MASK == 2:
            add = tl.load(mask_base + offs_m[:, None] * smm + cols[None, :] * smn, mask=loadable, other=0.0)
            s = s + add.to(tl.float32) * add_scale
        if BOUNDED:
            seen = loadable
            if CAUSAL:
                seen = seen & (cols[None, :] <= offs_m[:, None])
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
    if PRECISION == "bf16" and not WIDEN:
        acc = tl.dot(p.to(tl.bfloat16), vt.to(tl.bfloat16), acc * alpha[:, None])
    else:
        acc = acc * alpha[:, None] + _qm_attn_mm(p.to(q.dtype), vt.to(q.dtype), PRECISION, WIDEN)
    return acc, l_i, m_new


@triton.jit
def _qm_attn_kernel(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr,
                    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sob, soh, som, sod,
                    smb, smh, smm, smn, H, GROUP, M, N, D, qk_scale, add_scale, fill,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr,
                    MASK: tl.constexpr, EMPTY_NAN: tl.constexpr, EVEN_D: tl.constexpr, PRECISION: tl.constexpr,
                    WIDEN: tl.constexpr, POSITIVE_SCALE: tl.constexpr):
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
        acc, l_i, m_i = _qm_attn_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d,
                                       row_ok, d_ok, N, skn, skd, svn, svd, smm, smn, qk_scale, add_scale, fill,
                                       False, CAUSAL, MASK, EVEN_D, PRECISION, WIDEN, POSITIVE_SCALE)
    for start in range(full, stop, BLOCK_N):
        acc, l_i, m_i = _qm_attn_block(acc, l_i, m_i, q, k_base, v_base, mask_base, start, offs_m, offs_n, offs_d,
                                       row_ok, d_ok, N, skn, skd, svn, svd, smm, smn, qk_scale, add_scale, fill,
                                       True, CAUSAL, MASK, EVEN_D, PRECISION, WIDEN, POSITIVE_SCALE)
    if EMPTY_NAN:
        out = acc / l_i[:, None]  # no key seen: 0 / 0, as a plain softmax over -inf scores
    else:
        out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]  # no key seen: 0, as PyTorch's SDPA
    tl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :] * sod,
             out.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
'''

RUNTIME = '''
def _qm_attn_run(q, k, v, out, mask, mask_kind, causal, scale, add_scale, fill, empty_nan, precision, config,
                 widen):
    """``out [B, H, M, D]`` = attention of ``q``, ``k``, ``v`` (4-D, any strides) by our kernel."""
    bsz, heads, m, d = q.shape
    kv_heads, n = k.shape[1], k.shape[2]
    mask_arg, strides = q, (0, 0, 0, 0)
    if mask_kind:
        full = mask.expand(bsz, heads, m, n)
        mask_arg = full.view(torch.uint8) if mask_kind == 1 else full
        strides = full.stride()
    block_m, block_n, warps, stages = config
    log2e = 1.4426950408889634
    block_d = max(16, triton.next_power_of_2(d))
    grid = (-(-m // block_m), bsz * heads)
    _qm_attn_kernel[grid](
        q, k, v, out, mask_arg, *q.stride(), *k.stride(), *v.stride(), *out.stride(), *strides,
        heads, heads // kv_heads, m, n, d, scale * log2e, add_scale * log2e, fill * log2e,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, CAUSAL=causal, MASK=mask_kind,
        EMPTY_NAN=empty_nan, EVEN_D=block_d == d, PRECISION=precision, WIDEN=widen, POSITIVE_SCALE=scale > 0,
        num_warps=warps, num_stages=stages)
    return out
'''
