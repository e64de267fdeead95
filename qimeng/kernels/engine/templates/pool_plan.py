"""Pooling as kernels of the engine: max/avg pooling (fixed or adaptive windows, 2-D and 3-D; 1-D arrives
as 2-D of height 1) and the pointwise kernel before it, as one template unit.

The ATen ops torch.export's core decomposition gives: ``max_pool{2,3}d_with_indices`` (``return_indices``
or not), ``avg_pool{2,3}d``, ``_adaptive_avg_pool{2,3}d`` (an adaptive average to size 1 arrives as
``mean``), ``adaptive_max_pool{2,3}d``; batched or not. The kernel (``pool_source``) writes the output at
the strides PyTorch's own pooling gives it (contiguous, or channels-last for a channels-last input); the
output sizes (``ceil_mode`` included) are the captured ones. When a pointwise kernel alone writes the
pooling's input (``pool_prologue``), the pooling computes it at each tap and the kernel goes.
"""

from __future__ import annotations

from dataclasses import replace

from qimeng.kernels.engine.capture import Graph, Node, Ref, TensorMeta
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.pool_prologue import prologue_of
from qimeng.kernels.engine.templates.pool_source import BLOCK, Pool, kernel_source
from qimeng.kernels.engine.codegen.ahead import ahead_line
from qimeng.kernels.engine.templates.pool_split import split_tail
from qimeng.kernels.engine.templates.unit import TemplateUnit, written_by_kernels

MAX = {"aten.max_pool2d_with_indices.default": 2, "aten.max_pool3d_with_indices.default": 3}
AVG = {"aten.avg_pool2d.default": 2, "aten.avg_pool3d.default": 3}
ADAPTIVE_AVG = {"aten._adaptive_avg_pool2d.default": 2, "aten._adaptive_avg_pool3d.default": 3}
ADAPTIVE_MAX = {"aten.adaptive_max_pool2d.default": 2, "aten.adaptive_max_pool3d.default": 3}
SPATIAL_DIMS = {**MAX, **AVG, **ADAPTIVE_AVG, **ADAPTIVE_MAX}
POOL_TARGETS = tuple(SPATIAL_DIMS)
DTYPES = ("float32", "float16", "bfloat16")


def _sizes(value, d: int, default: int) -> tuple[int, ...]:
    """An ATen size argument (an int, or a list of one or ``d`` ints; empty or None: ``default``) as ``d`` ints."""
    values = list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])
    return tuple(int(values[i if len(values) > 1 else 0]) for i in range(d)) if values else (default,) * d


def pool_of(graph: Graph, node: Node) -> Pool | str:
    """The pooling ``node`` computes when a kernel here can, else why not."""
    if node.target not in SPATIAL_DIMS:
        return f"{node.target} is not a max/avg pooling"
    if node.kwargs or not isinstance(node.args[0], Ref):
        return "keyword arguments or a non-tensor input"
    d = SPATIAL_DIMS[node.target]
    x = graph.meta(node.args[0].name)
    if len(x.shape) not in (d + 1, d + 2) or x.dtype not in DTYPES:
        return f"input {list(x.shape)} {x.dtype}: a {d + 1}-D or {d + 2}-D float32/float16/bfloat16 tensor is needed"
    out_size = tuple(_out_meta(node).shape[-d:])
    args = list(node.args) + [None] * 7
    if node.target in ADAPTIVE_AVG or node.target in ADAPTIVE_MAX:
        kind = "max" if node.target in ADAPTIVE_MAX else "avg"
        return Pool(kind, (), (), (), (), output_size=out_size)
    kernel = _sizes(args[1], d, 1)
    stride = _sizes(args[2], d, 1) if args[2] else kernel
    padding = _sizes(args[3], d, 0)
    if node.target in MAX:
        return Pool("max", kernel, stride, padding, _sizes(args[4], d, 1))
    include = True if args[5] is None else bool(args[5])
    return Pool("avg", kernel, stride, padding, (1,) * d, count_include_pad=include,
                divisor=None if args[6] is None else int(args[6]))


def _out_meta(node: Node) -> TensorMeta:
    return node.meta[0] if isinstance(node.meta, tuple) else node.meta


def _describe(pool: Pool, fused: str) -> str:
    window = "x".join(map(str, pool.kernel)) if pool.kernel else "adaptive to " + "x".join(map(str, pool.output_size))
    fixed = "" if pool.output_size else f", stride {pool.stride}, padding {pool.padding}" + (
        f", dilation {pool.dilation}" if pool.kind == "max" else "")
    return f"{pool.kind} pooling kernel {window}{fixed}; {fused}"


def pool_unit(graph: Graph, node: Node, units: list) -> tuple[TemplateUnit, KernelUnit | None] | str:
    """The pooling kernel's unit for ``node`` (a max pooling defines the ``(values, indices)`` pair) and the
    kernel it folds in; ``units`` tell which values our kernels write (contiguous) rather than PyTorch
    (captured strides)."""
    pool = pool_of(graph, node)
    if isinstance(pool, str):
        return pool
    x_name = node.args[0].name
    x, out = graph.meta(x_name), _out_meta(node)
    if out.numel == 0:
        return "an empty output"
    if x_name in written_by_kernels(units):
        x = replace(x, stride=contiguous_strides(x.shape))
    writer = next((u for u in units if isinstance(u, KernelUnit) and x_name in {b.name for b in u.kernel.outputs}),
                  None)
    split = split_tail(graph, writer, x_name) if writer is not None else "no kernel"
    before = () if isinstance(split, str) else (split[0],)
    seen = units if isinstance(split, str) else [split[1] if u is writer else u for u in units]
    prologue = prologue_of(graph, seen, x_name, node.name)
    fused = not isinstance(prologue, str)
    body = kernel_source("KERNEL", pool, x, out, prologue if fused else None)
    name = f"_qm_pool_{source_hash(body)[:12]}"
    inputs = prologue.operands if fused else (x_name,)
    values, indices = f"_qm_{node.name}_values", f"_qm_{node.name}_indices"
    with_indices = isinstance(node.meta, tuple)
    pointers = [out.dtype, "int64" if with_indices else out.dtype, *(graph.meta(i).dtype for i in inputs)]
    ahead = ahead_line(name, pointers, {"BLOCK": BLOCK}, 4, None)
    source = body.replace("def KERNEL(", f"def {name}(", 1) + "\n\n" + ahead
    lines = [f"        {values} = torch.empty_strided({out.shape!r}, {out.stride!r}, dtype=torch.{out.dtype}, "
             "device=_qm_dev)",
             f"        {indices} = " + (f"torch.empty_strided({out.shape!r}, {out.stride!r}, dtype=torch.int64, "
                                        "device=_qm_dev)" if with_indices else values),
             # the grid from the output's size at run time: a literal would not be a polynomial of a dynamic batch
             f"        {name}[(({values}.numel() + {BLOCK - 1}) // {BLOCK},)]({values}, {indices}, {', '.join(inputs)}, "
             f"BLOCK={BLOCK}, num_warps=4)",
             f"        {node.name} = " + (f"({values}, {indices})" if with_indices else values)]
    why = split if writer is not None and writer.kernel.kind == "reduction" else prologue
    note = _describe(pool, ("the pointwise kernel before it computed at each tap" + (
        " (split from its reduction)" if before else "")) if fused else f"input read: {why}")
    group = (node.name,) + (prologue.kernel.group if fused else ())
    unit = TemplateUnit(node, group, node.name, "", source, lines, tuple(inputs), note, ("direct",),
                        before=before if fused else ())
    return unit, writer if fused else None
