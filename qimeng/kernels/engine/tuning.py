"""Tuning: block sizes and warps per kernel, measured on the target, cached by (kernel hash, device).

For each of the slowest-looking kernels (by bytes moved) a handful of configurations is rendered into
full ``ModelNew`` candidates that differ only in that kernel, and all of them are verified and timed
in one sandboxed harness job (``evaluate_many``); the fastest verified one wins and goes into the
store, so that a later run on the same kernel and device takes it without measuring. GEMM template
and attention units are tuned the same way (``template_trials``: the template's curated block shapes,
warps and stages for the unit's sizes, as ``TemplateConfig`` steps), cached by (template source hash and
sizes, device). On the CPU (Triton interpreter) timing means nothing: tuning is skipped and the expert
defaults stay.
"""

from __future__ import annotations

from dataclasses import astuple, replace
from typing import Any

from qimeng.kernels.engine.capture import Graph
from qimeng.kernels.engine.codegen.triton import is_inner_reduction, resolve_config
from qimeng.kernels.engine.ir.kernel import Kernel
from qimeng.kernels.engine.lowering_plan import Plan
from qimeng.kernels.engine.steps import BlockConfig, KernelConfig, Schedule, Step, TemplateConfig
from qimeng.kernels.engine.templates.attention import AttentionConfig
from qimeng.kernels.engine.templates.attention import curated_configs as attention_configs
from qimeng.kernels.engine.templates.attention_match import Attention, attention_of
from qimeng.kernels.engine.templates.attention_plan import current_config
from qimeng.kernels.engine.templates.gemm import GemmConfig, curated_configs, default_config
from qimeng.kernels.engine.templates.gemm_plan import GEMM_TARGETS, b_k_major, sm_count, template_problem
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.unit import TemplateUnit

MAX_KERNELS = 3
MAX_CONFIGS = 5


def variants(kernel: Kernel, current: KernelConfig) -> list[KernelConfig]:
    """A few configurations around the expert default, the default first."""
    base = resolve_config(kernel, current)
    out = [base]
    if base.strategy == "tiled":
        for block_p, block_r, warps in ((32, 32, 4), (128, 32, 4), (64, 64, 8), (128, 64, 8)):
            out.append(replace(base, block_p=block_p, block_r=block_r, num_warps=warps))
    elif kernel.kind == "pointwise":
        for block, warps in ((1024, 4), (2048, 8), (4096, 8), (512, 4)):
            out.append(replace(base, block_p=block, num_warps=warps))
    elif base.strategy == "one_pass":
        for warps in (4, 8, 16):
            out.append(replace(base, num_warps=warps))
        if base.block_p > 1:
            out.append(replace(base, block_p=max(1, base.block_p // 2)))
    elif is_inner_reduction(kernel):
        for block_r, warps, stages in ((1024, 4, 2), (2048, 8, 2), (4096, 8, 1), (512, 4, 3)):
            out.append(replace(base, block_r=block_r, num_warps=warps, num_stages=stages))
    else:  # rows contiguous: trade rows per program against reduce chunk, tile of 4096
        for block_p, warps in ((16, 4), (32, 4), (64, 8), (128, 8)):
            out.append(replace(base, block_p=block_p, block_r=max(8, 4096 // block_p), num_warps=warps))
    unique = []
    for c in out:
        if c not in unique:
            unique.append(c)
    return unique[:MAX_CONFIGS]


def as_step(group_head: str, config: KernelConfig) -> BlockConfig:
    return BlockConfig(group_head, config)


def config_from_json(data: dict) -> KernelConfig:
    return KernelConfig(**{k: v for k, v in data.items() if k in KernelConfig.__dataclass_fields__})


def template_trials(graph: Graph, plan: Plan, schedule: Schedule, device_type: str
                    ) -> list[tuple[str, str, list[TemplateConfig]]]:
    """For each GEMM or attention template unit of ``plan``: (node, tuning key, steps to the template's
    curated configurations for its sizes other than the one it runs at, at most ``MAX_CONFIGS``). The key
    names the unit's kernel source and the sizes (a block shape is chosen per shape)."""
    out = []
    sms = sm_count(device_type)
    variants, chosen = dict(schedule.templates), dict(schedule.template_configs)
    for unit in plan.units:
        if not isinstance(unit, TemplateUnit):
            continue
        att, variant = attention_of(graph, unit.node), variants.get(unit.node.name)
        if not isinstance(att, str):  # before the GEMMs: the bmm form of attention ends in a bmm
            if variant is not None:
                out.append(_attention_trial(att, unit, variant, chosen))
            continue
        if unit.node.target not in GEMM_TARGETS:
            continue
        problem = template_problem(graph, unit.node)
        if isinstance(problem, str) or variant is None:
            continue
        fixed = chosen.get(f"{unit.node.name}/{variant}")
        current = GemmConfig(*fixed) if fixed else default_config(problem, variant, False, sms)
        configs = [c for c in curated_configs(problem, variant, variant == "bf16", sms, b_k_major(graph, unit.node))
                   if c != current]
        key = f"gemm {source_hash(unit.source)} {problem.batch}x{problem.m}x{problem.n}x{problem.k}"
        out.append((unit.node.name, key, [TemplateConfig(unit.node.name, variant, astuple(c))
                                              for c in configs[:MAX_CONFIGS]]))
    return out


def _attention_trial(att: Attention, unit: TemplateUnit, variant: str, chosen: dict[str, tuple[int, ...]]
                     ) -> tuple[str, str, list[TemplateConfig]]:
    """(node, tuning key, steps to the attention template's other curated tiles) for one attention unit;
    the key names the kernel source, the sizes, causal / mask kind and the operands' dtype."""
    node = unit.node.name
    fixed = chosen.get(f"{node}/{variant}")
    current = AttentionConfig(*fixed) if fixed else current_config(att, variant)
    tiles = [c for c in attention_configs(att.sizes[5], "bf16" if variant == "bf16" else "strict") if c != current]
    key = (f"attention {source_hash(unit.source)} {'x'.join(map(str, att.sizes))} causal={att.causal} "
           f"mask={att.mask_kind} {att.dtype}")
    return node, key, [TemplateConfig(node, variant, c.launch()) for c in tiles[:MAX_CONFIGS]]


def config_json(step: Step) -> dict[str, Any]:
    """What the store keeps for a tuning step: the kernel's config, or a template's ``{"template": fields}``."""
    if isinstance(step, TemplateConfig):
        return {"template": list(step.config), "variant": step.variant}
    return step.config.to_json()


def template_step_from_json(node: str, data: dict[str, Any]) -> TemplateConfig:
    return TemplateConfig(node, str(data["variant"]), tuple(data["template"]))
