"""Source text of the GEMM template: ``C[b] = epilogue(A[b] @ B[b])`` as ``@triton.jit`` kernels.

One main kernel (grouped tile order for L2 reuse, a pipelined K loop, unmasked loads when BLOCK_K
divides K, split-K over grid axis 2; a triangular epilogue, ``gemm_triangle``, gives the tiles past its
diagonal an empty K range), a small-M kernel for matrix-vector and decode-like shapes
(``gemm_gemv_source``: fp32 FMA, B read once) and, for split-K, a finalize kernel that sums the fp32 partials and applies the epilogue. Sizes and
strides are run-time arguments (Triton specialises those equal to 1); only the precision, the
epilogue and the block shape are compiled in (the split-K factor is a run-time argument too: one
kernel serves every K; Triton specialises a factor of 1, which drops the split-K branch).

Precisions (``PRECISIONS``): ``tf32x3`` (strict fp32 on tensor cores: Triton's split of each operand
into a TF32 high part and residual, hi*hi + hi*lo + lo*hi), ``tf32x3_split`` (the same split written
out: high part = the operand rounded to its top 10 mantissa bits), ``tf32x3_presplit`` (the same
split done once before the kernel, by ``gemm.presplit``: the main loop reads high and low tiles and
runs three TF32 products straight from shared memory), ``ieee`` (fp32 FMA, no tensor
cores), ``tf32`` (one TF32 product), ``bf16`` (operands rounded to bfloat16, fp32 accumulation).
Under the Triton interpreter every ``tl.dot`` is a float32 numpy product, whatever the precision (so
TF32 rounding is not emulated), and a bfloat16 ``tl.dot`` multiplies the raw bits: ``interpreted``
renders bf16 as operands rounded to bfloat16 and widened back, products exact in fp32, which is the
same arithmetic as the tensor-core path.
"""

from __future__ import annotations

import hashlib

from qimeng.kernels.engine.codegen.triton import HELPERS, TL_DTYPES, cast_code, render_expression
from qimeng.kernels.engine.templates.epilogue import B_VAR, M_VAR, N_VAR, ROW, Epilogue, RowReduce
from qimeng.kernels.engine.templates.gemm_gemv_source import gemv_kernel_source
from qimeng.kernels.engine.templates.gemm_stream_source import stream_kernel_source
from qimeng.kernels.engine.templates.gemm_triangle import triangle_of

PRECISIONS = ("tf32x3", "tf32x3_split", "tf32x3_presplit", "ieee", "tf32", "bf16")

# The three TF32 products of one K tile start from zero and their sum joins ``acc`` by an fp32 add:
# accumulating across K inside the tensor cores truncates (measured on the H200: a bias that grows
# with K, 3e-5 relative at K = 4096), an fp32 add rounds. The small products go first; a NaN among
# them (inf - inf in a residual) is dropped, as Triton's own tf32x3 does, so infinities survive.
_THREE_TF32 = [
    "part = tl.dot(a_hi, b_lo, input_precision=\"tf32\")",
    "part = tl.dot(a_lo, b_hi, part, input_precision=\"tf32\")",
    "part = tl.where(part != part, 0.0, part)",
    "part = tl.dot(a_hi, b_hi, part, input_precision=\"tf32\")",
    "acc += part",
]


def _split(x: str) -> list[str]:
    """``{x}_hi``: ``{x}_tile`` rounded to TF32 (add half of the dropped 13 bits, clear them; infinities
    and NaN kept); ``{x}_lo``: the exact residual."""
    return [f"{x}_hi = (({x}_tile.to(tl.uint32, bitcast=True) + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)",
            f"{x}_hi = tl.where(tl.abs({x}_hi) < float(\"inf\"), {x}_hi, {x}_tile)",
            f"{x}_lo = {x}_tile - {x}_hi"]


DOT_LINES = {
    "tf32x3": ["acc = tl.dot(a_tile, b_tile, acc, input_precision=\"tf32x3\")"],
    "ieee": ["acc = tl.dot(a_tile, b_tile, acc, input_precision=\"ieee\")"],
    "tf32": ["acc = tl.dot(a_tile, b_tile, acc, input_precision=\"tf32\")"],
    "bf16": ["acc = tl.dot(a_tile.to(tl.bfloat16), b_tile.to(tl.bfloat16), acc)"],
    "tf32x3_presplit": ["a_hi = a_tile", "b_hi = b_tile", "a_lo = alo_tile", "b_lo = blo_tile"] + _THREE_TF32,
    "tf32x3_split": _split("a") + _split("b") + _THREE_TF32,
}

DOT_LINES_INTERPRETED = {
    "bf16": ["acc = tl.dot(a_tile.to(tl.bfloat16).to(tl.float32), b_tile.to(tl.bfloat16).to(tl.float32), acc)"],
}


def _load_lines(operands: tuple[str, ...]) -> list[str]:
    """The K-loop loads of each operand tile (``a``/``alo`` at ``a_offs``, ``b``/``blo`` at ``b_offs``: int32
    within one matrix, the batch offset a 64-bit scalar)."""
    even, masked = [], []
    for name in operands:
        side = name[0]
        mask = "offs_k[None, :]" if side == "a" else "offs_k[:, None]"
        ptrs = f"{name}_ptr + {side}_batch + {side}_offs"
        even.append(f"            {name}_tile = tl.load({ptrs})")
        masked.append(f"            {name}_tile = tl.load({ptrs}, mask={mask} < k_hi - (k - k_lo), other=0.0)")
    return ["        if EVEN_K:"] + even + ["        else:"] + masked


# The lines every product kernel (main, small-M, streaming) starts its tile with, from its ``pid_m``,
# ``pid_n``, ``pid_b`` and ``pid_k``: the two batch indices, the tile's rows of A and columns of B (wrapped
# into range: the loads stay unmasked, the store masks), and its split's K range.
PROGRAM_OFFSETS = """    b0 = pid_b // B1
    b1 = pid_b % B1
    offs_am = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_bn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    k_lo = pid_k * K_SPLIT
    k_hi = min(K, k_lo + K_SPLIT)
    offs_k = k_lo + tl.arange(0, BLOCK_K)"""

ROW_COMBINE = {"sum": ("tl.sum", "0.0", "acc + part"), "max": ("tl.max", "float(\"-inf\")", "tl.maximum(acc, part)"),
               "min": ("tl.min", "float(\"inf\")", "tl.minimum(acc, part)")}


def _row_store(row_reduce: RowReduce, value: str, out_dtype: str, indent: str) -> list[str]:
    """Lines storing ``finish`` of the reduced rows ``value`` (at ``rows``) to ``C[b, m]``."""
    lines, finished = render_expression(row_reduce.finish, {}, "rows < M", indent, [], {ROW.name: value}, "row_t")
    return lines + [f"{indent}tl.store(c_ptr + pid_b * M + rows, {cast_code(finished, out_dtype)}, mask=rows < M)"]


def _epilogue_lines(epilogue: Epilogue, out_dtype: str, indent: str, row_reduce: RowReduce | None,
                    symmetric: bool = False) -> list[str]:
    """Lines that compute the epilogue of ``acc`` over the tile ``(rm, rn)`` (its row statistics first, over
    the whole rows the tile holds) and store it to C (``per_row``: one value a row), or, for a row reduction,
    reduce the tile over its columns: a single N tile stores the finished rows to C, several store their
    per-row partials to ``red`` (``[N tiles, BATCH, M]``, fp32) for the rows kernel. ``symmetric``: only the
    tiles on and above the diagonal store, each at its place and transposed (M = N: the mask is symmetric)."""
    codes, axes = {M_VAR: "rm", N_VAR: "rn", B_VAR: "pid_b"}, [({M_VAR}, "rm", "mask_m"), ({N_VAR}, "rn", "mask_n")]
    refs, lines = {"acc": "acc"}, []
    for i, stat in enumerate(epilogue.statistics):  # the tile holds whole rows: reduce each over its columns
        stat_lines, stat_value = render_expression(stat.value, codes, "cmask", indent, axes, refs, f"s{i}_")
        fn, neutral, _ = ROW_COMBINE[stat.op]
        refs[stat.name] = f"st_{stat.name}"
        lines += stat_lines + [f"{indent}st_{stat.name} = {fn}(tl.where(cmask, {cast_code(stat_value, 'float32')}, "
                               f"{neutral}), 1)[:, None]"]
    value_lines, value = render_expression(epilogue.value, codes, "cmask", indent, axes, refs)
    lines += value_lines
    if epilogue.per_row:
        return lines + [f"{indent}tl.store(c_ptr + pid_b * M + rm, {cast_code(value, out_dtype)}, mask=mask_m)"]
    stored = cast_code(value, out_dtype)
    if row_reduce is None and symmetric:  # tiles on and above the diagonal, at their place and transposed
        return lines + [f"{indent}if pid_n >= pid_m:",
                        f"{indent}    tl.store(c_ptr + pid_b * scb + rm * scm + rn * scn, {stored}, mask=cmask)",
                        f"{indent}    tl.store(c_ptr + pid_b * scb + tl.trans(rn * scm + rm * scn), tl.trans({stored}), "
                        "mask=tl.trans(cmask))"]
    if row_reduce is None:
        return lines + [f"{indent}tl.store(c_ptr + pid_b * scb + rm * scm + rn * scn, {stored}, mask=cmask)"]
    fn, neutral, _ = ROW_COMBINE[row_reduce.op]
    return lines + [f"{indent}row_part = {fn}(tl.where(cmask, {cast_code(value, 'float32')}, {neutral}), 1)",
                    f"{indent}rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
                    f"{indent}if tl.cdiv(N, BLOCK_N) == 1:",
                    *_row_store(row_reduce, "row_part", out_dtype, indent + "    "),
                    f"{indent}else:",
                    f"{indent}    tl.store(red_ptr + (pid_n * BATCH + pid_b) * M + rows, row_part, mask=rows < M)"]


def _rows_kernel(row_reduce: RowReduce, out_dtype: str, prefix: str) -> str:
    """``{prefix}_rows``: the per-row partials of every N tile combined and finished into ``C[b, m]``."""
    _, neutral, combine = ROW_COMBINE[row_reduce.op]
    store = "\n".join(_row_store(row_reduce, "acc", out_dtype, "    "))
    return f'''

@triton.jit
def {prefix}_rows(red_ptr, c_ptr, M, N, BATCH, NUM_N, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pid_b = tl.program_id(1).to(tl.int64)
    acc = tl.full((BLOCK,), {neutral}, tl.float32)
    for t in range(NUM_N):
        part = tl.load(red_ptr + (t * BATCH + pid_b) * M + rows, mask=rows < M, other={neutral})
        acc = {combine}
{store}
'''


def render(precision: str, epilogue: Epilogue, out_dtype: str, interpreted: bool = False,
           row_reduce: RowReduce | None = None, symmetric: bool = False) -> str:
    """The module text: imports, the engine's helpers and :func:`kernels_source` under prefix ``_qm_gemm``."""
    return f"import triton\nimport triton.language as tl\n{HELPERS}\n" + kernels_source(
        precision, epilogue, out_dtype, interpreted, row_reduce, symmetric=symmetric)


def kernels_source(precision: str, epilogue: Epilogue, out_dtype: str, interpreted: bool = False,
                   row_reduce: RowReduce | None = None, prefix: str = "_qm_gemm", symmetric: bool = False) -> str:
    """The kernels alone (they need ``triton``, ``tl`` and the engine's helpers in scope): main kernel
    ``{prefix}``, small-M kernel ``{prefix}_gemv``, finalize kernel ``{prefix}_finalize``, and for ``row_reduce`` (sum / max / min over N
    of the epilogue's value, then its finish) ``{prefix}_rows``. ``symmetric`` (a product with its own
    transpose, ``gemm_symmetric``; square tiles, no split-K): the main kernel computes the tiles on and above
    the diagonal only, and stores each at its place and transposed."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if out_dtype not in TL_DTYPES:
        raise ValueError(f"unsupported output dtype {out_dtype}")
    if epilogue.whole_rows and row_reduce is not None:
        raise ValueError("an epilogue of whole rows takes no row reduction")
    if symmetric and (row_reduce is not None or epilogue.whole_rows or epilogue.operands):
        raise ValueError("a symmetric product takes an epilogue of the product alone")
    extra = "".join(f"{o.name}_ptr, " for o in epilogue.operands)
    triangle = triangle_of(epilogue.value)  # tril/triu of the product: tiles past the diagonal run no K loop
    offsets = PROGRAM_OFFSETS + (triangle.lines() if triangle else "")
    main_offsets = offsets + ("\n    if pid_n < pid_m:\n        k_hi = k_lo" if symmetric else "")  # its mirror's
    lines = DOT_LINES_INTERPRETED[precision] if interpreted and precision in DOT_LINES_INTERPRETED else DOT_LINES[precision]
    dot = "\n".join(f"        {line}" for line in lines)
    loads = "\n".join(_load_lines(("a", "b", "alo", "blo") if precision == "tf32x3_presplit" else ("a", "b")))
    tile = ["    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M))[:, None]",
            "    rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N))[None, :]",
            "    mask_m = rm < M",
            "    mask_n = rn < N",
            "    cmask = mask_m & mask_n"]
    epilogue_main = _epilogue_lines(epilogue, out_dtype, "        ", row_reduce, symmetric)
    main_tail = "\n".join(tile + ["    if SPLIT_K == 1:"] + epilogue_main +
                          ["    else:",
                           "        ws = ws_ptr + ((pid_k * BATCH + pid_b) * M + rm) * N + rn",
                           "        tl.store(ws, acc, mask=cmask)"])
    fin_tail = "\n".join(tile + ["    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
                                 "    for s in range(SPLIT_K):",
                                 "        ws = ws_ptr + ((s * BATCH + pid_b) * M + rm) * N + rn",
                                 "        acc += tl.load(ws, mask=cmask, other=0.0)"]
                         + _epilogue_lines(epilogue, out_dtype, "    ", row_reduce))
    return f'''
@triton.jit
def {prefix}(a_ptr, b_ptr, alo_ptr, blo_ptr, c_ptr, ws_ptr, red_ptr, {extra}M, N, K, K_SPLIT, BATCH, B1,
             sab0, sab1, sam, sak, sbb0, sbb1, sbk, sbn, scb, scm, scn,
             SPLIT_K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
             GROUP_M: tl.constexpr, EVEN_K: tl.constexpr):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    pid_k = tl.program_id(2)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    in_group = GROUP_M * num_n
    first_m = (pid // in_group) * GROUP_M
    group_rows = min(num_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % in_group) % group_rows)
    pid_n = (pid % in_group) // group_rows
{main_offsets}
    a_batch = b0 * sab0 + b1 * sab1
    b_batch = b0 * sbb0 + b1 * sbb1
    a_offs = offs_am[:, None] * sam + offs_k[None, :] * sak
    b_offs = offs_k[:, None] * sbk + offs_bn[None, :] * sbn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(k_lo, k_hi, BLOCK_K):
{loads}
{dot}
        a_offs += BLOCK_K * sak
        b_offs += BLOCK_K * sbk
{main_tail}


@triton.jit
def {prefix}_finalize(ws_ptr, c_ptr, red_ptr, {extra}M, N, BATCH, scb, scm, scn, SPLIT_K,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
{fin_tail}
''' + gemv_kernel_source(prefix, extra, offsets, main_tail) + stream_kernel_source(
        prefix, extra, offsets, main_tail) + (_rows_kernel(row_reduce, out_dtype, prefix) if row_reduce else "")


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]
