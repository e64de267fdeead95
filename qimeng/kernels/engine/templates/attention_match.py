"""Attention in a captured graph: the nodes the attention template can take, and what they compute.

Two forms, each anchored at the node that defines the attention's output:

- ``aten.scaled_dot_product_attention`` (kept whole by ``capture``): query/key/value, a boolean or
  additive ``attn_mask``, ``is_causal``, ``scale``, ``enable_gqa``; dropout 0.
- written by hand: ``bmm(q, k^T)`` [viewed as ``[B, H, M, N]``] -> scales (``mul``/``div`` by a positive
  number) -> at most one mask (``where(mask, s, fill)`` / ``where(mask, fill, s)`` for ``masked_fill``,
  or ``s + mask``) -> scales -> softmax over the last axis (core ATen's ``amax, sub, exp, sum, div``) ->
  [dropout 0: ``clone``] -> [views] -> ``bmm(p, v)``, the anchor. Its rows that see no key are NaN, as a
  plain softmax over ``-inf`` gives; a finite fill takes part in the softmax as PyTorch's does.

A boolean mask that depends on no graph input (``torch.ones(L, L).tril()``, ``arange`` comparisons) is
evaluated here: when it is the top-left causal mask it becomes ``causal`` (no mask is read, the tiles
above the diagonal are skipped), when it keeps everything it is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from qimeng.kernels.engine.capture import Graph, Node, Ref, refs_in

SDPA = "aten.scaled_dot_product_attention.default"
BMM = "aten.bmm.default"
SCALES = {"aten.mul.Tensor": 1, "aten.mul.Scalar": 1, "aten.div.Tensor": -1, "aten.div.Scalar": -1}
P_VIEWS = ("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.clone.default",
           "aten.alias.default", "aten.expand.default")
FILL_NODES = ("aten.scalar_tensor.default", "aten.full.default")
DTYPES = ("float32", "float16", "bfloat16")
CONSTANT_NODES, CONSTANT_ELEMENTS = 32, 2**24  # the most a constant mask is evaluated over, here


@dataclass(frozen=True)
class Attention:
    """One attention: the values it reads, its sizes, its mask and scale, the nodes it stands for."""

    q: str  # [B, H, M, D] (SDPA), [B, M, D]; hand-written: the bmm operands [B*H, M, D]
    k: str  # [B, H_kv, N, D]; hand-written: [B*H, D, N] (k transposed, as the bmm reads it)
    v: str  # [B, H_kv, N, D]; hand-written: [B*H, N, D]
    sizes: tuple[int, int, int, int, int, int]  # B, H, H_kv, M, N, D
    form: str  # "sdpa" or "bmm" (hand-written)
    dtype: str
    rank: int  # of q and of the scores: 4 ([B, H, ., .]) or 3 ([B, ., .], one head)
    mask: str | None = None  # a boolean (True takes part, unless ``invert``) or additive mask value
    mask_kind: int = 0  # 0 none, 1 boolean, 2 additive
    invert: bool = False  # the boolean mask says which scores are dropped (``masked_fill``)
    causal: bool = False
    scale: float = 1.0  # on q k^T
    add_scale: float = 1.0  # on the additive mask
    fill: float = float("-inf")  # what a dropped score becomes, in the softmax's units
    empty_nan: bool = False  # a row that sees no key is NaN (plain softmax), not 0 (SDPA)
    nodes: tuple[str, ...] = ()  # the nodes the template computes (the anchor last)
    output: str = ""


def attention_of(graph: Graph, node: Node) -> Attention | str:
    """The attention ``node`` ends, when the template can compute it, else why not (cached per graph)."""
    cache = graph.__dict__.setdefault("_attention", {})
    if node.name not in cache:
        if node.target == SDPA:
            cache[node.name] = _sdpa(graph, node)
        elif node.target == BMM:
            cache[node.name] = _by_hand(graph, node)
        else:
            cache[node.name] = f"{node.target} ends no attention"
    return cache[node.name]


def _arg(node: Node, index: int, name: str, default):
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _sdpa(graph: Graph, node: Node) -> Attention | str:
    q, k, v = (_arg(node, i, n, None) for i, n in enumerate(("query", "key", "value")))
    mask = _arg(node, 3, "attn_mask", None)
    if not all(isinstance(r, Ref) for r in (q, k, v)) or (mask is not None and not isinstance(mask, Ref)):
        return "an operand is not a tensor value"
    if float(_arg(node, 4, "dropout_p", 0.0)) != 0.0:
        return "dropout_p is not 0"
    qm, km, vm = (graph.meta(r.name) for r in (q, k, v))
    if len(qm.shape) not in (3, 4) or not len(qm.shape) == len(km.shape) == len(vm.shape):
        return f"q {list(qm.shape)}: 3-D or 4-D operands are needed"
    if len({qm.dtype, km.dtype, vm.dtype}) != 1 or qm.dtype not in DTYPES:
        return f"operands of dtype {qm.dtype}/{km.dtype}/{vm.dtype}"
    four = [t.shape if len(t.shape) == 4 else (t.shape[0], 1, *t.shape[1:]) for t in (qm, km, vm)]
    (b, h, m, d), (bk, hk, n, dk), (bv, hv, nv, dv) = four
    if not (b == bk == bv and hk == hv and n == nv and d == dk == dv):
        return f"q {list(qm.shape)}, k {list(km.shape)}, v {list(vm.shape)}: equal batch and head dims needed"
    if hk != h and not (_arg(node, 7, "enable_gqa", False) and h % hk == 0):
        return f"{h} query heads and {hk} key/value heads"
    found = _sizes_ok(b, h, m, n, d)
    if found:
        return found
    scale = _arg(node, 6, "scale", None)
    att = Attention(q.name, k.name, v.name, (b, h, hk, m, n, d), "sdpa", qm.dtype, len(qm.shape),
                    causal=bool(_arg(node, 5, "is_causal", False)),
                    scale=1.0 / math.sqrt(d) if scale is None else float(scale), nodes=(node.name,), output=node.name)
    if mask is None:
        return att
    mm = graph.meta(mask.name)
    if not _broadcasts(mm.shape, (b, m, n) if len(qm.shape) == 3 else (b, h, m, n)):
        return f"a mask of shape {list(mm.shape)}"
    if mm.dtype == "bool":
        return _with_bool_mask(graph, replace(att, mask=mask.name, mask_kind=1), m, n)
    return replace(att, mask=mask.name, mask_kind=2)


def _sizes_ok(b: int, h: int, m: int, n: int, d: int) -> str:
    if b * h * m * n == 0:
        return "an empty attention"
    if d > 256 or d == 0:
        return f"head dim {d} (at most 256)"
    if b * h >= 65536:
        return f"{b * h} (batch, head) pairs: a grid has at most 65535 rows"
    return ""


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    return len(shape) <= len(to) and all(s in (1, t) for s, t in zip(shape[::-1], to[::-1]))


def _number(graph: Graph, value) -> float | None:
    """A Python number, or the value of a 0-d constant node (``scalar_tensor``, ``full([])``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, Ref) and value.name in graph.node_names():
        node = graph.node(value.name)
        if node.target in FILL_NODES and getattr(node.meta, "shape", None) == ():
            return _number(graph, node.args[1] if node.target == "aten.full.default" else node.args[0])
    return None


def _by_hand(graph: Graph, pv: Node) -> Attention | str:
    p_ref, v_ref = pv.args[:2]
    nodes, users = graph.node_names(), graph.users()
    region = [pv.name]
    name = p_ref.name
    while name in nodes and nodes[name].target in P_VIEWS:  # dropout(p=0) as a clone, expands, views
        if not isinstance(nodes[name].args[0], Ref):
            return "no softmax before the second product"
        if nodes[name].target == "aten.expand.default" and \
                graph.meta(name).shape != graph.meta(nodes[name].args[0].name).shape:
            return "the probabilities are broadcast"
        region.append(name)
        name = nodes[name].args[0].name
    softmax = _softmax(graph, name)
    if isinstance(softmax, str):
        return softmax
    region += softmax[1]
    found = _scores(graph, softmax[0])
    if isinstance(found, str):
        return found
    qk, score_view, ops = found
    region += ops
    qm, km, vm, pm = (graph.meta(r.name) for r in (*qk.args[:2], v_ref, p_ref))
    dtypes = {qm.dtype, km.dtype, vm.dtype, pm.dtype}
    if dtypes != {"float32"}:
        return f"a hand-written attention in {'/'.join(sorted(dtypes))} (float32 only)"
    (bh, m, d), (_, _, n), dv = qm.shape, km.shape, vm.shape[-1]
    if km.shape[:2] != (bh, d) or vm.shape[:2] != (bh, n) or dv != d or pm.shape != (bh, m, n):
        return f"products {list(qm.shape)} x {list(km.shape)}, then x {list(vm.shape)}"
    b, h = (score_view.meta.shape[0], score_view.meta.shape[1]) if score_view is not None else (bh, 1)
    found = _sizes_ok(b, h, m, n, d)
    if found:
        return found
    att = Attention(qk.args[0].name, qk.args[1].name, v_ref.name, (b, h, h, m, n, d), "bmm", "float32",
                    3 if score_view is None else 4, empty_nan=True, output=pv.name)
    scores = score_view.name if score_view is not None else qk.name
    att = _with_score_ops(graph, att, scores, [graph.node(o) for o in reversed(ops)], m, n)
    if isinstance(att, str):
        return att
    region += [qk.name] + ([score_view.name] if score_view is not None else [])
    region += [r.name for o in region for r in refs_in(graph.node(o).args)
               if r.name in nodes and _number(graph, r) is not None
               and set(users.get(r.name, [])) <= set(region)]  # the fill constants only it reads
    inside = set(region)
    if att.mask in inside:
        return "the mask is the scores themselves"
    for name in inside - {pv.name}:
        if not set(users.get(name, [])) <= inside:
            return f"{name} (inside the attention) is read elsewhere"
    return replace(att, nodes=tuple(sorted(inside, key=graph.position)))


def _softmax(graph: Graph, name: str) -> tuple[str, list[str]] | str:
    """``div(exp(x - amax(x, -1)), sum(exp(...), -1))``: (x, the softmax's nodes), else why not."""
    nodes = graph.node_names()
    div = nodes.get(name)
    if div is None or div.target != "aten.div.Tensor" or not all(isinstance(a, Ref) for a in div.args[:2]):
        return "no softmax before the second product"
    exp, total = nodes.get(div.args[0].name), nodes.get(div.args[1].name)
    if exp is None or total is None or exp.target != "aten.exp.default" or total.target != "aten.sum.dim_IntList":
        return "no softmax before the second product"
    sub = nodes.get(exp.args[0].name) if isinstance(exp.args[0], Ref) else None
    if sub is None or sub.target != "aten.sub.Tensor" or not isinstance(sub.args[1], Ref):
        return "no softmax before the second product"
    amax = nodes.get(sub.args[1].name)
    x = sub.args[0]
    rank = len(div.meta.shape)
    last = ([-1], [rank - 1])
    if (amax is None or amax.target != "aten.amax.default" or amax.args[0] != x or list(amax.args[1]) not in last
            or total.args[0] != Ref(exp.name) or list(total.args[1]) not in last):
        return "no softmax over the last axis before the second product"
    if not (len(amax.args) > 2 and amax.args[2]) or not (len(total.args) > 2 and total.args[2]) or total.kwargs:
        return "no softmax over the last axis before the second product"
    return x.name, [div.name, exp.name, total.name, sub.name, amax.name]


def _scores(graph: Graph, name: str) -> tuple[Node, Node | None, list[str]] | str:
    """Walk back from the softmax's input to ``bmm(q, k^T)``: (that bmm, its view as [B, H, M, N] or None,
    the nodes between, softmax side first), else why not."""
    nodes = graph.node_names()
    node = nodes.get(name)
    if node is None:
        return "no product q k^T before the softmax"
    if node.target == BMM:
        return node, None, []
    if node.target == "aten.view.default" and isinstance(node.args[0], Ref) and node.args[0].name in nodes \
            and nodes[node.args[0].name].target == BMM:
        bmm = nodes[node.args[0].name]
        shape, flat = node.meta.shape, bmm.meta.shape
        if len(shape) != 4 or shape[2:] != flat[1:] or shape[0] * shape[1] != flat[0]:
            return f"the scores viewed as {list(shape)}"
        return bmm, node, []
    why = f"{node.target} between the product and the softmax"
    for chain in _chain_args(graph, node):
        found = _scores(graph, chain)
        if not isinstance(found, str):
            return found[0], found[1], [name] + found[2]
        why = found
    return why


def _chain_args(graph: Graph, node: Node) -> list[str]:
    """The operands that may carry the scores through a scale, a where or an add ([]: another op)."""
    args = node.args
    if node.kwargs or len(args) < 2:
        return []
    if node.target in SCALES and isinstance(args[0], Ref) and _number(graph, args[1]) is not None:
        return [args[0].name]
    if node.target == "aten.mul.Tensor" and isinstance(args[1], Ref) and _number(graph, args[0]) is not None:
        return [args[1].name]
    if node.target == "aten.where.self" and len(args) == 3 and isinstance(args[0], Ref):
        return [score.name for score, fill in ((args[2], args[1]), (args[1], args[2]))
                if isinstance(score, Ref) and _number(graph, score) is None and _number(graph, fill) is not None]
    if node.target == "aten.add.Tensor" and all(isinstance(a, Ref) for a in args[:2]):
        return [a.name for a in args[:2] if graph.meta(a.name).shape == node.meta.shape]
    return []


def _with_score_ops(graph: Graph, att: Attention, scores: str, ops: list[Node], m: int, n: int) -> Attention | str:
    """``att`` with the scale and the mask of ``ops``, the nodes from the scores value to the softmax (in
    order): each reads the one before it."""
    scale, after, fields = 1.0, 1.0, {}
    shape, prev = graph.meta(scores).shape, scores
    for node in ops:
        if node.target in SCALES or node.target == "aten.mul.Tensor":
            number = next(_number(graph, a) for a in node.args[:2] if not (isinstance(a, Ref) and a.name == prev))
            factor = number ** SCALES.get(node.target, 1) if number else 0.0
            if not factor > 0 or not math.isfinite(factor):
                return f"a scale of {factor} (positive and finite only)"
            scale, after = scale * factor, after * factor
        elif fields:
            return "two masks"
        elif node.meta.shape != shape:
            return f"a mask that broadcasts the scores to {list(node.meta.shape)}"
        elif node.target == "aten.where.self":
            cond, when_true, when_false = node.args
            invert = when_false == Ref(prev)  # masked_fill(s, cond, fill): the condition says what is dropped
            fill = _number(graph, when_true if invert else when_false)
            if graph.meta(cond.name).dtype != "bool" or fill == float("inf") or math.isnan(fill):
                return f"a where on a {graph.meta(cond.name).dtype} condition with fill {fill}"
            fields, after = {"mask": cond.name, "mask_kind": 1, "invert": invert, "fill": fill}, 1.0
        else:
            other = node.args[1] if node.args[0] == Ref(prev) else node.args[0]
            if graph.meta(other.name).dtype != "float32":
                return "an additive mask that is not float32"
            fields, after = {"mask": other.name, "mask_kind": 2}, 1.0
        prev = node.name
    if fields.get("mask_kind") == 1:
        fill = fields["fill"]
        fields["fill"] = fill * after if math.isfinite(fill) else fill
        return _with_bool_mask(graph, replace(att, scale=scale, **fields), m, n)
    return replace(att, scale=scale, add_scale=after if fields else 1.0, **fields)


def _with_bool_mask(graph: Graph, att: Attention, m: int, n: int) -> Attention:
    """``att`` with its boolean mask read from memory, or ``causal``/no mask when the mask is a constant
    that says so (only where dropped scores are ``-inf``: a finite fill takes part in the softmax)."""
    keep = constant_value(graph, att.mask)
    if keep is None or keep.dtype != torch.bool or keep.dim() > 4 or att.fill != float("-inf") \
            or any(s != 1 for s in keep.shape[:-2]) or not _broadcasts(keep.shape[-2:], (m, n)):
        return att
    keep = (~keep if att.invert else keep).reshape(keep.shape[-2:]).expand(m, n)
    if torch.equal(keep, torch.ones(m, n, dtype=torch.bool).tril()):
        return replace(att, mask=None, mask_kind=0, invert=False, causal=True)
    if bool(keep.all()):
        return replace(att, mask=None, mask_kind=0, invert=False)
    return att


def constant_value(graph: Graph, name: str) -> torch.Tensor | None:
    """The value of ``name`` when it depends on no graph input (evaluated here on the CPU), else None."""
    nodes, memo = graph.node_names(), {}

    def value(ref: str):
        if ref in memo:
            return memo[ref]
        node = nodes.get(ref)
        if node is None or node.fn is None or node.target == "getitem" or len(memo) >= CONSTANT_NODES:
            raise LookupError(ref)
        meta = node.meta
        if not hasattr(meta, "numel") or meta.numel > CONSTANT_ELEMENTS:
            raise LookupError(ref)
        args = _real(node.args, value)
        kwargs = {k: _real(v, value) for k, v in node.kwargs.items()}
        memo[ref] = node.fn(*args, **kwargs)
        return memo[ref]

    try:
        with torch.no_grad():
            out = value(name)
    except (LookupError, RuntimeError, TypeError, ValueError):
        return None
    return out if isinstance(out, torch.Tensor) else None


def _real(value, lookup):
    if isinstance(value, Ref):
        return lookup(value.name)
    if isinstance(value, torch.device):
        return torch.device("cpu")
    if isinstance(value, (list, tuple)):
        return type(value)(_real(v, lookup) for v in value)
    return value

