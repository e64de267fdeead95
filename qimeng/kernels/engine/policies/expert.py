"""The expert policy: rule-based proposals of macro steps, stage by stage.

Stages (each proposal is one candidate to verify and time):
  1. ``lower``: every supported node becomes a kernel, with all legal pointwise fusions (producer into
     consumer, and the epilogue chain after each GEMM/convolution) applied.
  2. ``reduce``: pointwise prologues/epilogues and sibling reductions of the same space fused into
     the reduction kernels.
  3. ``siblings``: independent kernels of one iteration space that read a common tensor, merged.
  4. ``layout``: the vendor 2-D convolutions on channels-last (NHWC) operands, the kernels around them
     reading and writing that layout (``ChannelsLast``, ``layout.py``): what torch.compile does for cuDNN.
  5. ``templates``: every node one of our templates can take (float32 mm/addmm/bmm; convolution;
     pooling; the node ending an attention, SDPA or by hand) computed by it, with the epilogue kernel after it folded in, in the precision policy's
     variant; under strict, 3xTF32 first and plain fp32 (``ieee``) as the alternative. Verified and
     timed like every candidate, against the vendor calls of the stages before it.
  6. ``strategy``: reduction strategy alternatives (one pass in registers, looped, online, split) for the
     ``MAX_STRATEGY_KERNELS`` reductions that move the most bytes.
  7. ``graph`` (on CUDA only: ``ExpertPolicy(cuda_graphs=True)``): the whole forward replayed from a CUDA
     graph (``CudaGraph``, ``cuda_graph.py``), for a forward of at least ``GRAPH_MIN_UNITS`` kernels and
     PyTorch calls (a recurrent stack alone is enough: cuDNN launches its steps one by one) that moves at
     most ``GRAPH_MAX_IO_BYTES`` (copying the arguments in and the outputs out
     must stay small next to the launches saved) and draws no random numbers.
A fusion is legal when the merged group still lowers to one kernel and no PyTorch call sits between
its parts (``lowering_plan`` checks both).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qimeng.kernels.engine.capture import Graph, TensorMeta, refs_in
from qimeng.kernels.engine.codegen.triton import (CodegenError, is_inner_reduction, online_applicable,
                                                  split_applicable)
from qimeng.kernels.engine.layout import channels_last_convs
from qimeng.kernels.engine.lowering import LoweringError
from qimeng.kernels.engine.lowering_ops import PURE_VIEWS, op_class
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import build_plan, lowered, with_getitems
from qimeng.kernels.engine.capture_rewrites import RECURRENT_TARGETS
from qimeng.kernels.engine.cuda_graph import RANDOM_TARGETS
from qimeng.kernels.engine.policies.partition import Partition
from qimeng.kernels.engine.steps import (ChannelsLast, CudaGraph, FuseEpilogue, FuseIntoReduction, FusePointwise, FuseSiblings, LowerOps,
                                  ReductionStrategy, Schedule, Step, UseTemplate)
from qimeng.kernels.engine.templates.plan import template_variants

MAX_STRATEGY_KERNELS = 8  # reductions given strategy alternatives (the largest): each is a whole candidate
GRAPH_MIN_UNITS = 2  # kernels and PyTorch calls of a forward worth a CUDA graph ...
GRAPH_MAX_IO_BYTES = 1 << 30  # ... whose graph inputs and outputs move at most this

@dataclass
class Proposal:
    """Steps applied together to make one candidate, with the stage that proposed them."""

    stage: str
    steps: list[Step]
    schedule: Schedule


def graph_io_bytes(graph: Graph) -> int:
    """Bytes of the forward's arguments and outputs: what a CUDA graph's replay copies in and out."""
    metas = [i.meta for i in graph.inputs if i.kind == "user"]
    metas += [graph.meta(o.name) for o in graph.outputs if hasattr(o, "name")]
    return sum(m.nbytes for m in metas if isinstance(m, TensorMeta))


def node_order(graph: Graph) -> dict[str, int]:
    graph.position(graph.nodes[0].name) if graph.nodes else None  # builds the cached index
    return getattr(graph, "_positions", {})


def lowerable(graph: Graph) -> list[str]:
    """Nodes a kernel can compute (getitems travel with their source)."""
    out = []
    for n in graph.nodes:
        kind = op_class(n)
        if kind in ("pointwise", "reduction", "scan"):
            out.append(n.name)
    return out


def _edges(graph: Graph) -> list[tuple[str, str]]:
    edges = []
    for n in graph.nodes:
        for r in refs_in(n.args) + refs_in(list(n.kwargs.values())):
            src = r.name
            if src in graph.node_names():
                src_node = graph.node(src)
                if src_node.target == "getitem":
                    src = src_node.args[0].name
                edges.append((src, n.name))
    return edges


def _legal(graph: Graph, schedule: Schedule | Partition, group: tuple[str, ...]) -> bool:
    """Does ``group`` of ``schedule`` lower and render as one kernel (cached), without a PyTorch call or
    another kernel between its parts (the kernels and calls still have an order)?"""
    members = with_getitems(graph, group)
    try:
        lowered(graph, members, _input_strides(graph, schedule, members), schedule.config(group))
    except (LoweringError, CodegenError, AssertionError):
        return False
    return _convex(graph, schedule, members)


def _input_strides(graph: Graph, schedule: Schedule | Partition, members: set[str]) -> dict[str, tuple[int, ...]]:
    """Strides of the values ``members`` read that other kernels write (contiguous), as ``build_plan``
    gives them."""
    out = {}
    for n in members:
        for r in refs_in(graph.node(n).args) + refs_in(list(graph.node(n).kwargs.values())):
            if r.name in members or r.name not in graph.node_names():
                continue
            node = graph.node(r.name)
            source = node.args[0].name if node.target == "getitem" else r.name
            if schedule.group_of(source) is not None:
                out[r.name] = contiguous_strides(graph.meta(r.name).shape)
    return out


def _convex(graph: Graph, schedule: Schedule | Partition, members: set[str]) -> bool:
    """No path leaves ``members`` and comes back (through PyTorch calls or other kernels, each of which
    runs as a whole). Only nodes up to the group's last one can lie on such a path."""
    order = node_order(graph)
    last = max(order[n] for n in members)
    users = graph.users()
    stack = [u for m in members for u in users.get(m, []) if u not in members and u in order]
    seen: set[str] = set()
    while stack:
        n = stack.pop()
        if n in seen or order[n] > last:
            continue
        seen.add(n)
        node = graph.node(n)
        source = node.args[0].name if node.target == "getitem" else n
        unit = with_getitems(graph, schedule.group_of(source)) if schedule.group_of(source) else {n}
        for peer in unit:
            seen.add(peer)
            for u in users.get(peer, []):
                if u in members:
                    return False
                if u in order and u not in seen:
                    stack.append(u)
    return True


def greedy_fuse(graph: Graph, schedule: Schedule, allow: callable) -> tuple[Schedule, list[Step]]:
    """Merge producer/consumer groups along graph edges while the result stays legal: passes over the
    edges in graph order until one merges nothing. Each merge costs its groups' size (``Partition``), not
    the graph's; the schedule is built once, as the steps applied one by one would build it."""
    part = Partition(schedule, node_order(graph))
    steps: list[Step] = []
    edges = _edges(graph)
    changed = True
    while changed:
        changed = False
        for producer, consumer in edges:
            gp, gc = part.group_of(producer), part.group_of(consumer)
            if gp is None or gc is None or gp == gc or not allow(graph, producer, consumer):
                continue
            if _view_only(graph, gp) and _user_groups(graph, part, producer) > 1:
                continue  # a view read by several kernels stays a (free) PyTorch view
            merged = part.merge(gp, gc)
            if _legal(graph, part, merged):
                steps.append(_fusion_step(graph, producer, consumer, gp, gc))
                changed = True
            else:
                part.restore(gp, gc)
    return part.schedule(), steps


def _view_only(graph: Graph, group: tuple[str, ...]) -> bool:
    return all(graph.node(n).target in PURE_VIEWS for n in group)


def _user_groups(graph: Graph, schedule: Schedule | Partition, name: str) -> int:
    users = graph.users().get(name, [])
    return len({schedule.group_of(u) for u in users})


def drop_view_only_groups(graph: Graph, schedule: Schedule) -> Schedule:
    """Groups of pure views compute nothing: they stay PyTorch views (free) instead of copies."""
    from dataclasses import replace

    return replace(schedule, groups=tuple(g for g in schedule.groups if not _view_only(graph, g)))


def _has_reduction(graph: Graph, group: tuple[str, ...]) -> bool:
    return any(op_class(graph.node(n)) in ("reduction", "scan") for n in group)


def _fusion_step(graph: Graph, producer: str, consumer: str, gp, gc) -> Step:
    if _has_reduction(graph, gp) or _has_reduction(graph, gc):
        red = next(n for n in gp + gc if op_class(graph.node(n)) in ("reduction", "scan"))
        return FuseIntoReduction(red, tuple(sorted(set(gp + gc) - {red})))
    externs = [r.name for n in gc for r in refs_in(graph.node(n).args)
               if r.name in graph.node_names() and op_class(graph.node(r.name)) == "extern"
               and graph.node(r.name).target.split(".")[1] in ("mm", "addmm", "bmm", "convolution", "baddbmm")]
    if externs:
        return FuseEpilogue(externs[0], tuple(sorted(set(gp + gc), key=node_order(graph).__getitem__)))
    return FusePointwise(producer, consumer)


def _pointwise_only(graph: Graph, producer: str, consumer: str) -> bool:
    return op_class(graph.node(producer)) == "pointwise" and op_class(graph.node(consumer)) == "pointwise"


def _any(graph: Graph, producer: str, consumer: str) -> bool:
    return True


def _reads(graph: Graph, group: tuple[str, ...]) -> set[str]:
    members = set(group)
    return {r.name for n in group for r in refs_in(graph.node(n).args) if r.name not in members}


def fuse_siblings(graph: Graph, schedule: Schedule) -> tuple[Schedule, list[Step]]:
    """Merge kernels that read a common tensor when the merge stays one legal kernel: the first legal
    pair in group order, then again from the start. Pairs come from an index of the groups by what they
    read (only groups sharing a read are paired), each group's reads computed once."""
    part = Partition(schedule, node_order(graph))
    steps: list[Step] = []
    reads: dict[tuple[str, ...], set[str]] = {}
    while (pair := _sibling_merge(graph, part, reads)) is not None:
        steps.append(FuseSiblings(pair[0][0], pair[1][0]))
    return part.schedule(), steps


def _sibling_merge(graph: Graph, part: Partition,
                   reads: dict[tuple[str, ...], set[str]]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Merge the first legal pair of groups (in group order) that read a common tensor; the pair, or None."""
    groups = part.groups()
    readers: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        if g not in reads:
            reads[g] = _reads(graph, g)
        for r in reads[g]:
            readers.setdefault(r, []).append(i)
    for i, a in enumerate(groups):
        for j in sorted({j for r in reads[a] for j in readers[r] if j > i}):
            b = groups[j]
            if _legal(graph, part, part.merge(a, b)):
                return a, b
            part.restore(a, b)
    return None


class ExpertPolicy:
    """Rule-based proposals; each call returns the candidates of the next stage (empty when done)."""

    stages = ("lower", "reduce", "siblings", "layout", "templates", "strategy", "graph")

    def __init__(self, strict_measured: dict[int, str] | None = None, cuda_graphs: bool = False):
        self.strict_measured = strict_measured or {}  # K -> strict variant measured on the target
        self.cuda_graphs = cuda_graphs  # the ``graph`` stage proposes (CUDA graphs exist on the target)

    def main_line(self, graph: Graph, schedule: Schedule, through: str | None = None) -> Schedule:
        """``schedule`` after the first proposal of each stage in turn, up to and including stage
        ``through`` (every stage when None): the candidate the search's main line ends with."""
        stages = self.stages if through is None else self.stages[: self.stages.index(through) + 1]
        for stage in stages:
            proposals = self.propose(graph, schedule, stage)
            if proposals:
                schedule = proposals[0].schedule
        return schedule

    def propose(self, graph: Graph, schedule: Schedule, stage: str) -> list[Proposal]:
        order = node_order(graph)
        if stage == "lower":
            nodes = tuple(lowerable(graph))
            if not nodes:
                return []
            lower = LowerOps(nodes)
            fused, steps = greedy_fuse(graph, lower.apply(schedule, order), _pointwise_only)
            return [Proposal(stage, [lower, *steps], drop_view_only_groups(graph, fused))]
        if stage == "reduce":
            fused, steps = greedy_fuse(graph, schedule, _any)
            return [Proposal(stage, steps, drop_view_only_groups(graph, fused))] if steps else []
        if stage == "siblings":
            fused, steps = fuse_siblings(graph, schedule)
            return [Proposal(stage, steps, fused)] if steps else []
        if stage == "layout":
            convs = tuple(n for n in channels_last_convs(graph) if n not in schedule.channels_last)
            if not convs:
                return []
            step = ChannelsLast(convs)
            return [Proposal(stage, [step], step.apply(schedule, order))]
        if stage == "templates":
            return self._templates(graph, schedule)
        if stage == "strategy":
            return self._strategies(graph, schedule)
        if stage == "graph":
            return self._cuda_graph(graph, schedule)
        return []

    def _cuda_graph(self, graph: Graph, schedule: Schedule) -> list[Proposal]:
        """The forward as one CUDA graph, where it launches enough, moves little and draws nothing random."""
        if not self.cuda_graphs or schedule.cuda_graph or graph_io_bytes(graph) > GRAPH_MAX_IO_BYTES:
            return []
        if any(word in n.target for n in graph.nodes for word in RANDOM_TARGETS):
            return []
        grouped = {n for g in schedule.groups for n in g}
        calls = sum(n.name not in grouped and n.target != "getitem" and n.target not in PURE_VIEWS for n in graph.nodes)
        # a recurrent stack is one PyTorch call but cuDNN launches its steps one by one (layers x sequence)
        calls += GRAPH_MIN_UNITS * sum(n.target in RECURRENT_TARGETS for n in graph.nodes)
        if len(schedule.groups) + calls < GRAPH_MIN_UNITS:  # launches, counted without building the plan
            return []
        step, order = CudaGraph(), node_order(graph)
        proposals = [Proposal("graph", [step], step.apply(schedule, order))]
        if schedule.templates:  # the graph around the vendor calls too, should a template not verify or not win
            vendor = replace(schedule, templates=(), template_configs=())
            proposals.append(Proposal("graph", [step], step.apply(vendor, order)))
        return proposals

    def _templates(self, graph: Graph, schedule: Schedule) -> list[Proposal]:
        """One proposal per variant rank: every node a template takes in its first variant, then its second."""
        options = []
        for n in graph.nodes:
            vs = template_variants(graph, n, schedule.precision, self.strict_measured)
            if vs and n.name not in dict(schedule.templates):
                options.append((n.name, vs))
        proposals = []
        for rank in range(max((len(v) for _, v in options), default=0)):
            steps: list[Step] = [UseTemplate(name, vs[min(rank, len(vs) - 1)]) for name, vs in options]
            sched = schedule
            for step in steps:
                sched = step.apply(sched, node_order(graph))
            proposals.append(Proposal("templates", steps, sched))
        return proposals

    def _strategies(self, graph: Graph, schedule: Schedule) -> list[Proposal]:
        """Other strategies for the ``MAX_STRATEGY_KERNELS`` reduction kernels that move the most bytes (in
        graph order): each alternative is a whole candidate to render and verify, and a deep network has
        hundreds of reductions."""
        plan = build_plan(graph, schedule)
        reductions = [u for u in plan.kernels if u.kernel.kind == "reduction"]
        largest = {id(u) for u in sorted(reductions, key=lambda u: -u.kernel.bytes_moved())[:MAX_STRATEGY_KERNELS]}
        proposals = []
        for unit in reductions:
            k = unit.kernel
            if id(unit) not in largest:
                continue
            current = unit.rendered.config.strategy
            # one pass holds a whole row in registers: over a strided axis only while 16 rows still fit
            fits = is_inner_reduction(k) or k.reduce_size * 16 <= 8192
            options = ["looped" if current == "one_pass" else "one_pass"] if k.reduce_size <= 32768 and fits else []
            if online_applicable(k) and current != "online":
                options.append("online")
            if split_applicable(k) and current != "split" and k.parallel_size < 1024 and k.reduce_size >= 8192:
                options.append("split")
            for strategy in options:
                step = ReductionStrategy(unit.group[0], strategy)
                proposals.append(Proposal("strategy", [step], step.apply(schedule, node_order(graph))))
        return proposals
