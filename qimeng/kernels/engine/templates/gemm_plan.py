"""The GEMM template in a plan: a vendor GEMM call (and the epilogue kernel after it) as a template unit.

``template_unit`` makes the :class:`~qimeng.kernels.engine.templates.unit.TemplateUnit` of one
``mm``/``addmm``/``bmm``: the template's kernels rendered as source (inlined into ``model_new.py`` by
``emit``) and the forward lines that launch them through ``gemm_runtime``'s ``_qm_mm_run``. When the
product's only reader is one pointwise kernel that ``epilogue_from_kernel`` turns into an epilogue,
that kernel is folded into the template (``fold``: the product is never written); so is a reduction
kernel over the product's N axis (sum, mean, amax/amin, max values: the template writes ``[batch, M]``),
and a softmax-like kernel of rows that fit one tile (row statistics, at ``whole_row_config``). A
``tril``/``triu`` epilogue lets the tiles past its diagonal skip the K loop (``gemm_triangle``), and a product
of a matrix with its own transpose computes half its tiles (``gemm_symmetric``). Under the strict
policy the generated forward follows PyTorch's matmul TF32 flag at run time: with
``torch.backends.cuda.matmul.allow_tf32`` set, the reference itself runs in TF32, and so does the
template.
"""

from __future__ import annotations

import torch

from qimeng.kernels.engine.capture import Graph, Node, Ref
from qimeng.kernels.engine.ir.expr import Const, Expr, op
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.epilogue import ACC, RESERVED, Operand, operand_load
from qimeng.kernels.engine.templates.fold import fold
from qimeng.kernels.engine.templates.gemm import (TENSOR_CORE_FP32, GemmConfig, Problem, default_config,
                                                  fitted_config, strict_variant)
from qimeng.kernels.engine.templates.gemm_runtime import RUNTIME
from qimeng.kernels.engine.templates.gemm_source import kernels_source, source_hash
from qimeng.kernels.engine.templates.gemm_symmetric import symmetric_product
from qimeng.kernels.engine.templates.gemm_triangle import triangle_of
from qimeng.kernels.engine.templates.unit import TemplateUnit, by_flag, written_by_kernels

GEMM_TARGETS = ("aten.mm.default", "aten.addmm.default", "aten.bmm.default")
FLAG_VARIANT = "tf32"  # what strict runs while PyTorch's matmul TF32 flag is set


def operand_refs(node: Node) -> tuple:
    """The product's A and B arguments (addmm's first argument is the bias)."""
    return tuple(node.args[1:3] if node.target == "aten.addmm.default" else node.args[:2])


def b_k_major(graph: Graph, node: Node) -> bool:
    """Whether the product's B has its K axis contiguous (nn.Linear's ``weight.t()``): the streaming
    small-M kernel's shapes follow it."""
    return graph.meta(operand_refs(node)[1].name).stride[-2] == 1


def template_problem(graph: Graph, node: Node) -> Problem | str:
    """The product's sizes when the template can compute ``node``, else why not."""
    if node.target not in GEMM_TARGETS:
        return f"{node.target} is not mm/addmm/bmm"
    refs = operand_refs(node)
    if not all(isinstance(r, Ref) for r in (*refs, *node.args[:1])):
        return "an operand is not a tensor value"
    a, b = (graph.meta(r.name) for r in refs)
    if a.dtype != "float32" or b.dtype != "float32" or getattr(node.meta, "dtype", None) != "float32":
        return "not a float32 product"
    if set(node.kwargs) - {"beta", "alpha"}:
        return f"unsupported arguments {sorted(node.kwargs)}"
    for t in (a, b):
        if (t.shape[-2] - 1) * abs(t.stride[-2]) + (t.shape[-1] - 1) * abs(t.stride[-1]) >= 2**31:
            return "a matrix spans more than 2**31 elements"
    if node.target == "aten.addmm.default" and graph.meta(node.args[0].name).dtype != "float32":
        return "the bias is not float32"
    if tuple(node.meta.stride) != contiguous_strides(node.meta.shape):
        return "the product's captured strides are not contiguous"
    batch = a.shape[0] if node.target == "aten.bmm.default" else 1
    problem = Problem(a.shape[-2], b.shape[-1], a.shape[-1], batch)
    if problem.m * problem.n * problem.batch == 0:
        return "an empty product"
    return problem


def variants(policy: str, problem: Problem, measured: dict[int, str] | None = None) -> list[str]:
    """The template precisions a policy allows, the expert's choice first: under strict, 3xTF32 where it
    pays (``strict_variant``) and where the measurement at this K (``measured``: K -> variant, from
    ``strict_check``) did not rule it out, with plain fp32 (``ieee``) as its fallback; TF32 or bf16 under
    those policies."""
    if policy == "strict":
        if strict_variant(problem) == "ieee" or (measured or {}).get(problem.k) == "ieee":
            return ["ieee"]
        return ["tf32x3", "ieee"]
    return [{"tf32": "tf32", "bf16": "bf16"}[policy]]


def _base(graph: Graph, node: Node, m: int, n: int, contiguous: set[str]) -> tuple[Expr, tuple[Operand, ...]]:
    """The product as the reference computes it: ``ACC``, or ``beta * bias + alpha * ACC`` for addmm
    (the bias at its captured strides, or contiguous where one of our kernels writes it; ignored, NaN
    and all, for ``beta = 0`` as PyTorch does)."""
    alpha, beta = float(node.kwargs.get("alpha", 1)), float(node.kwargs.get("beta", 1))
    acc: Expr = ACC if alpha == 1 else op("mul", ACC, Const(alpha, "float32"))
    if node.target != "aten.addmm.default" or beta == 0:
        return acc, ()
    bias = graph.meta(node.args[0].name)
    strides = contiguous_strides(bias.shape) if node.args[0].name in contiguous else bias.stride
    stride = torch.empty_strided(bias.shape, strides, device="meta").expand(m, n).stride()
    b: Expr = operand_load(node.args[0].name, "float32", 0, stride[0], stride[1])
    b = b if beta == 1 else op("mul", b, Const(beta, "float32"))
    return op("add", b, acc), (Operand(node.args[0].name, "float32"),)


def sm_count(device_type: str) -> int:
    """Multiprocessors of the target the split-K choice is made for (1 under the interpreter)."""
    if device_type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).multi_processor_count
    return 1


def _launch(prefix: str, variant: str, a: str, b: str, out: str, extra: list[str], config: GemmConfig,
            indent: str, rows: bool = False) -> list[str]:
    """The forward lines running the template into ``out`` (with ``rows``, its row reduction's kernel too)."""
    k_major = variant in TENSOR_CORE_FP32 and not config.gemv
    a_code, b_code = (f"_qm_mm_k_major({a}, -1)", f"_qm_mm_k_major({b}, -2)") if k_major else (a, b)
    rows_kernel = f"{prefix}_rows" if rows else "None"
    return [f"{indent}_qm_ta, _qm_tb = {a_code}, {b_code}",
            f"{indent}_qm_mm_run(({prefix}, {prefix}_finalize, {rows_kernel}, {prefix}_gemv, {prefix}_stream), _qm_ta, _qm_tb, _qm_ta, "
            f"_qm_tb, {out}, "
            f"({''.join(e + ', ' for e in extra)}), {config.launch()!r})"]


def template_unit(graph: Graph, node: Node, variant: str, policy: str, units: list, device_type: str,
                  configs: dict[str, tuple[int, ...]] | None = None) -> tuple[TemplateUnit, KernelUnit | None] | str:
    """The template unit of ``node`` in ``variant`` (and the kernel it folds in), or why it does not apply;
    ``configs`` ("node/variant" -> launch tuple) fixes block configs, else each is the expert default."""
    problem = template_problem(graph, node)
    if isinstance(problem, str):
        return problem
    value, operands = _base(graph, node, problem.m, problem.n, written_by_kernels(units))
    if {o.name for o in operands} & RESERVED:
        return f"the bias is named {operands[0].name}, a name the template reserves"
    folded = fold(graph, units, node, problem.batch, problem.m, problem.n, value, operands, rows=True)
    interpreted, sms = device_type == "cpu", sm_count(device_type)
    run = [variant] + ([FLAG_VARIANT] if policy == "strict" and variant != FLAG_VARIANT else [])
    sources, calls, used = [], [], []
    refs = operand_refs(node)
    extra = [o.name for o in folded.epilogue.operands]
    symmetric = folded.rows is None and folded.epilogue.of_product_alone and symmetric_product(graph, node, *refs)
    for v in run:
        source = kernels_source(v, folded.epilogue, folded.out_dtype, interpreted, folded.rows, symmetric=symmetric)
        prefix = f"_qm_mm_{source_hash(source)[:12]}"
        sources.append(kernels_source(v, folded.epilogue, folded.out_dtype, interpreted, folded.rows, prefix,
                                      symmetric))
        fixed = (configs or {}).get(f"{node.name}/{v}")
        config = GemmConfig(*fixed) if fixed else default_config(problem, v, False, sms)
        # one N tile holds each row (tuning varies BLOCK_M and the warps only); symmetric: square tiles, no split-K
        config = fitted_config(problem, config, folded.epilogue.whole_rows, symmetric)
        used.append((f"{node.name}/{v}", config.launch()))
        calls.append(_launch(prefix, v, refs[0].name, refs[1].name, folded.output, extra, config,
                             "            " if len(run) > 1 else "        ", folded.rows is not None))
    lines = [f"        {folded.output} = torch.empty({tuple(folded.shape)!r}, dtype=torch.{folded.out_dtype}, "
             "device=_qm_dev)"] + by_flag("torch.backends.cuda.matmul.allow_tf32", calls)
    group = (node.name,) + (folded.folded.group if folded.folded is not None else ())
    triangle = triangle_of(folded.epilogue.value)
    side = "" if triangle is None else "tril" if triangle.lower else "triu"
    skips = f"; {side} {triangle.diagonal}: tiles past it run no K loop" if triangle else ""
    skips += "; symmetric: the tiles below the diagonal are the mirror of those above" if symmetric else ""
    unit = TemplateUnit(node, group, folded.output, RUNTIME, "\n\n".join(sources), lines, tuple(extra),
                        f"{variant}; {folded.note}{skips}", tuple(run), tuple(used))
    return unit, folded.folded
