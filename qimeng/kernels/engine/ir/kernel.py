"""A fused kernel: iteration space, buffers, reductions/scans and stores. Backend-neutral.

The iteration space is ``parallel x reduce``: row-level values depend on the parallel variables only
(they are per-row: reductions, and what is computed from them), element-level values on both.
Renderers (Triton today, CUDA C++ and C later) choose how to map it to programs and loops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from qimeng.kernels.engine.ir.expr import Expr, Load, Op, ReduceRef, ScanRef, walk
from qimeng.kernels.engine.ir.index import Index, Var

REDUCTION_OPS = ("sum", "prod", "max", "min", "argmax", "argmin")
SCAN_OPS = ("sum", "prod")


@dataclass(frozen=True)
class BufferArg:
    """A tensor a kernel reads or writes: its name in the program, shape, strides and dtype."""

    name: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Reduction:
    """``name = op over the reduce axes of value`` (per row). argmax/argmin yield the flat reduce index."""

    name: str
    op: str
    value: Expr
    dtype: str


@dataclass(frozen=True)
class Scan:
    """``name = inclusive op-scan of value along the (single) reduce axis`` (per element)."""

    name: str
    op: str
    value: Expr
    dtype: str


@dataclass(frozen=True)
class Store:
    """``buffer[index] = value``; ``row`` stores depend on the parallel variables only."""

    buffer: str
    index: Index
    value: Expr
    row: bool


@dataclass(frozen=True)
class Kernel:
    name: str
    parallel: tuple[Var, ...]
    reduce: tuple[Var, ...]
    inputs: tuple[BufferArg, ...]
    outputs: tuple[BufferArg, ...]
    reductions: tuple[Reduction, ...] = ()
    scans: tuple[Scan, ...] = ()
    stores: tuple[Store, ...] = ()
    ops: tuple[str, ...] = ()  # names of the graph nodes this kernel computes (for reports)

    @property
    def kind(self) -> str:
        if self.scans:
            return "scan"
        return "reduction" if self.reduce else "pointwise"

    @property
    def parallel_size(self) -> int:
        return _prod(v.size for v in self.parallel)

    @property
    def reduce_size(self) -> int:
        return _prod(v.size for v in self.reduce)

    def structural_hash(self) -> str:
        """Content hash of everything but the names (the kernel's, and its buffers', replaced by their
        positions): kernels of identical layers hash alike. The key of the tuning cache, and of the one
        Triton function that identical kernels share."""
        text = repr((self.parallel, self.reduce, self.inputs, self.outputs, self.reductions, self.scans,
                     self.stores))
        names = [b.name for b in self.inputs + self.outputs] + [r.name for r in self.reductions + self.scans]
        for position, name in enumerate(dict.fromkeys(names)):
            text = text.replace(f"'{name}'", f"'${position}'")
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def bytes_moved(self) -> int:
        """Bytes read plus written once each (the roofline's traffic)."""
        sizes = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2}
        total = 0
        for b in self.inputs + self.outputs:
            total += _prod(b.shape) * sizes.get(b.dtype, 1)
        return total

    def __str__(self) -> str:
        lines = [f"kernel {self.name} parallel={[(v.name, v.size) for v in self.parallel]} "
                 f"reduce={[(v.name, v.size) for v in self.reduce]}  # {', '.join(self.ops)}"]
        for r in self.reductions:
            lines.append(f"  {r.name} = {r.op}_reduce({_short(r.value)})")
        for s in self.scans:
            lines.append(f"  {s.name} = {s.op}_scan({_short(s.value)})")
        for s in self.stores:
            lines.append(f"  {s.buffer}[{s.index}] = {_short(s.value)}")
        return "\n".join(lines)


def _short(expr: Expr) -> str:
    if isinstance(expr, Load):
        return f"{expr.buffer}[{expr.index}]"
    if isinstance(expr, (ReduceRef, ScanRef)):
        return expr.name
    if isinstance(expr, Op):
        return f"{expr.name}({', '.join(_short(a) for a in expr.args)})"
    return repr(getattr(expr, "value", expr))


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def loads_of(kernel: Kernel) -> list[Load]:
    roots = [r.value for r in kernel.reductions] + [s.value for s in kernel.scans] + [s.value for s in kernel.stores]
    out: dict[Load, None] = {}
    for root in roots:
        for e in walk(root):
            if isinstance(e, Load):
                out[e] = None
    return list(out)
