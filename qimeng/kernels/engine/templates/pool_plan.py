"""Pooling as kernels of the engine: ``max_pool2d_with_indices`` and ``avg_pool2d`` as direct Triton kernels.

One program computes ``BLOCK`` elements of the ``[N, C, OH, OW]`` output (stored at the strides
PyTorch's own pooling gives it: contiguous, or channels-last for a channels-last input); each walks its
window (unrolled: the window, strides, padding and sizes are compiled in, the input's captured strides
too) with out-of-bounds taps masked. Max pooling keeps the first maximum and lets NaN win (as PyTorch
does), and writes the flat ``ih * W + iw`` index of it; average pooling divides by the divisor
override, else by the window clipped to the padded input (``count_include_pad``) or to the input
itself. The output sizes (``ceil_mode`` included) are the captured ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qimeng.kernels.engine.capture import Graph, Node, Ref, TensorMeta
from qimeng.kernels.engine.codegen.triton import TL_DTYPES
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.unit import TemplateUnit, written_by_kernels

POOL_TARGETS = ("aten.max_pool2d_with_indices.default", "aten.avg_pool2d.default")
DTYPES = ("float32", "float16", "bfloat16")
BLOCK = 256


@dataclass(frozen=True)
class Pool:
    """One 2-D pooling: window, stride, padding, dilation and the average's divisor rule."""

    kind: str  # "max" or "avg"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    count_include_pad: bool = True
    divisor: int | None = None


def _pair(value) -> tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return (int(values[0]), int(values[-1])) if values else (0, 0)


def pool_of(graph: Graph, node: Node) -> Pool | str:
    """The pooling ``node`` computes when a kernel here can, else why not."""
    if node.target not in POOL_TARGETS:
        return f"{node.target} is not a 2-D max/avg pooling"
    if node.kwargs or not isinstance(node.args[0], Ref):
        return "keyword arguments or a non-tensor input"
    x = graph.meta(node.args[0].name)
    if len(x.shape) != 4 or x.dtype not in DTYPES:
        return f"input {list(x.shape)} {x.dtype}: a 4-D float32/float16/bfloat16 tensor is needed"
    args = list(node.args) + [None] * 7
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    padding = _pair(args[3]) if args[3] is not None else (0, 0)
    if node.target == "aten.max_pool2d_with_indices.default":
        dilation = _pair(args[4]) if args[4] is not None else (1, 1)
        return Pool("max", kernel, stride, padding, dilation)
    include = True if args[5] is None else bool(args[5])
    return Pool("avg", kernel, stride, padding, count_include_pad=include,
                divisor=None if args[6] is None else int(args[6]))


def _out_meta(node: Node) -> TensorMeta:
    return node.meta[0] if isinstance(node.meta, tuple) else node.meta


def kernel_source(name: str, pool: Pool, x: TensorMeta, out: TensorMeta) -> str:
    """The ``@triton.jit`` kernel ``name(x_ptr, out_ptr, idx_ptr)`` of ``pool`` over these sizes."""
    _, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    total = out.numel
    sn, sc, sh, sw = x.stride
    (kh, kw), (st_h, st_w), (ph, pw), (dh, dw) = pool.kernel, pool.stride, pool.padding, pool.dilation
    big = max(total, sum((s - 1) * abs(st) for s, st in zip(x.shape, x.stride)) + 1) >= 2**31
    offs = "(tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK))" if big else \
        "(tl.program_id(0) * BLOCK + tl.arange(0, BLOCK))"
    lines = ["@triton.jit", f"def {name}(x_ptr, out_ptr, idx_ptr, BLOCK: tl.constexpr):",
             f"    offs = {offs}", f"    mask = offs < {total}",
             f"    ow = offs % {ow}", f"    oh = (offs // {ow}) % {oh}", f"    c = (offs // {ow * oh}) % {c}",
             f"    n = offs // {ow * oh * c}", f"    base = n * {sn} + c * {sc}",
             f"    dst = n * {out.stride[0]} + c * {out.stride[1]} + oh * {out.stride[2]} + ow * {out.stride[3]}",
             f"    h0 = oh * {st_h} - {ph}", f"    w0 = ow * {st_w} - {pw}"]
    if pool.kind == "max":
        lines += ["    best = tl.full((BLOCK,), float(\"-inf\"), tl.float32)",
                  "    arg = tl.zeros((BLOCK,), tl.int64)"]
    else:
        lines += ["    acc = tl.zeros((BLOCK,), tl.float32)"]
    for i in range(kh):
        for j in range(kw):
            lines += [f"    ih = h0 + {i * dh}", f"    iw = w0 + {j * dw}",
                      f"    ok = mask & (ih >= 0) & (ih < {h}) & (iw >= 0) & (iw < {w})",
                      f"    v = tl.load(x_ptr + base + ih * {sh} + iw * {sw}, mask=ok, other=0.0).to(tl.float32)"]
            if pool.kind == "max":
                lines += ["    take = ok & ((v > best) | (v != v))", "    best = tl.where(take, v, best)",
                          f"    arg = tl.where(take, ih * {w} + iw, arg)"]
            else:
                lines.append("    acc += v")
    out_t = TL_DTYPES[out.dtype]
    if pool.kind == "max":
        lines += [f"    tl.store(out_ptr + dst, best.to({out_t}), mask=mask)",
                  "    tl.store(idx_ptr + dst, arg, mask=mask)"]
        return "\n".join(lines) + "\n"
    if pool.divisor is not None:
        lines.append(f"    div = {float(pool.divisor)}")
    else:  # the window clipped to the padded input, then (without count_include_pad) to the input
        lines += [f"    h1 = tl.minimum(h0 + {kh}, {h + ph})", f"    w1 = tl.minimum(w0 + {kw}, {w + pw})"]
        if not pool.count_include_pad:
            lines += ["    h0 = tl.maximum(h0, 0)", "    w0 = tl.maximum(w0, 0)",
                      f"    h1 = tl.minimum(h1, {h})", f"    w1 = tl.minimum(w1, {w})"]
        lines.append("    div = ((h1 - h0) * (w1 - w0)).to(tl.float32)")
    lines.append(f"    tl.store(out_ptr + dst, (acc / div).to({out_t}), mask=mask)")
    return "\n".join(lines) + "\n"


def pool_unit(graph: Graph, node: Node, units: list) -> tuple[TemplateUnit, None] | str:
    """The pooling kernel's unit for ``node`` (a max pooling defines the ``(values, indices)`` pair);
    ``units`` tell which values our kernels write (contiguous) rather than PyTorch (captured strides)."""
    pool = pool_of(graph, node)
    if isinstance(pool, str):
        return pool
    x_name = node.args[0].name
    x, out = graph.meta(x_name), _out_meta(node)
    if x_name in written_by_kernels(units):
        x = replace(x, stride=contiguous_strides(x.shape))
    if out.numel == 0:
        return "an empty output"
    body = kernel_source("KERNEL", pool, x, out)
    name = f"_qm_pool_{source_hash(body)[:12]}"
    source = body.replace("def KERNEL(", f"def {name}(", 1)
    values, indices = f"_qm_{node.name}_values", f"_qm_{node.name}_indices"
    grid = -(-out.numel // BLOCK)
    lines = [f"        {values} = torch.empty_strided({out.shape!r}, {out.stride!r}, dtype=torch.{out.dtype}, "
             "device=_qm_dev)",
             f"        {indices} = " + (f"torch.empty_strided({out.shape!r}, {out.stride!r}, dtype=torch.int64, "
                                        "device=_qm_dev)" if pool.kind == "max" else values),
             f"        {name}[({grid},)]({x_name}, {values}, {indices}, BLOCK={BLOCK}, num_warps=4)",
             f"        {node.name} = " + (f"({values}, {indices})" if pool.kind == "max" else values)]
    note = (f"{pool.kind} pooling kernel {pool.kernel[0]}x{pool.kernel[1]}, stride {pool.stride}, padding "
            f"{pool.padding}" + (f", dilation {pool.dilation}" if pool.kind == "max" else ""))
    return TemplateUnit(node, (node.name,), node.name, "", source, lines, (x_name,), note, ("direct",)), None
