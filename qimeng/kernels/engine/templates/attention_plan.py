"""The attention template in a plan: the nodes of one attention (``attention_match``) as one template unit.

``with_attention`` replaces every plan unit that computes the attention's nodes (the PyTorch calls of
the two products or of SDPA, the softmax kernels between them) by one unit launching ``attention_source``'s
kernel through ``_qm_attn_run``, at the place of the anchor (the node defining the output). A kernel of
the plan that also computes other nodes may take part only when those nodes feed nothing but the
attention (the mask made inside forward): the unit computes the ones its mask needs as PyTorch calls.
Under the strict policy the forward follows PyTorch's matmul TF32 flag at run time, as the GEMM template
does (``torch.backends.cuda.matmul.allow_tf32``: the reference's products then run in TF32 too).
"""

from __future__ import annotations

import math

from qimeng.kernels.engine.capture import Graph, Node, refs_in
from qimeng.kernels.engine.emit import pytorch_call
from qimeng.kernels.engine.lowering_plan import ExternUnit, KernelUnit
from qimeng.kernels.engine.templates.attention import AttentionConfig, default_config
from qimeng.kernels.engine.templates.attention_match import Attention, attention_of
from qimeng.kernels.engine.templates.attention_source import KERNELS, RUNTIME
from qimeng.kernels.engine.templates.unit import TemplateUnit, by_flag

FLAG = "torch.backends.cuda.matmul.allow_tf32"
FLAG_VARIANT = "tf32"
KERNEL_PRECISION = {"tf32x3": "tf32x3", "ieee": "ieee", "tf32": "tf32", "bf16": "bf16"}


def variants(policy: str, att: Attention, measured: dict[int, str] | None = None) -> list[str]:
    """The template precisions for ``att``, the expert's choice first. float32 operands: under strict,
    3xTF32 (unless the measurement at K = head dim ruled it out) then ``ieee``; TF32 or bf16 under those
    policies. 16-bit operands: bf16 products for bfloat16, TF32 for float16 (exact on fp16 values)."""
    if att.dtype != "float32":
        return ["bf16" if att.dtype == "bfloat16" else "tf32"]
    if policy == "strict":
        return ["ieee"] if (measured or {}).get(att.sizes[5]) == "ieee" else ["tf32x3", "ieee"]
    return [{"tf32": "tf32", "bf16": "bf16"}[policy]]


def current_config(att: Attention, variant: str) -> AttentionConfig:
    """The expert's tile for ``att`` in ``variant`` (bf16 products, or 32-bit ones)."""
    return default_config(att.sizes[5], "bf16" if variant == "bf16" else "strict")


def _names(unit) -> set[str]:
    return set(unit.group) if isinstance(unit, (KernelUnit, TemplateUnit)) else {unit.node.name}


def _four_d(att: Attention) -> tuple[str, str, str, str]:
    """Python expressions of q, k, v and the output as ``[B, H, M, D]`` / ``[B, H_kv, N, D]`` views."""
    b, h = att.sizes[:2]
    if att.form == "bmm":  # [B*H, ., .] operands; k as the product reads it, [B*H, D, N]
        split = f".unflatten(0, ({b}, {h}))"
        return (f"{att.q}{split}", f"{att.k}.transpose(1, 2){split}", f"{att.v}{split}", f"{att.output}{split}")
    three = ".unsqueeze(1)" if att.rank == 3 else ""
    return att.q + three, att.k + three, att.v + three, att.output + three


def _mask_lines(graph: Graph, att: Attention, computed: set[str], indent: str) -> tuple[list[str], str]:
    """Lines making the mask (the nodes of removed kernels it needs, as PyTorch calls) and its expression."""
    if att.mask is None:
        return [], "None"
    needed, todo = [], [att.mask]
    while todo:
        name = todo.pop()
        if name in computed and name not in needed:
            needed.append(name)
            node = graph.node(name)
            todo += [r.name for r in refs_in(list(node.args) + list(node.kwargs.values()))]
    lines = [f"{indent}{n} = {pytorch_call(graph.node(n))}" for n in sorted(needed, key=graph.position)]
    mask = f"torch.logical_not({att.mask})" if att.invert else att.mask
    three_d = att.rank == 3 and len(graph.meta(att.mask).shape) == 3  # [B, M, N] as [B, 1, M, N]
    return lines, f"{mask}.unsqueeze(-3)" if three_d else mask


def attention_unit(graph: Graph, node: Node, variant: str, policy: str, computed: set[str], device_type: str,
                   configs: dict[str, tuple[int, ...]] | None = None) -> TemplateUnit | str:
    """The unit computing the attention ``node`` ends, in ``variant``; ``computed``: the nodes outside the
    attention that the units it replaces computed (its mask may need some of them); ``configs``
    ("node/variant" -> ``AttentionConfig`` launch tuple, the tuning stage's choice) fixes tiles, else each
    variant runs at ``default_config``."""
    att = attention_of(graph, node)
    if isinstance(att, str):
        return att
    if variant not in KERNEL_PRECISION:
        return f"no {variant} attention"
    meta = graph.meta(att.output)
    q, k, v, out = _four_d(att)
    mask_lines, mask = _mask_lines(graph, att, computed, "        ")
    run = [variant] + ([FLAG_VARIANT] if policy == "strict" and att.dtype == "float32" and variant != FLAG_VARIANT
                       else [])
    indent = "            " if len(run) > 1 else "        "
    fill = repr(att.fill) if math.isfinite(att.fill) else 'float("-inf")'
    calls, used = [], []
    for v_name in run:
        fixed = (configs or {}).get(f"{node.name}/{v_name}")
        config = tuple(fixed) if fixed else current_config(att, v_name).launch()
        used.append((f"{node.name}/{v_name}", config))
        calls.append([f"{indent}_qm_attn_run({q}, {k}, {v}, {out}, {mask}, {att.mask_kind}, {att.causal}, "
                      f"{att.scale!r}, {att.add_scale!r}, {fill}, {att.empty_nan}, {KERNEL_PRECISION[v_name]!r}, "
                      f"{config!r}, {device_type == 'cpu'})"])
    lines = [f"        {att.output} = torch.empty_strided({meta.shape!r}, {meta.stride!r}, dtype=torch.{meta.dtype}, "
             "device=_qm_dev)", *mask_lines] + by_flag(FLAG, calls)
    b, h, hkv, m, n, d = att.sizes
    what = ("causal" if att.causal else {0: "no mask", 1: "boolean mask", 2: "additive mask"}[att.mask_kind])
    note = (f"{variant}; flash attention ({att.form}) B={b} H={h}" + (f"/{hkv} kv" if hkv != h else "")
            + f" M={m} N={n} D={d}, {what}")
    return TemplateUnit(node, att.nodes, att.output, RUNTIME, KERNELS, lines, (), note, tuple(run), tuple(used))


def with_attention(graph: Graph, units: list, node: Node, variant: str, policy: str, device_type: str,
                   configs: dict[str, tuple[int, ...]] | None = None) -> tuple[list, set[str]] | str:
    """``units`` with the attention ``node`` ends computed by the template, and the nodes it took over;
    or why not."""
    att = attention_of(graph, node)
    if isinstance(att, str):
        return att
    region = set(att.nodes)
    hit = [u for u in units if _names(u) & region]
    if any(isinstance(u, TemplateUnit) for u in hit):
        return "another template computes part of it"
    anchor = next((u for u in hit if isinstance(u, ExternUnit) and u.node.name == att.output), None)
    if anchor is None:
        return f"{att.output} is not a PyTorch call of the plan"
    computed = set().union(*(_names(u) for u in hit)) - region
    users = graph.users()
    for name in sorted(computed):
        if not set(users.get(name, [])) <= region | computed:
            return f"a kernel computes {name} with the attention's nodes, and {name} is read elsewhere"
        if graph.node(name).target == "getitem":
            return f"a kernel computes {name} (a getitem) with the attention's nodes"
    unit = attention_unit(graph, node, variant, policy, computed, device_type, configs)
    if isinstance(unit, str):
        return unit
    out = [unit if u is anchor else u for u in units if u is anchor or all(u is not h for h in hit)]
    return out, region | computed
