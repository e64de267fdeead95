"""How each core ATen operator reads as kernel IR: classification and per-operator lowerings.

A lowering takes the group context, the node and the multi-index at which its value is wanted, and
returns a scalar expression (``qimeng.kernels.engine.ir.expr``). Views, permutes, broadcasts, slices and pads
are index arithmetic; pointwise operators are expression nodes with explicit casts; reductions and
scans become references to the kernel's reductions/scans (``lowering.GroupContext`` registers them).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from qimeng.kernels.engine.capture import Node, Ref
from qimeng.kernels.engine.ir.expr import FLOAT_DTYPES, Const, Expr, IndexValue, cast, op, where
from qimeng.kernels.engine.ir.index import Index, Value, contiguous_strides, delinearize, linearize


class LoweringError(Exception):
    """A group of nodes cannot be one kernel (the message says why)."""


def compute_dtype(dtype: str) -> str:
    """Half types compute in float32 (loads upcast, stores round)."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def _is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def promote(ctx: "Any", args: list[Any]) -> str:
    """PyTorch's type promotion of tensor operands and Python scalars (result in compute dtype)."""
    import torch

    tensor_dtypes = [ctx.dtype_of(a) for a in args if isinstance(a, Ref)]
    result = None
    for d in tensor_dtypes:
        result = d if result is None else str(torch.promote_types(getattr(torch, result), getattr(torch, d))).removeprefix("torch.")
    scalars = [a for a in args if not isinstance(a, Ref)]
    if result is None:
        result = "float32" if any(isinstance(s, float) for s in scalars) else "int64"
    elif any(isinstance(s, float) for s in scalars) and not _is_float(result):
        result = "float32"
    elif any(isinstance(s, int) and not isinstance(s, bool) for s in scalars) and result == "bool":
        result = "int64"
    return compute_dtype(result)


# ----------------------------------------------------------------------------------------------
# classification

POINTWISE_UNARY = {
    "aten.neg.default": "neg", "aten.abs.default": "abs", "aten.exp.default": "exp", "aten.exp2.default": "exp2",
    "aten.expm1.default": "expm1", "aten.log.default": "log", "aten.log2.default": "log2",
    "aten.log1p.default": "log1p", "aten.sqrt.default": "sqrt", "aten.rsqrt.default": "rsqrt",
    "aten.sin.default": "sin", "aten.cos.default": "cos", "aten.tan.default": "tan", "aten.tanh.default": "tanh",
    "aten.sigmoid.default": "sigmoid", "aten.erf.default": "erf", "aten.floor.default": "floor",
    "aten.ceil.default": "ceil", "aten.round.default": "round", "aten.trunc.default": "trunc",
    "aten.reciprocal.default": "reciprocal", "aten.sign.default": "sign", "aten.atan.default": "atan",
    "aten.asin.default": "asin", "aten.acos.default": "acos", "aten.sinh.default": "sinh", "aten.cosh.default": "cosh",
}
POINTWISE_BINARY = {
    "aten.mul.Tensor": "mul", "aten.mul.Scalar": "mul", "aten.div.Tensor": "truediv", "aten.div.Scalar": "truediv",
    "aten.maximum.default": "maximum", "aten.minimum.default": "minimum", "aten.pow.Tensor_Tensor": "pow",
    "aten.pow.Scalar": "pow", "aten.remainder.Tensor": "remainder", "aten.remainder.Scalar": "remainder",
    "aten.atan2.default": "atan2",
    "aten.eq.Tensor": "eq", "aten.eq.Scalar": "eq", "aten.ne.Tensor": "ne", "aten.ne.Scalar": "ne",
    "aten.lt.Tensor": "lt", "aten.lt.Scalar": "lt", "aten.le.Tensor": "le", "aten.le.Scalar": "le",
    "aten.gt.Tensor": "gt", "aten.gt.Scalar": "gt", "aten.ge.Tensor": "ge", "aten.ge.Scalar": "ge",
    "aten.logical_and.default": "and", "aten.logical_or.default": "or", "aten.logical_xor.default": "xor",
    "aten.bitwise_and.Tensor": "and", "aten.bitwise_or.Tensor": "or",
}
REDUCTIONS = {
    "aten.sum.dim_IntList": "sum", "aten.sum.default": "sum", "aten.mean.dim": "mean", "aten.mean.default": "mean",
    "aten.amax.default": "max", "aten.amin.default": "min", "aten.argmax.default": "argmax",
    "aten.argmin.default": "argmin", "aten.prod.dim_int": "prod", "aten.prod.default": "prod",
    "aten.max.default": "max", "aten.min.default": "min", "aten.var_mean.correction": "var_mean",
    "prims.var.default": "var", "aten.var.correction": "var", "aten.max.dim": "max_dim", "aten.min.dim": "min_dim",
    "aten.any.dim": "max", "aten.any.default": "max", "aten.all.dim": "min", "aten.all.default": "min",
}
SCANS = {"aten.cumsum.default": "sum", "aten.cumprod.default": "prod"}
VIEWS = frozenset({
    "aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.permute.default",
    "aten.expand.default", "aten.unsqueeze.default", "aten.squeeze.dims", "aten.squeeze.dim",
    "aten.squeeze.default", "aten.slice.Tensor", "aten.select.int", "aten.t.default", "aten.transpose.int",
    "aten.alias.default", "aten.clone.default", "aten.constant_pad_nd.default", "prims.broadcast_in_dim.default",
    "aten.cat.default", "aten.lift_fresh_copy.default", "aten._to_copy.default", "aten.to.dtype",
})
OTHER_POINTWISE = frozenset({
    "aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Scalar",
    "aten.rsub.Tensor", "aten.relu.default", "aten.gelu.default", "aten.where.self", "aten.clamp.default",
    "aten.clamp.Tensor", "aten.clamp_min.default", "aten.clamp_max.default", "aten.pow.Tensor_Scalar",
    "aten.logical_not.default", "aten.bitwise_not.default", "aten.scalar_tensor.default", "aten.full.default",
    "aten.full_like.default", "aten.zeros_like.default", "aten.ones_like.default", "aten.masked_fill.Scalar",
    "aten.isnan.default", "aten.isinf.default", "aten.div.Tensor_mode", "aten.leaky_relu.default",
    "aten.hardtanh.default", "aten.elu.default", "aten.silu.default", "aten.hardsigmoid.default",
    "aten.hardswish.default", "aten.softplus.default", "aten.mish.default", "aten.fill.Scalar",
    "aten._native_batch_norm_legit_no_training.default", "aten.lerp.Scalar", "aten.addcmul.default",
    "aten.copy.default", "aten.sgn.default", "aten.fmod.Scalar", "aten.fmod.Tensor", "aten.log10.default",
    "aten.threshold.default", "aten.celu.default", "aten.selu.default", "aten.arange.start_step",
    "aten.arange.default", "aten.arange.start", "aten.flip.default", "aten.gather.default",
    "aten.index_select.default", "aten.embedding.default",
})
PURE_VIEWS = frozenset({
    "aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.permute.default",
    "aten.expand.default", "aten.unsqueeze.default", "aten.squeeze.dims", "aten.squeeze.dim",
    "aten.squeeze.default", "aten.slice.Tensor", "aten.select.int", "aten.t.default", "aten.transpose.int",
    "aten.alias.default",
})


def op_class(node: Node) -> str:
    """One of "pointwise", "reduction", "scan", "getitem" or "extern" (stays a PyTorch call)."""
    t = node.target
    if t == "getitem":
        return "getitem"
    if t in REDUCTIONS:
        return "reduction"
    if t in SCANS:
        return "scan"
    if t in POINTWISE_UNARY or t in POINTWISE_BINARY or t in VIEWS or t in OTHER_POINTWISE:
        device = node.kwargs.get("device")
        if t == "aten._to_copy.default" and device is not None and getattr(device, "type", "") != "meta":
            return "extern"  # a possible device move (the graph was captured on real tensors) stays PyTorch
        return "pointwise"
    return "extern"


def extern_reason(node: Node) -> str:
    t = node.target
    if t in ("aten.mm.default", "aten.addmm.default", "aten.bmm.default", "aten.convolution.default",
             "aten.baddbmm.default"):
        return "GEMM/convolution main loop: vendor library call (epilogues fuse into generated kernels)"
    if t in ("aten.split_with_sizes.default", "aten.split.Tensor", "aten.unbind.int", "aten.as_strided.default"):
        return "a view: stays a PyTorch view (no copy); kernels read it through its strides"
    if t == "aten._assert_tensor_metadata.default":
        return "a metadata assertion (no data)"
    if t in ("aten.lstm.input", "aten.gru.input", "aten.rnn_tanh.input", "aten.rnn_relu.input"):
        return "a whole recurrence: one PyTorch call (the vendor's fused recurrent kernel)"
    if t in ("aten.native_dropout.default", "aten.bernoulli.p", "aten.rand.default", "aten.randn.default"):
        return "random numbers: a PyTorch call, so it draws the same stream as the reference"
    if t == "aten.scaled_dot_product_attention.default":
        return "attention: the vendor's fused kernel (flash / memory-efficient), or the attention template"
    return f"no lowering for {t} yet"


# ----------------------------------------------------------------------------------------------
# broadcasting and views


def broadcast_index(idx: tuple[Index, ...], out_shape: tuple[int, ...], arg_shape: tuple[int, ...]) -> tuple[Index, ...]:
    """Right-aligned broadcast: the index into an operand of ``arg_shape`` read at ``idx`` of ``out_shape``."""
    offset = len(out_shape) - len(arg_shape)
    return tuple(Index() if arg_shape[j] == 1 and out_shape[offset + j] != 1 else idx[offset + j]
                 for j in range(len(arg_shape)))


def view_index(idx: tuple[Index, ...], out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> tuple[Index, ...]:
    """Row-major reinterpretation: the input index of a view/reshape."""
    flat = linearize(idx, contiguous_strides(out_shape))
    return delinearize(flat, in_shape)


def _dim(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


Lowering = Callable[[Any, Node, tuple[Index, ...]], Expr]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*targets: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for t in targets:
            LOWERINGS[t] = fn
        return fn

    return register


@lowering("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default")
def _view(ctx, node, idx):
    src = node.args[0]
    return ctx.value(src, view_index(idx, ctx.shape(node), ctx.shape_of(src)))


@lowering("aten.permute.default")
def _permute(ctx, node, idx):
    perm = [_dim(d, len(idx)) for d in node.args[1]]
    src_idx = [Index()] * len(idx)
    for out_pos, in_pos in enumerate(perm):
        src_idx[in_pos] = idx[out_pos]
    return ctx.value(node.args[0], tuple(src_idx))


@lowering("aten.t.default", "aten.transpose.int")
def _transpose(ctx, node, idx):
    rank = len(idx)
    d0, d1 = (0, 1) if node.target == "aten.t.default" else (_dim(node.args[1], rank), _dim(node.args[2], rank))
    if rank < 2:
        return ctx.value(node.args[0], idx)
    src = list(idx)
    src[d0], src[d1] = idx[d1], idx[d0]
    return ctx.value(node.args[0], tuple(src))


@lowering("aten.expand.default", "prims.broadcast_in_dim.default")
def _expand(ctx, node, idx):
    src = node.args[0]
    src_shape = ctx.shape_of(src)
    if node.target == "prims.broadcast_in_dim.default":
        dims = node.args[2]
        return ctx.value(src, tuple(Index() if src_shape[k] == 1 and ctx.shape(node)[d] != 1 else idx[d]
                                    for k, d in enumerate(dims)))
    return ctx.value(src, broadcast_index(idx, ctx.shape(node), src_shape))


@lowering("aten.unsqueeze.default", "aten.squeeze.dims", "aten.squeeze.dim", "aten.squeeze.default")
def _squeeze(ctx, node, idx):
    src = node.args[0]
    return ctx.value(src, view_index(idx, ctx.shape(node), ctx.shape_of(src)))


@lowering("aten.slice.Tensor")
def _slice(ctx, node, idx):
    src = node.args[0]
    shape = ctx.shape_of(src)
    dim = _dim(node.args[1] if len(node.args) > 1 else 0, len(shape))
    start = node.args[2] if len(node.args) > 2 and node.args[2] is not None else 0
    step = node.args[4] if len(node.args) > 4 else 1
    start = max(0, min(start + shape[dim] if start < 0 else start, shape[dim]))
    src_idx = list(idx)
    src_idx[dim] = idx[dim] * step + start
    return ctx.value(src, tuple(src_idx))


@lowering("aten.select.int")
def _select(ctx, node, idx):
    src = node.args[0]
    shape = ctx.shape_of(src)
    dim = _dim(node.args[1], len(shape))
    pos = node.args[2] + shape[dim] if node.args[2] < 0 else node.args[2]
    return ctx.value(src, tuple(idx[:dim]) + (Index.of(pos),) + tuple(idx[dim:]))


@lowering("aten.alias.default", "aten.clone.default", "aten.lift_fresh_copy.default", "aten.copy.default")
def _identity(ctx, node, idx):
    src = node.args[-1] if node.target == "aten.copy.default" else node.args[0]
    return ctx.value(src, broadcast_index(idx, ctx.shape(node), ctx.shape_of(src)))


@lowering("aten._to_copy.default", "aten.to.dtype")
def _to_copy(ctx, node, idx):
    return cast(ctx.value(node.args[0], idx), compute_dtype(ctx.dtype(node)))


@lowering("aten.constant_pad_nd.default")
def _pad(ctx, node, idx):
    src = node.args[0]
    shape = ctx.shape_of(src)
    pads = list(node.args[1])
    value = node.args[2] if len(node.args) > 2 else 0.0
    dt = compute_dtype(ctx.dtype(node))
    src_idx = list(idx)
    cond = None
    for k in range(len(pads) // 2):
        dim = len(shape) - 1 - k
        lo = pads[2 * k]
        if lo == 0 and pads[2 * k + 1] <= 0 and lo >= 0:
            continue
        shifted = idx[dim] - lo
        src_idx[dim] = shifted
        pos = IndexValue(shifted)
        inside = op("and", op("ge", pos, Const(0, "int64")), op("lt", pos, Const(shape[dim], "int64")))
        cond = inside if cond is None else op("and", cond, inside)
    inner = ctx.value(src, tuple(src_idx), mask=cond)
    if cond is None:
        return inner
    return where(cond, cast(inner, dt), Const(value, dt) if _is_float(dt) else Const(int(value), dt))


@lowering("aten.cat.default")
def _cat(ctx, node, idx):
    tensors = node.args[0]
    dim = _dim(node.args[1] if len(node.args) > 1 else 0, len(idx))
    dt = compute_dtype(ctx.dtype(node))
    parts = [(t, ctx.shape_of(t)[dim]) for t in tensors if ctx.shape_of(t)[dim] > 0]
    result = None
    offset = sum(n for _, n in parts)
    for t, n in reversed(parts):
        offset -= n
        src_idx = list(idx)
        src_idx[dim] = idx[dim] - offset
        pos = IndexValue(idx[dim])
        inside = op("and", op("ge", pos, Const(offset, "int64")), op("lt", pos, Const(offset + n, "int64")))
        value = cast(ctx.value(t, tuple(src_idx), mask=inside), dt)
        result = value if result is None else where(inside, value, result)
    return result


# ----------------------------------------------------------------------------------------------
# pointwise


def _operands(ctx, node, idx, args, dt):
    return [cast(ctx.value(a, broadcast_index(idx, ctx.shape(node), ctx.shape_of(a))), dt) if isinstance(a, Ref)
            else Const(a, dt) if _is_float(dt) or not isinstance(a, float) else Const(a, "float32")
            for a in args]


@lowering(*POINTWISE_UNARY)
def _unary(ctx, node, idx):
    name = POINTWISE_UNARY[node.target]
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op(name, x)


@lowering(*POINTWISE_BINARY)
def _binary(ctx, node, idx):
    name = POINTWISE_BINARY[node.target]
    out = compute_dtype(ctx.dtype(node))
    dt = promote(ctx, list(node.args[:2])) if out == "bool" else out
    if name in ("and", "or", "xor") and ctx.dtype(node) == "bool":
        dt = "bool"
    a, b = _operands(ctx, node, idx, list(node.args[:2]), dt)
    if name == "pow" and isinstance(b, Const):
        return _pow_const(a, b.value)
    if name == "truediv" and not _is_float(dt):
        raise LoweringError("integer true division stays in PyTorch")
    return op(name, a, b, dtype=None if name not in ("eq", "ne", "lt", "le", "gt", "ge") else "bool")


def _pow_const(a: Expr, exponent: float) -> Expr:
    if exponent == 2:
        return op("mul", a, a)
    if exponent == 3:
        return op("mul", op("mul", a, a), a)
    if exponent == 1:
        return a
    if exponent == 0.5:
        return op("sqrt", a)
    if exponent == -1:
        return op("reciprocal", a)
    if exponent == -0.5:
        return op("rsqrt", a)
    return op("pow", a, Const(float(exponent), a.dtype))


@lowering("aten.pow.Tensor_Scalar")
def _pow(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (a,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return _pow_const(a, node.args[1])


@lowering("aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Scalar", "aten.rsub.Tensor")
def _add_sub(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    a, b = _operands(ctx, node, idx, list(node.args[:2]), dt)
    alpha = node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1)
    if alpha != 1:
        b = op("mul", b, Const(alpha, dt))
    if node.target.startswith("aten.rsub"):
        return op("sub", b, a)
    return op("add" if node.target.startswith("aten.add") else "sub", a, b)


@lowering("aten.div.Tensor_mode")
def _div_mode(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    mode = node.kwargs.get("rounding_mode", node.args[2] if len(node.args) > 2 else None)
    if not _is_float(dt):
        raise LoweringError("integer division with rounding stays in PyTorch")
    a, b = _operands(ctx, node, idx, list(node.args[:2]), dt)
    q = op("truediv", a, b)
    return op("floor", q) if mode == "floor" else op("trunc", q) if mode == "trunc" else q


@lowering("aten.relu.default")
def _relu(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op("maximum", x, Const(0, dt))


@lowering("aten.gelu.default")
def _gelu(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    approximate = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
    half = Const(0.5, dt)
    if approximate == "tanh":
        inner = op("mul", Const(math.sqrt(2 / math.pi), dt),
                   op("add", x, op("mul", Const(0.044715, dt), op("mul", op("mul", x, x), x))))
        return op("mul", op("mul", half, x), op("add", Const(1.0, dt), op("tanh", inner)))
    return op("mul", op("mul", half, x), op("add", Const(1.0, dt), op("erf", op("mul", x, Const(math.sqrt(0.5), dt)))))


@lowering("aten.silu.default")
def _silu(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op("mul", x, op("sigmoid", x))


def _softplus_expr(x: Expr, beta: float, threshold: float) -> Expr:
    dt = x.dtype
    bx = op("mul", x, Const(beta, dt)) if beta != 1 else x
    soft = op("log1p", op("exp", bx))
    if beta != 1:
        soft = op("truediv", soft, Const(beta, dt))
    return where(op("gt", bx, Const(threshold, dt)), x, soft)


@lowering("aten.softplus.default")
def _softplus(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    beta = node.args[1] if len(node.args) > 1 else 1.0
    threshold = node.args[2] if len(node.args) > 2 else 20.0
    return _softplus_expr(x, beta, threshold)


@lowering("aten.mish.default")
def _mish(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op("mul", x, op("tanh", _softplus_expr(x, 1.0, 20.0)))


@lowering("aten.elu.default", "aten.celu.default", "aten.selu.default")
def _elu(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    if node.target == "aten.selu.default":
        alpha, scale, input_scale = 1.6732632423543772, 1.0507009873554805, 1.0
    elif node.target == "aten.celu.default":
        alpha = node.args[1] if len(node.args) > 1 else 1.0
        scale, input_scale = 1.0, 1.0 / alpha
    else:
        alpha = node.args[1] if len(node.args) > 1 else 1.0
        scale = node.args[2] if len(node.args) > 2 else 1.0
        input_scale = node.args[3] if len(node.args) > 3 else 1.0
    neg = op("mul", Const(alpha, dt), op("expm1", op("mul", x, Const(input_scale, dt))))
    return op("mul", Const(scale, dt), where(op("gt", x, Const(0.0, dt)), x, neg))


@lowering("aten.leaky_relu.default")
def _leaky_relu(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    slope = node.args[1] if len(node.args) > 1 else 0.01
    return where(op("gt", x, Const(0.0, dt)), x, op("mul", x, Const(slope, dt)))


@lowering("aten.hardtanh.default")
def _hardtanh(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    lo = node.args[1] if len(node.args) > 1 else -1.0
    hi = node.args[2] if len(node.args) > 2 else 1.0
    return op("minimum", op("maximum", x, Const(lo, dt)), Const(hi, dt))


@lowering("aten.hardsigmoid.default", "aten.hardswish.default")
def _hard(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    hs = op("truediv", op("minimum", op("maximum", op("add", x, Const(3.0, dt)), Const(0.0, dt)), Const(6.0, dt)),
            Const(6.0, dt))
    return hs if node.target == "aten.hardsigmoid.default" else op("mul", x, hs)


@lowering("aten.threshold.default")
def _threshold(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return where(op("le", x, Const(node.args[1], dt)), Const(node.args[2], dt), x)


@lowering("aten.clamp.default", "aten.clamp_min.default", "aten.clamp_max.default", "aten.clamp.Tensor")
def _clamp(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    if node.target == "aten.clamp_min.default":
        lo, hi = node.args[1], None
    elif node.target == "aten.clamp_max.default":
        lo, hi = None, node.args[1]
    else:
        lo = node.kwargs.get("min", node.args[1] if len(node.args) > 1 else None)
        hi = node.kwargs.get("max", node.args[2] if len(node.args) > 2 else None)
    if lo is not None:
        (b,) = _operands(ctx, node, idx, [lo], dt)
        x = op("maximum", x, b)
    if hi is not None:
        (b,) = _operands(ctx, node, idx, [hi], dt)
        x = op("minimum", x, b)
    return x


@lowering("aten.where.self")
def _where(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (c,) = _operands(ctx, node, idx, [node.args[0]], "bool")
    a, b = _operands(ctx, node, idx, list(node.args[1:3]), dt)
    return where(c, a, b)


@lowering("aten.masked_fill.Scalar")
def _masked_fill(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    (c,) = _operands(ctx, node, idx, [node.args[1]], "bool")
    return where(c, Const(node.args[2], dt), x)


@lowering("aten.logical_not.default", "aten.bitwise_not.default")
def _not(ctx, node, idx):
    if node.target == "aten.bitwise_not.default" and ctx.dtype(node) != "bool":
        raise LoweringError("integer bitwise_not stays in PyTorch")
    (x,) = _operands(ctx, node, idx, [node.args[0]], "bool")
    return op("not", x)


@lowering("aten.isnan.default", "aten.isinf.default")
def _isnan(ctx, node, idx):
    src = node.args[0]
    (x,) = _operands(ctx, node, idx, [src], compute_dtype(ctx.dtype_of(src)))
    return op("isnan" if node.target == "aten.isnan.default" else "isinf", x)


@lowering("aten.sgn.default")
def _sgn(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op("sign", x)


@lowering("aten.log10.default")
def _log10(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    (x,) = _operands(ctx, node, idx, [node.args[0]], dt)
    return op("mul", op("log", x), Const(1 / math.log(10), dt))


@lowering("aten.fmod.Scalar", "aten.fmod.Tensor")
def _fmod(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    if not _is_float(dt):
        raise LoweringError("integer fmod stays in PyTorch")
    a, b = _operands(ctx, node, idx, list(node.args[:2]), dt)
    return op("sub", a, op("mul", b, op("trunc", op("truediv", a, b))))


@lowering("aten.lerp.Scalar")
def _lerp(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    a, b = _operands(ctx, node, idx, list(node.args[:2]), dt)
    return op("add", a, op("mul", Const(node.args[2], dt), op("sub", b, a)))


@lowering("aten.addcmul.default")
def _addcmul(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    a, b, c = _operands(ctx, node, idx, list(node.args[:3]), dt)
    value = node.kwargs.get("value", 1)
    prod = op("mul", b, c)
    return op("add", a, op("mul", prod, Const(value, dt)) if value != 1 else prod)


@lowering("aten.scalar_tensor.default", "aten.full.default", "aten.full_like.default", "aten.zeros_like.default",
          "aten.ones_like.default", "aten.fill.Scalar")
def _full(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    value = {"aten.scalar_tensor.default": lambda: node.args[0], "aten.full.default": lambda: node.args[1],
             "aten.full_like.default": lambda: node.args[1], "aten.zeros_like.default": lambda: 0,
             "aten.ones_like.default": lambda: 1, "aten.fill.Scalar": lambda: node.args[1]}[node.target]()
    return Const(float(value) if _is_float(dt) else (bool(value) if dt == "bool" else int(value)), dt)


@lowering("aten._native_batch_norm_legit_no_training.default")
def _batch_norm_inference(ctx, node, idx):
    # Reached through getitem(node, 0): (x - mean[c]) * rsqrt(var[c] + eps) * w[c] + b[c]
    x, weight, bias, mean, var = node.args[:5]
    eps = node.args[6]
    shape = ctx.shape_of(x)
    dt = compute_dtype(ctx.dtype_of(x))
    xv = cast(ctx.value(x, idx), dt)

    def channel(ref):
        return cast(ctx.value(ref, (idx[1],)), dt) if isinstance(ref, Ref) else None

    out = op("mul", op("sub", xv, channel(mean)), op("rsqrt", op("add", channel(var), Const(eps, dt))))
    if weight is not None:
        out = op("mul", out, channel(weight))
    if bias is not None:
        out = op("add", out, channel(bias))
    assert len(shape) >= 2
    return out


@lowering("aten.arange.start_step", "aten.arange.default", "aten.arange.start")
def _arange(ctx, node, idx):
    dt = compute_dtype(ctx.dtype(node))
    if node.target == "aten.arange.default":
        start, step = 0, 1
    else:
        start = node.args[0]
        step = node.args[2] if len(node.args) > 2 else 1
    if not all(isinstance(v, int) for v in (start, step)):
        raise LoweringError("arange with float bounds stays in PyTorch")
    return cast(IndexValue(idx[0] * step + start), dt)


@lowering("aten.flip.default")
def _flip(ctx, node, idx):
    shape = ctx.shape(node)
    dims = {_dim(d, len(shape)) for d in node.args[1]}
    return ctx.value(node.args[0], tuple(Index.of(shape[d] - 1) - i if d in dims else i for d, i in enumerate(idx)))


def _dynamic(ctx, ref, idx: tuple[Index, ...], size: int) -> Index:
    """The index read from integer tensor ``ref`` at ``idx`` (negative values wrap like PyTorch)."""
    value = cast(ctx.value(ref, idx), "int64")
    wrapped = where(op("lt", value, Const(0, "int64")), op("add", value, Const(size, "int64")), value)
    return Index.of(Value(wrapped, 0, size - 1))


@lowering("aten.gather.default")
def _gather(ctx, node, idx):
    src, dim, index = node.args[:3]
    shape = ctx.shape_of(src)
    dim = _dim(dim, len(shape))
    src_idx = list(idx)
    src_idx[dim] = _dynamic(ctx, index, idx, shape[dim])
    return ctx.value(src, tuple(src_idx))


@lowering("aten.index_select.default")
def _index_select(ctx, node, idx):
    src, dim, index = node.args[:3]
    shape = ctx.shape_of(src)
    dim = _dim(dim, len(shape))
    src_idx = list(idx)
    src_idx[dim] = _dynamic(ctx, index, (idx[dim],), shape[dim])
    return ctx.value(src, tuple(src_idx))


@lowering("aten.embedding.default")
def _embedding(ctx, node, idx):
    weight, indices = node.args[:2]
    rows = ctx.shape_of(weight)[0]
    return ctx.value(weight, (_dynamic(ctx, indices, tuple(idx[:-1]), rows), idx[-1]))
