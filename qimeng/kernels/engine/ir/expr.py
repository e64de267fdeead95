"""Scalar value expressions of a kernel: a typed DAG of loads, constants and operators.

Dtypes are torch dtype names ("float32", "int64", "bool", ...). Promotion is explicit: lowering
inserts ``cast`` nodes, so every operator sees operands of its own dtype (comparisons and ``where``
excepted, whose result dtype differs from their operands').
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.ir.index import Index

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

UNARY_OPS = frozenset({
    "neg", "abs", "exp", "exp2", "expm1", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan",
    "erf", "tanh", "sigmoid", "floor", "ceil", "round", "trunc", "reciprocal", "not", "sign", "isnan",
    "isinf", "atan", "asin", "acos", "sinh", "cosh",
})
BINARY_OPS = frozenset({
    "add", "sub", "mul", "truediv", "floordiv", "remainder", "maximum", "minimum", "pow", "eq", "ne",
    "lt", "le", "gt", "ge", "and", "or", "xor", "atan2",
})
COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


class Expr:
    """Base of all value expressions (frozen dataclasses: hashable, comparable, printable)."""

    dtype: str


@dataclass(frozen=True)
class Const(Expr):
    value: float | int | bool
    dtype: str


@dataclass(frozen=True)
class Load(Expr):
    """Element ``buffer[index]``; where ``mask`` is false the value is ``other`` (no memory access)."""

    buffer: str
    index: Index
    dtype: str
    mask: "Expr | None" = None
    other: float | int = 0


@dataclass(frozen=True)
class IndexValue(Expr):
    """An index expression used as a value (iota, argmax positions, pad/cat masks)."""

    index: Index
    dtype: str = "int64"


@dataclass(frozen=True)
class Op(Expr):
    """``name(*args)``: a unary/binary operator, ``where(c, a, b)`` or ``cast(x)`` to ``dtype``."""

    name: str
    args: tuple[Expr, ...]
    dtype: str


@dataclass(frozen=True)
class ReduceRef(Expr):
    """The per-row result of the kernel's reduction ``name``."""

    name: str
    dtype: str


@dataclass(frozen=True)
class ScanRef(Expr):
    """The per-element result of the kernel's scan ``name``."""

    name: str
    dtype: str


def cast(x: Expr, dtype: str) -> Expr:
    if x.dtype == dtype:
        return x
    if isinstance(x, Const):
        return Const(_convert(x.value, dtype), dtype)
    return Op("cast", (x,), dtype)


def _convert(value: float | int | bool, dtype: str) -> float | int | bool:
    if dtype == "bool":
        return bool(value)
    if dtype in FLOAT_DTYPES:
        return float(value)
    return int(value)


def op(name: str, *args: Expr, dtype: str | None = None) -> Expr:
    """Build an operator node; the result dtype defaults to the first operand's (bool for comparisons)."""
    if dtype is None:
        dtype = "bool" if name in COMPARISONS or name in ("not", "isnan", "isinf") else args[-1].dtype
    return Op(name, tuple(args), dtype)


def where(cond: Expr, a: Expr, b: Expr) -> Expr:
    return Op("where", (cond, a, b), a.dtype)


def walk(expr: Expr) -> list[Expr]:
    """All nodes of the DAG under ``expr``, operands before users, each once."""
    seen: dict[Expr, None] = {}

    def visit(e: Expr) -> None:
        if e in seen:
            return
        if isinstance(e, Op):
            for a in e.args:
                visit(a)
        if isinstance(e, Load) and e.mask is not None:
            visit(e.mask)
        seen[e] = None

    visit(expr)
    return list(seen)
