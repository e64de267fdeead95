"""Lower a group of captured graph nodes to one kernel of the IR (``qimeng.kernels.engine.ir``).

A group is a set of nodes that become one kernel. Its iteration space comes from its reductions or
scan (all of which must agree), else from its outputs. Values produced outside the group are loads
from realised buffers; values inside are inlined as expressions (producers fused into consumers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qimeng.kernels.engine.capture import Graph, Node, Ref, TensorMeta
from qimeng.kernels.engine.ir.expr import Const, Expr, Load, ReduceRef, ScanRef, cast, op, walk
from qimeng.kernels.engine.ir.index import Index, Var, contiguous_strides, delinearize, equivalent, linearize
from qimeng.kernels.engine.ir.kernel import BufferArg, Kernel, Reduction, Scan, Store
from qimeng.kernels.engine.lowering_ops import (LOWERINGS, REDUCTIONS, SCANS, LoweringError, compute_dtype, op_class)

__all__ = ["LoweringError", "lower_group", "Space"]


@dataclass(frozen=True)
class Space:
    """The iteration space of a group: source shape, reduced (or scanned) dims, its variables."""

    shape: tuple[int, ...]
    reduce_dims: tuple[int, ...]
    parallel: tuple[Var, ...]
    reduce: tuple[Var, ...]

    def source_index(self) -> tuple[Index, ...]:
        """The multi-index into ``shape`` that the kernel's variables address (size-1 dims are 0)."""
        p, r = iter(self.parallel), iter(v for v in self.reduce if v.size > 1)
        return tuple(Index() if size == 1 else Index.of(next(r)) if d in self.reduce_dims else Index.of(next(p))
                     for d, size in enumerate(self.shape))

    def flat_parallel(self) -> Index:
        return linearize(tuple(Index.of(v) for v in self.parallel), contiguous_strides(tuple(v.size for v in self.parallel)))

    def flat_source(self) -> Index:
        return linearize(self.source_index(), contiguous_strides(self.shape))


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def reduction_dims(node: Node, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(in_shape)
    t = node.target
    if t in ("aten.sum.default", "aten.mean.default", "aten.max.default", "aten.min.default",
             "aten.prod.default", "aten.any.default", "aten.all.default"):
        dims = list(range(rank))
    elif t in ("aten.argmax.default", "aten.argmin.default"):
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        dims = list(range(rank)) if dim is None else [dim]
    elif t in ("aten.prod.dim_int", "aten.max.dim", "aten.min.dim", "aten.any.dim", "aten.all.dim"):
        dims = [node.args[1]]
    elif t == "prims.var.default":
        dims = list(node.args[1]) if node.args[1] is not None else list(range(rank))
    else:  # sum.dim_IntList, mean.dim, amax, amin, var_mean.correction, var.correction
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        dims = list(range(rank)) if dims is None or list(dims) == [] else list(dims)
    return tuple(sorted({d + rank if d < 0 else d for d in dims})) if rank else ()


def scan_dim(node: Node, in_shape: tuple[int, ...]) -> int:
    d = node.args[1]
    return d + len(in_shape) if d < 0 else d


class GroupContext:
    """Evaluates graph values as expressions over one group's iteration space."""

    def __init__(self, graph: Graph, group: set[str], strides: dict[str, tuple[int, ...]]):
        self.graph = graph
        self.group = group
        self.strides = strides  # strides of realised buffers (graph inputs, extern and kernel outputs)
        self.reads: dict[str, BufferArg] = {}
        self.reductions: list[Reduction] = []
        self.scans: list[Scan] = []
        self._reduction_names: dict[tuple[str, int], str] = {}
        self.space: Space | None = None

    # ----- metadata ---------------------------------------------------------------------------
    def meta_of(self, ref: Ref) -> TensorMeta:
        return self.graph.meta(ref.name)

    def shape_of(self, ref: Ref) -> tuple[int, ...]:
        return self.meta_of(ref).shape

    def dtype_of(self, ref: Ref) -> str:
        return self.meta_of(ref).dtype

    def shape(self, node: Node) -> tuple[int, ...]:
        return self.graph.meta(node.name).shape

    def dtype(self, node: Node) -> str:
        return self.graph.meta(node.name).dtype

    # ----- evaluation -------------------------------------------------------------------------
    def value(self, ref: Any, idx: tuple[Index, ...], mask: Expr | None = None) -> Expr:
        if not isinstance(ref, Ref):
            raise LoweringError(f"expected a tensor, got {ref!r}")
        name = ref.name
        if name not in self.group:
            meta = self.meta_of(ref)
            strides = self.strides.get(name, meta.stride)
            self.reads[name] = BufferArg(name, meta.shape, strides, meta.dtype)
            index = linearize(idx, strides)
            load = Load(name, index, meta.dtype, mask)
            return cast(load, compute_dtype(meta.dtype))
        node = self.graph.node(name)
        kind = op_class(node)
        if kind == "getitem":
            return self._getitem(node, idx)
        if kind == "reduction":
            return self._reduction_result(node, 0, idx)
        if kind == "scan":
            return self._scan_result(node, idx)
        fn = LOWERINGS.get(node.target)
        if fn is None:
            raise LoweringError(f"no lowering for {node.target}")
        return fn(self, node, idx)

    def _getitem(self, node: Node, idx: tuple[Index, ...]) -> Expr:
        src = self.graph.node(node.args[0].name)
        item = node.args[1]
        if src.target == "aten._native_batch_norm_legit_no_training.default" and item == 0:
            return LOWERINGS[src.target](self, src, idx)
        if op_class(src) == "reduction":
            return self._reduction_result(src, item, idx)
        raise LoweringError(f"getitem of {src.target} is not lowered")

    # ----- reductions -------------------------------------------------------------------------
    def _check_row(self, out_shape: tuple[int, ...], idx: tuple[Index, ...], what: str) -> None:
        assert self.space is not None
        if not equivalent(linearize(idx, contiguous_strides(out_shape)), self.space.flat_parallel()):
            raise LoweringError(f"{what} is read at another row than the kernel computes")

    def _register(self, node: Node, item: int) -> str:
        key = (node.name, item)
        if key in self._reduction_names:
            return self._reduction_names[key]
        space = self.space
        assert space is not None
        src = node.args[0]
        if self.shape_of(src) != space.shape or reduction_dims(node, space.shape) != space.reduce_dims:
            raise LoweringError(f"{node.name} reduces another space than the kernel's")
        kind = REDUCTIONS[node.target]
        in_dt = compute_dtype(self.dtype_of(src))
        x = self.value(src, space.source_index())
        count = _prod(v.size for v in space.reduce)
        acc_dt = "float32" if in_dt in ("float16", "bfloat16") else in_dt
        name = f"{node.name}_r{item}"
        if kind in ("sum", "mean"):
            acc_dt = compute_dtype(self.graph.meta(node.name).dtype) if kind == "sum" else acc_dt
            if acc_dt == "bool":
                acc_dt = "int64"
            self.reductions.append(Reduction(name, "sum", cast(x, acc_dt), acc_dt))
        elif kind in ("max", "min", "prod"):
            if x.dtype == "bool":  # any/all: reduce as integers (backends need not reduce 1-bit values)
                x = cast(x, "int32")
            self.reductions.append(Reduction(name, kind, x, x.dtype))
        elif kind in ("argmax", "argmin"):
            self.reductions.append(Reduction(name, kind, x, "int64"))
        elif kind in ("max_dim", "min_dim"):
            base = kind[:3]
            self.reductions.append(Reduction(name, base if item == 0 else "arg" + base, x,
                                             x.dtype if item == 0 else "int64"))
        elif kind in ("var", "var_mean"):
            mean_name = f"{node.name}_mean"
            if (node.name, -1) not in self._reduction_names:
                self.reductions.append(Reduction(mean_name, "sum", cast(x, "float32" if in_dt != "float64" else in_dt),
                                                 "float32" if in_dt != "float64" else in_dt))
                self._reduction_names[(node.name, -1)] = mean_name
            dt = "float32" if in_dt != "float64" else in_dt
            mean = op("truediv", ReduceRef(mean_name, dt), Const(float(count), dt))
            if item == 1 and kind == "var_mean":
                self._reduction_names[key] = mean_name
                return mean_name
            centered = op("sub", cast(x, dt), mean)
            self.reductions.append(Reduction(name, "sum", op("mul", centered, centered), dt))
        else:
            raise LoweringError(f"reduction {node.target} not lowered")
        self._reduction_names[key] = name
        return name

    def _reduction_result(self, node: Node, item: int, idx: tuple[Index, ...]) -> Expr:
        space = self.space
        if space is None:
            raise LoweringError("a reduction inside a group without reduction space")
        meta = self.graph.node(node.name).meta
        out_meta = meta[item] if isinstance(meta, tuple) else meta
        self._check_row(out_meta.shape, idx, node.name)
        name = self._register(node, item)
        kind = REDUCTIONS[node.target]
        red = next(r for r in self.reductions if r.name == name)
        value: Expr = ReduceRef(name, red.dtype)
        count = float(space_count(space))
        out_dt = compute_dtype(out_meta.dtype)
        if kind == "mean":
            value = op("truediv", cast(value, out_dt), Const(count, out_dt))
        elif kind == "var_mean" and item == 1:
            value = op("truediv", value, Const(count, value.dtype))
        elif kind in ("var", "var_mean"):
            correction = _correction(node)
            value = op("truediv", value, Const(max(count - correction, 0.0), value.dtype))
        return cast(value, out_dt)

    # ----- scans ------------------------------------------------------------------------------
    def _scan_result(self, node: Node, idx: tuple[Index, ...]) -> Expr:
        space = self.space
        if space is None or not self.scans and space.reduce_dims != (scan_dim(node, self.shape_of(node.args[0])),):
            raise LoweringError(f"{node.name}: scan outside a scan space")
        if not equivalent(linearize(idx, contiguous_strides(space.shape)), space.flat_source()):
            raise LoweringError(f"{node.name} is read at another element than the kernel computes")
        name = f"{node.name}_s"
        out_dt = compute_dtype(self.dtype(node))
        if not any(s.name == name for s in self.scans):
            if self.scans:
                raise LoweringError("one scan per kernel")
            x = cast(self.value(node.args[0], space.source_index()), out_dt)
            self.scans.append(Scan(name, SCANS[node.target], x, out_dt))
        return ScanRef(name, out_dt)


def space_count(space: Space) -> int:
    return _prod(v.size for v in space.reduce)


def _correction(node: Node) -> float:
    if node.target == "prims.var.default":
        return float(node.args[2]) if len(node.args) > 2 else 0.0
    c = node.kwargs.get("correction")
    return 1.0 if c is None else float(c)


def _space_of(graph: Graph, group: set[str], outputs: list[str]) -> Space | None:
    """The reduction/scan space of a group (None for pointwise groups)."""
    space = None
    for n in _in_order(graph, group):
        if op_class(n) not in ("reduction", "scan"):
            continue
        shape = graph.meta(n.args[0].name).shape
        dims = reduction_dims(n, shape) if op_class(n) == "reduction" else (scan_dim(n, shape),)
        if space is None:
            space = (shape, dims, op_class(n))
        elif space != (shape, dims, op_class(n)):
            raise LoweringError(f"{n.name} needs another iteration space than the group's first reduction/scan")
    if space is None:
        return None
    shape, dims, _ = space
    parallel = tuple(Var(f"p{i}", s) for i, s in enumerate(d for k, d in enumerate(shape) if k not in dims and d > 1))
    reduce = tuple(Var(f"r{i}", s) for i, s in enumerate(shape[d] for d in dims if shape[d] > 1)) or (Var("r0", 1),)
    return Space(shape, dims, parallel, reduce)


def _in_order(graph: Graph, group: set[str]) -> list[Node]:
    """The group's nodes in graph order (the group's own size, not the graph's)."""
    nodes = graph.node_names()
    return sorted((nodes[name] for name in group if name in nodes), key=lambda n: graph.position(n.name))


def group_outputs(graph: Graph, group: set[str]) -> list[str]:
    """Nodes of the group read outside it (or returned), in graph order; getitems stand for their source."""
    users = graph.users()
    out = []
    for n in sorted((graph.node(name) for name in group), key=lambda n: graph.position(n.name)):
        if not isinstance(n.meta, TensorMeta):
            continue
        if any(u not in group for u in users.get(n.name, [])):
            out.append(n.name)
    return out


def lower_group(graph: Graph, group: set[str], name: str, strides: dict[str, tuple[int, ...]]) -> Kernel:
    """The kernel computing ``group``'s outputs (buffers named after their nodes, at the strides ``strides``
    gives them: contiguous by default)."""
    outputs = group_outputs(graph, group)
    if not outputs:
        raise LoweringError("the group has no outputs")
    ctx = GroupContext(graph, group, strides)
    space = _space_of(graph, group, outputs)
    stores: list[Store] = []
    if space is None:
        shape = graph.meta(outputs[0]).shape
        space = Space(shape, (), tuple(Var(f"x{i}", s) for i, s in enumerate(shape) if s > 1), ())
    ctx.space = space
    scans = any(op_class(graph.node(n)) == "scan" for n in group)
    elem_numel = _prod(space.shape)
    row_numel = _prod(v.size for v in space.parallel)
    out_args = []
    for out in outputs:
        meta = graph.meta(out)
        ref = Ref(out)
        if space.reduce and meta.numel == row_numel and not scans:
            flat, row = space.flat_parallel(), True
        elif meta.numel == elem_numel:
            flat, row = space.flat_source(), False
        else:
            raise LoweringError(f"{out} has {meta.numel} elements; the kernel space has {elem_numel} (rows {row_numel})")
        element = delinearize(flat, meta.shape)
        value = ctx.value(ref, element)
        value = cast(value, compute_dtype(meta.dtype))
        if row and _uses_reduce_vars(value, space):
            raise LoweringError(f"{out} is per-row but depends on the reduced axes")
        out_strides = strides.get(out, contiguous_strides(meta.shape))  # NHWC where the plan lays it out so
        at = flat if out_strides == contiguous_strides(meta.shape) else linearize(element, out_strides)
        stores.append(Store(out, at, value, row))
        out_args.append(BufferArg(out, meta.shape, out_strides, meta.dtype))
    ops = tuple(n.name for n in _in_order(graph, group))
    return Kernel(name, space.parallel, space.reduce, tuple(ctx.reads.values()), tuple(out_args),
                  tuple(ctx.reductions), tuple(ctx.scans), tuple(stores), ops)


def _uses_reduce_vars(value: Expr, space: Space) -> bool:
    rvars = set(space.reduce)
    for e in walk(value):
        index = getattr(e, "index", None)
        if isinstance(index, Index) and index.variables() & rvars:
            return True
        if isinstance(e, ScanRef):
            return True
    return False

