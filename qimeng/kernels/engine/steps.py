"""Macro steps: typed, serialisable optimisation decisions, and the schedule state they act on.

A ``Schedule`` is what the search explores: which graph nodes become which kernel (the rest stay
PyTorch calls), each kernel's reduction strategy and block configuration, and the precision policy.
Every step is a frozen dataclass with ``to_json``/``step_from_json`` and ``apply(schedule)``; the list
of applied steps is the trajectory reported and stored.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

STRATEGIES = ("one_pass", "looped", "split", "online")
PRECISIONS = ("strict", "tf32", "bf16")
# What each precision policy lets GEMMs and convolutions do, and the (atol, rtol) that candidates are
# then verified with (None: the harness's defaults by output dtype, 1e-4 for float32). The user opts
# into the looser contract with --precision; the report states it.
PRECISION_TOLERANCES: dict[str, tuple[float, float] | None] = {"strict": None, "tf32": (1e-2, 1e-2),
                                                               "bf16": (2e-2, 2e-2)}
# Vendor calls whose float32 operands the bf16 policy casts to bfloat16 (fp32 accumulation, fp32 result)
BF16_OPS = ("aten.mm.default", "aten.addmm.default", "aten.bmm.default", "aten.baddbmm.default",
            "aten.convolution.default")


@dataclass(frozen=True)
class KernelConfig:
    """How one kernel is laid out on the target: strategy, block sizes, warps, stages, vector width."""

    strategy: str = "auto"  # one of STRATEGIES or "auto" (the codegen decides from the sizes)
    block_p: int = 0  # rows (or elements, for pointwise) per program; 0 = default
    block_r: int = 0  # reduce-axis chunk; 0 = default
    num_warps: int = 0  # 0 = default
    num_stages: int = 0  # 0 = default
    vector: int = 0  # elements per thread hint; 0 = default

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Schedule:
    """Kernel groups (tuples of node names, in graph order) with their configs, and the precision."""

    groups: tuple[tuple[str, ...], ...] = ()
    configs: tuple[tuple[str, KernelConfig], ...] = ()  # keyed by the group's first node name
    precision: str = "strict"
    templates: tuple[tuple[str, str], ...] = ()  # (node, template variant) of UseTemplate, by node name
    # ("node/variant", GEMM launch tuple): a template's block config fixed at every size (the dynamic step);
    # a template without one takes its expert default for the shape
    template_configs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    channels_last: tuple[str, ...] = ()  # convolutions of ChannelsLast (vendor calls on NHWC operands)
    cuda_graph: bool = False  # the forward replayed from a CUDA graph (CudaGraph, cuda_graph.py)

    def config(self, group: tuple[str, ...]) -> KernelConfig:
        return dict(self.configs).get(group[0], KernelConfig())

    def with_config(self, key: str, config: KernelConfig) -> "Schedule":
        configs = dict(self.configs)
        configs[key] = config
        return replace(self, configs=tuple(sorted(configs.items())))

    def group_of(self, node: str) -> tuple[str, ...] | None:
        return self._group_index.get(node)

    @cached_property
    def _group_index(self) -> dict[str, tuple[str, ...]]:
        return {n: g for g in self.groups for n in g}

    def to_json(self) -> dict[str, Any]:
        return {"groups": [list(g) for g in self.groups],
                "configs": {k: c.to_json() for k, c in self.configs}, "precision": self.precision,
                "templates": [list(t) for t in self.templates], "channels_last": list(self.channels_last),
                **({"template_configs": {k: list(v) for k, v in self.template_configs}} if self.template_configs
                   else {}), **({"cuda_graph": True} if self.cuda_graph else {})}


class Step:
    """Base of macro steps."""

    kind: ClassVar[str] = ""

    def apply(self, schedule: Schedule, order: dict[str, int]) -> Schedule:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind
        return data

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items())
        return f"{self.kind}({fields})"


def _merge_groups(schedule: Schedule, names: list[str], order: dict[str, int]) -> Schedule:
    merged: set[str] = set()
    keep = []
    for g in schedule.groups:
        if any(n in g for n in names):
            merged |= set(g)
        else:
            keep.append(g)
    merged |= set(names)
    keep.append(tuple(sorted(merged, key=order.__getitem__)))
    keep.sort(key=lambda g: order[g[0]])
    return replace(schedule, groups=tuple(keep))


@dataclass(frozen=True)
class LowerOps(Step):
    """Generate kernels for these nodes, one kernel per node (the unfused Triton baseline)."""

    nodes: tuple[str, ...]
    kind: ClassVar[str] = "lower_ops"

    def apply(self, schedule, order):
        groups = list(schedule.groups) + [(n,) for n in self.nodes if schedule.group_of(n) is None]
        groups.sort(key=lambda g: order[g[0]])
        return replace(schedule, groups=tuple(groups))


@dataclass(frozen=True)
class FusePointwise(Step):
    """Fuse a pointwise producer into its pointwise consumer (one kernel, no intermediate buffer)."""

    producer: str
    consumer: str
    kind: ClassVar[str] = "fuse_pointwise"

    def apply(self, schedule, order):
        return _merge_groups(schedule, [self.producer, self.consumer], order)


@dataclass(frozen=True)
class FuseIntoReduction(Step):
    """Fuse pointwise prologue/epilogue nodes into a reduction's kernel (one pass over the data)."""

    reduction: str
    nodes: tuple[str, ...]
    kind: ClassVar[str] = "fuse_into_reduction"

    def apply(self, schedule, order):
        return _merge_groups(schedule, [self.reduction, *self.nodes], order)


@dataclass(frozen=True)
class FuseEpilogue(Step):
    """Fuse the pointwise chain after a GEMM/convolution (a vendor call) into one kernel."""

    gemm: str
    chain: tuple[str, ...]
    kind: ClassVar[str] = "fuse_epilogue"

    def apply(self, schedule, order):
        return _merge_groups(schedule, list(self.chain), order)


@dataclass(frozen=True)
class FuseSiblings(Step):
    """Fuse two independent kernels of the same iteration space that read a common input (one read)."""

    first: str
    second: str
    kind: ClassVar[str] = "fuse_siblings"

    def apply(self, schedule, order):
        return _merge_groups(schedule, [self.first, self.second], order)


@dataclass(frozen=True)
class ReductionStrategy(Step):
    """Choose how a reduction kernel walks its rows: one_pass | looped | split | online."""

    kernel: str
    strategy: str
    kind: ClassVar[str] = "reduction_strategy"

    def apply(self, schedule, order):
        assert self.strategy in STRATEGIES, f"unknown reduction strategy {self.strategy}"
        group = schedule.group_of(self.kernel)
        assert group is not None, f"{self.kernel} is not in a kernel"
        return schedule.with_config(group[0], replace(schedule.config(group), strategy=self.strategy))


@dataclass(frozen=True)
class BlockConfig(Step):
    """Choose block sizes, warps, stages and vector width of one kernel."""

    kernel: str
    config: KernelConfig = field(default_factory=KernelConfig)
    kind: ClassVar[str] = "block_config"

    def apply(self, schedule, order):
        group = schedule.group_of(self.kernel)
        assert group is not None, f"{self.kernel} is not in a kernel"
        strategy = schedule.config(group).strategy
        config = self.config if self.config.strategy != "auto" else replace(self.config, strategy=strategy)
        return schedule.with_config(group[0], config)

    def to_json(self):
        return {"kind": self.kind, "kernel": self.kernel, "config": self.config.to_json()}


@dataclass(frozen=True)
class Precision(Step):
    """Choose the precision policy: strict (fp32 math), tf32 (GEMMs and convolutions in TF32) or bf16
    (their float32 operands cast to bfloat16, accumulated and returned in float32)."""

    policy: str
    kind: ClassVar[str] = "precision"

    def apply(self, schedule, order):
        assert self.policy in PRECISIONS, f"unknown precision {self.policy}"
        return replace(schedule, precision=self.policy)


@dataclass(frozen=True)
class UseTemplate(Step):
    """Compute a node with one of our templates instead of its PyTorch call (a GEMM or convolution:
    ``templates/gemm_plan``, ``conv_plan``; a pooling: ``pool_plan``; the node ending an attention, with
    the attention's other nodes: ``attention_plan``), in ``variant`` (a template
    precision: ``tf32x3``/``ieee`` under strict, ``tf32``, ``bf16``; ``direct`` for pooling), with the
    pointwise epilogue kernel that reads it folded into the template where it applies."""

    node: str
    variant: str
    kind: ClassVar[str] = "use_template"

    def apply(self, schedule, order):
        templates = dict(schedule.templates)
        templates[self.node] = self.variant
        return replace(schedule, templates=tuple(sorted(templates.items())))


@dataclass(frozen=True)
class TemplateConfig(Step):
    """Choose the block configuration of a GEMM template unit in one variant: ``templates.gemm.GemmConfig``'s
    fields in order (block_m, block_n, block_k, group_m, split_k, warps, stages, gemv); the tuning stage's step."""

    node: str
    variant: str
    config: tuple[int, ...]
    kind: ClassVar[str] = "template_config"

    def apply(self, schedule, order):
        configs = dict(schedule.template_configs)
        configs[f"{self.node}/{self.variant}"] = self.config
        return replace(schedule, template_configs=tuple(sorted(configs.items())))


@dataclass(frozen=True)
class ChannelsLast(Step):
    """Run these 2-D convolutions (vendor calls: cuDNN) on channels-last (NHWC) operands, as torch.compile
    does: the weights converted once, activations kept NHWC between them and the kernels around them
    reading and writing that layout; graph outputs in the reference's layout (``layout.py``)."""

    convs: tuple[str, ...]
    kind: ClassVar[str] = "channels_last"

    def apply(self, schedule, order):
        convs = sorted(set(schedule.channels_last) | set(self.convs), key=order.__getitem__)
        return replace(schedule, channels_last=tuple(convs))


@dataclass(frozen=True)
class CudaGraph(Step):
    """Replay the whole generated forward from a CUDA graph captured per argument layout (``cuda_graph.py``):
    one launch for all its kernels and vendor calls, the arguments copied in and the outputs out."""

    kind: ClassVar[str] = "cuda_graph"

    def apply(self, schedule, order):
        return replace(schedule, cuda_graph=True)


STEP_TYPES: dict[str, type[Step]] = {cls.kind: cls for cls in (
    LowerOps, FusePointwise, FuseIntoReduction, FuseEpilogue, FuseSiblings, ReductionStrategy, BlockConfig,
    Precision, UseTemplate, TemplateConfig, ChannelsLast, CudaGraph)}


def step_from_json(data: dict[str, Any]) -> Step:
    data = dict(data)
    cls = STEP_TYPES[data.pop("kind")]
    if cls is BlockConfig:
        return BlockConfig(data["kernel"], KernelConfig(**data["config"]))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
