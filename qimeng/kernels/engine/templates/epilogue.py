"""Epilogues of a matrix-product tile: an IR expression of the fp32 product and extra tensors.

The product of the tile is ``ACC`` (``ReduceRef("acc")``); extra tensors are ``Load`` nodes indexed by
the tile's variables ``M_VAR``, ``N_VAR`` and the flat batch variable ``B_VAR``. The expression is
rendered by the engine's own Triton emitter (``codegen/triton.py``), so every operator the engine
lowers (activations, where, casts, ...) works here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qimeng.kernels.engine.ir.expr import Const, Expr, IndexValue, Load, ReduceRef, op, walk, where
from qimeng.kernels.engine.ir.index import Index, Var

ACC = ReduceRef("acc", "float32")
# Sizes are placeholders: epilogue indices are linear in these variables, never simplified by range.
M_VAR, N_VAR, B_VAR = Var("m", 2**31 - 1), Var("n", 2**31 - 1), Var("b", 2**31 - 1)
RESERVED = frozenset({"a", "b", "c", "ws", "alo", "blo", "red"})  # names of the kernels' own pointers
ROW = ReduceRef("row", "float32")  # a row reduction's value over N, in its ``finish`` expression
ROW_OPS = ("sum", "max", "min")
MAX_ROW_N = 1024  # the widest row an epilogue of whole rows (softmax, log-softmax, logsumexp) holds in one tile


@dataclass(frozen=True)
class Operand:
    """An extra tensor the epilogue reads: ``name`` (its pointer is ``{name}_ptr``) and its dtype."""

    name: str
    dtype: str


@dataclass(frozen=True)
class RowStatistic:
    """``name`` = ``op`` (sum, max or min) over the row's N columns of ``value`` (an expression of ``ACC``,
    operands and earlier statistics, read as ``ReduceRef(name)``): a softmax's max and sum of exponentials."""

    name: str
    op: str
    value: Expr


@dataclass(frozen=True)
class Epilogue:
    """``value`` (an expression of ``ACC``, loads of ``operands`` and the ``statistics``) is what the tile
    stores. With ``statistics`` the tile must hold whole rows (one N tile, no split-K: ``whole_rows``);
    ``per_row`` values (a logsumexp) are stored once per row, ``[batch, M]``."""

    value: Expr = ACC
    operands: tuple[Operand, ...] = ()
    statistics: tuple[RowStatistic, ...] = ()
    per_row: bool = False

    @property
    def whole_rows(self) -> bool:
        return bool(self.statistics)

    @property
    def of_product_alone(self) -> bool:
        """A function of the product element alone (no tensor read, no output index, no row statistic):
        it keeps a symmetric product symmetric."""
        return not self.operands and not self.statistics and not self.per_row and not any(
            isinstance(e, IndexValue) for e in walk(self.value))

    def __post_init__(self) -> None:
        names = {o.name for o in self.operands}
        roots = [self.value] + [st.value for st in self.statistics]
        loaded = {e.buffer for root in roots for e in walk(root) if isinstance(e, Load)}
        if any(st.op not in ROW_OPS for st in self.statistics):
            raise ValueError(f"row statistics are one of {', '.join(ROW_OPS)}")
        if loaded - names:
            raise ValueError(f"epilogue loads undeclared tensors {sorted(loaded - names)}")
        if names & RESERVED:
            raise ValueError(f"epilogue tensor names {sorted(names & RESERVED)} are reserved")


@dataclass(frozen=True)
class RowReduce:
    """The epilogue's value reduced over N per row (``op``: sum, max or min), then ``finish`` (an expression of
    ``ROW`` and constants: a mean's division by N, a scale) is what each row stores."""

    op: str
    finish: Expr = ROW

    def __post_init__(self) -> None:
        if self.op not in ROW_OPS:
            raise ValueError(f"unknown row reduction {self.op!r}; known: {', '.join(ROW_OPS)}")
        if any(isinstance(e, (Load, ReduceRef)) and e != ROW for e in walk(self.finish)):
            raise ValueError("a row reduction's finish reads nothing but the row's value")


def named_row_reduce(kind: str, n: int) -> RowReduce:
    """The named reduction over ``n`` columns: sum, mean (the sum divided by ``n``), max or min."""
    if kind == "mean":
        return RowReduce("sum", op("truediv", ROW, Const(float(n), "float32")))
    return RowReduce(kind)


def operand_load(name: str, dtype: str, stride_b: int, stride_m: int, stride_n: int) -> Expr:
    """``name[b, m, n]`` by element strides (0 broadcasts), read in ``dtype`` and computed in fp32."""
    index = Index.of(B_VAR) * stride_b + Index.of(M_VAR) * stride_m + Index.of(N_VAR) * stride_n
    load: Expr = Load(name, index, dtype)
    return op("cast", load, dtype="float32") if dtype != "float32" else load


def _gelu(x: Expr) -> Expr:
    half, one = Const(0.5, "float32"), Const(1.0, "float32")
    return op("mul", op("mul", half, x), op("add", one, op("erf", op("mul", x, Const(math.sqrt(0.5), "float32")))))


def _gelu_tanh(x: Expr) -> Expr:
    f = "float32"
    inner = op("mul", Const(math.sqrt(2 / math.pi), f), op("add", x, op("mul", Const(0.044715, f),
                                                                           op("mul", op("mul", x, x), x))))
    return op("mul", op("mul", Const(0.5, f), x), op("add", Const(1.0, f), op("tanh", inner)))


ACTIVATIONS = {
    "relu": lambda x: op("maximum", x, Const(0.0, "float32")),
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "silu": lambda x: op("mul", x, op("sigmoid", x)),
    "sigmoid": lambda x: op("sigmoid", x),
    "tanh": lambda x: op("tanh", x),
    "leaky_relu": lambda x: where(op("gt", x, Const(0.0, "float32")), x, op("mul", x, Const(0.01, "float32"))),
}


def chain(*, scale: float | None = None, bias: Expr | None = None, activation: str | None = None,
          residual: Expr | None = None, clamp: tuple[float, float] | None = None,
          operands: tuple[Operand, ...] = ()) -> Epilogue:
    """The common chain ``clamp(act(scale * acc + bias) + residual)``; ``bias``/``residual`` are
    expressions from :func:`operand_load`, declared in ``operands``."""
    x: Expr = ACC
    if scale is not None:
        x = op("mul", x, Const(float(scale), "float32"))
    if bias is not None:
        x = op("add", x, bias)
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        x = ACTIVATIONS[activation](x)
    if residual is not None:
        x = op("add", x, residual)
    if clamp is not None:
        x = op("minimum", op("maximum", x, Const(float(clamp[0]), "float32")), Const(float(clamp[1]), "float32"))
    return Epilogue(x, operands)
