"""The implicit-GEMM convolution in a plan: ``aten.convolution`` (2-D, or 1-D as 2-D of height 1; not
transposed; any stride, padding, dilation and groups) and the epilogue kernel after it, as one template unit.

The forward makes the input channels-last (NHWC: a copy unless it already is) and launches
``conv_source``'s kernel; the bias and a folded epilogue kernel become the epilogue. Under the strict
policy the generated forward follows PyTorch's cuDNN TF32 flag at run time
(``torch.backends.cudnn.allow_tf32``, on by default: PyTorch's own fp32 convolutions then run in TF32,
and so does the template); with the flag off it runs the strict variant (3xTF32 or ieee).
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, Node, Ref
from qimeng.kernels.engine.ir.expr import Expr, op
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.conv_source import CONV_PRECISIONS, Conv, conv_source, default_blocks
from qimeng.kernels.engine.templates.epilogue import ACC, RESERVED, Operand, operand_load
from qimeng.kernels.engine.templates.fold import fold
from qimeng.kernels.engine.templates.gemm import Problem
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.unit import TemplateUnit, by_flag, written_by_kernels

CONV_TARGET = "aten.convolution.default"
FLAG = "torch.backends.cudnn.allow_tf32"
FLAG_VARIANT = "tf32"


def conv_of(graph: Graph, node: Node) -> Conv | str:
    """The convolution ``node`` computes when the template can, else why not."""
    if node.target != CONV_TARGET:
        return f"{node.target} is not a convolution"
    if node.kwargs or len(node.args) != 9 or not all(isinstance(r, Ref) for r in node.args[:2]):
        return "unexpected arguments"
    x_ref, w_ref, bias, stride, padding, dilation, transposed, _, groups = node.args
    x, w = graph.meta(x_ref.name), graph.meta(w_ref.name)
    if transposed:
        return "a transposed convolution"
    if len(x.shape) not in (3, 4) or len(stride) != len(x.shape) - 2:
        return f"a {len(x.shape) - 2}-D convolution (1-D and 2-D only)"
    if x.dtype != "float32" or w.dtype != "float32" or (bias is not None and graph.meta(bias.name).dtype != "float32"):
        return "not float32"
    xs, ws, os_ = (as_2d(t) for t in (x.shape, w.shape, node.meta.shape))  # 1-D: 2-D of height 1
    st, pad, dil = (tuple(v) if len(x.shape) == 4 else (first, *v)
                    for v, first in ((stride, 1), (padding, 0), (dilation, 1)))
    conv = Conv(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], os_[2], os_[3], st, pad, dil, int(groups))
    if conv.rows * conv.cout == 0 or conv.k == 0:
        return "an empty convolution"
    return conv


def as_2d(values: tuple[int, ...], fill: int = 1) -> tuple[int, ...]:
    """Sizes (or strides, with ``fill`` 0) of a 1-D convolution's tensor with a height axis added."""
    return tuple(values) if len(values) == 4 else (values[0], values[1], fill, values[2])


def conv_problem(conv: Conv) -> Problem:
    """The convolution as the GEMM the precision policy judges: ``groups`` products of rows x Cout/groups."""
    return Problem(conv.rows, conv.cout // conv.groups, conv.k, conv.groups)


def conv_unit(graph: Graph, node: Node, variant: str, policy: str, units: list, device_type: str
              ) -> tuple[TemplateUnit, KernelUnit | None] | str:
    """The convolution template's unit for ``node`` in ``variant`` (and the kernel it folds in)."""
    conv = conv_of(graph, node)
    if isinstance(conv, str):
        return conv
    if variant not in CONV_PRECISIONS:
        return f"no {variant} convolution"
    x_ref, w_ref, bias = node.args[:3]
    conv_1d = len(graph.meta(x_ref.name).shape) == 3
    contiguous = written_by_kernels(units)
    w_meta = graph.meta(w_ref.name)
    w_stride = as_2d(contiguous_strides(w_meta.shape) if w_ref.name in contiguous else w_meta.stride, 0)
    value: Expr = ACC
    operands: tuple[Operand, ...] = ()
    if bias is not None:
        b_meta = graph.meta(bias.name)
        b_stride = 1 if bias.name in contiguous else b_meta.stride[0]
        value = op("add", ACC, operand_load(bias.name, "float32", 0, b_stride, 0))
        operands = (Operand(bias.name, "float32"),)
    if {o.name for o in operands} & RESERVED or w_ref.name in RESERVED:
        return "a tensor is named as the template's own pointers"
    folded = fold(graph, units, node, conv.n, conv.cout, conv.oh * conv.ow, value, operands)
    extra = [o.name for o in folded.epilogue.operands]
    # a folded kernel's output is contiguous; the convolution's own keeps the strides PyTorch gives it
    alloc_stride = contiguous_strides(folded.shape) if folded.folded is not None else tuple(node.meta.stride)
    out_stride = as_2d(alloc_stride, 0)
    blocks = default_blocks(conv)
    grid = (-(-conv.rows // blocks.block_m), -(-(conv.cout // conv.groups) // blocks.block_n), conv.groups)
    run = [variant] + ([FLAG_VARIANT] if policy == "strict" and variant != FLAG_VARIANT else [])
    sources, calls = [], []
    for v in run:
        body = conv_source("KERNEL", conv, w_stride, out_stride, v, folded.epilogue, folded.out_dtype,
                           device_type == "cpu")
        name = f"_qm_conv_{source_hash(body)[:12]}"
        sources.append(body.replace("def KERNEL(", f"def {name}(", 1))
        indent = "            " if len(run) > 1 else "        "
        calls.append([f"{indent}{name}[{grid!r}](_qm_cx, {w_ref.name}, {folded.output}, "
                      f"{''.join(e + ', ' for e in extra)}BLOCK_M={blocks.block_m}, BLOCK_N={blocks.block_n}, "
                      f"BLOCK_K={blocks.block_k}, num_warps={blocks.num_warps}, num_stages={blocks.num_stages})"])
    lines = [f"        {folded.output} = torch.empty_strided({tuple(folded.shape)!r}, {alloc_stride!r}, "
             f"dtype=torch.{folded.out_dtype}, device=_qm_dev)",
             f"        _qm_cx = {x_ref.name}{'.unsqueeze(2)' if conv_1d else ''}"
             ".contiguous(memory_format=torch.channels_last)"] + by_flag(FLAG, calls)
    group = (node.name,) + (folded.folded.group if folded.folded is not None else ())
    note = (f"{variant}; implicit GEMM {conv.kh}x{conv.kw}, stride {conv.stride}, padding {conv.padding}, "
            f"dilation {conv.dilation}, groups {conv.groups}; {folded.note}")
    return TemplateUnit(node, group, folded.output, "", "\n\n".join(sources), lines, (w_ref.name, *extra), note,
                        tuple(run)), folded.folded
