"""The GEMM template's host side as source text: one launch routine for ``gemm()`` and for ``model_new.py``.

``RUNTIME`` defines ``_qm_mm_k_major``, ``_qm_mm_merge`` and ``_qm_mm_run`` with nothing but ``torch``
in scope, so ``emit`` inlines it into the self-contained ``model_new.py`` and ``gemm.py`` executes the
same text once (:data:`FUNCTIONS`): the library path and the generated one launch the kernels alike.
"""

from __future__ import annotations

import torch

RUNTIME = '''
def _qm_mm_k_major(t, k_dim):
    """``t`` itself when its K axis (``k_dim``: -1 for A, -2 for B) is the contiguous one, else a copy
    laid out so: 32-bit tensor-core products read both operands K-major from shared memory."""
    if t.stride(k_dim) == 1 or t.shape[k_dim] == 1:
        return t
    other = -2 if k_dim == -1 else -1
    return t.transpose(k_dim, other).contiguous().transpose(k_dim, other)


def _qm_mm_merge(batch, strides):
    """Broadcast batch dimensions merged where every operand's ``strides`` allow it, padded to two:
    ((size0, size1), [(stride0, stride1) of each operand])."""
    dims = [(s, [st[i] for st in strides]) for i, s in enumerate(batch) if s != 1]
    merged = []
    for size, st in dims:
        if merged and all(p == q * size for p, q in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * size, st)
        else:
            merged.append((size, st))
    if len(merged) > 2:
        raise ValueError(f"batch dimensions {batch} do not merge into two")
    while len(merged) < 2:
        merged.insert(0, (1, [0] * len(strides)))
    return (merged[0][0], merged[1][0]), [(merged[0][1][j], merged[1][1][j]) for j in range(len(strides))]


def _qm_mm_run(kernels, a, b, a_lo, b_lo, c, extra, config):
    """Fill ``c`` (a new contiguous ``[*batch, M, N]``, or ``[*batch, M]`` for a row reduction) with the
    template's product of ``a [..., M, K]`` and ``b [..., K, N]`` (any strides, batch broadcast);
    ``kernels`` = (main, finalize, rows kernel or None, small-M kernel, streaming small-M kernel), ``extra``
    the epilogue's tensors, ``config`` = (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, SPLIT_K, warps, stages, gemv):
    with ``gemv`` 1 (True) the small-M kernel runs, with 2 the streaming one (fp32 FMA, no tensor cores;
    ``a_lo``/``b_lo`` unused) instead of the main one."""
    main, finalize, rows, gemv, stream = kernels
    bm, bn, bk, gm, split_k, warps, stages, use_gemv = config
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    total = 1
    for s in batch:
        total *= s
    strides = [tuple(t.expand(*batch, *t.shape[-2:]).stride()[:len(batch)]) for t in (a, b)]
    (_, b1), ((sab0, sab1), (sbb0, sbb1)) = _qm_mm_merge(batch, strides)
    k_split = -(-(-(-k // bk)) // split_k) * bk
    split = max(1, -(-k // k_split)) if k else 1
    ws = torch.empty((split, total, m, n) if split > 1 else (1,), device=a.device, dtype=torch.float32)
    tiles = -(-m // bm) * -(-n // bn)
    fm, fn = 32, 64  # the finalize kernel's tile
    n_tiles = -(-n // (fn if split > 1 else bn))
    red = torch.empty((n_tiles, total, m) if rows is not None and n_tiles > 1 else (1,), device=a.device,
                      dtype=torch.float32)
    scb = m * n
    sizes = (m, n, k, k_split, total, b1, sab0, sab1, a.stride(-2), a.stride(-1), sbb0, sbb1, b.stride(-2),
             b.stride(-1), scb, n, 1, split)
    if use_gemv == 2:
        stream[(tiles, total, split)](a, b, c, ws, red, *extra, *sizes, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                                      EVEN_K=k % bk == 0, K_CONTIG=b.stride(-2) == 1 and bk >= 4,
                                      num_warps=warps, num_stages=stages)
    elif use_gemv:
        gemv[(tiles, total, split)](a, b, c, ws, red, *extra, *sizes, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                                    EVEN_K=k % bk == 0, num_warps=warps, num_stages=stages)
    else:
        main[(tiles, total, split)](a, b, a_lo, b_lo, c, ws, red, *extra, *sizes, BLOCK_M=bm, BLOCK_N=bn,
                                    BLOCK_K=bk, GROUP_M=gm, EVEN_K=k % bk == 0, num_warps=warps,
                                    num_stages=stages)
    if split > 1:
        finalize[(-(-m // fm), -(-n // fn), total)](
            ws, c, red, *extra, m, n, total, scb, n, 1, split, BLOCK_M=fm, BLOCK_N=fn, num_warps=4)
    if rows is not None and n_tiles > 1:  # a single N tile stored its finished rows itself
        rows[(-(-m // 128), total)](red, c, m, n, total, n_tiles, BLOCK=128, num_warps=4)
    return c
'''


def _functions() -> dict[str, object]:
    namespace: dict[str, object] = {"torch": torch}
    exec(compile(RUNTIME, "<qimeng gemm runtime>", "exec"), namespace)  # our own fixed text, not generated
    return namespace


FUNCTIONS = _functions()
