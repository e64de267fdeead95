"""The LLM micro coder: a Triton kernel for one region the symbolic coder cannot render.

A region is one extern node with no lowering (sort, scatter, unusual indexing: today a PyTorch call). The
model is given that region alone: its ATen call, the shapes, strides and dtypes of what it reads and
returns, and the signature of the launcher it must write. Its code is verified in the sandboxed harness
against the region's own reference, as a sub-problem (a KernelBench file of that one call), before it
enters ``model_new.py``; a failure goes back to the model with the harness's reason, for at most K debug
rounds. The candidate with every verified region is then verified again as a whole, like any other.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from qimeng.kernels.engine.capture import Graph, Node, TensorMeta
from qimeng.kernels.engine.emit import pytorch_call, region_params
from qimeng.kernels.engine.lowering_ops import extern_reason, op_class
from qimeng.kernels.engine.lowering_plan import ExternUnit, Plan
from qimeng.kernels.result import EvalOptions
from qimeng.llm.client import LLMClient, LLMError
from qimeng.llm.insights import InsightStore, distill, lessons_text
from qimeng.llm.prompts import Message, feedback, last_code_block, system, user

DEFAULT_DEBUG_ROUNDS = 2
MAX_REGIONS = 2  # default regions per optimize run (each costs up to K + 1 requests and sandboxed verifications)
TASK_KIND = "kernel-region"  # the insights of this task kind
TASK = "write a Triton kernel and its launcher for one ATen operator, verified against PyTorch"
NO_CODE = "no ```python block in the answer"
SYSTEM = ("You write one Triton kernel (and its Python launcher) for one PyTorch operator. Your launcher is "
          "checked against the operator on random inputs of the given shapes, strides and dtypes.")


@dataclass(frozen=True)
class Region:
    node: Node
    params: list[str]  # what the node reads, in order: the launcher's parameters
    metas: list[TensorMeta]  # of each parameter

    @property
    def function(self) -> str:
        return f"qm_region_{self.node.name}"


@dataclass
class RegionAttempt:
    round: int
    status: str  # a harness Status value, or "no_code"
    reason: str
    cached: bool


@dataclass
class RegionResult:
    region: Region
    code: str | None = None  # the verified code (None: no round verified)
    attempts: list[RegionAttempt] = field(default_factory=list)
    lesson: str = ""  # distilled after a failed-then-fixed region
    error: LLMError | None = None  # a request failed


def coder_regions(plan: Plan) -> list[Node]:
    """The nodes the symbolic coder cannot render: extern nodes with no lowering (not GEMMs, views, random
    numbers or recurrences, which stay vendor or PyTorch calls on purpose)."""
    return [u.node for u in plan.units if isinstance(u, ExternUnit) and op_class(u.node) == "extern"
            and extern_reason(u.node).startswith("no lowering for")]


def codable_nodes(plan: Plan) -> list[str]:
    """The PyTorch calls of a plan that a step may ask the micro coder for: every extern node but views,
    metadata assertions and random numbers (a kernel cannot draw PyTorch's stream)."""
    return [u.node.name for u in plan.units if isinstance(u, ExternUnit) and op_class(u.node) == "extern"
            and not extern_reason(u.node).startswith(("a view", "a metadata", "random"))]


def region_of(graph: Graph, node: Node) -> Region | None:
    """The region of ``node``, or None when it reads something other than single tensors."""
    params = region_params(node)
    metas = [next((i.meta for i in graph.inputs if i.name == p), None) or graph.node(p).meta for p in params]
    if not params or not all(isinstance(m, TensorMeta) for m in metas):
        return None
    return Region(node, params, metas)


def _describe(meta: TensorMeta | tuple | None) -> str:
    if isinstance(meta, TensorMeta):
        return f"{meta.dtype} shape {list(meta.shape)} strides {list(meta.stride)}"
    if isinstance(meta, tuple):
        return "a tuple of (" + "; ".join(_describe(m) for m in meta) + ")"
    return "not a tensor"


def signature(region: Region) -> str:
    """The launcher the model must write, with what each parameter is and what it returns."""
    lines = [f"def {region.function}({', '.join(region.params)}):"]
    lines += [f"    # {p}: {_describe(m)}" for p, m in zip(region.params, region.metas)]
    lines.append(f"    # returns {_describe(region.node.meta)} (what the operator returns)")
    return "\n".join(lines)


def subproblem_source(region: Region) -> str:
    """A KernelBench problem of the region alone: Model calls the operator; inputs have its shapes, strides
    and dtypes (integer inputs lie in [0, the smallest size of the floating inputs): valid indices)."""
    float_sizes = [s for m in region.metas if m.dtype.startswith(("float", "bfloat")) for s in m.shape]
    bound = max(1, min(float_sizes, default=2))
    makers = []
    for meta in region.metas:
        shape, stride, dtype = tuple(meta.shape), tuple(meta.stride), f"torch.{meta.dtype}"
        if meta.dtype.startswith(("float", "bfloat")):
            fill = f"torch.randn({shape!r}).to({dtype})"
        elif meta.dtype == "bool":
            fill = f"torch.rand({shape!r}) < 0.5"
        else:
            fill = f"torch.randint(0, {bound}, {shape!r}).to({dtype})"
        makers.append(f"torch.empty_strided({shape!r}, {stride!r}, dtype={dtype}).copy_({fill})")
    params = ", ".join(region.params)
    return "\n".join([
        f'"""One region of a qimeng optimize run: {region.node.target} alone."""', "",
        "import torch", "import torch.nn as nn", "", "",
        "class Model(nn.Module):",
        f"    def forward(self, {params}):",
        f"        _qm_dev = {region.params[0]}.device",
        f"        return {pytorch_call(region.node)}", "", "",
        "def get_inputs():",
        "    return [" + ", ".join(makers) + "]", "", "",
        "def get_init_inputs():",
        "    return []", ""])


def candidate_source(region: Region, code: str) -> str:
    """The sub-problem with the model's code as its ModelNew."""
    return (subproblem_source(region) + "\n\n" + code.strip() + "\n\n\nclass ModelNew(Model):\n"
            f"    def forward(self, *args):\n        return {region.function}(*args)\n")


def request_messages(graph: Graph, region: Region, lessons: str = "") -> list[Message]:
    node = region.node
    return [system(SYSTEM + ("\n\n" + lessons if lessons else "")), user(
        f"The operator (one node of a captured core-ATen graph):\n    {node.name} = {pytorch_call(node)}\n\n"
        f"It reads: " + "; ".join(f"{p}: {_describe(m)}" for p, m in zip(region.params, region.metas)) + ".\n"
        f"It returns {_describe(node.meta)}.\n\n"
        f"Write this launcher, which allocates its outputs on the inputs' device and launches Triton kernel(s) "
        f"(@triton.jit) that you define in the same file:\n\n```python\n{signature(region)}\n```\n\n"
        "Answer with one self-contained Python file (imports of torch, triton and triton.language included) in "
        "a single fenced ```python block; the last such block of your answer is taken.")]


def code_region(client: LLMClient, graph: Graph, region: Region, options: EvalOptions, *,
                debug_rounds: int = DEFAULT_DEBUG_ROUNDS, insights: InsightStore | None = None,
                target: str = "cuda", seed: int | None = None) -> RegionResult:
    """Ask for the region's code and verify it as a sub-problem; send the harness's reason back up to
    ``debug_rounds`` times. Failures are values in the result."""
    from qimeng.kernels.harness.evaluate import evaluate_many

    result = RegionResult(region)
    model = client.settings.model
    lessons = insights.lessons(TASK_KIND, target, model) if insights is not None else []
    conversation = request_messages(graph, region, lessons_text(lessons))
    failure = ""
    with tempfile.TemporaryDirectory(prefix="qimeng-region-") as tmp:
        problem = Path(tmp) / f"region_{region.node.name}.py"
        problem.write_text(subproblem_source(region))
        for round_ in range(debug_rounds + 1):
            answer = client.complete(conversation, seed=seed)
            if isinstance(answer, LLMError):
                result.error = answer
                return result
            code = last_code_block(answer.text)
            if code is None:
                status, reason = "no_code", NO_CODE
            else:
                verdict = evaluate_many(problem, [candidate_source(region, code)], options)[0]
                status, reason = verdict.status.value, verdict.reason
            result.attempts.append(RegionAttempt(round_, status, reason, answer.cached))
            if status == "ok":
                result.code = code
                if failure and insights is not None and not answer.cached:
                    lesson = distill(client, TASK, failure, code or "", seed=seed)
                    if isinstance(lesson, str) and lesson:
                        insights.add(TASK_KIND, target, model, lesson)
                        result.lesson = lesson
                return result
            failure = f"{status}: {reason}"
            conversation = feedback(conversation, answer.text,
                                    f"Your launcher failed verification: {failure}\n\nFix it. Answer with the "
                                    "complete corrected file in a single fenced ```python block.")
    return result
