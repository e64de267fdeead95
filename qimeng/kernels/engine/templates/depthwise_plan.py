"""The direct depthwise convolution in a plan: a depthwise ``aten.convolution`` (2-D, or 1-D as 2-D of
height 1; groups == input channels, any channel multiplier, stride, padding, dilation) and the epilogue
kernel after it, as one template unit.

It is memory-bound, not a tensor-core workload: cuDNN runs it in fp32 FMA too, so the kernel computes in
fp32 FMA (``ieee``) under every policy and PyTorch's TF32 flags do not change it. The input is read at
its own strides (no channels-last copy); the bias and a folded epilogue kernel become the epilogue.
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, Node
from qimeng.kernels.engine.codegen.ahead import ahead_line
from qimeng.kernels.engine.ir.expr import Expr, op
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.templates.conv_plan import conv_of
from qimeng.kernels.engine.templates.conv_source import Conv
from qimeng.kernels.engine.templates.depthwise_source import default_blocks, depthwise_source, grid, is_depthwise
from qimeng.kernels.engine.templates.epilogue import ACC, RESERVED, Operand, operand_load
from qimeng.kernels.engine.templates.fold import fold
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.unit import TemplateUnit, written_by_kernels

VARIANT = "ieee"  # fp32 FMA, whatever the policy and PyTorch's flags


def depthwise_of(graph: Graph, node: Node) -> Conv | str:
    """The depthwise convolution ``node`` computes when the direct kernel can, else why not."""
    conv = conv_of(graph, node)
    if isinstance(conv, str):
        return conv
    if conv.transposed or len(conv.size) == 3:
        return "a transposed or 3-D convolution"
    if len(conv.size) == 1:  # as 2-D of height 1
        conv = Conv(conv.n, conv.cin, (1, *conv.size), conv.cout, (1, *conv.kernel), (1, *conv.out),
                    (1, *conv.stride), (0, *conv.padding), (1, *conv.dilation), conv.groups)
    return conv if is_depthwise(conv) else "not a depthwise convolution"


def as_2d(values: tuple[int, ...], fill: int = 1) -> tuple[int, ...]:
    """Sizes (or strides, with ``fill`` 0) of a 1-D convolution's tensor with a height axis added."""
    return tuple(values) if len(values) == 4 else (values[0], values[1], fill, values[2])


def _strides(graph: Graph, name: str, contiguous: set[str]) -> tuple[int, ...]:
    """``name``'s NCHW strides as the kernel reads it (contiguous where one of our kernels writes it)."""
    meta = graph.meta(name)
    return as_2d(contiguous_strides(meta.shape) if name in contiguous else tuple(meta.stride), 0)


def depthwise_unit(graph: Graph, node: Node, units: list) -> tuple[TemplateUnit, KernelUnit | None] | str:
    """The direct depthwise kernel's unit for ``node`` (and the kernel it folds in), or why it does not apply."""
    conv = depthwise_of(graph, node)
    if isinstance(conv, str):
        return conv
    x_ref, w_ref, bias = node.args[:3]
    contiguous = written_by_kernels(units)
    x_stride, w_stride = _strides(graph, x_ref.name, contiguous), _strides(graph, w_ref.name, contiguous)
    value: Expr = ACC
    operands: tuple[Operand, ...] = ()
    if bias is not None:
        b_stride = 1 if bias.name in contiguous else graph.meta(bias.name).stride[0]
        value = op("add", ACC, operand_load(bias.name, "float32", 0, b_stride, 0))
        operands = (Operand(bias.name, "float32"),)
    if {o.name for o in operands} & RESERVED or {x_ref.name, w_ref.name} & RESERVED:
        return "a tensor is named as the template's own pointers"
    folded = fold(graph, units, node, conv.n, conv.cout, conv.pixels, value, operands)
    extra = [o.name for o in folded.epilogue.operands]
    alloc_stride = contiguous_strides(folded.shape) if folded.folded is not None else tuple(node.meta.stride)
    blocks = default_blocks(conv, x_stride)
    body = depthwise_source("KERNEL", conv, x_stride, w_stride, as_2d(alloc_stride, 0), blocks, folded.epilogue,
                            folded.out_dtype)
    name = f"_qm_dwconv_{source_hash(body)[:12]}"
    pointers = [graph.meta(x_ref.name).dtype, graph.meta(w_ref.name).dtype, folded.out_dtype,
                *(o.dtype for o in folded.epilogue.operands)]
    ahead = ahead_line(name, pointers, {"BLOCK_P": blocks.block_p, "BLOCK_C": blocks.block_c}, blocks.num_warps, None)
    lines = [f"        {folded.output} = torch.empty_strided({tuple(folded.shape)!r}, {alloc_stride!r}, "
             f"dtype=torch.{folded.out_dtype}, device=_qm_dev)",
             f"        {name}[{grid(conv, blocks)!r}]({x_ref.name}, {w_ref.name}, {folded.output}, "
             f"{''.join(e + ', ' for e in extra)}BLOCK_P={blocks.block_p}, BLOCK_C={blocks.block_c}, "
             f"num_warps={blocks.num_warps})"]
    group = (node.name,) + (folded.folded.group if folded.folded is not None else ())
    note = (f"{VARIANT} (fp32 FMA, whatever the TF32 flags); direct depthwise {conv.kernel[0]}x{conv.kernel[1]}, "
            f"multiplier {conv.cout // conv.cin}, stride {conv.stride}, padding {conv.padding}, "
            f"dilation {conv.dilation}, {'channels' if blocks.channels_fast else 'pixels'} fast; {folded.note}")
    source = body.replace("def KERNEL(", f"def {name}(", 1) + "\n\n" + ahead + "\n"
    unit = TemplateUnit(node, group, folded.output, "", source, lines, (x_ref.name, w_ref.name, *extra), note,
                        (VARIANT,))
    return unit, folded.folded
